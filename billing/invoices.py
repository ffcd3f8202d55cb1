"""The tenant's invoices as Stripe has them (hosted page and PDF links), and the upcoming
invoice Stripe previews for its subscription."""

from __future__ import annotations

from typing import Any

import stripe

from tenants.models import Tenant

from .checkout import PaymentProviderError
from .client import stripe_client
from .services import account_for

MAX_INVOICES = 24


def _invoice(stripe_invoice: Any) -> dict[str, Any]:
    invoice: dict[str, Any] = stripe_invoice.to_dict()
    return {
        "id": invoice.get("id") or "",
        "number": invoice.get("number") or "",
        "status": invoice.get("status") or "",
        "currency": invoice.get("currency") or "",
        "total": int(invoice.get("total") or 0),
        "amount_due": int(invoice.get("amount_due") or 0),
        "amount_paid": int(invoice.get("amount_paid") or 0),
        "created": int(invoice.get("created") or 0),
        "period_start": int(invoice.get("period_start") or 0),
        "period_end": int(invoice.get("period_end") or 0),
        "hosted_invoice_url": invoice.get("hosted_invoice_url") or "",
        "invoice_pdf": invoice.get("invoice_pdf") or "",
    }


def invoice_list(*, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's latest invoices, newest first ([] before it has a Stripe customer)."""
    account = account_for(tenant)
    if not account.stripe_customer_id:
        return []
    try:
        page = stripe_client().v1.invoices.list(
            params={"customer": account.stripe_customer_id, "limit": MAX_INVOICES}
        )
    except stripe.StripeError as exc:
        raise PaymentProviderError(exc) from exc
    return [_invoice(invoice) for invoice in page.data]


def upcoming_invoice(*, tenant: Tenant) -> dict[str, Any] | None:
    """Stripe's preview of the subscription's next invoice (None without a subscription)."""
    account = account_for(tenant)
    if not (account.stripe_customer_id and account.stripe_subscription_id):
        return None
    try:
        preview = stripe_client().v1.invoices.create_preview(
            params={
                "customer": account.stripe_customer_id,
                "subscription": account.stripe_subscription_id,
            }
        )
    except stripe.StripeError as exc:
        raise PaymentProviderError(exc) from exc
    return _invoice(preview)
