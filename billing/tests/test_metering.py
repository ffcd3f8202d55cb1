"""Usage to meter events: the hour's usage per meter (units, storage GB-hours, cluster
size-hours from the state history), one record per tenant/meter/hour (a rerun adds none), the
documented meter event request (localstripe has no meters: it answers 404, so the record stays
pending with its backoff and error, and the resend carries the same identifier), the catalogue's
products on localstripe (a second run creates none) and its documented meter and price
requests, the reconcile's event-summaries request, and a send killed after Stripe's answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from billing import catalogue, metering
from billing.client import stripe_client
from billing.models import BillingAccount, CatalogueEntry, Meter, MeterEventRecord
from billing.tests.conftest import LocalStripe, Recorder
from provisioning.models import StoredVectorsRecord, UsageRecord
from tenants.models import Tenant
from tenants.scoping import tenant_scope

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_size_units_and_cluster_size_hours() -> None:
    assert [metering.size_units(s) for s in ("xs", "s", "m", "l", "xl")] == [1, 2, 4, 8, 16]
    c = uuid.uuid4()
    events = [
        (c, "ready", "s", 1, HOUR - timedelta(hours=2)),  # runs s from before the hour
        (c, "updating", "m", 1, HOUR + timedelta(minutes=30)),  # m from :30
        (c, "deleting", "m", 1, HOUR + timedelta(minutes=45)),  # stops at :45
    ]
    assert metering.cluster_size_hours(events, HOUR) == Decimal(2) / 2 + Decimal(4) / 4
    assert metering.cluster_size_hours([(c, "failed", "s", 1, HOUR)], HOUR) == 0


def _usage(tenant: Tenant) -> None:
    index = uuid.uuid4()
    with tenant_scope(tenant.id):
        UsageRecord.objects.create(tenant=tenant, index_id=index, index_name="a", hour=HOUR,
                                   read_units=1500, write_units=40)  # fmt: skip
        StoredVectorsRecord.objects.create(tenant=tenant, index_id=index, index_name="a",
                                           hour=HOUR, vectors=1_000_000, dimension=250,
                                           sampled_at=HOUR)  # fmt: skip


def test_records_once_and_sends_the_documented_event(
    tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    with tenant_scope(tenant.id):
        BillingAccount.objects.create(tenant=tenant, stripe_customer_id="cus_x")
    _usage(tenant)
    assert metering.meter_events_record_hour(hour=HOUR) == 3
    assert metering.meter_events_record_hour(hour=HOUR) == 0  # a rerun adds no row
    with tenant_scope(tenant.id):
        values = dict(MeterEventRecord.objects.values_list("meter", "value"))
    assert values == {Meter.READ_UNITS: 1500, Meter.WRITE_UNITS: 40,
                      Meter.STORAGE_GB_HOURS: Decimal(1)}  # fmt: skip

    now = HOUR + timedelta(hours=1, minutes=5)
    report = metering.meter_events_send_due(now=now)
    assert report.sent == 0 and report.failed == 3  # localstripe: 404
    sent = stripe_requests.to("/v1/billing/meter_events")
    first = {r.form()["event_name"]: r for r in sent}
    read = first["vectorplane_read_units"].form()
    epoch = int(HOUR.timestamp())
    assert read == {
        "event_name": "vectorplane_read_units", "payload[stripe_customer_id]": "cus_x",
        "payload[value]": "1500", "identifier": f"vp:{tenant.id}:read_units:{epoch}",
        "timestamp": str(epoch + 3599),
    }  # fmt: skip
    with tenant_scope(tenant.id):
        record = MeterEventRecord.objects.get(meter=Meter.READ_UNITS)
    assert record.attempts == 1 and record.sent_at is None and record.last_error
    assert record.next_attempt_at is not None and record.next_attempt_at > now
    # Not due yet: nothing resent; once due, the same identifier again.
    assert metering.meter_events_send_due(now=now).failed == 0
    stripe_requests.sent.clear()
    later = record.next_attempt_at + timedelta(hours=7)
    metering.meter_events_send_due(now=later)
    resent = {r.form()["identifier"] for r in stripe_requests.to("/v1/billing/meter_events")}
    assert f"vp:{tenant.id}:read_units:{epoch}" in resent
    with tenant_scope(tenant.id):
        assert MeterEventRecord.objects.count() == 3
        assert MeterEventRecord.objects.get(pk=record.pk).attempts == 2


def test_backoff_grows_with_jitter() -> None:
    assert timedelta(minutes=1) <= metering.backoff(1) <= timedelta(minutes=1.25)
    assert timedelta(minutes=8) <= metering.backoff(4) <= timedelta(minutes=10)
    assert metering.backoff(40) <= timedelta(hours=7.5)


def test_catalogue_products_on_localstripe_and_documented_requests(
    stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    import stripe

    with pytest.raises(stripe.StripeError):  # localstripe has no meters
        catalogue.catalogue_sync()
    created = [r for r in stripe_requests.to("/v1/products") if r.method == "POST"]
    assert {r.form()["id"] for r in created} == {"vp_starter", "vp_pro"}
    (listed,) = stripe_requests.to("/v1/billing/meters")
    assert listed.method == "GET" and listed.form()["status"] == "active"
    stripe_requests.sent.clear()
    with pytest.raises(stripe.StripeError):
        catalogue.catalogue_sync()
    assert not [r for r in stripe_requests.sent if r.method == "POST"]  # no product again
    assert CatalogueEntry.objects.filter(kind="product").count() == 2

    client = stripe_client()
    report = catalogue.Report()
    with pytest.raises(stripe.StripeError):
        client.v1.billing.meters.create(params=catalogue.meter_params("read_units"))  # type: ignore[arg-type]
    form = stripe_requests.to("/v1/billing/meters")[-1].form()
    assert form == {
        "display_name": "Vectorplane Read units", "event_name": "vectorplane_read_units",
        "default_aggregation[formula]": "sum", "customer_mapping[type]": "by_id",
        "customer_mapping[event_payload_key]": "stripe_customer_id",
        "value_settings[event_payload_key]": "value",
    }  # fmt: skip
    plan = catalogue.paid_plans()[0]
    meters = {m: f"mtr_{m}" for m in Meter.values}
    desired = catalogue.desired_prices(plan, "vp_starter", meters, "usd")
    with pytest.raises(stripe.StripeError):
        catalogue.prices_ensure(client, plan, desired, report)
    (lookup,) = stripe_requests.to("/v1/prices")
    assert lookup.method == "GET"
    assert [v for k, v in lookup.params if k.startswith("lookup_keys")] == [
        d.lookup_key for d in desired
    ]


def test_price_actions_keep_create_replace() -> None:
    from tenants.models import Plan

    plan = Plan.objects.get(slug="starter")
    meters = {m: f"mtr_{m}" for m in Meter.values}
    desired = catalogue.desired_prices(plan, "vp_starter", meters, "usd")
    assert desired[1].params["unit_amount_decimal"] == "0.0016"
    existing = {
        d.lookup_key: {**d.params, "id": f"price_{i}", "recurring": d.params["recurring"]}
        for i, d in enumerate(desired)
    }
    assert {a for a, _ in catalogue.price_actions(desired, existing)} == {"keep"}  # 2nd run
    existing[desired[1].lookup_key] = {**existing[desired[1].lookup_key],
                                       "unit_amount_decimal": "0.002"}  # fmt: skip
    actions = catalogue.price_actions(desired, existing)
    assert actions[1][0] == "replace" and actions[0][0] == "keep"
    assert catalogue.price_actions(desired, {})[0][0] == "create"


def test_reconcile_request_shape_and_drift(
    tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    with tenant_scope(tenant.id):
        BillingAccount.objects.create(tenant=tenant, stripe_customer_id="cus_r")
        MeterEventRecord.objects.create(tenant=tenant, meter=Meter.READ_UNITS, hour=HOUR,
                                        value=5, identifier="x", sent_at=HOUR)  # fmt: skip
    CatalogueEntry.objects.create(kind="meter", meter=Meter.READ_UNITS,
                                  lookup_key="vp_meter_read_units", stripe_id="mtr_1")  # fmt: skip
    report = metering.meter_reconcile_day(day_start=HOUR)
    assert report.errors and report.checked == 0  # localstripe: no summaries
    (sent,) = stripe_requests.to("/v1/billing/meters/mtr_1/event_summaries")
    day = int(HOUR.replace(hour=0).timestamp())
    assert sent.method == "GET" and sent.form() == {
        "customer": "cus_r", "start_time": str(day), "end_time": str(day + 86400),
        "value_grouping_window": "hour", "limit": "100",
    }  # fmt: skip
    e = int(HOUR.timestamp())
    found = metering.drift({e: Decimal(5)}, {e: Decimal(4)}, tolerance=Decimal("0.000001"))
    assert found == [{"hour": e, "sent": "5", "stripe": "4"}]
    assert metering.drift({e: Decimal(5)}, {e: Decimal(5)}, tolerance=Decimal(0)) == []


KILLED_SEND = """
import os, signal, uuid
import django
django.setup()
import stripe
from billing import client as billing_client, metering

class KilledAfterTheAnswer(stripe.RequestsClient):
    def request(self, method, url, headers, post_data=None):
        answer = super().request(method, url, headers, post_data)
        if url.split("?")[0].endswith("/v1/billing/meter_events"):
            with open(os.environ["SENT_FILE"], "w") as sent:
                sent.write(post_data.decode() if isinstance(post_data, bytes) else post_data)
            os.kill(os.getpid(), signal.SIGKILL)  # Stripe answered; sent_at never written
        return answer

billing_client.HTTP_CLIENT = KilledAfterTheAnswer()
metering.meter_event_send(record_id=int(os.environ["RECORD_ID"]),
                          tenant_id=uuid.UUID(os.environ["TENANT_ID"]), customer_id="cus_k")
"""


@pytest.mark.django_db(transaction=True)
def test_a_send_killed_after_stripes_answer_is_resent_with_the_same_identifier(
    tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder,
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    from urllib.parse import parse_qsl, quote

    from django.db import connection

    with tenant_scope(tenant.id):
        BillingAccount.objects.create(tenant=tenant, stripe_customer_id="cus_k")
    _usage(tenant)
    metering.meter_events_record_hour(hour=HOUR)
    with tenant_scope(tenant.id):
        record = MeterEventRecord.objects.get(meter=Meter.WRITE_UNITS)
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DATABASE_URL=(f"postgresql://{quote(str(db['USER']), safe='')}:"
                      f"{quote(str(db['PASSWORD']), safe='')}@{db['HOST']}:{db['PORT']}/"
                      f"{quote(str(db['NAME']), safe='')}"),
        DJANGO_SETTINGS_MODULE="controlplane.settings", SENT_FILE=str(tmp_path / "sent"),
        RECORD_ID=str(record.pk), TENANT_ID=str(tenant.id),
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", KILLED_SEND], env=env, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    first = dict(parse_qsl((tmp_path / "sent").read_text()))
    with tenant_scope(tenant.id):
        record.refresh_from_db()
    assert record.sent_at is None and record.attempts == 1  # claimed, never marked
    assert record.next_attempt_at is not None
    metering.meter_events_send_due(now=record.next_attempt_at + timedelta(seconds=1))
    resent = [r.form() for r in stripe_requests.to("/v1/billing/meter_events")]
    assert first["identifier"] == record.identifier
    assert record.identifier in {r["identifier"] for r in resent}
    assert metering.meter_events_record_hour(hour=HOUR) == 0
    with tenant_scope(tenant.id):
        assert MeterEventRecord.objects.filter(meter=Meter.WRITE_UNITS).count() == 1


def test_an_hour_is_recorded_only_once_it_settled(
    tenant: Tenant, stripe_env: LocalStripe, stripe_requests: Recorder
) -> None:
    """Usage can still arrive for a closed hour (the gateways' last flush, a dead gateway's
    journal replayed by a sibling): the hour's meter event waits for
    VECTORPLANE_METER_SETTLE_SECONDS (600) after its end, so the value sent is final."""
    with tenant_scope(tenant.id):
        BillingAccount.objects.create(tenant=tenant, stripe_customer_id="cus_s")
    _usage(tenant)
    metering.meter_events_send_due(now=HOUR + timedelta(hours=1, minutes=9))
    with tenant_scope(tenant.id):
        assert not MeterEventRecord.objects.exists()
    metering.meter_events_send_due(now=HOUR + timedelta(hours=1, minutes=11))
    with tenant_scope(tenant.id):
        assert MeterEventRecord.objects.count() == 3
