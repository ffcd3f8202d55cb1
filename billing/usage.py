"""The tenant's usage this billing period, per meter, with its cost (the console's Billing page).

The period is the subscription's (`BillingAccount.current_period_start` .. `_end`, as Stripe
last described it) when it is set and holds now; else the current calendar month (UTC). An hour
belongs to the period whose bounds hold its meter event's time (`metering.event_time`: the
hour's end - 1 s), which is where Stripe bills it.

The quantities are the meter events' own: `metering.usage_by_hour` per hour, each hour rounded
as its event carries it (`metering.billed_value`), then summed, so what the page shows is what
is billed (the current hour counts so far). The cost is quantity x the plan's metered rate
(`catalogue.rate`, the price the catalogue gives Stripe, in cents); a plan without a monthly
price has no metered prices (the catalogue makes them for paid plans only), so its rates are 0.
No Stripe call is made: with billing off the answer is the same, the usage at the plan's rates,
marked `billing_enabled: false` (nothing is charged then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone

from tenants.models import Plan, Tenant

from . import metering
from .catalogue import rate
from .models import Meter
from .services import account_for
from .settings import billing_settings

UNITS: dict[str, str] = {
    Meter.READ_UNITS: "read units",
    Meter.WRITE_UNITS: "write units",
    Meter.STORAGE_GB_HOURS: "GB-hours",
    Meter.CLUSTER_HOURS: "size-hours",
}
_CENT_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    source: str  # "subscription" | "calendar_month"


def calendar_month(now: datetime) -> Period:
    """The UTC calendar month holding `now`."""
    now = now.astimezone(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return Period(start=start, end=end, source="calendar_month")


def billing_period(*, start: datetime | None, end: datetime | None, now: datetime) -> Period:
    """The subscription's period when both bounds are set and it holds `now` (a cancelled
    subscription's last period has ended), else the calendar month."""
    if start is not None and end is not None and start <= now < end:
        return Period(start=start.astimezone(UTC), end=end.astimezone(UTC), source="subscription")
    return calendar_month(now)


def first_hour_billed_from(moment: datetime) -> datetime:
    """The first hour whose meter event time is at or after `moment`."""
    hour = metering.hour_floor(moment)
    return hour if metering.event_time(hour) >= moment else hour + metering.HOUR


def plan_rate(plan: Plan, meter: str) -> Decimal:
    """Cents per unit: the catalogue's metered price for a paid plan; 0 for a plan without a
    monthly price (it has no metered prices, so its usage is not billed)."""
    if plan.monthly_price_cents <= 0:
        return Decimal(0)
    return Decimal(rate(plan.slug, meter))


def _cents(value: Decimal) -> str:
    return format(value.quantize(_CENT_PLACES, rounding=ROUND_HALF_UP), "f")


def _plain(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros ("1500", "0.25", "0")."""
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class MeterUsage:
    meter: str
    quantity: Decimal
    daily: list[tuple[date, Decimal]]


def period_usage(*, tenant_id: Any, period: Period, now: datetime) -> list[MeterUsage]:
    """Per meter: the quantity of the period's hours begun by `now` (each hour as its meter
    event carries it) and the same per UTC day, every day from the period's first to today."""
    first = first_hour_billed_from(period.start)
    stop = min(first_hour_billed_from(period.end), metering.hour_floor(now) + metering.HOUR)
    hours = metering.usage_by_hour(tenant_id=tenant_id, start=first, end=stop, until=now)
    days: dict[date, dict[str, Decimal]] = {}
    day = first.date()
    while first < stop and day <= (stop - metering.HOUR).date():
        days[day] = {meter: Decimal(0) for meter in Meter.values}
        day += timedelta(days=1)
    for hour, usage in hours.items():
        for meter, raw in usage.items():
            value = metering.billed_value(raw)
            if value > 0:  # what the meter events send (none for an hour without usage)
                days[hour.date()][meter] += value
    return [
        MeterUsage(
            meter=meter,
            quantity=sum((d[meter] for d in days.values()), Decimal(0)),
            daily=[(d, values[meter]) for d, values in days.items()],
        )
        for meter in Meter.values
    ]


def usage_this_period(*, tenant: Tenant, now: datetime | None = None) -> dict[str, Any]:
    """The Billing page's "usage this period": the period, the plan, and per meter the
    quantity so far, its unit, the plan's rate, its cost and a daily series; the base price and
    the total so far (cents, as decimal strings to 4 places; Stripe rounds each invoice line to
    a whole cent)."""
    now = now or timezone.now()
    account = account_for(tenant)
    period = billing_period(
        start=account.current_period_start, end=account.current_period_end, now=now
    )
    plan = tenant.plan
    meters = []
    usage_cents = Decimal(0)
    for usage in period_usage(tenant_id=tenant.id, period=period, now=now):
        cents_per_unit = plan_rate(plan, usage.meter)
        cost = usage.quantity * cents_per_unit
        usage_cents += cost
        meters.append({
            "meter": usage.meter,
            "name": Meter(usage.meter).label,
            "unit": UNITS[usage.meter],
            "quantity": _plain(usage.quantity),
            "rate_cents": _plain(cents_per_unit),
            "cost_cents": _cents(cost),
            "daily": [{"day": d, "quantity": _plain(q)} for d, q in usage.daily],
        })  # fmt: skip
    settings = billing_settings()
    return {
        "billing_enabled": settings.enabled,
        "plan": plan.slug,
        "plan_name": plan.name,
        "currency": settings.currency,
        "period_start": period.start,
        "period_end": period.end,
        "period_source": period.source,
        "as_of": now,
        "base_price_cents": plan.monthly_price_cents,
        "usage_cents": _cents(usage_cents),
        "total_cents": _cents(usage_cents + plan.monthly_price_cents),
        "meters": meters,
    }
