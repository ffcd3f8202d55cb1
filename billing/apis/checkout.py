"""Buying and paying: `POST .../billing/checkout` (a Stripe Checkout Session URL for a plan),
`POST .../billing/portal` (a Customer Portal URL), `GET .../billing/invoices` (invoices and the
upcoming one)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.schema import errors
from controlplane.api.serializers import StrictInputSerializer
from controlplane.api.views import TenantAPIView
from tenants.models import Role

from .. import checkout, invoices

REDIRECT_ERRORS = errors(400, 401, 403, 404, 409, 502)


class CheckoutInput(StrictInputSerializer):
    plan = serializers.SlugField(max_length=40, help_text="A paid public plan's slug.")


class RedirectOutput(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="Stripe's session id.")
    url = serializers.URLField(help_text="Where to send the browser (Stripe's page).")


class InvoiceOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    number = serializers.CharField()
    status = serializers.CharField(help_text="Stripe's: draft, open, paid, void, uncollectible.")
    currency = serializers.CharField()
    total = serializers.IntegerField(help_text="In the currency's smallest unit (cents).")
    amount_due = serializers.IntegerField()
    amount_paid = serializers.IntegerField()
    created = serializers.IntegerField(help_text="Unix seconds.")
    period_start = serializers.IntegerField()
    period_end = serializers.IntegerField()
    hosted_invoice_url = serializers.CharField(help_text="Stripe's page for it (may be empty).")
    invoice_pdf = serializers.CharField(help_text="Its PDF (may be empty).")


# Built with type(): a class attribute named `data` would shadow Serializer.data for mypy.
InvoicesOutput = type(
    "InvoicesOutput",
    (serializers.Serializer,),
    {
        "data": InvoiceOutput(many=True),
        "upcoming": InvoiceOutput(
            allow_null=True, help_text="Stripe's preview of the next invoice."
        ),
    },
)


class BillingCheckoutApi(TenantAPIView):
    minimum_role = {"POST": Role.ADMIN}

    @extend_schema(
        operation_id="billing_checkout",
        tags=["billing"],
        description="Admins: a Stripe Checkout Session (subscription mode) for a paid plan — its "
        "base price and metered prices. Send the browser to `url`; the plan changes when "
        "Stripe's webhook says the subscription is active, never on the return. Refused before "
        "Stripe is asked: a plan not for sale (`400 plan_not_purchasable`), the current plan "
        "(`409 plan_unchanged`), a plan the tenant's use exceeds (`409 plan_limits_exceeded`, "
        "with what exceeds), billing off (`409 billing_disabled`).",
        request=CheckoutInput,
        responses={201: RedirectOutput, **REDIRECT_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        data = CheckoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = checkout.checkout_session(
            actor=self.actor(), tenant=self.tenant, plan_slug=data.validated_data["plan"]
        )
        return Response(RedirectOutput(session).data, status=201)


class BillingPortalApi(TenantAPIView):
    minimum_role = {"POST": Role.ADMIN}

    @extend_schema(
        operation_id="billing_portal",
        tags=["billing"],
        description="Admins: a Stripe Customer Portal session (cards, invoices, cancelling). "
        "Send the browser to `url`; it comes back to the console's Billing page.",
        request=None,
        responses={201: RedirectOutput, **REDIRECT_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        session = checkout.portal_session(actor=self.actor(), tenant=self.tenant)
        return Response(RedirectOutput(session).data, status=201)


class BillingInvoicesApi(TenantAPIView):
    minimum_role = {"GET": Role.ADMIN}

    @extend_schema(
        operation_id="billing_invoices",
        tags=["billing"],
        description="Admins: the tenant's latest invoices (newest first, at most 24) with "
        "Stripe's hosted page and PDF, and the upcoming invoice as Stripe previews it.",
        responses={200: InvoicesOutput, **errors(401, 403, 404, 409, 502)},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        body = {
            "data": invoices.invoice_list(tenant=self.tenant),
            "upcoming": invoices.upcoming_invoice(tenant=self.tenant),
        }
        return Response(InvoicesOutput(body).data)
