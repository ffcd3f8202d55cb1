"""Billing's reads.

Across tenants: the sanctioned `unscoped()` reads of billing (tenants/scoping.py lists them
all): what the hourly metering and the daily reconcile must find before they know the tenant.
The caller then works on each row inside `tenant_scope(row.tenant_id)`."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q

from .models import BillingAccount, MeterEventRecord


# --------------------------------------------------------------------------- across tenants
def accounts_with_customer() -> list[tuple[uuid.UUID, str]]:
    """Every tenant that has a Stripe customer, with it (the hourly meter events visit each)."""
    return list(
        BillingAccount.objects.unscoped()
        .exclude(stripe_customer_id="")
        .order_by("tenant_id")
        .values_list("tenant_id", "stripe_customer_id")
    )


def tenant_of_customer(customer_id: str) -> uuid.UUID | None:
    """The tenant whose Stripe customer this is (a webhook's event names only the customer)."""
    if not customer_id:
        return None
    return (
        BillingAccount.objects.unscoped()
        .filter(stripe_customer_id=customer_id)
        .values_list("tenant_id", flat=True)
        .first()
    )


def meter_events_due(*, now: datetime, limit: int) -> list[tuple[int, uuid.UUID]]:
    """Every tenant's meter events not yet acknowledged by Stripe whose (next) attempt is due:
    (id, tenant id), oldest hour first."""
    return list(
        MeterEventRecord.objects.unscoped()
        .filter(sent_at__isnull=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("hour", "id")
        .values_list("id", "tenant_id")[:limit]
    )
