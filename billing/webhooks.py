"""Stripe's webhooks: verified, stored by id, applied exactly once, in the object's own order.

`receive(payload, signature)`:
1. The signature is verified by the real `stripe.Webhook.construct_event` against
   `STRIPE_WEBHOOK_SECRET` with `STRIPE_WEBHOOK_TOLERANCE_SECONDS` (300): unsigned, wrongly
   signed, stale (outside the tolerance) → `400 invalid_signature`, nothing stored or changed.
2. In one transaction: the event is inserted by its id (`INSERT ... ON CONFLICT (id) DO UPDATE
   SET deliveries = deliveries + 1 RETURNING processed_at`). A redelivery finds it processed and
   is acknowledged without effect; the same event delivered twice at once waits on the first
   delivery's row (PostgreSQL's unique-index wait) and then finds it processed. The handler runs
   and the event is marked processed with its outcome in the same transaction: a handler that
   fails rolls everything back (Stripe redelivers it).
3. Out-of-order delivery: each handler compares the event's own `created` (Stripe's time of the
   change) with the last one applied to the same kind of state on the tenant's billing account
   (subscription, payment, customer) and the object's own ids and status — never arrival order:
   an older subscription update after a newer one, a payment failure older than the payment, a
   deletion of a replaced subscription, or anything after a subscription's cancellation change
   nothing (their outcome says why).

The tenant of an event is found by its Stripe customer (the billing account's id), else by the
`tenant_id` our Checkout puts in the metadata (`client_reference_id`); an event for no tenant of
ours is stored and acknowledged (`ignored: no tenant`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.db import connection, transaction
from django.utils import timezone

from controlplane.errors import ApplicationError, ConflictError
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import Plan, Tenant, TenantStatus
from tenants.scoping import tenant_scope

from . import payment, selectors
from .models import BillingAccount, CatalogueEntry, WebhookEvent
from .services import account_locked
from .settings import billing_settings

logger = logging.getLogger("vectorplane.billing.webhooks")

FREE_PLAN = "free"  # where a cancelled subscription leaves the tenant (tenants.services' default)
ACTIVE = ("active", "trialing")
MAX_PAYLOAD_BYTES = 512 * 1024  # Stripe's events are far smaller; the API's body limit is 2 MB


class InvalidSignature(ApplicationError):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_signature", message, status=400)


@dataclass(frozen=True)
class Received:
    id: str
    type: str
    duplicate: bool
    outcome: str


def _verified(payload: bytes, signature: str) -> dict[str, Any]:
    settings = billing_settings()
    if not settings.enabled or not settings.webhook_secret:
        raise ConflictError(
            "billing_disabled",
            "Billing webhooks are not configured on this platform (STRIPE_SECRET_KEY and "
            "STRIPE_WEBHOOK_SECRET).",
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidSignature("The event is larger than any Stripe sends.")
    try:
        verified = stripe.Webhook.construct_event(
            payload, signature or None, settings.webhook_secret,
            tolerance=settings.webhook_tolerance,
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(
            f"The Stripe-Signature header does not verify: {exc.user_message or exc}"[:300]
        ) from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # Signed, but not a JSON object: only a misconfigured sender does this.
        raise ApplicationError(
            "invalid_payload", "The signed event is not a Stripe event."
        ) from exc
    event: Any = verified.to_dict()  # the parsed payload, as plain dicts and lists
    if not (isinstance(event, dict) and isinstance(event.get("id"), str)
            and isinstance(event.get("type"), str)
            and isinstance((event.get("data") or {}).get("object"), dict)):  # fmt: skip
        raise ApplicationError("invalid_payload", "The signed event is not a Stripe event.")
    return event


def receive(payload: bytes, signature: str) -> Received:
    event = _verified(payload, signature)
    event_id, event_type = event["id"][:255], event["type"][:100]
    created = int(event.get("created") or 0)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO billing_webhookevent (id, type, created, livemode, payload, "
                "received_at, deliveries, outcome) VALUES (%s, %s, %s, %s, %s, now(), 1, '') "
                "ON CONFLICT (id) DO UPDATE SET deliveries = billing_webhookevent.deliveries + 1 "
                "RETURNING processed_at, outcome",
                [event_id, event_type, created, bool(event.get("livemode")), json.dumps(event)],
            )
            processed_at, outcome = cur.fetchone()
        if processed_at is not None:
            return Received(event_id, event_type, duplicate=True, outcome=outcome)
        tenant, outcome = dispatch(event)
        WebhookEvent.objects.filter(pk=event_id).update(
            processed_at=timezone.now(), outcome=outcome[:300],
            tenant=tenant.pk if tenant is not None else None,
        )  # fmt: skip
    logger.info("stripe event %s %s: %s", event_type, event_id, outcome)
    return Received(event_id, event_type, duplicate=False, outcome=outcome)


# --------------------------------------------------------------------------- dispatch
Handler = Callable[[Tenant, BillingAccount, dict[str, Any], int], str]


def _tenant_of(obj: dict[str, Any]) -> Tenant | None:
    """The tenant the event is about, its row locked for the event's transaction (the beat's
    payment steps lock it too: they serialise)."""
    customer = obj.get("customer") if obj.get("object") != "customer" else obj.get("id")
    if isinstance(customer, dict):
        customer = customer.get("id")
    tenant_id = selectors.tenant_of_customer(customer) if isinstance(customer, str) else None
    if tenant_id is None:
        metadata = obj.get("metadata") or {}
        try:
            tenant_id = uuid.UUID(str(metadata.get("tenant_id") or obj.get("client_reference_id")))
        except ValueError:
            return None
    # No join in the locking read: after waiting on a concurrent event's plan change, the
    # re-check of a join with the old plan row would drop the tenant row.
    return Tenant.objects.select_for_update().filter(pk=tenant_id).first()


def dispatch(event: dict[str, Any]) -> tuple[Tenant | None, str]:
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return None, "ignored: not an event billing acts on"
    obj: dict[str, Any] = event["data"]["object"]
    tenant = _tenant_of(obj)
    if tenant is None:
        return None, "ignored: no tenant of this platform"
    if tenant.status == TenantStatus.DELETED:
        return tenant, "ignored: the tenant is deleted"
    with tenant_scope(tenant.id):
        account = account_locked(tenant)
        outcome = handler(tenant, account, obj, int(event.get("created") or 0))
        account.save()  # what the handler recorded on the account (its times, ids, contact)
        return tenant, outcome


def _timestamp(value: object) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) and value else None


def _plan_of_subscription(sub: dict[str, Any]) -> Plan | None:
    """The plan the subscription's base price belongs to (the catalogue's record of it, else its
    lookup key `vp_<plan>_base`), else the plan our Checkout named in its metadata."""
    items = ((sub.get("items") or {}).get("data")) or []
    for item in items:
        # `price` (today's API), else `plan` (older versions; Stripe still sends both).
        price = item.get("price") or item.get("plan") or {}
        entry = (
            CatalogueEntry.objects.filter(kind="base_price", stripe_id=price.get("id") or "")
            .select_related("plan")
            .first()
        )
        if entry is not None and entry.plan is not None:
            return entry.plan
        key = str(price.get("lookup_key") or "")
        if key.startswith("vp_") and key.endswith("_base"):
            found = Plan.objects.filter(slug=key[3:-5]).first()
            if found is not None:
                return found
    slug = (sub.get("metadata") or {}).get("plan")
    return Plan.objects.filter(slug=slug).first() if slug else None


def _period(sub: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The current period: on the subscription (older API versions) or its items (newer)."""
    start, end = sub.get("current_period_start"), sub.get("current_period_end")
    if not start:
        items = ((sub.get("items") or {}).get("data")) or [{}]
        start, end = items[0].get("current_period_start"), items[0].get("current_period_end")
    return _timestamp(start), _timestamp(end)


def _plan_apply(tenant: Tenant, plan_slug: str) -> str:
    if tenant.plan.slug == plan_slug:
        return f"plan {plan_slug} (unchanged)"
    before = tenant.plan.slug
    tenant_services.tenant_change_plan(actor=Actor.system(), tenant=tenant, plan_slug=plan_slug)
    return f"plan {before} -> {plan_slug}"


def subscription_changed(
    tenant: Tenant, account: BillingAccount, sub: dict[str, Any], created: int
) -> str:
    """`customer.subscription.created/updated/deleted`: the subscription as Stripe describes it,
    applied unless a newer state was applied already."""
    sub_id, status = str(sub.get("id") or ""), str(sub.get("status") or "")
    if created < account.subscription_event_at:
        return f"stale: subscription state of {account.subscription_event_at} applied already"
    if account.stripe_subscription_id == sub_id and account.subscription_status == "canceled":
        return "ignored: the subscription was cancelled already"
    if status == "canceled" and account.stripe_subscription_id not in ("", sub_id):
        return f"ignored: {sub_id} is not the tenant's subscription any more"
    account.stripe_subscription_id = sub_id
    account.subscription_status = status
    account.current_period_start, account.current_period_end = _period(sub)
    account.subscription_event_at = created
    plan = _plan_of_subscription(sub)
    outcome = f"subscription {sub_id} {status}"
    if status == "canceled":
        account.subscription_plan = ""
        outcome += "; " + _plan_apply(tenant, FREE_PLAN)
    elif status in ACTIVE and plan is not None:
        account.subscription_plan = plan.slug
        outcome += "; " + _plan_apply(tenant, plan.slug)
    elif plan is not None:
        account.subscription_plan = plan.slug  # incomplete/past_due: the plan waits for payment
    return outcome


def checkout_completed(
    tenant: Tenant, account: BillingAccount, session: dict[str, Any], created: int
) -> str:
    """`checkout.session.completed`: the subscription our Checkout made, and its plan once paid
    (the subscription events say the same; whichever arrives first applies it)."""
    if session.get("mode") != "subscription":
        return "ignored: not a subscription checkout"
    sub_id = session.get("subscription")
    sub_id = sub_id.get("id") if isinstance(sub_id, dict) else sub_id
    if not isinstance(sub_id, str) or not sub_id:
        return "ignored: no subscription"
    if not account.stripe_customer_id and isinstance(session.get("customer"), str):
        account.stripe_customer_id = session["customer"]
    if account.stripe_subscription_id == sub_id and account.subscription_status:
        return f"subscription {sub_id} known ({account.subscription_status})"
    if created < account.subscription_event_at:
        return "stale: a newer subscription state applied already"
    account.stripe_subscription_id = sub_id
    outcome = f"checkout of subscription {sub_id}"
    plan_slug = (session.get("metadata") or {}).get("plan") or ""
    paid = session.get("payment_status") in ("paid", "no_payment_required")
    if paid and Plan.objects.filter(slug=plan_slug).exists():
        account.subscription_status = "active"
        account.subscription_plan = plan_slug
        account.subscription_event_at = created
        outcome += "; " + _plan_apply(tenant, plan_slug)
    return outcome


def _invoice_seen(account: BillingAccount, invoice: dict[str, Any], created: int) -> None:
    if created >= account.latest_invoice_at:
        account.latest_invoice_id = str(invoice.get("id") or "")
        account.latest_invoice_status = str(invoice.get("status") or "")
        account.latest_invoice_amount_due = int(invoice.get("amount_due") or 0)
        account.latest_invoice_currency = str(invoice.get("currency") or "")[:3]
        account.latest_invoice_url = str(invoice.get("hosted_invoice_url") or "")[:500]
        account.latest_invoice_at = created


def invoice_finalized(
    tenant: Tenant, account: BillingAccount, invoice: dict[str, Any], created: int
) -> str:
    _invoice_seen(account, invoice, created)
    return f"invoice {invoice.get('id')} finalized ({invoice.get('amount_due', 0)})"


def invoice_payment_failed(
    tenant: Tenant, account: BillingAccount, invoice: dict[str, Any], created: int
) -> str:
    invoice_id = str(invoice.get("id") or "")
    _invoice_seen(account, invoice, created)
    if created <= account.payment_event_at:
        return f"stale: a payment of {account.payment_event_at} applied already"
    if invoice.get("status") in ("paid", "void"):
        return f"ignored: invoice {invoice_id} is {invoice.get('status')} already"
    account.payment_event_at = created
    if invoice_id not in account.unpaid_invoices:
        account.unpaid_invoices = [*account.unpaid_invoices, invoice_id][-50:]
    return payment.payment_failed(tenant, invoice_id=invoice_id,
                                  reason=f"invoice {invoice_id} payment failed")  # fmt: skip


def _settled(
    tenant: Tenant, account: BillingAccount, invoice: dict[str, Any], created: int, how: str
) -> str:
    invoice_id = str(invoice.get("id") or "")
    _invoice_seen(account, invoice, created)
    if created < account.payment_event_at:
        return f"stale: a payment event of {account.payment_event_at} applied already"
    account.payment_event_at = created
    account.unpaid_invoices = [i for i in account.unpaid_invoices if i != invoice_id]
    if account.unpaid_invoices:
        return f"invoice {invoice_id} {how}; {', '.join(account.unpaid_invoices)} still unpaid"
    return payment.payment_settled(tenant, reason=f"invoice {invoice_id} {how}")


def invoice_paid(
    tenant: Tenant, account: BillingAccount, invoice: dict[str, Any], created: int
) -> str:
    return _settled(tenant, account, invoice, created, "paid")


def invoice_voided(
    tenant: Tenant, account: BillingAccount, invoice: dict[str, Any], created: int
) -> str:
    if str(invoice.get("id") or "") not in account.unpaid_invoices:
        _invoice_seen(account, invoice, created)
        return f"invoice {invoice.get('id')} voided"
    return _settled(tenant, account, invoice, created, "voided")


def customer_updated(
    tenant: Tenant, account: BillingAccount, customer: dict[str, Any], created: int
) -> str:
    """`customer.updated` (the Portal edits the e-mail and address): the contact follows."""
    if created < account.customer_event_at:
        return f"stale: a customer state of {account.customer_event_at} applied already"
    if account.stripe_customer_id != customer.get("id"):
        return "ignored: not the tenant's customer"
    address = customer.get("address") or {}
    values = {
        "billing_email": customer.get("email") or "",
        "address_line1": address.get("line1") or "",
        "address_line2": address.get("line2") or "",
        "address_city": address.get("city") or "",
        "address_postal_code": address.get("postal_code") or "",
        "address_state": address.get("state") or "",
        "address_country": (address.get("country") or "")[:2],
    }
    changed = sorted(k for k, v in values.items() if getattr(account, k) != v)
    for name, value in values.items():
        setattr(account, name, value)
    account.customer_event_at = created
    if changed:
        tenant_services.audit_record(
            actor=Actor.system(), action="billing.contact_updated", tenant=tenant,
            target_type="tenant", target_id=tenant.id, target_label=tenant.slug,
            details={"fields": changed, "source": "stripe"},
        )  # fmt: skip
    return f"contact: {', '.join(changed) or 'unchanged'}"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "invoice.finalized": invoice_finalized,
    "invoice.paid": invoice_paid,
    # Sent with `invoice.paid` for a collected payment (and alone by older integrations).
    "invoice.payment_succeeded": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "invoice.voided": invoice_voided,
    "customer.updated": customer_updated,
}
