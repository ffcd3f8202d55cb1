"""The reconcile's heartbeat: `clusters_reconcile` (on the beat, every
`VECTORPLANE_RECONCILE_SECONDS`) records when it last finished, in the platform's Redis, and the
operators' health page reads it back as the reconcile's lag, with the cluster that has waited
longest in a transitional state. A beat or worker that stopped shows here as a growing lag."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

import redis
from django.utils import timezone

from controlplane.health import TIMEOUT_SECONDS, PartHealth, Unhealthy, timed
from vectorplane import config

from . import selectors
from .models import ClusterStatus

logger = logging.getLogger("vectorplane.provisioning.heartbeat")

KEY = "vectorplane:reconcile:finished_at"
# A cluster this long in pending/provisioning/updating/deleting is reported as stuck.
STUCK_AFTER = timedelta(minutes=10)
TRANSITIONAL = (ClusterStatus.PENDING, ClusterStatus.PROVISIONING, ClusterStatus.UPDATING,
                ClusterStatus.DELETING)  # fmt: skip


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        config.redis_url(), socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )


def interval_seconds() -> int:
    return config.env_int("VECTORPLANE_RECONCILE_SECONDS", 15)


def reconcile_finished(at: float | None = None) -> None:
    """Record that a reconcile finished (now). A Redis that does not answer is logged: the
    reconcile's work is done either way, and the health page shows the missing beat."""
    try:
        with _redis() as client:
            client.set(KEY, repr(time.time() if at is None else at))
    except redis.RedisError as exc:
        logger.warning("could not record the reconcile's heartbeat: %s", exc)


def reconcile_health() -> PartHealth:
    """ok when the last reconcile finished within 4 intervals (at least 60 s) and no cluster
    has been transitional for longer than `STUCK_AFTER`."""
    allowed = max(60, 4 * interval_seconds())
    facts: list[str] = []

    def probe() -> None:
        with _redis() as client:
            raw = client.get(KEY)
        if raw is None:
            raise Unhealthy("no reconcile has finished yet: are the beat and a worker running?")
        lag = time.time() - float(raw)
        facts.append(f"last reconcile {lag:.0f} s ago (every {interval_seconds()} s)")
        if lag > allowed:
            raise Unhealthy(f"the last reconcile finished {lag:.0f} s ago (more than "
                               f"{allowed} s): are the beat and a worker running?")  # fmt: skip
        stuck = selectors.clusters_due_for_reconcile(
            statuses=TRANSITIONAL, changed_before=timezone.now() - STUCK_AFTER
        ).order_by("updated_at").first()
        if stuck is not None:
            waited = (timezone.now() - stuck.updated_at).total_seconds() / 60
            raise Unhealthy(f"cluster {stuck.tenant.slug}/{stuck.name} has been "
                               f"{stuck.status} for {waited:.0f} min")  # fmt: skip

    part = timed("reconcile", "", probe)
    return replace(part, target="; ".join(facts) or "the reconcile's heartbeat in Redis")
