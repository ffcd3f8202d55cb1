"""Reads of indexes and clusters (tenant in scope), and the few named cross-tenant lookups that
background work needs before it knows the tenant (at the end)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from controlplane.errors import NotFoundError
from tenants.models import Tenant
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_list_for_operators
from vectorplane import config
from vectorplane.contract import hosts, latency, names

from .connections import cluster_pg_url, cluster_qdrant_client
from .models import (
    Cluster,
    ClusterEvent,
    ClusterStatus,
    ErrorRecord,
    Index,
    IndexEvaluation,
    IndexStatus,
    LatencyRecord,
    StoredVectorsRecord,
    UsageRecord,
)
from .storage import shared_tier

_Hourly = TypeVar("_Hourly", UsageRecord, ErrorRecord, StoredVectorsRecord)

logger = logging.getLogger("vectorplane.provisioning")


def index_list() -> QuerySet[Index]:
    return Index.objects.exclude(status=IndexStatus.DELETED).select_related("cluster")


def index_get(*, name: str) -> Index:
    # A name that breaks the rules cannot exist (and NUL cannot reach PostgreSQL's text).
    index = index_list().filter(name=name).first() if names.is_name(name) else None
    if index is None:
        raise NotFoundError("index", details={"index": name})
    return index


def index_evaluations(*, index: Index) -> QuerySet[IndexEvaluation]:
    """The index's evaluations (newest first when paginated)."""
    return IndexEvaluation.objects.filter(index=index)


def index_evaluation_get(*, index: Index, evaluation_id: uuid.UUID) -> IndexEvaluation:
    """One evaluation of the index; 404 for an unknown id or another index's (or tenant's)."""
    found = IndexEvaluation.objects.filter(index=index, pk=evaluation_id).first()
    if found is None:
        raise NotFoundError("evaluation", details={"evaluation": str(evaluation_id)})
    return found


def index_host(index: Index, *, tenant_slug: str) -> str:
    """Where the data plane answers for this index: the path form by default
    (`http://gateway/v1/indexes/{name}`, tenant taken from the key), or Pinecone's
    host-per-index form (`https://{name}-{tenant}.{domain}`) when
    VECTORPLANE_GATEWAY_ROUTING=host (vectorplane/contract/hosts.py)."""
    routing = config.env_str("VECTORPLANE_GATEWAY_ROUTING", "path")
    return hosts.index_host(
        index_name=index.name,
        tenant_slug=tenant_slug,
        routing=routing,
        domain=config.env_str("VECTORPLANE_GATEWAY_DOMAIN") if routing == "host" else "",
        scheme=config.env_str("VECTORPLANE_GATEWAY_SCHEME", "https"),
        gateway_url=config.gateway_public_url(),
    )


def stored_vectors(*, tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Vectors stored per index right now: the shared tier's and each dedicated pgvector
    cluster's namespace_stats, and each Qdrant collection's exact point count."""

    with tenant_scope(tenant_id):
        return _stored_vectors(tenant_id)


def _stored_vectors(tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
    counts: dict[uuid.UUID, int] = {}
    urls: list[str | None] = [None]
    qdrant: list[Cluster] = []
    for cluster in cluster_list().filter(status=ClusterStatus.READY):
        if cluster.engine == "qdrant":
            qdrant.append(cluster)
        else:
            urls.append(cluster_pg_url(cluster))
    for url in urls:
        with shared_tier.connect(url) as conn:
            shared_tier.ensure_base(conn)
            counts.update(_namespace_counts(conn, tenant_id))
    for cluster in qdrant:
        with cluster_qdrant_client(cluster) as client:
            for index in index_list().filter(cluster=cluster, status=IndexStatus.READY):
                counts[index.id] = client.count(index.table_name, exact=True).count
    return counts


def _namespace_counts(
    conn: psycopg.Connection[tuple[object, ...]], tenant_id: uuid.UUID
) -> dict[uuid.UUID, int]:
    """The tenant's vectors per index in one PostgreSQL's namespace_stats: `app.tenant_id` is
    set for this transaction only, so FORCE ROW LEVEL SECURITY shows that tenant's rows alone."""
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
    rows = conn.execute(
        "SELECT index_id, sum(vector_count) FROM public.namespace_stats GROUP BY index_id"
    ).fetchall()
    conn.commit()
    return {uuid.UUID(str(row[0])): int(str(row[1])) for row in rows}


def _hours(
    qs: QuerySet[_Hourly], since: datetime | None, until: datetime | None
) -> QuerySet[_Hourly]:
    """The hourly rows in [since, until) (either bound optional)."""
    if since is not None:
        qs = qs.filter(hour__gte=since)
    if until is not None:
        qs = qs.filter(hour__lt=until)
    return qs


def usage_list(
    *, since: datetime | None = None, until: datetime | None = None, index: str | None = None
) -> QuerySet[UsageRecord]:
    qs = _hours(UsageRecord.objects.all(), since, until)
    if index:
        qs = qs.filter(index_name=index)
    return qs


def error_list(
    *, since: datetime | None = None, until: datetime | None = None, index: str | None = None,
    code: str | None = None,
) -> QuerySet[ErrorRecord]:  # fmt: skip
    """The gateway's refused requests per hour, index, code and status, newest first."""
    qs = _hours(ErrorRecord.objects.order_by("-hour", "-id"), since, until)
    if index is not None:
        qs = qs.filter(index_name=index)
    if code:
        qs = qs.filter(code=code)
    return qs


def stored_vectors_history(
    *, since: datetime | None = None, until: datetime | None = None, index: str | None = None
) -> QuerySet[StoredVectorsRecord]:
    """The hourly samples of vectors stored per index, newest first."""
    qs = _hours(StoredVectorsRecord.objects.order_by("-hour", "-id"), since, until)
    if index:
        qs = qs.filter(index_name=index)
    return qs


USAGE_TOTALS = ("requests", "read_units", "write_units", "queries", "vectors_written",
                "vectors_deleted")  # fmt: skip


def usage_summary(*, since: datetime, until: datetime) -> dict[str, object]:
    """The tenant's usage in [since, until) summed over its indexes, per hour (newest first,
    hours with nothing left out): the usage counters, the refused requests, the vectors stored
    (the hour's sample); the refused requests by code over the whole range; and the indexes and
    clusters the tenant has now (what the plan's limits count). Grouped queries, whatever the
    number of indexes."""
    hours: dict[datetime, dict[str, object]] = {}

    def hour_row(hour: datetime) -> dict[str, object]:
        return hours.setdefault(hour, {"hour": hour, **dict.fromkeys(USAGE_TOTALS, 0),
                                       "error_requests": 0, "stored_vectors": None})  # fmt: skip

    usage = UsageRecord.objects.filter(hour__gte=since, hour__lt=until).order_by()
    for summed in usage.values("hour").annotate(**{f: Sum(f) for f in USAGE_TOTALS}):
        row: dict[str, Any] = dict(summed)
        hour_row(row["hour"]).update({f: int(row[f] or 0) for f in USAGE_TOTALS})
    errors = ErrorRecord.objects.filter(hour__gte=since, hour__lt=until).order_by()
    for refused in errors.values("hour").annotate(total=Sum("requests")):
        hour_row(refused["hour"])["error_requests"] = int(refused["total"] or 0)
    stored = StoredVectorsRecord.objects.filter(hour__gte=since, hour__lt=until).order_by()
    for sample in stored.values("hour").annotate(total=Sum("vectors")):
        hour_row(sample["hour"])["stored_vectors"] = int(sample["total"] or 0)
    by_code = (
        errors.values("code", "status").annotate(requests=Sum("requests"))
        .order_by("-requests", "code", "status")
    )  # fmt: skip
    return {
        "since": since,
        "until": until,
        "indexes": index_list().count(),
        "clusters": cluster_list().count(),
        "hours": [hours[h] for h in sorted(hours, reverse=True)],
        "errors_by_code": [
            {"code": r["code"], "status": r["status"], "requests": int(r["requests"] or 0)}
            for r in by_code
        ],
    }


def index_latency(*, index: Index, since: datetime, until: datetime) -> list[dict[str, object]]:
    """The index's answered requests per hour in [since, until), newest first, with their
    p50/p95/p99 in ms (upper bounds at the histogram's resolution: vectorplane.contract.latency);
    hours without requests are left out."""
    by_hour: dict[datetime, list[int]] = {}
    rows = LatencyRecord.objects.filter(index_id=index.id, hour__gte=since, hour__lt=until)
    for hour, bucket, requests in rows.values_list("hour", "bucket", "requests"):
        counts = by_hour.setdefault(hour, [0] * latency.BUCKETS)
        if 0 <= bucket < latency.BUCKETS:
            counts[bucket] += requests
    return [
        {
            "hour": hour,
            "requests": sum(counts),
            "p50_ms": latency.percentile(counts, 0.50),
            "p95_ms": latency.percentile(counts, 0.95),
            "p99_ms": latency.percentile(counts, 0.99),
        }
        for hour, counts in sorted(by_hour.items(), reverse=True)
    ]


def cluster_list() -> QuerySet[Cluster]:
    return Cluster.objects.exclude(status=ClusterStatus.DELETED)


def cluster_get(*, name: str) -> Cluster:
    cluster = cluster_list().filter(name=name).first() if names.is_name(name) else None
    if cluster is None:
        raise NotFoundError("cluster", details={"cluster": name})
    return cluster


def cluster_events(*, cluster: Cluster) -> QuerySet[ClusterEvent]:
    """The cluster's state history (every status change, `steps.cluster_set_status`)."""
    return ClusterEvent.objects.filter(cluster=cluster)


def cluster_last_error(*, cluster: Cluster) -> ClusterEvent | None:
    """The cluster's latest move to `failed` (its message is the error), if it ever failed."""
    return cluster_events(cluster=cluster).filter(to_status=ClusterStatus.FAILED).first()


# --------------------------------------------------------------------------- across tenants
# The sanctioned `unscoped()` reads of provisioning (tenants/scoping.py lists them all): what a
# Celery task or the platform's start and stop must find before they know the tenant. The caller
# then works on each row inside `tenant_scope(row.tenant_id)`.


def cluster_tenant_id(cluster_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant of the cluster a task was given by id (None: no such row); the task then
    loads the row inside that tenant's scope."""
    tenant_id: uuid.UUID | None = (
        Cluster.objects.unscoped()
        .filter(pk=cluster_id)
        .values_list("tenant_id", flat=True)
        .first()
    )
    return tenant_id


def clusters_due_for_reconcile(
    *, statuses: Iterable[str], changed_before: datetime | None = None
) -> QuerySet[Cluster]:
    """The reconcile's scan of every tenant's clusters: those in one of `statuses` (a task
    that may have been interrupted, or a ready cluster whose real state is checked), last
    changed at or before `changed_before` (None: whenever), newest first, with their tenant."""
    clusters = Cluster.objects.unscoped().select_related("tenant").filter(status__in=statuses)
    if changed_before is not None:
        clusters = clusters.filter(updated_at__lte=changed_before)
    return clusters


def clusters_on_local_driver() -> QuerySet[Cluster]:
    """Every tenant's live clusters that the `local` driver runs (platform shutdown stops their
    processes), with their tenant."""
    return (
        Cluster.objects.unscoped()
        .select_related("tenant")
        .filter(driver="local")
        .exclude(status=ClusterStatus.DELETED)
    )


def pgvector_clusters_ready() -> QuerySet[Cluster]:
    """Every tenant's ready pgvector clusters: the databases, beside the shared tier's, whose
    freshly loaded index tables `maintenance.indexes_analyze` ANALYZEs."""
    return Cluster.objects.unscoped().filter(status=ClusterStatus.READY, engine="pgvector")


def indexes_with_target_recall(
    *, evaluated_before: datetime | None = None, table_names: Iterable[str] | None = None
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Every tenant's ready pgvector indexes with a target recall, as (index id, tenant id):
    those whose last succeeded evaluation finished before `evaluated_before` (or that have
    none), or those whose table is in `table_names` (`schema.table`: just ANALYZEd after a
    large write). The re-evaluation (`reevaluation`) then works on each in its tenant's scope."""
    indexes = Index.objects.unscoped().filter(
        status=IndexStatus.READY, engine="pgvector", target_recall__isnull=False
    )
    if table_names is not None:
        wanted = {tuple(n.split(".", 1)) for n in table_names if "." in n}
        tables = {t for _s, t in wanted}
        indexes = indexes.filter(table_name__in=tables)
        return [(i, t) for i, t, s, tb in indexes.values_list("id", "tenant_id", "schema_name",
                                                               "table_name")
                if (s, tb) in wanted]  # fmt: skip
    if evaluated_before is not None:
        last = (
            IndexEvaluation.objects.unscoped()
            .filter(index=OuterRef("pk"), status="succeeded")
            .order_by("-finished_at")
            .values("finished_at")[:1]
        )
        indexes = indexes.annotate(last_evaluated=Subquery(last)).filter(
            Q(last_evaluated__isnull=True) | Q(last_evaluated__lt=evaluated_before)
        )
    return list(indexes.order_by("tenant_id").values_list("id", "tenant_id"))


def tenants_with_indexes() -> list[uuid.UUID]:
    """Every tenant that has a ready index (the hourly stored-vectors sample visits each)."""
    return list(
        Index.objects.unscoped()
        .filter(status=IndexStatus.READY)
        .order_by("tenant_id")
        .values_list("tenant_id", flat=True)
        .distinct()
    )


# --------------------------------------------------------------------------- platform operators
# The operators' console (`/api/v1/operator/...`, staff only) reads every tenant: these are
# named cross-tenant reads too (tenants/scoping.py lists them). Nothing here bypasses the data
# tier's row-level security: vectors are counted tenant by tenant, as the tenant.


def _live_count(queryset: QuerySet[Index] | QuerySet[Cluster]) -> Coalesce:
    """A correlated `count(*)` per tenant (`OuterRef("pk")`), 0 when it has none."""
    counted = (
        queryset.filter(tenant_id=OuterRef("pk"))
        .order_by()
        .values("tenant_id")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def operator_tenant_list(*, status: str | None = None, q: str | None = None) -> QuerySet[Tenant]:
    """Every tenant (`tenants.selectors.tenant_list_for_operators`: plan, `member_count`),
    annotated with its live `index_count` and `cluster_count`: one query per page, whatever
    its size."""
    return tenant_list_for_operators(status=status, q=q).annotate(
        index_count=_live_count(Index.objects.unscoped().exclude(status=IndexStatus.DELETED)),
        cluster_count=_live_count(Cluster.objects.unscoped().exclude(status=ClusterStatus.DELETED)),
    )


def operator_cluster_list(*, status: str | None = None) -> QuerySet[Cluster]:
    """Every tenant's dedicated clusters (deleted ones only when asked for by `status`), with
    their tenant and `last_error`, the message of their latest move to `failed` (a subquery,
    as `cluster_last_error` reads it for one cluster)."""
    failures = (
        ClusterEvent.objects.unscoped()
        .filter(cluster_id=OuterRef("pk"), to_status=ClusterStatus.FAILED)
        .order_by("-at", "-id")
        .values("message")[:1]
    )
    clusters = Cluster.objects.unscoped().select_related("tenant")
    clusters = (
        clusters.filter(status=status) if status else clusters.exclude(status=ClusterStatus.DELETED)
    )
    return clusters.annotate(last_error=Coalesce(Subquery(failures), Value("")))


def stored_vectors_totals(*, tenant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int | None]:
    """Vectors stored now per tenant (the sum of `stored_vectors`), for a page of the operators'
    tenant list; None for a tenant whose storage does not answer (the page still renders).

    Tenants with no ready dedicated cluster share one connection to the shared tier, counted
    one transaction per tenant with `app.tenant_id` set (row-level security filters each
    count); a tenant with a dedicated cluster goes through `stored_vectors` itself."""
    ids = list(tenant_ids)
    totals: dict[uuid.UUID, int | None] = dict.fromkeys(ids)
    dedicated = set(
        Cluster.objects.unscoped()
        .filter(tenant_id__in=ids, status=ClusterStatus.READY)
        .values_list("tenant_id", flat=True)
    )
    shared = [tenant_id for tenant_id in ids if tenant_id not in dedicated]
    if shared:
        try:
            with shared_tier.connect() as conn:
                shared_tier.ensure_base(conn)
                for tenant_id in shared:
                    totals[tenant_id] = sum(_namespace_counts(conn, tenant_id).values())
        except psycopg.Error as exc:
            logger.warning("stored vectors: the shared tier does not answer: %s", exc)
    for tenant_id in dedicated:
        try:
            totals[tenant_id] = sum(stored_vectors(tenant_id=tenant_id).values())
        except Exception as exc:  # one tenant's cluster down must not hide the others
            logger.warning("stored vectors of tenant %s: %s", tenant_id, exc)
    return totals
