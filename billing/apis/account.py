"""`GET/PATCH /api/v1/tenants/{t}/billing`: whether billing is on, the tenant's plan and payment
state, its subscription as Stripe last said, its billing contact and spend alert."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.schema import errors
from controlplane.api.serializers import StrictInputSerializer
from controlplane.api.views import TenantAPIView
from tenants.models import PaymentState, Role

from .. import alerts, services
from ..models import BillingAccount
from ..settings import billing_settings

BILLING_ERRORS = errors(400, 401, 403, 404)


class BillingContactFields(serializers.Serializer[Any]):
    billing_email = serializers.EmailField(allow_blank=True)
    address_line1 = serializers.CharField(max_length=200, allow_blank=True)
    address_line2 = serializers.CharField(max_length=200, allow_blank=True)
    address_city = serializers.CharField(max_length=100, allow_blank=True)
    address_postal_code = serializers.CharField(max_length=20, allow_blank=True)
    address_state = serializers.CharField(max_length=100, allow_blank=True)
    address_country = serializers.CharField(
        max_length=2, allow_blank=True, help_text="ISO 3166-1 alpha-2 (empty: none)."
    )


class LatestInvoiceOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    status = serializers.CharField(help_text="Stripe's: open, paid, void, uncollectible.")
    amount_due = serializers.IntegerField(help_text="In the currency's smallest unit (cents).")
    currency = serializers.CharField()
    hosted_invoice_url = serializers.CharField(help_text="Stripe's page to view and pay it.")


class BillingAccountOutput(BillingContactFields):
    enabled = serializers.BooleanField(
        help_text="False: this platform runs without billing (no STRIPE_SECRET_KEY); plans are "
        "assigned by its operators."
    )
    plan = serializers.CharField()
    payment_state = serializers.ChoiceField(PaymentState.choices)
    payment_state_since = serializers.DateTimeField(allow_null=True)
    grace_days = serializers.IntegerField(
        help_text="Days from a failed payment (`past_due`) until writes are refused."
    )
    suspend_days = serializers.IntegerField(
        help_text="Days writes are refused (`payment_required`) before the tenant is suspended."
    )
    has_customer = serializers.BooleanField()
    subscription_status = serializers.CharField(help_text="Stripe's; empty: no subscription.")
    current_period_start = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    spend_alert_cents = serializers.IntegerField(allow_null=True)
    spend_alert_crossed = serializers.BooleanField(
        help_text="This period's spend passed the alert (an e-mail went out)."
    )
    currency = serializers.CharField()
    latest_invoice = LatestInvoiceOutput(
        allow_null=True,
        help_text="The latest invoice Stripe's webhooks told of (finalized, paid or failed).",
    )
    unpaid_invoices = serializers.ListField(
        child=serializers.CharField(),
        help_text="Invoices whose payment failed and that are not paid since (past due).",
    )


class BillingAccountInput(StrictInputSerializer):
    billing_email = serializers.EmailField(required=False, allow_blank=True)
    address_line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    address_postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    address_state = serializers.CharField(max_length=100, required=False, allow_blank=True)
    address_country = serializers.CharField(
        max_length=2, required=False, allow_blank=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Two capital letters (ISO 3166-1 alpha-2).")],
        help_text="ISO 3166-1 alpha-2, upper case; empty: none.",
    )  # fmt: skip
    spend_alert_cents = serializers.IntegerField(
        min_value=1, max_value=10**12, required=False, allow_null=True,
        help_text="Alert when the period's spend passes this many cents; null: no alert.",
    )  # fmt: skip


def _output(account: BillingAccount) -> dict[str, Any]:
    settings = billing_settings()
    tenant = account.tenant
    return BillingAccountOutput(
        {
            "enabled": settings.enabled,
            "plan": tenant.plan.slug,
            "payment_state": tenant.payment_state,
            "payment_state_since": tenant.payment_state_since,
            "grace_days": settings.grace_days,
            "suspend_days": settings.suspend_days,
            "has_customer": bool(account.stripe_customer_id),
            "subscription_status": account.subscription_status,
            "current_period_start": account.current_period_start,
            "current_period_end": account.current_period_end,
            "spend_alert_cents": account.spend_alert_cents,
            "spend_alert_crossed": alerts.crossed(account),
            "currency": settings.currency,
            "latest_invoice": {
                "id": account.latest_invoice_id,
                "status": account.latest_invoice_status,
                "amount_due": account.latest_invoice_amount_due,
                "currency": account.latest_invoice_currency,
                "hosted_invoice_url": account.latest_invoice_url,
            } if account.latest_invoice_id else None,
            "unpaid_invoices": list(account.unpaid_invoices),
            **{name: getattr(account, name) for name in services.CONTACT_FIELDS},
        }
    ).data


class BillingAccountApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "PATCH": Role.ADMIN}

    @extend_schema(
        operation_id="billing_retrieve",
        tags=["billing"],
        description="The tenant's billing: whether the platform bills at all, the plan, the "
        "payment state (and the grace rules), the subscription as Stripe last described it, the "
        "billing contact and the spend alert.",
        responses={200: BillingAccountOutput, **BILLING_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return Response(_output(services.account_for(self.tenant)))

    @extend_schema(
        operation_id="billing_update",
        tags=["billing"],
        description="Admins: the billing e-mail and address (the Stripe customer follows, when "
        "there is one) and the spend alert threshold.",
        request=BillingAccountInput,
        responses={200: BillingAccountOutput, **errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, tenant_slug: str) -> Response:
        data = BillingAccountInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        actor = self.actor()
        account = services.account_for(self.tenant)
        if "spend_alert_cents" in values:
            account = services.spend_alert_set(
                actor=actor, tenant=self.tenant, cents=values.pop("spend_alert_cents")
            )
        if values:
            account = services.contact_update(actor=actor, tenant=self.tenant, values=values)
        return Response(_output(account))
