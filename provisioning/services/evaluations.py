"""Index evaluations: measured recall and latency per ef_search value (`POST .../evaluate`).

`index_evaluation_start` checks the caller (member or above, tenant active), the index (ready,
pgvector: Qdrant indexes answer 409 `evaluation_unsupported`), the parameters, writes the
`IndexEvaluation` row as `pending` with its audit event and queues
`tasks.index_evaluate(id, tenant)` on commit. The worker measures (`provisioning.evaluation`).
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError

from controlplane.errors import ApplicationError, ConflictError
from tenants.actors import Actor
from tenants.models import Engine, Role, Tenant
from tenants.services import audit_record, tenant_guard
from vectorplane.contract.filters import FilterError
from vectorplane.contract.filters import validate as validate_filter
from vectorplane.contract.limits import FLOAT32_BOUND

from .. import tasks
from ..models import EvaluationStatus, Index, IndexEvaluation, IndexStatus

logger = logging.getLogger(__name__)

MAX_SAMPLE = 1000
MAX_TOP_K = 100
MAX_EF_VALUES = 10
MAX_EF_SEARCH = 1000
DEFAULT_EF_SEARCH = (40, 100, 200)
STALE_AFTER = timedelta(minutes=10)
"""A pending or running evaluation unchanged for this long was abandoned (its worker lost, or
its message): the next start marks it failed instead of refusing. A running one writes its
progress at least after every query, and a query is one exact scan of the table."""


def index_evaluation_start(
    *,
    actor: Actor,
    tenant: Tenant,
    index: Index,
    sample: int = 100,
    top_k: int = 10,
    ef_search: list[int] | None = None,
    namespace: str = "",
    filter: dict[str, Any] | None = None,
    queries: list[list[float]] | None = None,
) -> IndexEvaluation:
    if not actor.is_system:  # the system: the re-evaluation of a target recall (reevaluation)
        tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.MEMBER)
    if index.status != IndexStatus.READY:
        raise ConflictError(
            "index_not_ready", "The index is not ready yet.", details={"status": index.status}
        )
    if index.engine != Engine.PGVECTOR:
        raise ConflictError(
            "evaluation_unsupported",
            f"Recall evaluation is not available for {index.engine} indexes yet.",
            details={"engine": index.engine},
        )
    ef_values = sorted(set(ef_search if ef_search is not None else DEFAULT_EF_SEARCH))
    if (
        not ef_values
        or len(ef_values) > MAX_EF_VALUES
        or not all(1 <= v <= MAX_EF_SEARCH for v in ef_values)
    ):
        raise ApplicationError(
            "validation_error",
            f"ef_search is 1 to {MAX_EF_VALUES} values, each 1 to {MAX_EF_SEARCH}.",
            details={"fields": {"ef_search": ["1 to 10 values, each 1 to 1000."]}},
        )
    for name, value, most in (("top_k", top_k, MAX_TOP_K), ("sample", sample, MAX_SAMPLE)):
        if not 1 <= value <= most:
            raise ApplicationError(
                "validation_error",
                f"{name} is 1 to {most}.",
                details={"fields": {name: [f"1 to {most}."]}},
            )
    if filter is not None:
        try:
            validate_filter(filter)
        except FilterError as exc:
            raise ApplicationError(
                "invalid_filter", f"filter: {exc.message}", details=exc.details
            ) from exc
    if queries is not None:
        _check_queries(queries, dimension=index.dimension)
    params: dict[str, Any] = {
        "mode": "queries" if queries else "sample",
        "top_k": top_k,
        "ef_search": ef_values,
        "namespace": namespace,
        "filter": filter or None,
    }
    if queries:
        params["queries"] = queries
    else:
        params["sample"] = sample
    with transaction.atomic():
        locked = Index.objects.select_for_update().get(pk=index.pk)
        unfinished = IndexEvaluation.objects.filter(
            index=locked, status__in=(EvaluationStatus.PENDING, EvaluationStatus.RUNNING)
        )
        now = timezone.now()
        unfinished.filter(updated_at__lt=now - STALE_AFTER).update(
            status=EvaluationStatus.FAILED,
            error="abandoned: no progress for 10 minutes (its worker was lost)",
            finished_at=now,
            updated_at=now,
        )
        running = unfinished.first()
        if running is not None:
            raise ConflictError(
                "evaluation_in_progress",
                "An evaluation of this index is already pending or running.",
                details={"evaluation": str(running.id), "status": running.status},
            )
        evaluation = IndexEvaluation.objects.create(
            tenant=tenant, index=locked, params=params, created_by=actor.label[:200]
        )
        audit_record(
            actor=actor,
            action="index.evaluation_started",
            tenant=tenant,
            target_type="index",
            target_id=index.id,
            target_label=index.name,
            details={"evaluation": str(evaluation.id), **{k: v for k, v in params.items()
                                                          if k != "queries"}},
        )  # fmt: skip
        _enqueue(evaluation)
    return evaluation


def _check_queries(queries: list[list[float]], *, dimension: int) -> None:
    for i, vector in enumerate(queries):
        if len(vector) != dimension:
            raise ApplicationError(
                "dimension_mismatch",
                f"queries[{i}] has {len(vector)} values; the index has {dimension} dimensions.",
                details={"field": f"queries[{i}]", "dimension": dimension,
                         "got": len(vector)},
            )  # fmt: skip
        if not all(math.isfinite(v) and abs(v) < FLOAT32_BOUND for v in vector):
            raise ApplicationError(
                "invalid_value",
                f"queries[{i}] holds a value that is not a finite float32.",
                details={"field": f"queries[{i}]"},
            )


def _enqueue(evaluation: IndexEvaluation) -> None:
    """Queue the task once the row commits. If the broker cannot take it, the evaluation is
    marked failed (nothing would ever run it) and the caller can start another."""
    evaluation_id, tenant_id = evaluation.id, evaluation.tenant_id

    def send() -> None:
        try:
            tasks.index_evaluate.delay(str(evaluation_id), str(tenant_id))
        except (KombuError, OSError) as exc:
            logger.warning("evaluation %s: could not queue it (%s)", evaluation_id, exc)
            IndexEvaluation.objects.filter(
                pk=evaluation_id, status=EvaluationStatus.PENDING
            ).update(
                status=EvaluationStatus.FAILED,
                error="the task queue is unavailable; start the evaluation again",
                finished_at=timezone.now(),
            )

    transaction.on_commit(send)
