"""Billing's writes that are not webhooks: the tenant's billing account (made lazily), its Stripe
customer (made lazily, its contact kept in step), and the spend alert. Every Stripe call goes
through `client.stripe_client()` (the real library), with an idempotency key where a retry could
repeat an effect."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tenants.actors import Actor
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tenants.services import audit_record

from .client import stripe_client
from .models import BillingAccount

CONTACT_FIELDS = (
    "billing_email", "address_line1", "address_line2", "address_city", "address_postal_code",
    "address_state", "address_country",
)  # fmt: skip


def account_for(tenant: Tenant) -> BillingAccount:
    """The tenant's billing account, made on first use (no Stripe call)."""
    with tenant_scope(tenant.id):
        account, _created = BillingAccount.objects.get_or_create(tenant=tenant)
    return account


def account_locked(tenant: Tenant) -> BillingAccount:
    """The tenant's account, made if absent, locked for the caller's transaction (call it in
    the tenant's scope): billing's writes and webhooks serialise on it."""
    account, _created = BillingAccount.objects.select_for_update().get_or_create(tenant=tenant)
    return account


def _customer_params(account: BillingAccount, tenant: Tenant) -> dict[str, Any]:
    address = {
        "line1": account.address_line1,
        "line2": account.address_line2,
        "city": account.address_city,
        "postal_code": account.address_postal_code,
        "state": account.address_state,
        "country": account.address_country,
    }
    params: dict[str, Any] = {
        "name": tenant.name,
        "metadata": {"tenant_id": str(tenant.id), "tenant_slug": tenant.slug},
    }
    if account.billing_email:
        params["email"] = account.billing_email
    if any(address.values()):
        params["address"] = {k: v for k, v in address.items() if v}
    return params


def customer_ensure(*, tenant: Tenant) -> BillingAccount:
    """The tenant's Stripe customer, created the first time billing needs one (Checkout, the
    Portal, a meter event). Idempotent across retries and concurrent callers: the row is locked
    and the create carries an idempotency key derived from the tenant."""
    with transaction.atomic(), tenant_scope(tenant.id):
        account = account_locked(tenant)
        if account.stripe_customer_id:
            return account
        customer = stripe_client().v1.customers.create(
            params=_customer_params(account, tenant),  # type: ignore[arg-type]
            options={"idempotency_key": f"vp-customer-{tenant.id}"},
        )
        account.stripe_customer_id = customer.id
        account.save(update_fields=["stripe_customer_id", "updated_at"])
    return account


def contact_update(*, actor: Actor, tenant: Tenant, values: dict[str, str]) -> BillingAccount:
    """Change the billing e-mail and address; the Stripe customer (if any) follows in the same
    request (its invoices are addressed from it)."""
    with transaction.atomic(), tenant_scope(tenant.id):
        account = account_locked(tenant)
        before = {name: getattr(account, name) for name in CONTACT_FIELDS}
        for name in CONTACT_FIELDS:
            if name in values:
                setattr(account, name, values[name])
        after = {name: getattr(account, name) for name in CONTACT_FIELDS}
        if after == before:
            return account
        account.save()
        if account.stripe_customer_id:
            stripe_client().v1.customers.update(
                account.stripe_customer_id,
                params=_customer_params(account, tenant),  # type: ignore[arg-type]
            )
        audit_record(
            actor=actor, action="billing.contact_updated", tenant=tenant,
            target_type="tenant", target_id=tenant.id, target_label=tenant.slug,
            details={"fields": sorted(k for k in after if after[k] != before[k])},
        )  # fmt: skip
    return account


def spend_alert_set(*, actor: Actor, tenant: Tenant, cents: int | None) -> BillingAccount:
    """The spend alert threshold (in the billing currency's cents; None: none). Crossing it in a
    period sends one e-mail and shows a banner (`alerts.spend_alerts_check`)."""
    with transaction.atomic(), tenant_scope(tenant.id):
        account = account_locked(tenant)
        if account.spend_alert_cents == cents:
            return account
        before = account.spend_alert_cents
        account.spend_alert_cents = cents
        account.spend_alert_sent_for = None
        account.save(update_fields=["spend_alert_cents", "spend_alert_sent_for", "updated_at"])
        audit_record(
            actor=actor, action="billing.spend_alert_set", tenant=tenant,
            target_type="tenant", target_id=tenant.id, target_label=tenant.slug,
            details={"from": before, "to": cents},
        )  # fmt: skip
    return account
