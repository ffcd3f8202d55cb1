"""Usage this billing period (`GET .../billing/usage`): the quantities are the meter events'
own (the hourly records the metering makes from the same rows sum to them), the period is the
subscription's (its bounds decide by each hour's event time) or the calendar month, the current
hour counts so far, cost at the plan's rates, billing off answers too, roles, another tenant's
rows never counted and another tenant never reached, a key without the admin scope refused."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from rest_framework.test import APIClient

from billing import catalogue, metering, usage
from billing.models import BillingAccount, Meter, MeterEventRecord
from billing.tests.conftest import LocalStripe, Recorder
from provisioning.models import Cluster, ClusterEvent, StoredVectorsRecord, UsageRecord
from tenants.models import Plan, Role, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants/acme/billing/usage"
START = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)  # the subscription's period
END = datetime(2026, 12, 20, 14, 30, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 10, 20, tzinfo=UTC)


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _account(tenant: Tenant, start: datetime | None, end: datetime | None, **more: Any) -> None:
    with tenant_scope(tenant.id):
        BillingAccount.objects.update_or_create(
            tenant=tenant, defaults={"current_period_start": start, "current_period_end": end,
                                     **more},
        )  # fmt: skip


def _units(tenant: Tenant, index: str, hour: datetime, read: int, write: int = 0) -> None:
    with tenant_scope(tenant.id):
        UsageRecord.objects.create(tenant=tenant, index_id=uuid.uuid5(tenant.id, index),
                                   index_name=index, hour=hour, read_units=read,
                                   write_units=write)  # fmt: skip


def _stored(tenant: Tenant, index: str, hour: datetime, vectors: int, dimension: int) -> None:
    with tenant_scope(tenant.id):
        StoredVectorsRecord.objects.create(
            tenant=tenant, index_id=uuid.uuid5(tenant.id, index), index_name=index, hour=hour,
            vectors=vectors, dimension=dimension, sampled_at=hour,
        )  # fmt: skip


def _cluster(tenant: Tenant, name: str, moves: list[tuple[str, str, int, datetime]]) -> None:
    """A cluster row and its state history: (to_status, size, replicas, at)."""
    with tenant_scope(tenant.id):
        cluster = Cluster.objects.create(tenant=tenant, name=name, engine="pgvector",
                                         driver="local", size=moves[0][1], stack_name=name,
                                         credentials_encrypted="x")  # fmt: skip
        before = ""
        for generation, (to_status, size, replicas, at) in enumerate(moves, start=1):
            ClusterEvent.objects.create(tenant=tenant, cluster=cluster, from_status=before,
                                        to_status=to_status, generation=generation, size=size,
                                        replicas=replicas, at=at)  # fmt: skip
            before = to_status


def _seed(tenant: Tenant) -> None:
    """Usage around and within the period START..END (see the expected numbers below)."""
    _units(tenant, "a", datetime(2026, 11, 20, 13, tzinfo=UTC), 999)  # event 13:59:59: before
    _units(tenant, "a", datetime(2026, 11, 20, 14, tzinfo=UTC), 100, 10)  # event 14:59:59: in
    _units(tenant, "a", datetime(2026, 11, 25, 8, tzinfo=UTC), 1500, 40)
    _units(tenant, "b", datetime(2026, 11, 25, 8, tzinfo=UTC), 500)
    _units(tenant, "a", datetime(2026, 12, 2, 10, tzinfo=UTC), 7)  # the current hour so far
    _units(tenant, "a", datetime(2026, 12, 3, 10, tzinfo=UTC), 5)  # after NOW
    _units(tenant, "a", datetime(2026, 12, 20, 14, tzinfo=UTC), 11)  # the next period's
    _stored(tenant, "a", datetime(2026, 11, 25, 8, tzinfo=UTC), 1_000_000, 250)  # 1 GB-hour
    _stored(tenant, "a", datetime(2026, 11, 25, 9, tzinfo=UTC), 1_000_000, 250)  # 1
    _stored(tenant, "b", datetime(2026, 11, 25, 9, tzinfo=UTC), 500_000, 250)  # 0.5
    # s (2 units) x 2 replicas from 12-01 22:30 to 12-02 01:15: 6 size-hours on the 1st, 5 on
    # the 2nd; xs (1 unit) from 12-02 09:00, still running at NOW: 1 h 20 min so far.
    _cluster(
        tenant,
        "big",
        [
            ("pending", "s", 2, datetime(2026, 12, 1, 22, tzinfo=UTC)),
            ("ready", "s", 2, datetime(2026, 12, 1, 22, 30, tzinfo=UTC)),
            ("deleting", "s", 2, datetime(2026, 12, 2, 1, 15, tzinfo=UTC)),
        ],
    )
    _cluster(tenant, "small", [("ready", "xs", 1, datetime(2026, 12, 2, 9, tzinfo=UTC))])


@pytest.fixture
def seeded(tenant: Tenant, other_tenant: Tenant) -> Tenant:
    _account(tenant, START, END, stripe_customer_id="cus_acme")
    _seed(tenant)
    _account(other_tenant, START, END, stripe_customer_id="cus_evil")
    _seed(other_tenant)  # the same again in another tenant: never counted for acme
    _units(other_tenant, "c", datetime(2026, 11, 25, 8, tzinfo=UTC), 10**9)
    return tenant


def _by_meter(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["meter"]: m for m in body["meters"]}


# ============================================================================ the numbers


def test_the_period_so_far_with_the_current_hour_and_the_event_time_bounds(
    seeded: Tenant,
) -> None:
    body = usage.usage_this_period(tenant=seeded, now=NOW)
    assert (body["period_start"], body["period_end"]) == (START, END)
    assert body["period_source"] == "subscription" and body["as_of"] == NOW
    meters = _by_meter(body)
    assert {m: meters[m]["quantity"] for m in meters} == {
        Meter.READ_UNITS: "2107",  # 100 + 1500 + 500 + 7: not 999 (before), 5 (after), 11
        Meter.WRITE_UNITS: "50",
        Meter.STORAGE_GB_HOURS: "2.5",
        Meter.CLUSTER_HOURS: "12.333333",  # 6 + 5 + 1 + 0.333333 (10:00..10:20)
    }
    read = meters[Meter.READ_UNITS]
    assert read["unit"] == "read units" and read["name"] == "Read units"
    days = [d["day"] for d in read["daily"]]
    assert days[0] == date(2026, 11, 20) and days[-1] == date(2026, 12, 2) and len(days) == 13
    daily = {d["day"]: d["quantity"] for d in meters[Meter.CLUSTER_HOURS]["daily"]}
    assert daily[date(2026, 12, 1)] == "6" and daily[date(2026, 12, 2)] == "6.333333"
    assert daily[date(2026, 11, 30)] == "0"
    assert {d["day"]: d["quantity"] for d in read["daily"] if d["quantity"] != "0"} == {
        date(2026, 11, 20): "100",
        date(2026, 11, 25): "2000",
        date(2026, 12, 2): "7",
    }
    # The free plan has no metered prices: nothing is billed for its usage.
    assert body["plan"] == "free" and body["base_price_cents"] == 0
    assert {m["rate_cents"] for m in body["meters"]} == {"0"}
    assert body["usage_cents"] == body["total_cents"] == "0.0000"


def test_cost_at_the_plans_rates_with_the_base_price(seeded: Tenant) -> None:
    starter = Plan.objects.get(slug="starter")
    seeded.plan = starter
    seeded.save(update_fields=["plan"])
    body = usage.usage_this_period(tenant=seeded, now=NOW)
    meters = _by_meter(body)
    assert meters[Meter.READ_UNITS]["rate_cents"] == catalogue.rate("starter", Meter.READ_UNITS)
    assert meters[Meter.READ_UNITS]["rate_cents"] == "0.0016"  # $16 per million
    assert meters[Meter.READ_UNITS]["cost_cents"] == "3.3712"  # 2107 x 0.0016
    assert meters[Meter.CLUSTER_HOURS]["cost_cents"] == "61.6667"  # 12.333333 x 5
    total = Decimal(0)
    for meter, row in meters.items():
        cost = Decimal(row["quantity"]) * Decimal(catalogue.rate("starter", meter))
        assert Decimal(row["cost_cents"]) == cost.quantize(Decimal("0.0001"))
        total += cost
    assert body["base_price_cents"] == starter.monthly_price_cents > 0
    assert Decimal(body["usage_cents"]) == total.quantize(Decimal("0.0001"))
    assert Decimal(body["total_cents"]) == (total + starter.monthly_price_cents).quantize(
        Decimal("0.0001")
    )


def test_the_quantities_are_what_the_meter_events_carry(seeded: Tenant) -> None:
    """The whole period, closed: the metering's hourly records for every hour of it (made by
    `meter_events_record_hour`, as the beat does) sum to the page's quantities, meter by meter
    and day by day."""
    now = END - timedelta(seconds=1)
    body = usage.usage_this_period(tenant=seeded, now=now)
    # The beat visits every customer: here only acme's.
    BillingAccount.objects.unscoped().exclude(tenant=seeded).update(stripe_customer_id="")
    first = datetime(2026, 11, 20, 14, tzinfo=UTC)
    hour = first
    while metering.event_time(hour) < END:
        metering.meter_events_record_hour(hour=hour)
        hour += metering.HOUR
    assert hour == datetime(2026, 12, 20, 14, tzinfo=UTC)
    with tenant_scope(seeded.id):
        records = MeterEventRecord.objects.filter(tenant=seeded)
        sums = dict(records.order_by().values_list("meter").annotate(Sum("value")))
        per_day: dict[tuple[str, date], Decimal] = {}
        for meter, at, value in records.values_list("meter", "hour", "value"):
            key = (meter, at.astimezone(UTC).date())
            per_day[key] = per_day.get(key, Decimal(0)) + value
    meters = _by_meter(body)
    assert {m: Decimal(row["quantity"]) for m, row in meters.items()} == sums
    assert sums[Meter.CLUSTER_HOURS] > 18 * 24  # the xs cluster ran to the period's end
    for meter, row in meters.items():
        for point in row["daily"]:
            assert Decimal(point["quantity"]) == per_day.get((meter, point["day"]), 0), point
    assert meters[Meter.READ_UNITS]["quantity"] == "2112"  # + the 5 of 12-03, not the 11


# ============================================================================ the period


def test_the_period_is_the_subscriptions_while_it_holds_now_else_the_calendar_month() -> None:
    sub = usage.billing_period(start=START, end=END, now=NOW)
    assert (sub.start, sub.end, sub.source) == (START, END, "subscription")
    month = usage.Period(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
                         "calendar_month")  # fmt: skip
    assert usage.billing_period(start=None, end=None, now=NOW) == month
    assert usage.billing_period(start=START, end=None, now=NOW) == month
    ended = END + timedelta(days=3)  # a cancelled subscription's last period
    assert usage.billing_period(start=START, end=END, now=ended).source == "calendar_month"
    assert usage.calendar_month(datetime(2026, 2, 10, tzinfo=UTC)).end == datetime(
        2026, 3, 1, tzinfo=UTC
    )


def test_an_hour_is_in_the_period_that_holds_its_event_time() -> None:
    at = datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert usage.first_hour_billed_from(at) == at
    assert usage.first_hour_billed_from(at + timedelta(minutes=59, seconds=59)) == at
    later = at + timedelta(minutes=59, seconds=59, microseconds=1)
    assert usage.first_hour_billed_from(later) == at + metering.HOUR


def test_without_a_subscription_period_the_calendar_month(tenant: Tenant) -> None:
    _units(tenant, "a", datetime(2026, 11, 30, 23, tzinfo=UTC), 3)
    _units(tenant, "a", datetime(2026, 12, 1, 0, tzinfo=UTC), 4)
    body = usage.usage_this_period(tenant=tenant, now=NOW)
    assert body["period_source"] == "calendar_month"
    assert body["period_start"] == datetime(2026, 12, 1, tzinfo=UTC)
    read = _by_meter(body)[Meter.READ_UNITS]
    assert read["quantity"] == "4"
    assert [d["day"] for d in read["daily"]] == [date(2026, 12, 1), date(2026, 12, 2)]


def test_usage_by_hour_equals_hour_usage_hour_by_hour(seeded: Tenant) -> None:
    start = datetime(2026, 12, 1, 20, tzinfo=UTC)
    hours = metering.usage_by_hour(tenant_id=seeded.id, start=start,
                                   end=start + 8 * metering.HOUR)  # fmt: skip
    assert len(hours) == 8
    for hour, values in hours.items():
        assert values == metering.hour_usage(tenant_id=seeded.id, hour=hour)
    assert hours[datetime(2026, 12, 1, 22, tzinfo=UTC)][Meter.CLUSTER_HOURS] == 2  # from :30


# ============================================================================ the API


def test_the_api_answers_members_with_billing_off_and_makes_no_stripe_call(
    members: dict[str, Any], tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    now = datetime.now(UTC)
    _account(tenant, now - timedelta(days=3), now + timedelta(days=27))
    _units(tenant, "a", metering.hour_floor(now - timedelta(days=1)), 42, 2)
    _units(tenant, "a", metering.hour_floor(now - timedelta(days=4)), 1000)  # last period
    for role in (Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER):
        response = _client(members[role]).get(URL)
        assert response.status_code == 200, (role, response.json())
    body = response.json()
    assert body["billing_enabled"] is False and body["period_source"] == "subscription"
    assert body["currency"] == "usd" and body["plan"] == "free"
    meters = _by_meter(body)
    assert list(meters) == list(Meter.values)
    assert meters[Meter.READ_UNITS]["quantity"] == "42"
    assert meters[Meter.WRITE_UNITS]["quantity"] == "2"
    assert len(meters[Meter.READ_UNITS]["daily"]) in (3, 4)  # the period's days up to today


def test_billing_on_answers_the_same_without_asking_stripe(
    owner: Any, tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    _units(tenant, "a", metering.hour_floor(datetime.now(UTC)), 9)
    body = _client(owner).get(URL).json()
    assert body["billing_enabled"] is True and body["period_source"] == "calendar_month"
    assert _by_meter(body)[Meter.READ_UNITS]["quantity"] == "9"
    assert stripe_requests.sent == []


def test_another_tenant_and_a_key_without_the_admin_scope(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    mallory = get_user_model().objects.get(email="mallory@example.test")
    answer = _client(mallory).get(URL)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    _units(tenant, "a", metering.hour_floor(datetime.now(UTC)), 5)
    theirs = _client(mallory).get(f"/api/v1/tenants/{other_tenant.slug}/billing/usage").json()
    assert _by_meter(theirs)[Meter.READ_UNITS]["quantity"] == "0"  # none of acme's rows
    cases = [(other_tenant, ["read", "admin"], (404, "not_found")),
             (tenant, ["read", "write"], (403, "insufficient_scope")),
             (tenant, ["admin"], (200, None))]  # fmt: skip
    for owner_of, scopes, expected in cases:
        _key, secret = make_key(owner_of, scopes=scopes)
        key = APIClient()
        key.credentials(HTTP_API_KEY=secret)
        response = key.get(URL)
        code = response.json().get("error", {}).get("code")
        assert (response.status_code, code) == expected, scopes
    assert APIClient().get(URL).status_code == 401


def test_only_get(owner: Any, tenant: Tenant) -> None:
    response = _client(owner).post(URL, {}, format="json")
    assert response.status_code == 405
