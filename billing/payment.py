"""The payment state the data plane obeys, and the notices that go with it.

`invoice.payment_failed` puts a tenant `past_due` (a grace period: a console banner and a
notice; everything works). After `VECTORPLANE_BILLING_GRACE_DAYS` (7) still unpaid it is
`payment_required`: the gateway refuses its writes with `402 payment_required`, reads work. After
`VECTORPLANE_BILLING_SUSPEND_DAYS` (14) more it is suspended (`tenant_suspended`, reason
`billing: ...`). `invoice.paid` (or the failed invoice voided) lifts all of it at once: the
payment state back to `current` and a billing suspension reactivated; the gateway learns each
change at commit (the tenants row's NOTIFY). Every change is audited as the system, and each
step sends one e-mail to the billing contact (the owners without one) after the commit.

The time steps run on the beat (`payment_states_advance`, every
`VECTORPLANE_PAYMENT_STATE_SECONDS`, 15 minutes by default): the state's own
`payment_state_since` says when it began, so a late run never shortens a period.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import PaymentState, Tenant, TenantStatus

from .alerts import recipients
from .services import account_for
from .settings import billing_settings

logger = logging.getLogger("vectorplane.billing.payment")

# The reason a billing suspension carries (and a payment lifts; an operator's never is).
SUSPEND_REASON = "billing: unpaid past the grace and payment-required periods"


def is_billing_suspension(tenant: Tenant) -> bool:
    return tenant.status == TenantStatus.SUSPENDED and tenant.status_reason.startswith("billing:")


def notice_send(tenant: Tenant, subject: str, body: str) -> None:
    """One e-mail to who hears about the tenant's bill, once the caller's transaction commits
    (a rolled-back change sends nothing)."""
    account = account_for(tenant)
    to = recipients(account)
    if not to:
        logger.warning("no recipient for the billing notice of %s: %s", tenant.slug, subject)
        return
    page = f"{billing_settings().public_url.rstrip('/')}/console/t/{tenant.slug}/billing"
    message = f"{body}\n\nBilling: {page}\n"

    def send() -> None:
        try:
            send_mail(subject=f"Vectorplane: {subject}", message=message, from_email=None,
                      recipient_list=to)  # fmt: skip
        except Exception:  # an SMTP outage must not undo the state change
            logger.exception("billing notice to %s failed", to)

    transaction.on_commit(send)


def payment_failed(tenant: Tenant, *, invoice_id: str, reason: str) -> str:
    """A failed payment: `current` → `past_due` (the grace begins); a tenant already past due or
    refused keeps its state (and when it began). The outcome, for the event's record."""
    settings = billing_settings()
    if tenant.payment_state != PaymentState.CURRENT:
        return f"invoice {invoice_id} failed; tenant already {tenant.payment_state}"
    tenant_services.tenant_set_payment_state(
        actor=Actor.system(), tenant=tenant, state=PaymentState.PAST_DUE, reason=reason
    )
    notice_send(
        tenant, f"a payment of {tenant.name} failed",
        f"Stripe could not collect invoice {invoice_id} for {tenant.name} ({tenant.slug}). "
        f"Everything keeps working for {settings.grace_days} days; after that, writes are "
        "refused until the invoice is paid. Update the card in the billing portal.",
    )  # fmt: skip
    return f"invoice {invoice_id} failed: past_due"


def payment_settled(tenant: Tenant, *, reason: str) -> str:
    """Paid (or nothing owed any more): `current`, and a billing suspension lifted."""
    lifted: list[str] = []
    if tenant.payment_state != PaymentState.CURRENT:
        lifted.append(tenant.payment_state)
        tenant_services.tenant_set_payment_state(
            actor=Actor.system(), tenant=tenant, state=PaymentState.CURRENT, reason=reason
        )
    if is_billing_suspension(tenant):
        lifted.append("suspended")
        tenant_services.tenant_reactivate(actor=Actor.system(), tenant=tenant)
    if not lifted:
        return f"{reason}; tenant current"
    notice_send(tenant, f"{tenant.name} is paid up",
                f"{reason}: {tenant.name} ({tenant.slug}) has full access again.")  # fmt: skip
    return f"{reason}: lifted {', '.join(lifted)}"


def _advance(tenant: Tenant, now: datetime) -> str | None:
    settings = billing_settings()
    since = tenant.payment_state_since
    if since is None:
        return None
    if tenant.payment_state == PaymentState.PAST_DUE:
        if now - since < timedelta(days=settings.grace_days):
            return None
        tenant_services.tenant_set_payment_state(
            actor=Actor.system(), tenant=tenant, state=PaymentState.PAYMENT_REQUIRED,
            reason=f"unpaid {settings.grace_days} days after a failed payment",
        )  # fmt: skip
        notice_send(
            tenant, f"writes of {tenant.name} are paused",
            f"An invoice of {tenant.name} ({tenant.slug}) is still unpaid after the "
            f"{settings.grace_days}-day grace period: writes answer 402 payment_required, "
            f"reads keep working. Unpaid {settings.suspend_days} more days, the tenant is "
            "suspended.",
        )  # fmt: skip
        return PaymentState.PAYMENT_REQUIRED
    if tenant.payment_state == PaymentState.PAYMENT_REQUIRED:
        if tenant.status != TenantStatus.ACTIVE:
            return None
        if now - since < timedelta(days=settings.suspend_days):
            return None
        tenant_services.tenant_suspend(actor=Actor.system(), tenant=tenant, reason=SUSPEND_REASON)
        notice_send(
            tenant, f"{tenant.name} is suspended",
            f"An invoice of {tenant.name} ({tenant.slug}) is still unpaid: the tenant is "
            "suspended (its API keys answer tenant_suspended). Paying the invoice restores it.",
        )  # fmt: skip
        return "suspended"
    return None


def payment_state_candidates() -> list[Tenant]:
    """Every tenant behind with a payment (the tenants table is the platform's, not a tenant's:
    no scope is needed to list them)."""
    return list(
        Tenant.objects.filter(
            payment_state__in=[PaymentState.PAST_DUE, PaymentState.PAYMENT_REQUIRED]
        ).exclude(status=TenantStatus.DELETED)
    )


@shared_task(name="billing.payment.payment_states_advance")
def payment_states_advance(now_iso: str | None = None) -> dict[str, int]:
    """Move every tenant whose period ran out one step on (the beat's). Each tenant in its own
    transaction, its row locked by the services, so a concurrent `invoice.paid` either lands
    first (and this finds it current) or after (and lifts what this did)."""
    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    counts = {"checked": 0, PaymentState.PAYMENT_REQUIRED: 0, "suspended": 0}
    for tenant in payment_state_candidates():
        counts["checked"] += 1
        with transaction.atomic():
            fresh = Tenant.objects.select_for_update().get(pk=tenant.pk)
            step = _advance(fresh, now)
        if step is not None:
            counts[step] += 1
            logger.info("tenant %s: %s", tenant.slug, step)
    return counts

