"""The steps the Celery tasks of dedicated clusters run (`provisioning.tasks`).

The row is the desired state (engine, size, replicas, `generation`); tasks move `status` through
`CLUSTER_TRANSITIONS` with compare-and-set updates (`transition`; every status change, the
services' too, goes through `cluster_set_status`, which writes its `ClusterEvent` in the same
transaction) and hold a PostgreSQL advisory lock per cluster while they work (`cluster_lock`),
so two workers never provision the same cluster at once and a worker killed mid-task releases
it with its connection. Every step is
idempotent, so the reconcile task may simply run it again. The steps read and write the
cluster's row in its tenant's scope, which the task entered (`tenant_scope`).

Imports: the models, `connections` and `storage` (below it), the driver interface; never the
tasks or the services (above it).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from tenants.models import Engine
from vectorplane import config

from .connections import credentials
from .drivers.base import ClusterSpec, Observed, Size, TransientError
from .models import CLUSTER_SIZES, CLUSTER_TRANSITIONS, Cluster, ClusterEvent, ClusterStatus
from .storage import shared_tier

logger = logging.getLogger(__name__)


def spec_for(cluster: Cluster) -> ClusterSpec:
    """What a driver is given: the cluster's spec as plain data (no Django models)."""
    size = CLUSTER_SIZES[cluster.size]
    return ClusterSpec(
        cluster_id=cluster.id.hex,
        tenant_id=cluster.tenant_id.hex,
        tenant_slug=cluster.tenant.slug,
        engine=cluster.engine,  # type: ignore[arg-type]
        size=Size(size.slug, size.cpu, size.memory, size.storage, cluster.replicas),
        credentials=credentials(cluster),
        stack_name=cluster.stack_name,
    )


def transition(cluster_id: uuid.UUID, to: str, *, expect: tuple[str, ...] | None = None,
               applied: Cluster | None = None, **fields: Any) -> bool:  # fmt: skip
    """Compare-and-set: move the cluster to `to` if its status is one that may (and in
    `expect`, if given), recording the move (`cluster_set_status`). Returns whether this call
    moved it. In the cluster's tenant scope. `applied`: the row as the task loaded it, whose
    spec the event records (a `ready` event names the spec that was applied, not one that
    arrived meanwhile)."""
    allowed = [s for s, targets in CLUSTER_TRANSITIONS.items() if to in targets]
    if expect is not None:
        allowed = [s for s in allowed if s in expect]
    with transaction.atomic():
        # Row lock then re-check (READ COMMITTED re-evaluates the WHERE after a wait): the same
        # compare-and-set as a conditional UPDATE, with the row in hand for its event.
        row = Cluster.objects.select_for_update().filter(pk=cluster_id, status__in=allowed).first()
        if row is None:
            return False
        message = fields.pop("status_message", None)
        cluster_set_status(row, to, message=message, applied=applied, **fields)
    return True


def cluster_set_status(cluster: Cluster, to: str, *, message: str | None = None,
                       applied: Cluster | None = None, **fields: Any) -> ClusterEvent:  # fmt: skip
    """The one place a cluster's status is set: updates the row (status, `status_message`
    when `message` is given, `fields`) and writes its `ClusterEvent` in the same transaction.
    The caller holds the row's lock (`select_for_update`, inside `transaction.atomic`) and has
    checked that the move is allowed. The event records the row's spec after the change, or
    `applied`'s."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("cluster_set_status needs the caller's transaction (and row lock)")
    now = timezone.now()
    from_status = cluster.status
    changes: dict[str, Any] = {"status": to, "updated_at": now, **fields}
    if message is not None:
        changes["status_message"] = message[:1000]
    Cluster.objects.filter(pk=cluster.pk).update(**changes)
    for name, value in changes.items():
        setattr(cluster, name, value)
    return record_event(cluster, from_status=from_status, at=now, applied=applied,
                        message=message or "")  # fmt: skip


def record_event(cluster: Cluster, *, from_status: str, at: datetime, message: str = "",
                 applied: Cluster | None = None) -> ClusterEvent:  # fmt: skip
    """The event of a status the row now has (`cluster_set_status`, and a new row's first:
    from "" to `pending`, written with the row)."""
    spec = applied or cluster
    return ClusterEvent.objects.create(
        tenant_id=cluster.tenant_id,
        cluster=cluster,
        from_status=from_status,
        to_status=cluster.status,
        generation=spec.generation,
        size=spec.size,
        replicas=spec.replicas,
        message=message[:1000],
        at=at,
    )


@contextlib.contextmanager
def cluster_lock(cluster_id: uuid.UUID) -> Iterator[bool]:
    """A session-level advisory lock on the cluster (released if the worker dies: the
    connection closes). Yields whether it was taken; never blocks."""
    key = int.from_bytes(cluster_id.bytes[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [4242, key & 0x7FFFFFFF])
        taken = bool(cursor.fetchone()[0])
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [4242, key & 0x7FFFFFFF])


def bootstrap(cluster: Cluster, observed: Observed) -> None:
    """What the engine needs before the data plane may use it, whatever the driver: for
    pgvector, the shared tier's layout in the cluster's data database (the stats table with its
    policy and the gateway's grants; the local driver has done it already, a Kubernetes
    cluster's image only creates the roles). Idempotent. Raises TransientError when the server
    does not answer yet."""
    if cluster.engine != Engine.PGVECTOR or observed.endpoint is None:
        return
    endpoint = observed.endpoint
    creds = credentials(cluster)
    try:
        with psycopg.connect(
            host=endpoint.host,
            port=endpoint.port,
            dbname=endpoint.database or config.EMBEDDED_DATA_DB_NAME,
            user=creds["admin_user"],
            password=creds["admin_password"],
            connect_timeout=10,
        ) as conn:
            shared_tier.ensure_base(conn)
            conn.commit()
    except psycopg.OperationalError as exc:
        raise TransientError(f"the cluster's PostgreSQL does not answer: {exc}") from exc


def record_ready(cluster: Cluster, observed: Observed, generation: int) -> None:
    endpoint = observed.endpoint.as_dict() if observed.endpoint else {}
    moved = transition(
        cluster.id,
        ClusterStatus.READY,
        expect=(ClusterStatus.PROVISIONING, ClusterStatus.UPDATING),
        endpoint=endpoint,
        applied=cluster,
        observed_generation=generation,
        status_message="",
        attempts=0,
        ready_at=cluster.ready_at or timezone.now(),
    )
    if not moved:
        logger.info("cluster %s left provisioning while applied; not marking ready", cluster.id)


def record_failure(cluster: Cluster, message: str) -> None:
    transition(
        cluster.id,
        ClusterStatus.FAILED,
        expect=(ClusterStatus.PENDING, ClusterStatus.PROVISIONING, ClusterStatus.UPDATING),
        status_message=message[:1000],
    )
