"""The Stripe catalogue, made from the plan table (`manage.py billing_catalogue`): one Billing
Meter per `models.Meter` (`event_name` `vectorplane_<slug>`, summed per customer), and per paid
plan (`monthly_price_cents > 0`) a Product (its id `vp_<plan>`), its monthly base Price
(`lookup_key` `vp_<plan>_base`) and one metered Price per meter (`vp_<plan>_<meter>`, its rate
from `RATES`). Idempotent: meters are found by `event_name`, prices by `lookup_key`, products by
their id; a second run sends no create. Prices are immutable in Stripe: a changed amount is a new
price that takes the lookup key over (`transfer_lookup_key`), the old one is left for the
subscriptions that still use it. Every object is recorded in `models.CatalogueEntry`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import stripe

from tenants.models import Plan

from .checkout import base_lookup_key, metered_lookup_key
from .client import stripe_client
from .models import CatalogueEntry, Meter
from .settings import billing_settings

logger = logging.getLogger(__name__)

HOURS_PER_MONTH = Decimal(730)  # Stripe's and the clouds' month of usage hours
_MILLION = Decimal(1_000_000)

# Cents per unit of each meter (Stripe's `unit_amount_decimal` is in the currency's minor unit,
# at most 12 decimal places). Pinecone-like: read units $16 per million, write units $4 per
# million, storage $0.33 per GB-month (billed per GB-hour), a dedicated cluster per size unit
# (half a vCPU with its memory and disk, `metering.size_units`) and hour.
STANDARD_RATES: dict[str, Decimal] = {
    Meter.READ_UNITS: Decimal(1600) / _MILLION,
    Meter.WRITE_UNITS: Decimal(400) / _MILLION,
    Meter.STORAGE_GB_HOURS: Decimal(33) / HOURS_PER_MONTH,
    Meter.CLUSTER_HOURS: Decimal(5),
}
# Per plan; a paid plan not named here is billed at the standard rates.
RATES: dict[str, dict[str, Decimal]] = {
    "starter": STANDARD_RATES,
    "pro": {
        Meter.READ_UNITS: Decimal(1400) / _MILLION,
        Meter.WRITE_UNITS: Decimal(350) / _MILLION,
        Meter.STORAGE_GB_HOURS: Decimal(33) / HOURS_PER_MONTH,
        Meter.CLUSTER_HOURS: Decimal("4.5"),
    },
}

_PLACES = Decimal("0.000000000001")  # Stripe's 12 decimal places


def meter_event_name(meter: str) -> str:
    return f"vectorplane_{meter}"


def meter_lookup_key(meter: str) -> str:
    return f"vp_meter_{meter}"


def product_id(plan_slug: str) -> str:
    return f"vp_{plan_slug}"


def rate(plan_slug: str, meter: str) -> str:
    """The plan's rate for `meter`, as Stripe's `unit_amount_decimal` (cents, 12 places)."""
    value = RATES.get(plan_slug, STANDARD_RATES)[meter].quantize(_PLACES).normalize()
    return format(value, "f")


def paid_plans() -> list[Plan]:
    return list(Plan.objects.filter(monthly_price_cents__gt=0).order_by("sort_order", "slug"))


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # a new price took the lookup key over
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _record(
    *, kind: str, lookup_key: str, stripe_id: str, plan: Plan | None = None, meter: str = "",
    unit_amount_decimal: str = "",
) -> None:  # fmt: skip
    CatalogueEntry.objects.update_or_create(
        lookup_key=lookup_key,
        defaults={"kind": kind, "stripe_id": stripe_id, "plan": plan, "meter": meter,
                  "unit_amount_decimal": unit_amount_decimal},
    )  # fmt: skip


# ---------------------------------------------------------------------------------- meters
def meter_params(meter: str) -> dict[str, Any]:
    """POST /v1/billing/meters: summed `value`, the customer by `stripe_customer_id`."""
    return {
        "display_name": f"Vectorplane {Meter(meter).label}",
        "event_name": meter_event_name(meter),
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
        "value_settings": {"event_payload_key": "value"},
    }


def stripe_meters(client: stripe.StripeClient) -> dict[str, str]:
    """Stripe's active meters, event_name -> id (every page)."""
    found: dict[str, str] = {}
    page = client.v1.billing.meters.list(params={"status": "active", "limit": 100})
    for meter in page.auto_paging_iter():
        found[meter.event_name] = meter.id
    return found


def meters_missing(existing: dict[str, str]) -> list[str]:
    """The meters Stripe lacks, given its meters by event_name."""
    return [m for m in Meter.values if meter_event_name(m) not in existing]


def meters_ensure(client: stripe.StripeClient, report: Report) -> dict[str, str]:
    """Every meter in Stripe, made where missing: meter slug -> Stripe id."""
    existing = stripe_meters(client)
    for meter in meters_missing(existing):
        created = client.v1.billing.meters.create(
            params=meter_params(meter),  # type: ignore[arg-type]
            options={"idempotency_key": f"vp-meter-{meter}"},
        )
        existing[created.event_name] = created.id
        report.created.append(meter_lookup_key(meter))
    ids = {m: existing[meter_event_name(m)] for m in Meter.values}
    for meter, stripe_id in ids.items():
        key = meter_lookup_key(meter)
        if key not in report.created:
            report.unchanged.append(key)
        _record(kind="meter", lookup_key=key, stripe_id=stripe_id, meter=meter)
    return ids


# -------------------------------------------------------------------------------- products
def product_ensure(client: stripe.StripeClient, plan: Plan, report: Report) -> str:
    """The plan's product (id `vp_<plan>`): made once, its name kept in step."""
    pid = product_id(plan.slug)
    key = f"{pid}_product"
    try:
        product = client.v1.products.retrieve(pid)
    except stripe.InvalidRequestError as exc:
        if exc.http_status != 404:
            raise
        client.v1.products.create(
            params={"id": pid, "name": f"Vectorplane {plan.name}",
                    "metadata": {"plan": plan.slug}},
            options={"idempotency_key": f"vp-product-{plan.slug}"},
        )  # fmt: skip
        report.created.append(key)
    else:
        if product.name != f"Vectorplane {plan.name}":
            client.v1.products.update(pid, params={"name": f"Vectorplane {plan.name}"})
            report.updated.append(key)
        else:
            report.unchanged.append(key)
    _record(kind="product", lookup_key=key, stripe_id=pid, plan=plan)
    return pid


# ---------------------------------------------------------------------------------- prices
@dataclass(frozen=True)
class DesiredPrice:
    lookup_key: str
    kind: str  # base_price | metered_price
    params: dict[str, Any]
    meter: str = ""

    def matches(self, price: Any) -> bool:
        """Whether Stripe's price (as listed) is this one: same product, currency, amount and
        meter (a price cannot be changed, only replaced)."""
        recurring = price.get("recurring") or {}
        same = (
            price.get("product") == self.params["product"]
            and price.get("currency") == self.params["currency"]
            and (recurring.get("interval") == "month")
        )
        if self.kind == "base_price":
            return same and price.get("unit_amount") == self.params["unit_amount"]
        return (
            same
            and recurring.get("usage_type") == "metered"
            and recurring.get("meter") == self.params["recurring"]["meter"]
            and Decimal(str(price.get("unit_amount_decimal") or "0"))
            == Decimal(self.params["unit_amount_decimal"])
        )


def desired_prices(
    plan: Plan, product: str, meters: dict[str, str], currency: str
) -> list[DesiredPrice]:
    """The plan's base price and metered prices, as POST /v1/prices wants them."""
    prices = [
        DesiredPrice(
            lookup_key=base_lookup_key(plan.slug),
            kind="base_price",
            params={
                "currency": currency,
                "product": product,
                "unit_amount": plan.monthly_price_cents,
                "recurring": {"interval": "month", "usage_type": "licensed"},
                "lookup_key": base_lookup_key(plan.slug),
                "nickname": f"{plan.name} (monthly)",
                "metadata": {"plan": plan.slug},
            },
        )
    ]
    for meter in Meter.values:
        key = metered_lookup_key(plan.slug, meter)
        prices.append(DesiredPrice(
            lookup_key=key, kind="metered_price", meter=meter,
            params={"currency": currency, "product": product, "billing_scheme": "per_unit",
                    "unit_amount_decimal": rate(plan.slug, meter),
                    "recurring": {"interval": "month", "usage_type": "metered",
                                  "meter": meters[meter]},
                    "lookup_key": key, "nickname": f"{plan.name}: {Meter(meter).label}",
                    "metadata": {"plan": plan.slug, "meter": meter}},
        ))  # fmt: skip
    return prices


def stripe_prices(client: stripe.StripeClient, lookup_keys: list[str]) -> dict[str, Any]:
    """Stripe's active prices holding these lookup keys (at most 10 a request): key -> price."""
    found: dict[str, Any] = {}
    for start in range(0, len(lookup_keys), 10):
        page = client.v1.prices.list(
            params={"lookup_keys": lookup_keys[start : start + 10], "active": True, "limit": 100}
        )
        for price in page.data:
            if price.lookup_key:
                found[price.lookup_key] = price
    return found


def price_actions(
    desired: list[DesiredPrice], existing: dict[str, Any]
) -> list[tuple[str, DesiredPrice]]:
    """What each desired price needs: `create` (no price holds its key), `replace` (the price
    holding it differs: a new one takes the key over) or `keep`."""
    actions: list[tuple[str, DesiredPrice]] = []
    for price in desired:
        current = existing.get(price.lookup_key)
        if current is None:
            actions.append(("create", price))
        elif price.matches(current):
            actions.append(("keep", price))
        else:
            actions.append(("replace", price))
    return actions


def prices_ensure(
    client: stripe.StripeClient, plan: Plan, desired: list[DesiredPrice], report: Report
) -> None:
    existing = stripe_prices(client, [p.lookup_key for p in desired])
    for action, price in price_actions(desired, existing):
        if action == "keep":
            stripe_id = existing[price.lookup_key].id
            report.unchanged.append(price.lookup_key)
        else:
            params = dict(price.params)
            if action == "replace":
                params["transfer_lookup_key"] = True
            created = client.v1.prices.create(params=params)  # type: ignore[arg-type]
            stripe_id = created.id
            (report.replaced if action == "replace" else report.created).append(price.lookup_key)
            logger.info("catalogue: %s %s = %s", action, price.lookup_key, stripe_id)
        _record(
            kind=price.kind, lookup_key=price.lookup_key, stripe_id=stripe_id, plan=plan,
            meter=price.meter, unit_amount_decimal=str(price.params.get("unit_amount_decimal",
                                                                        "")),
        )  # fmt: skip


def catalogue_sync(*, client: stripe.StripeClient | None = None) -> Report:
    """Make Stripe's catalogue match the plan table (see the module's doc)."""
    client = client or stripe_client()
    currency = billing_settings().currency
    report = Report()
    plans = paid_plans()
    products = {plan.slug: product_ensure(client, plan, report) for plan in plans}
    meters = meters_ensure(client, report)
    for plan in plans:
        prices_ensure(
            client, plan, desired_prices(plan, products[plan.slug], meters, currency), report
        )
    return report
