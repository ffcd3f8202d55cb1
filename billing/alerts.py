"""Spend alerts: once a period, when the tenant's upcoming invoice (Stripe's own preview: the
base price plus the metered usage so far) passes the tenant's threshold, one e-mail to the
billing contact (the owners when it has none) and a banner in the console."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.mail import send_mail

from tenants.models import Membership, Role, Tenant
from tenants.scoping import tenant_scope

from .checkout import PaymentProviderError
from .invoices import upcoming_invoice
from .models import BillingAccount
from .settings import billing_settings

logger = logging.getLogger("vectorplane.billing.alerts")


def recipients(account: BillingAccount) -> list[str]:
    """Who hears about the tenant's bill: the billing e-mail, else its owners."""
    if account.billing_email:
        return [account.billing_email]
    with tenant_scope(account.tenant_id):
        owners = Membership.objects.filter(role=Role.OWNER).select_related("user")
        return sorted({m.user.email for m in owners if m.user.email})


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency.upper()}"


def spend_alert_check(tenant: Tenant) -> bool:
    """Alert the tenant if its period's spend passed its threshold and it was not alerted this
    period; whether an alert went out."""
    with tenant_scope(tenant.id):
        account = BillingAccount.objects.filter(tenant=tenant).first()
    if account is None or account.spend_alert_cents is None or not account.current_period_start:
        return False
    if account.spend_alert_sent_for == account.current_period_start:
        return False  # one alert a period
    preview = upcoming_invoice(tenant=tenant)
    if preview is None or preview["total"] < account.spend_alert_cents:
        return False
    currency = preview["currency"] or billing_settings().currency
    page = f"{billing_settings().public_url.rstrip('/')}/console/t/{tenant.slug}/billing"
    spent, limit = _money(preview["total"], currency), _money(account.spend_alert_cents, currency)
    send_mail(
        subject=f"Vectorplane: {tenant.name} passed its spend alert",
        message=(
            f"The upcoming invoice of {tenant.name} ({tenant.slug}) is {spent} so far this "
            f"period, past the alert at {limit}.\nUsage and invoices: {page}\n"
        ),
        from_email=None,
        recipient_list=recipients(account),
    )
    with tenant_scope(tenant.id):
        BillingAccount.objects.filter(pk=account.pk).update(
            spend_alert_sent_for=account.current_period_start
        )
    return True


@shared_task(name="billing.alerts.spend_alerts_check")
def spend_alerts_check() -> dict[str, int]:
    """Every tenant with a threshold and a subscription (the beat's, hourly)."""
    counts = {"checked": 0, "alerted": 0, "failed": 0}
    if not billing_settings().enabled:
        return counts
    for tenant in alert_candidates():
        counts["checked"] += 1
        try:
            counts["alerted"] += spend_alert_check(tenant)
        except PaymentProviderError as exc:
            logger.warning("spend alert of %s: %s", tenant.slug, exc)
            counts["failed"] += 1
    return counts


def alert_candidates() -> list[Tenant]:
    """Tenants with a spend alert and a subscription (a named cross-tenant read:
    tenants/scoping.py lists it)."""
    tenant_ids = (
        BillingAccount.objects.unscoped()
        .filter(spend_alert_cents__isnull=False)
        .exclude(stripe_subscription_id="")
        .values_list("tenant_id", flat=True)
    )
    return list(Tenant.objects.filter(pk__in=list(tenant_ids)).select_related("plan"))


def crossed(account: BillingAccount) -> bool:
    """The alert went out this period (the console's banner)."""
    return bool(
        account.spend_alert_sent_for
        and account.spend_alert_sent_for == account.current_period_start
    )

