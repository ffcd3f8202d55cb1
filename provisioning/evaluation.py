"""What the `provisioning.tasks.index_evaluate` task runs: measure an index's recall and
latency (`storage.recall`) for an `IndexEvaluation` row, record its progress and results, and,
when the index has a target recall, set its ef_search to the smallest evaluated value meeting
it (audited as `index.ef_search_tuned`, actor: system).

Below `tasks` in provisioning's import order (connections <- steps/evaluation <- tasks <-
services). The caller enters the evaluation's tenant scope.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import psycopg
from django.db import transaction
from django.utils import timezone

from tenants.actors import Actor
from tenants.models import Engine
from tenants.services import audit_record
from vectorplane import pgerrors, pgsql
from vectorplane.pgfilters import compile_filter

from .connections import cluster_pg_url
from .models import EvaluationStatus, Index, IndexEvaluation, IndexStatus
from .storage import recall, shared_tier

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5  # seconds between two progress writes (and at the end)


class EvaluationFailed(Exception):
    """An evaluation that cannot run (an empty index, a missing table): recorded as failed."""


def _claim(evaluation_id: uuid.UUID) -> IndexEvaluation | None:
    """Move the row pending -> running (compare-and-set): a second delivery of the task finds it
    running or finished and does nothing."""
    now = timezone.now()
    claimed = IndexEvaluation.objects.filter(
        pk=evaluation_id, status=EvaluationStatus.PENDING
    ).update(status=EvaluationStatus.RUNNING, started_at=now, updated_at=now, progress=0.0)
    if not claimed:
        return None
    return IndexEvaluation.objects.select_related("index", "index__cluster").get(pk=evaluation_id)


def evaluation_run(evaluation_id: uuid.UUID) -> str:
    """Run one evaluation to its end (succeeded or failed). Idempotent: only a pending row is
    run. Not retried: a worker lost mid-run leaves it `running` with no more progress writes;
    the next start on the index marks it failed once stale
    (`services.evaluations.STALE_AFTER`) and runs anew."""
    evaluation = _claim(evaluation_id)
    if evaluation is None:
        return "skipped"
    try:
        results = _measure(evaluation)
    except EvaluationFailed as exc:
        _finish_failed(evaluation, str(exc))
        return "failed"
    except psycopg.Error as exc:
        reason = "the vector database is unavailable" if pgerrors.unavailable(exc) else "error"
        logger.warning("evaluation %s failed: %s", evaluation_id, exc)
        _finish_failed(evaluation, f"{reason}: {type(exc).__name__}: {exc}")
        return "failed"
    except Exception as exc:
        logger.exception("evaluation %s failed", evaluation_id)
        _finish_failed(evaluation, f"{type(exc).__name__}: {exc}")
        return "failed"
    _finish_succeeded(evaluation, results)
    return "succeeded"


def _measure(evaluation: IndexEvaluation) -> dict[str, Any]:
    index = evaluation.index
    if index.status != IndexStatus.READY:
        raise EvaluationFailed(f"the index is {index.status}")
    if index.engine != Engine.PGVECTOR:
        raise EvaluationFailed("only pgvector indexes can be evaluated")
    params = evaluation.params
    where = compile_filter(params.get("filter") or {})
    target = recall.Target(
        tenant_id=index.tenant_id,
        schema=index.schema_name,
        table=index.table_name,
        metric=index.metric,
        vector_type=index.vector_type,
    )
    url = cluster_pg_url(index.cluster) if index.cluster is not None else None
    last_write = [time.monotonic()]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last_write[0] < PROGRESS_EVERY:
            return
        last_write[0] = now
        IndexEvaluation.objects.filter(pk=evaluation.pk, status=EvaluationStatus.RUNNING).update(
            progress=done / total, updated_at=timezone.now()
        )

    with shared_tier.connect(url) as conn:
        evaluator = recall.Evaluator(
            conn, target, namespace=params["namespace"], where=where, top_k=params["top_k"]
        )
        evaluator.analyze()
        queries: list[tuple[str | None, str]]
        if params.get("queries"):
            queries = [(None, pgsql.vector_text(q)) for q in params["queries"]]
        else:
            sample = evaluator.sample(params["sample"])
            if not sample:
                raise EvaluationFailed(
                    "no stored vector to sample (in this namespace, matching the filter)"
                )
            queries = [(row_id, vector) for row_id, vector in sample]
        per_ef, exact_ms = evaluator.measure(queries, params["ef_search"], progress)
    return {
        "queries": len(queries),
        "by_ef_search": [r.summary() for r in per_ef],
        "exact_p50_ms": recall.percentile(exact_ms, 0.50),
        "exact_p95_ms": recall.percentile(exact_ms, 0.95),
    }


def _finish_failed(evaluation: IndexEvaluation, message: str) -> None:
    now = timezone.now()
    IndexEvaluation.objects.filter(pk=evaluation.pk).update(
        status=EvaluationStatus.FAILED, error=message[:1000], finished_at=now, updated_at=now
    )


def smallest_meeting(results: list[dict[str, Any]], target: float) -> int | None:
    """The smallest evaluated ef_search whose recall is at least `target` (None: none is)."""
    meeting = [
        int(r["ef_search"]) for r in results if r["recall"] is not None and r["recall"] >= target
    ]
    return min(meeting) if meeting else None


def _finish_succeeded(evaluation: IndexEvaluation, measured: dict[str, Any]) -> None:
    with transaction.atomic():
        index = Index.objects.select_for_update().get(pk=evaluation.index_id)
        target = index.target_recall
        chosen = smallest_meeting(measured["by_ef_search"], target) if target is not None else None
        evaluation.status = EvaluationStatus.SUCCEEDED
        evaluation.progress = 1.0
        evaluation.results = measured
        evaluation.target_recall = target
        evaluation.chosen_ef_search = chosen
        evaluation.finished_at = timezone.now()
        evaluation.save(
            update_fields=[
                "status", "progress", "results", "target_recall",
                "chosen_ef_search", "finished_at", "updated_at",
            ]
        )  # fmt: skip
        if chosen is None or index.status != IndexStatus.READY or chosen == index.ef_search:
            return
        previous = index.ef_search
        index.ef_search = chosen
        index.save(update_fields=["ef_search", "updated_at"])
        audit_record(
            actor=Actor.system(),
            action="index.ef_search_tuned",
            tenant=index.tenant,
            target_type="index",
            target_id=index.id,
            target_label=index.name,
            details={
                "ef_search": {"from": previous, "to": chosen},
                "target_recall": target,
                "evaluation": str(evaluation.id),
            },
        )
