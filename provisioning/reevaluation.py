"""Keeping an index at its target recall: an index with a `target_recall` is evaluated again
(`services.evaluations.index_evaluation_start`, as the system) when its last succeeded
evaluation is older than `VECTORPLANE_REEVALUATE_HOURS` (24; the beat's
`provisioning.reevaluation.indexes_reevaluate`, hourly), and after a large write — when
`maintenance.indexes_analyze` ANALYZEd its table (at least 1,000 rows and 20% of the table
changed). Each evaluation sets ef_search to the smallest value meeting the target. The new one
repeats the parameters of the index's last evaluation (its ef_search values, top_k, namespace
and filter; a sample in place of given queries), the defaults when it has none. An index with
an evaluation pending or running is left alone. Above the services (it starts evaluations): its
tasks are registered by `apps.py`, and `maintenance` queues them by name."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from controlplane.errors import ApplicationError
from tenants.actors import Actor
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from vectorplane import config

from . import selectors
from .models import EvaluationStatus, Index, IndexEvaluation
from .services.evaluations import index_evaluation_start

logger = logging.getLogger(__name__)


def _params_of_last(index: Index) -> dict[str, Any]:
    last = (
        IndexEvaluation.objects.filter(index=index, status=EvaluationStatus.SUCCEEDED)
        .order_by("-finished_at")
        .first()
    )
    if last is None:
        return {}
    params = last.params or {}
    kept = {k: params[k] for k in ("top_k", "ef_search", "namespace", "filter") if k in params}
    kept["sample"] = int(params.get("sample") or 100)
    return kept


def reevaluate(index_id: uuid.UUID, tenant_id: uuid.UUID, *, reason: str) -> bool:
    """Start an evaluation of the index as the system; whether one was started."""
    with tenant_scope(tenant_id):
        index = Index.objects.filter(pk=index_id).first()
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if index is None or tenant is None:
            return False
        try:
            index_evaluation_start(actor=Actor.system(), tenant=tenant, index=index,
                                   **_params_of_last(index))  # fmt: skip
        except ApplicationError as exc:  # in progress, not ready, suspended: the next round
            logger.info("re-evaluation of %s skipped (%s): %s", index.name, reason, exc.code)
            return False
    logger.info("re-evaluating %s/%s: %s", tenant.slug, index.name, reason)
    return True


def indexes_reevaluate(now: datetime | None = None) -> dict[str, int]:
    """The beat's: every index with a target whose last evaluation is too old."""
    now = now or timezone.now()
    hours = config.env_int("VECTORPLANE_REEVALUATE_HOURS", 24)
    due = selectors.indexes_with_target_recall(evaluated_before=now - timedelta(hours=hours))
    started = sum(reevaluate(i, t, reason=f"last evaluation over {hours} h old") for i, t in due)
    return {"due": len(due), "started": started}


def after_large_writes(tables: Iterable[str]) -> int:
    """The indexes with a target among the tables just ANALYZEd after a large write."""
    due = selectors.indexes_with_target_recall(table_names=list(tables))
    return sum(reevaluate(i, t, reason="a large write") for i, t in due)


@shared_task(name="provisioning.reevaluation.indexes_reevaluate")
def indexes_reevaluate_task() -> dict[str, int]:
    """Hourly (the beat): indexes with a target recall whose last evaluation is too old."""
    return indexes_reevaluate()


@shared_task(name="provisioning.reevaluation.after_large_writes")
def after_large_writes_task(tables: list[str]) -> int:
    """Queued by `maintenance.indexes_analyze` with the tables it just ANALYZEd."""
    return after_large_writes(tables)
