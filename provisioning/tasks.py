"""Celery tasks of dedicated clusters. They take ids (never objects), are idempotent, guard on
the state machine, retry transient driver errors with backoff, and are queued on commit by the
services. `clusters_reconcile` (beat) converges clusters whose task was interrupted (a worker
killed mid-task) or whose real state drifted (a local server that died).

A task learns the tenant of the cluster it was given (`selectors.cluster_tenant_id`, one of the
sanctioned cross-tenant lookups), then loads the row and works inside `tenant_scope(...)`; the
reconcile finds its clusters with the named cross-tenant scan
`selectors.clusters_due_for_reconcile`. The steps are in `provisioning.steps`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from tenants.scoping import tenant_scope
from vectorplane import config

from . import evaluation, heartbeat, maintenance, sampling, selectors, steps
from .drivers import get_driver
from .drivers.base import PermanentError, TransientError
from .models import Cluster, ClusterStatus, Index, IndexStatus

logger = logging.getLogger(__name__)

RETRY_MAX = 8


def _backoff(retries: int) -> int:
    return int(min(2 ** (retries + 1), 60))


def _load(cluster_id: uuid.UUID) -> Cluster | None:
    """The cluster's row, read in the tenant scope its caller entered."""
    return Cluster.objects.select_related("tenant").filter(pk=cluster_id).first()


@shared_task(name="provisioning.tasks.cluster_apply", bind=True, max_retries=RETRY_MAX)
def cluster_apply(self: Any, cluster_id: str) -> str:
    """Create the cluster or bring it to its desired spec; then mark it ready."""
    cid = uuid.UUID(cluster_id)
    with steps.cluster_lock(cid) as taken:
        if not taken:
            return "busy"  # another worker is applying it; it re-checks the generation at the end
        tenant_id = selectors.cluster_tenant_id(cid)
        if tenant_id is None:
            return "skipped"
        with tenant_scope(tenant_id):
            outcome = _apply(self, cid)
        if outcome is not None:
            return outcome
    with tenant_scope(tenant_id):
        latest = _load(cid)
        if latest is not None and latest.status == ClusterStatus.READY and (
            latest.observed_generation < latest.generation
        ):
            # The spec changed while we applied the old one: apply again.
            steps.transition(cid, ClusterStatus.UPDATING, expect=(ClusterStatus.READY,))
            cluster_apply.delay(cluster_id)
    return "ready"


def _apply(task: Any, cid: uuid.UUID) -> str | None:
    """`cluster_apply`'s work under the cluster lock, in the tenant's scope: its answer, or
    None once the cluster was applied and marked ready."""
    cluster = _load(cid)
    if cluster is None or cluster.status in (ClusterStatus.DELETING, ClusterStatus.DELETED):
        return "skipped"
    if cluster.status == ClusterStatus.READY and (
        cluster.observed_generation >= cluster.generation
    ):
        return "ready"
    if cluster.status in (ClusterStatus.PROVISIONING, ClusterStatus.UPDATING):
        target = cluster.status  # resumed (a retry, or after a crash or drift)
    elif cluster.observed_generation == 0:
        target = ClusterStatus.PROVISIONING
    else:
        target = ClusterStatus.UPDATING
    if cluster.status != target and not steps.transition(cid, target):
        return f"skipped ({cluster.status})"
    generation = cluster.generation
    driver = get_driver(cluster.driver)
    try:
        observed = driver.apply(steps.spec_for(cluster))
    except TransientError as exc:
        Cluster.objects.filter(pk=cid).update(
            status_message=f"retrying: {exc}"[:1000], attempts=cluster.attempts + 1
        )
        if task.request.retries >= RETRY_MAX:
            steps.record_failure(cluster, f"gave up after {RETRY_MAX} retries: {exc}")
            return "failed"
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries)) from exc
    except PermanentError as exc:
        steps.record_failure(cluster, str(exc))
        return "failed"
    except Exception as exc:
        # Unknown errors are not retried automatically (they may not be idempotent):
        # the cluster goes to failed; an operator retries it from the admin.
        logger.exception("cluster %s: apply failed", cid)
        steps.record_failure(cluster, f"{type(exc).__name__}: {exc}")
        return "failed"
    if observed.state != "ready":
        raise task.retry(countdown=_backoff(task.request.retries))
    try:
        steps.bootstrap(cluster, observed)
    except TransientError as exc:
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries)) from exc
    steps.record_ready(cluster, observed, generation)
    return None


@shared_task(name="provisioning.tasks.cluster_destroy", bind=True, max_retries=RETRY_MAX)
def cluster_destroy(self: Any, cluster_id: str) -> str:
    cid = uuid.UUID(cluster_id)
    with steps.cluster_lock(cid) as taken:
        if not taken:
            return "busy"
        tenant_id = selectors.cluster_tenant_id(cid)
        if tenant_id is None:
            return "skipped"
        with tenant_scope(tenant_id):
            return _destroy(self, cid)


def _destroy(task: Any, cid: uuid.UUID) -> str:
    """`cluster_destroy`'s work under the cluster lock, in the tenant's scope."""
    cluster = _load(cid)
    if cluster is None or cluster.status != ClusterStatus.DELETING:
        return "skipped"
    try:
        get_driver(cluster.driver).destroy(steps.spec_for(cluster))
    except TransientError as exc:
        Cluster.objects.filter(pk=cid).update(status_message=f"retrying delete: {exc}"[:1000])
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries)) from exc
    except PermanentError as exc:
        Cluster.objects.filter(pk=cid).update(status_message=f"delete failed: {exc}"[:1000])
        return "failed"
    now = timezone.now()
    Index.objects.filter(cluster_id=cid).exclude(status=IndexStatus.DELETED).update(
        status=IndexStatus.DELETED, deleted_at=now, updated_at=now
    )
    steps.transition(cid, ClusterStatus.DELETED, deleted_at=now, endpoint={})
    return "deleted"


@shared_task(name="provisioning.tasks.clusters_reconcile")
def clusters_reconcile(*, check_ready: bool = True, inline: bool = False) -> dict[str, int]:
    """Re-run what was interrupted and repair what drifted. Safe to run at any time, from any
    number of processes: every step it triggers is idempotent and takes the cluster lock."""
    stale = timezone.now() - timedelta(
        seconds=config.env_int("VECTORPLANE_RECONCILE_STALE_SECONDS", 20)
    )
    # Inline (the platform's start): every cluster, however recent; otherwise only those whose
    # task is probably no longer queued or running.
    changed_before = None if inline else stale
    counts = {"applied": 0, "destroyed": 0, "drifted": 0}
    transitional = (ClusterStatus.PENDING, ClusterStatus.PROVISIONING, ClusterStatus.UPDATING)
    for cluster in selectors.clusters_due_for_reconcile(
        statuses=transitional, changed_before=changed_before
    ):
        with steps.cluster_lock(cluster.id) as taken:
            if not taken:
                continue  # a worker holds it right now
        counts["applied"] += 1
        _run(cluster_apply, cluster.id, inline)
    for cluster in selectors.clusters_due_for_reconcile(
        statuses=(ClusterStatus.DELETING,), changed_before=changed_before
    ):
        counts["destroyed"] += 1
        _run(cluster_destroy, cluster.id, inline)
    if check_ready:
        for cluster in selectors.clusters_due_for_reconcile(statuses=(ClusterStatus.READY,)):
            try:
                observed = get_driver(cluster.driver).observe(steps.spec_for(cluster))
            except (TransientError, PermanentError) as exc:
                logger.warning("cluster %s: observe failed: %s", cluster.id, exc)
                continue
            endpoint = observed.endpoint.as_dict() if observed.endpoint else None
            if observed.state == "ready" and endpoint == cluster.endpoint:
                continue
            logger.warning(
                "cluster %s drifted (%s: %s); re-applying", cluster.id, observed.state,
                observed.message,
            )  # fmt: skip
            with tenant_scope(cluster.tenant_id):
                moved = steps.transition(
                    cluster.id,
                    ClusterStatus.PROVISIONING,
                    expect=(ClusterStatus.READY,),
                    status_message=f"drift: {observed.state} {observed.message}"[:1000],
                )
            if moved:
                counts["drifted"] += 1
                _run(cluster_apply, cluster.id, inline)
    heartbeat.reconcile_finished()
    return counts


def _run(task: Any, cluster_id: uuid.UUID, inline: bool) -> None:
    if inline:
        task.apply(args=[str(cluster_id)])
    else:
        task.delay(str(cluster_id))


def clusters_stop_local() -> int:
    """Stop the local driver's processes (platform shutdown); data is kept and
    `clusters_reconcile` starts them again."""
    from .drivers.local import LocalDriver  # loaded when used, as `get_driver` does

    driver = LocalDriver()
    stopped = 0
    for cluster in selectors.clusters_on_local_driver():
        spec = steps.spec_for(cluster)
        if driver.cluster_dir(spec).exists():
            driver.stop(spec)
            stopped += 1
    return stopped


@shared_task(name="provisioning.tasks.stored_vectors_sample")
def stored_vectors_sample() -> dict[str, int]:
    """The hourly sample of the vectors every index stores (`sampling`)."""
    return sampling.stored_vectors_sample()


@shared_task(name="provisioning.tasks.index_evaluate")
def index_evaluate(evaluation_id: str, tenant_id: str) -> str:
    """Measure an index's recall and latency (`evaluation.evaluation_run`), in the tenant's
    scope (the row is looked up in it: an id of another tenant's finds nothing). Not retried:
    only a pending evaluation runs, and a run cut short leaves it `running`."""
    with tenant_scope(uuid.UUID(tenant_id)):
        return evaluation.evaluation_run(uuid.UUID(evaluation_id))


@shared_task(name="provisioning.tasks.indexes_analyze")
def indexes_analyze() -> dict[str, int]:
    """ANALYZE freshly loaded index tables (`maintenance`), on the beat. Idempotent: a table
    just analyzed is not stale any more."""
    return maintenance.indexes_analyze()

