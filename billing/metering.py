"""Usage → Stripe meter events, exactly once.

Hourly (`meter_events_send` on the beat): for each closed hour and each tenant with a Stripe
customer, one `MeterEventRecord` per meter with usage (unique per tenant, meter and hour, so a
rerun never adds a row), then every pending record is sent as `POST /v1/billing/meter_events`
with its deterministic `identifier` (`models.meter_event_identifier`; Stripe deduplicates on it)
and `timestamp` = the hour's end - 1 s. A record is claimed before the call (attempts + 1, the
next attempt due after an exponential backoff with jitter): a timeout after Stripe got the event,
an error, or a worker killed between Stripe's answer and `sent_at` leaves it pending, and the
resend carries the same identifier. Daily (`meter_reconcile`): Stripe's hourly event summaries
against the sent records; drift is logged and returned, nothing else is stored.

What is metered, per tenant and hour:
- read units and write units: summed from `provisioning.models.UsageRecord`;
- storage GB-hours: per index-hour sample (`StoredVectorsRecord`), vectors * dimension * 4
  bytes / 1e9, summed;
- dedicated cluster size-hours: from `ClusterEvent`, a cluster runs the size (and replicas) of
  its last `ready`/`updating` event until its next event, clipped to the hour, weighted by the
  size's units (`size_units`) and replicas.

`usage_by_hour` is that computation over a range of hours; the console's "usage this period"
(`billing.usage`) sums the same hourly values (`billed_value`), so what it shows is what the
meter events carry.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from celery import shared_task
from django.db.models import F, Sum
from django.utils import timezone

from provisioning.models import ClusterEvent, StoredVectorsRecord, UsageRecord
from tenants.scoping import tenant_scope
from vectorplane import config
from vectorplane.contract.clusters import CLUSTER_SIZES

from . import selectors
from .catalogue import meter_event_name
from .client import stripe_client
from .models import CatalogueEntry, Meter, MeterEventRecord, meter_event_identifier

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
BYTES_PER_DIMENSION = 4  # float32
RUNNING = ("ready", "updating")
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
_random = secrets.SystemRandom()


def size_units(slug: str) -> Decimal:
    """A cluster size's billing units: its vCPUs per half vCPU (xs 1, s 2, m 4, l 8, xl 16),
    read from the kernel's size catalogue (the memory and disk scale with them)."""
    cpu = CLUSTER_SIZES[slug].cpu
    cores = Decimal(cpu[:-1]) / 1000 if cpu.endswith("m") else Decimal(cpu)
    return cores * 2


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------------------- usage per hour
def cluster_size_hours(
    events: list[tuple[Any, str, str, int, datetime]], hour: datetime,
    *, until: datetime | None = None,
) -> Decimal:  # fmt: skip
    """Size-hours within [hour, hour + 1 h) from clusters' state histories: `events` are
    (cluster id, to_status, size, replicas, at), each cluster's latest before the hour and every
    one within it (earlier or later ones add nothing). `until`: nothing counts after it (the
    current hour so far); None: the whole hour."""
    end = hour + HOUR if until is None else min(hour + HOUR, until)
    by_cluster: dict[Any, list[tuple[datetime, str, str, int]]] = {}
    for cluster_id, to_status, size, replicas, at in events:
        by_cluster.setdefault(cluster_id, []).append((at, to_status, size, replicas))
    total = Decimal(0)
    for history in by_cluster.values():
        history.sort(key=lambda e: e[0])
        for i, (at, to_status, size, replicas) in enumerate(history):
            if to_status not in RUNNING or size not in CLUSTER_SIZES:
                continue
            until_next = history[i + 1][0] if i + 1 < len(history) else end
            start, stop = max(at, hour), min(until_next, end)
            if stop > start:
                seconds = Decimal((stop - start).total_seconds())
                total += size_units(size) * max(replicas, 1) * seconds / 3600
    return total


def usage_by_hour(
    *, tenant_id: uuid.UUID, start: datetime, end: datetime, until: datetime | None = None
) -> dict[datetime, dict[str, Decimal]]:
    """The tenant's metered usage per meter for every hour in [start, end) (floored to hours),
    in a few queries: what the hourly meter events carry (`hour_usage`) and what the console's
    "usage this period" sums (`billing.usage`), one computation for both. `until`: nothing
    counts after it (the current hour so far: cluster size-hours stop there); None: `end`."""
    start, end = hour_floor(start), hour_floor(end)
    hours: dict[datetime, dict[str, Decimal]] = {}
    moment = start
    while moment < end:
        hours[moment] = {meter: Decimal(0) for meter in Meter.values}
        moment += HOUR
    if not hours:
        return hours
    with tenant_scope(tenant_id):
        units = (
            UsageRecord.objects.filter(hour__gte=start, hour__lt=end)
            .order_by()
            .values_list("hour")
            .annotate(read=Sum("read_units"), write=Sum("write_units"))
        )
        for hour, read, write in units:
            usage = hours[hour_floor(hour)]
            usage[Meter.READ_UNITS] += Decimal(read or 0)
            usage[Meter.WRITE_UNITS] += Decimal(write or 0)
        stored = (
            StoredVectorsRecord.objects.filter(hour__gte=start, hour__lt=end)
            .order_by()
            .values_list("hour")
            .annotate(size=Sum(F("vectors") * F("dimension")))
        )
        for hour, size in stored:
            stored_bytes = Decimal(size or 0) * BYTES_PER_DIMENSION
            hours[hour_floor(hour)][Meter.STORAGE_GB_HOURS] += stored_bytes / Decimal(10**9)
        before = (
            ClusterEvent.objects.filter(at__lt=start)
            .order_by("cluster_id", "-at", "-id")
            .distinct("cluster_id")
            .values_list("cluster_id", "to_status", "size", "replicas", "at")
        )
        within = (
            ClusterEvent.objects.filter(at__gte=start, at__lt=end)
            .order_by("at", "id")
            .values_list("cluster_id", "to_status", "size", "replicas", "at")
        )
        events = [*before, *within]
    if events:
        for hour, usage in hours.items():
            usage[Meter.CLUSTER_HOURS] = cluster_size_hours(events, hour, until=until)
    return hours


def hour_usage(*, tenant_id: uuid.UUID, hour: datetime) -> dict[str, Decimal]:
    """The tenant's metered usage in the hour starting at `hour`, per meter."""
    hour = hour_floor(hour)
    return usage_by_hour(tenant_id=tenant_id, start=hour, end=hour + HOUR)[hour]


def billed_value(raw: Decimal) -> Decimal:
    """An hour's usage as its meter event carries it (6 places); 0 or less: no event."""
    return raw.quantize(Decimal("0.000001"))


def event_time(hour: datetime) -> datetime:
    """When the meter event of the hour starting at `hour` happened for Stripe (the hour's end
    - 1 s): Stripe bills it in the period that holds this moment."""
    return hour + HOUR - timedelta(seconds=1)


def meter_events_record_hour(*, hour: datetime) -> int:
    """One record per tenant with a customer, meter with usage, and the closed hour `hour`;
    an existing row is kept (its value too, once an attempt was made). Returns rows added."""
    hour = hour_floor(hour)
    epoch = int(hour.timestamp())
    added = 0
    for tenant_id, _customer in selectors.accounts_with_customer():
        usage = hour_usage(tenant_id=tenant_id, hour=hour)
        with tenant_scope(tenant_id):
            for meter, raw in usage.items():
                value = billed_value(raw)
                if value <= 0:
                    continue
                record, created = MeterEventRecord.objects.get_or_create(
                    tenant_id=tenant_id, meter=meter, hour=hour,
                    defaults={"value": value,
                              "identifier": meter_event_identifier(tenant_id, meter, epoch)},
                )  # fmt: skip
                added += created
                if not created and record.attempts == 0 and record.value != value:
                    record.value = value  # late usage, and Stripe has seen nothing yet
                    record.save(update_fields=["value"])
    return added


# ------------------------------------------------------------------------------------ sending
def backoff(attempts: int) -> timedelta:
    """The wait before attempt `attempts + 1`: exponential, capped, with up to 25 % jitter."""
    delay: timedelta = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    jitter: float = _random.uniform(0, 0.25)
    return delay + delay * jitter


def meter_event_params(record: MeterEventRecord, customer_id: str) -> dict[str, Any]:
    """POST /v1/billing/meter_events for one record."""
    return {
        "event_name": meter_event_name(record.meter),
        "payload": {"stripe_customer_id": customer_id, "value": format(record.value.normalize(),
                                                                       "f")},
        "identifier": record.identifier,
        "timestamp": int(event_time(record.hour).timestamp()),
    }  # fmt: skip


def _claim(record_id: int, tenant_id: uuid.UUID, now: datetime) -> MeterEventRecord | None:
    """Take the record for one attempt (a compare-and-set on `attempts`): attempts + 1 and the
    next attempt due after the backoff, committed before Stripe is called."""
    with tenant_scope(tenant_id):
        record = MeterEventRecord.objects.filter(pk=record_id, sent_at__isnull=True).first()
        if record is None:
            return None
        attempts = record.attempts + 1
        claimed = MeterEventRecord.objects.filter(
            pk=record_id, sent_at__isnull=True, attempts=record.attempts
        ).update(attempts=attempts, next_attempt_at=now + backoff(attempts))
        if not claimed:
            return None  # another worker took it
        record.attempts = attempts
        return record


def meter_event_send(*, record_id: int, tenant_id: uuid.UUID, customer_id: str,
                     now: datetime | None = None) -> bool:  # fmt: skip
    """Send one record (claimed first); True when Stripe acknowledged it."""
    now = now or timezone.now()
    record = _claim(record_id, tenant_id, now)
    if record is None:
        return False
    try:
        stripe_client().v1.billing.meter_events.create(
            params=meter_event_params(record, customer_id),  # type: ignore[arg-type]
            options={"idempotency_key": record.identifier},
        )
    except stripe.StripeError as exc:
        with tenant_scope(tenant_id):
            MeterEventRecord.objects.filter(pk=record_id).update(
                last_error=f"{type(exc).__name__}: {exc}"[:500]
            )
        logger.warning("meter event %s not sent (attempt %s): %s", record.identifier,
                       record.attempts, exc)  # fmt: skip
        return False
    with tenant_scope(tenant_id):
        MeterEventRecord.objects.filter(pk=record_id).update(
            sent_at=timezone.now(), last_error="", next_attempt_at=None
        )
    return True


@dataclass
class SendReport:
    recorded: int = 0
    sent: int = 0
    failed: int = 0


def meter_events_send_due(*, now: datetime | None = None) -> SendReport:
    """Record the closed hours (the last `VECTORPLANE_METER_LOOKBACK_HOURS`, 2: a missed beat
    is caught up), then send every due record. An hour counts as closed once it ended
    `VECTORPLANE_METER_SETTLE_SECONDS` (600) ago: the gateways' last flush (5 s) and a dead
    gateway's journal replayed by a sibling (within 30 s) have landed in its usage rows by then,
    so the value sent is the hour's final one."""
    now = now or timezone.now()
    report = SendReport()
    current = hour_floor(
        now - timedelta(seconds=config.env_int("VECTORPLANE_METER_SETTLE_SECONDS", 600))
    )
    for back in range(config.env_int("VECTORPLANE_METER_LOOKBACK_HOURS", 2), 0, -1):
        report.recorded += meter_events_record_hour(hour=current - back * HOUR)
    customers = dict(selectors.accounts_with_customer())
    for record_id, tenant_id in selectors.meter_events_due(now=now, limit=1000):
        customer = customers.get(tenant_id)
        if not customer:
            continue
        if meter_event_send(record_id=record_id, tenant_id=tenant_id, customer_id=customer,
                            now=now):  # fmt: skip
            report.sent += 1
        else:
            report.failed += 1
    return report


@shared_task(name="billing.metering.meter_events_send", ignore_result=True)
def meter_events_send() -> dict[str, int]:
    """Hourly. Not auto-retried: a failed record is retried by the next run, after its backoff
    (the identifier makes a resend harmless)."""
    report = meter_events_send_due()
    return {"recorded": report.recorded, "sent": report.sent, "failed": report.failed}


# ---------------------------------------------------------------------------- reconciliation
def summary_params(customer_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """GET /v1/billing/meters/{id}/event_summaries, hour by hour."""
    return {
        "customer": customer_id,
        "start_time": int(start.timestamp()),
        "end_time": int(end.timestamp()),
        "value_grouping_window": "hour",
        "limit": 100,
    }


def drift(
    sent: dict[int, Decimal], summaries: dict[int, Decimal], *, tolerance: Decimal
) -> list[dict[str, Any]]:
    """The hours (epoch seconds) where what was sent and what Stripe summed disagree."""
    hours = sorted(set(sent) | set(summaries))
    found = []
    for hour in hours:
        ours, theirs = sent.get(hour, Decimal(0)), summaries.get(hour, Decimal(0))
        if abs(ours - theirs) > tolerance:
            found.append({"hour": hour, "sent": str(ours), "stripe": str(theirs)})
    return found


@dataclass
class ReconcileReport:
    start: datetime
    end: datetime
    checked: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


def meter_reconcile_day(*, day_start: datetime | None = None) -> ReconcileReport:
    """Compare the previous UTC day's (or `day_start`'s) sent records with Stripe's hourly
    summaries, per tenant and meter."""
    start = hour_floor(day_start or (timezone.now() - timedelta(days=1))).replace(hour=0)
    end = start + timedelta(days=1)
    report = ReconcileReport(start=start, end=end)
    meters = dict(CatalogueEntry.objects.filter(kind="meter").values_list("meter", "stripe_id"))
    client = stripe_client()
    for tenant_id, customer in selectors.accounts_with_customer():
        with tenant_scope(tenant_id):
            rows = MeterEventRecord.objects.filter(
                sent_at__isnull=False, hour__gte=start, hour__lt=end
            ).values_list("meter", "hour", "value")
            sent: dict[str, dict[int, Decimal]] = {}
            for meter, hour, value in rows:
                sent.setdefault(meter, {})[int(hour.timestamp())] = value
        for meter, ours in sent.items():
            stripe_meter = meters.get(meter)
            if stripe_meter is None:
                report.errors.append({"tenant": str(tenant_id), "meter": meter,
                                      "error": "no Stripe meter in the catalogue"})  # fmt: skip
                continue
            try:
                page = client.v1.billing.meters.event_summaries.list(
                    stripe_meter,
                    params=summary_params(customer, start, end),  # type: ignore[arg-type]
                )
                theirs = {
                    int(s.start_time): Decimal(str(s.aggregated_value))
                    for s in page.auto_paging_iter()
                }
            except stripe.StripeError as exc:
                report.errors.append({"tenant": str(tenant_id), "meter": meter,
                                      "error": f"{type(exc).__name__}: {exc}"[:300]})  # fmt: skip
                continue
            report.checked += 1
            for item in drift(ours, theirs, tolerance=Decimal("0.000001")):
                report.drift.append({"tenant": str(tenant_id), "meter": meter, **item})
    for item in report.drift:
        logger.warning("meter drift: %s", item)
    for error in report.errors:
        logger.warning("meter reconcile failed: %s", error)
    return report


@shared_task(name="billing.metering.meter_reconcile", ignore_result=True)
def meter_reconcile() -> dict[str, Any]:
    """Daily. Reads only; safe to rerun."""
    report = meter_reconcile_day()
    return {"start": report.start.isoformat(), "checked": report.checked,
            "drift": report.drift, "errors": report.errors}  # fmt: skip
