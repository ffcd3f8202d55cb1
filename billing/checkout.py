"""Buying a plan and managing payment: a Stripe Checkout Session (subscription mode: the plan's
base price and its metered prices) and a Customer Portal session, each answered as the URL the
browser goes to. The plan changes only when Stripe says so (the webhook), never on the return
from Checkout."""

from __future__ import annotations

from dataclasses import dataclass

import stripe

from controlplane.errors import ApplicationError, ConflictError
from tenants.actors import Actor
from tenants.models import Tenant
from tenants.services import audit_record

from . import plans, services
from .client import stripe_client
from .models import CatalogueEntry, Meter
from .settings import billing_settings


class PaymentProviderError(ApplicationError):
    """Stripe did not do what was asked (it answered an error, or did not answer)."""

    def __init__(self, exc: stripe.StripeError) -> None:
        super().__init__(
            "payment_provider_error",
            f"The payment provider refused or did not answer: {exc.user_message or exc}"[:500],
            status=502,
            details={"stripe_code": exc.code or "", "http_status": exc.http_status or 0},
        )


def base_lookup_key(plan_slug: str) -> str:
    return f"vp_{plan_slug}_base"


def metered_lookup_key(plan_slug: str, meter: str) -> str:
    return f"vp_{plan_slug}_{meter}"


def _price_ids(plan_slug: str) -> tuple[str, list[str]]:
    """The plan's base price and metered prices, as the catalogue command recorded them."""
    keys = [base_lookup_key(plan_slug), *(metered_lookup_key(plan_slug, m) for m in Meter.values)]
    found = dict(
        CatalogueEntry.objects.filter(lookup_key__in=keys).values_list("lookup_key", "stripe_id")
    )
    missing = [key for key in keys if key not in found]
    if missing:
        raise ConflictError(
            "catalogue_missing",
            f"The {plan_slug} plan has no Stripe prices yet: an operator runs "
            "`manage.py billing_catalogue` once Stripe is configured.",
            details={"plan": plan_slug, "missing": missing},
        )
    return found[keys[0]], [found[key] for key in keys[1:]]


@dataclass(frozen=True)
class RedirectSession:
    id: str
    url: str


def checkout_session(*, actor: Actor, tenant: Tenant, plan_slug: str) -> RedirectSession:
    """A Checkout Session for `plan_slug` (refused before Stripe is asked when the plan is not
    for sale, is the current one, or the tenant's use exceeds it)."""
    settings = billing_settings()
    stripe_client(settings)  # billing off: `409 billing_disabled` before anything else
    plan = plans.purchasable_plan(plan_slug)
    if tenant.plan_id == plan.pk:
        raise ConflictError(
            "plan_unchanged", f"The tenant is on the {plan.slug} plan already.",
            details={"plan": plan.slug},
        )  # fmt: skip
    plans.require_fits(tenant, plan)
    base, metered = _price_ids(plan.slug)
    account = services.customer_ensure(tenant=tenant)
    console = f"{settings.public_url.rstrip('/')}/console/t/{tenant.slug}/billing"
    params: dict[str, object] = {
        "mode": "subscription",
        "customer": account.stripe_customer_id,
        "client_reference_id": str(tenant.id),
        "line_items": [{"price": base, "quantity": 1}, *({"price": p} for p in metered)],
        "success_url": f"{console}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{console}?checkout=cancelled",
        "metadata": {"tenant_id": str(tenant.id), "plan": plan.slug},
        "subscription_data": {"metadata": {"tenant_id": str(tenant.id), "plan": plan.slug}},
    }
    try:
        session = stripe_client().v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        raise PaymentProviderError(exc) from exc
    audit_record(
        actor=actor, action="billing.checkout_started", tenant=tenant, target_type="tenant",
        target_id=tenant.id, target_label=tenant.slug,
        details={"plan": plan.slug, "session": session.id},
    )  # fmt: skip
    return RedirectSession(id=session.id, url=str(session.url))


def portal_session(*, actor: Actor, tenant: Tenant) -> RedirectSession:
    """A Customer Portal session: cards, invoices, cancelling (Stripe's own pages)."""
    settings = billing_settings()
    account = services.customer_ensure(tenant=tenant)
    return_url = f"{settings.public_url.rstrip('/')}/console/t/{tenant.slug}/billing"
    try:
        session = stripe_client().v1.billing_portal.sessions.create(
            params={"customer": account.stripe_customer_id, "return_url": return_url}
        )
    except stripe.StripeError as exc:
        raise PaymentProviderError(exc) from exc
    audit_record(
        actor=actor, action="billing.portal_opened", tenant=tenant, target_type="tenant",
        target_id=tenant.id, target_label=tenant.slug, details={},
    )  # fmt: skip
    return RedirectSession(id=session.id, url=session.url)
