"""Index lifecycle: create, configure, delete an index and its storage (a pgvector table in the
shared tier or in a dedicated cluster's data database, or a Qdrant collection on a dedicated
cluster).

`index_create` works in two steps, and the tenant's row is locked only in the first: under the
lock it checks the name and the quota and writes the row as `initializing`, and commits; then,
outside any lock, it creates the storage (tens of milliseconds on the shared tier, a network
call to a dedicated cluster) and marks the index `ready`. The storage is created within the
request, so the index is `ready` when `index_create` returns; when it cannot be created, the
row is deleted and the error answered, as if the index had never been asked for.

Imports: `validation`, `connections` and `storage` (below it), the models; tenants' public
guards and plan checks.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta
from typing import Any

import psycopg
from django.db import transaction
from django.utils import timezone

from controlplane.errors import ApplicationError, ConflictError, NotFoundError
from tenants.actors import Actor
from tenants.models import ApiKey, Engine, Role, Scope, Tenant, Tier
from tenants.plans import require_engine_allowed, require_tier_allowed
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_effective_limits
from tenants.services import api_key_create, audit_record, tenant_guard, tenant_lock
from vectorplane import pgerrors
from vectorplane.contract import storage
from vectorplane.contract.limits import MAX_HALFVEC_DIMENSION, MAX_VECTOR_DIMENSION

from ..connections import cluster_pg_url, cluster_qdrant_client
from ..models import Cluster, ClusterStatus, Index, IndexStatus, Metric, VectorType
from ..storage import shared_tier
from ..validation import MAX_TAGS, check_location, check_name, check_tags

logger = logging.getLogger(__name__)


def _label(index: Index) -> str:
    return index.name


def vector_type_for(dimension: int) -> str:
    if dimension <= MAX_VECTOR_DIMENSION:
        return VectorType.VECTOR
    if dimension <= MAX_HALFVEC_DIMENSION:
        return VectorType.HALFVEC
    raise ApplicationError(
        "dimension_too_large",
        f"The shared pgvector tier indexes at most {MAX_HALFVEC_DIMENSION} dimensions.",
        details={"dimension": dimension, "max": MAX_HALFVEC_DIMENSION},
    )


def index_create(
    *,
    actor: Actor,
    tenant: Tenant,
    name: str,
    dimension: int,
    metric: str = Metric.COSINE,
    engine: str = Engine.PGVECTOR,
    tier: str = Tier.SHARED,
    hnsw_m: int = 16,
    hnsw_ef_construction: int = 64,
    ef_search: int = 100,
    text_field: bool = False,
    deletion_protection: bool = False,
    tags: dict[str, str] | None = None,
    cluster: Cluster | None = None,
    cloud: str | None = None,
    region: str | None = None,
) -> Index:
    """`cloud` and `region` are Pinecone's labels (vectorplane/contract/locations.py), kept
    and answered back; when not given, the operator's defaults (VECTORPLANE_DEFAULT_CLOUD /
    _REGION)."""
    tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.MEMBER)
    check_name(name, "index")
    tags = check_tags(tags or {}, allow_empty_values=False)

    cloud, region = check_location(cloud, region)
    if metric not in Metric.values:
        raise ApplicationError("validation_error", "Unknown metric.", details={"metric": metric})
    limits = tenant_effective_limits(tenant=tenant).limits
    require_tier_allowed(limits=limits, tier=tier)
    require_engine_allowed(limits=limits, engine=engine)
    if tier == Tier.SHARED and engine != Engine.PGVECTOR:
        raise ApplicationError(
            "unsupported_combination",
            "The shared tier is pgvector; create a dedicated Qdrant cluster for Qdrant indexes.",
            details={"tier": tier, "engine": engine},
        )
    if tier == Tier.DEDICATED:
        if cluster is None:
            raise ApplicationError(
                "validation_error",
                "A dedicated index needs a cluster (create one with POST .../clusters).",
                details={"field": "cluster"},
            )
        if cluster.engine != engine:
            raise ApplicationError(
                "unsupported_combination",
                f"Cluster {cluster.name!r} runs {cluster.engine}, not {engine}.",
                details={"cluster": cluster.name, "engine": engine},
            )
        if cluster.status != ClusterStatus.READY:
            raise ConflictError(
                "cluster_not_ready",
                f"Cluster {cluster.name!r} is {cluster.status}; wait until it is ready.",
                details={"cluster": cluster.name, "status": cluster.status},
            )
    elif cluster is not None:
        raise ApplicationError(
            "unsupported_combination",
            "A cluster is given only with tier=dedicated.",
            details={"tier": tier},
        )
    if dimension < 1 or dimension > limits["max_dimension"]:
        raise ApplicationError(
            "plan_limit",
            f"Your plan allows 1 to {limits['max_dimension']} dimensions.",
            status=403,
            details={"dimension": dimension, "max_dimension": limits["max_dimension"]},
        )
    vector_type = (
        vector_type_for(dimension) if engine == Engine.PGVECTOR else VectorType.VECTOR
    )
    with transaction.atomic(), tenant_scope(tenant.id):
        tenant_lock(tenant)
        live = Index.objects.exclude(status=IndexStatus.DELETED)
        if live.filter(name=name).exists():
            raise ConflictError(
                "index_exists", f"An index named {name!r} exists.", details={"name": name}
            )
        if live.count() >= limits["max_indexes"]:
            raise ApplicationError(
                "quota_exceeded",
                f"Your plan allows {limits['max_indexes']} indexes.",
                status=403,
                details={"limit": "max_indexes", "max": limits["max_indexes"]},
            )
        index = Index(
            tenant=tenant,
            name=name,
            dimension=dimension,
            metric=metric,
            engine=engine,
            tier=tier,
            vector_type=vector_type,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            ef_search=ef_search,
            text_field=text_field,
            deletion_protection=deletion_protection,
            tags=tags or {},
            cloud=cloud,
            region=region,
            status=IndexStatus.INITIALIZING,
        )
        index.cluster = cluster
        if engine == Engine.QDRANT:
            index.schema_name = ""
            index.table_name = storage.collection_name(index.id)
        else:
            index.schema_name = storage.schema_name(tenant.id)
            index.table_name = storage.table_name(index.id)
        index.save()
    # Committed (when no outer transaction holds it open): the row is `initializing`, so the
    # gateway does not route it (it loads `ready` indexes only), the name and the quota slot are
    # taken, and the tenant's row is unlocked. The storage lives in another database (the
    # shared tier's or the cluster's PostgreSQL) or on a Qdrant cluster: it is created now,
    # outside any lock, so a slow or unreachable server never holds up the tenant's other
    # writes. Should it fail, the row goes and the error is answered (503 for an outage).
    try:
        _create_storage(index, vector_type)
    except BaseException:
        _discard(index)
        raise
    return _index_ready(
        actor=actor,
        tenant=tenant,
        index=index,
        details={
            "dimension": dimension,
            "metric": metric,
            "vector_type": vector_type,
            "engine": engine,
            "tier": tier,
            "text_field": text_field,
            "cluster": cluster.name if cluster else None,
            "cloud": cloud,
            "region": region,
        },
    )


def _discard(index: Index) -> None:
    """Delete the `initializing` row of an index whose storage could not be created (its name
    and quota slot are free again). A failure here is logged, never raised: the caller
    answers the storage's error."""
    try:
        with tenant_scope(index.tenant_id):
            Index.objects.filter(pk=index.pk, status=IndexStatus.INITIALIZING).delete()
    except Exception:
        logger.exception("index %s: could not delete the row of the failed creation", index.id)


def _index_ready(*, actor: Actor, tenant: Tenant, index: Index, details: dict[str, Any]) -> Index:
    """The second step of `index_create`, once the storage exists: mark the index `ready` and
    audit its creation. An index deleted meanwhile (`index_delete` of the `initializing` row)
    stays deleted: its storage, just made, is dropped again and the creation answers 404."""
    with transaction.atomic(), tenant_scope(tenant.id):
        status = (
            Index.objects.select_for_update()
            .filter(pk=index.pk)
            .values_list("status", flat=True)
            .first()
        )
        if status == IndexStatus.INITIALIZING:
            index.status = IndexStatus.READY
            index.save(update_fields=["status", "updated_at"])
            audit_record(
                actor=actor,
                action="index.created",
                tenant=tenant,
                target_type="index",
                target_id=index.id,
                target_label=_label(index),
                details=details,
            )
            return index
    try:
        _drop_storage(index)
    except Exception:  # the cluster may be going too; nothing here may hide the 404
        logger.warning("index %s: deleted while created; dropping its storage failed",
                       index.id, exc_info=True)  # fmt: skip
    raise NotFoundError("index", details={"index": index.name})


class _Unset(enum.Enum):
    UNSET = "unset"


TARGET_RECALL_RANGE = (0.5, 0.999)


def index_configure(
    *,
    actor: Actor,
    tenant: Tenant,
    index: Index,
    ef_search: int | None = None,
    deletion_protection: bool | None = None,
    tags: dict[str, Any] | None = None,
    target_recall: float | _Unset | None = _Unset.UNSET,
) -> Index:
    """`target_recall`: a float in TARGET_RECALL_RANGE sets it, None clears it, absent keeps
    it (each succeeded evaluation then sets ef_search from it: `provisioning.evaluation`)."""
    tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.MEMBER)
    low, high = TARGET_RECALL_RANGE
    if isinstance(target_recall, float | int) and not low <= target_recall <= high:
        raise ApplicationError(
            "validation_error", f"target_recall is {low} to {high}, or null.",
            details={"fields": {"target_recall": [f"{low} to {high}, or null."]}},
        )  # fmt: skip
    changes: dict[str, Any] = {}
    with transaction.atomic(), tenant_scope(tenant.id):
        index = Index.objects.select_for_update().get(pk=index.pk)
        if target_recall is not _Unset.UNSET and target_recall != index.target_recall:
            changes["target_recall"] = {"from": index.target_recall, "to": target_recall}
            index.target_recall = target_recall
        if ef_search is not None and ef_search != index.ef_search:
            changes["ef_search"] = {"from": index.ef_search, "to": ef_search}
            index.ef_search = ef_search
        if deletion_protection is not None and deletion_protection != index.deletion_protection:
            changes["deletion_protection"] = {
                "from": index.deletion_protection,
                "to": deletion_protection,
            }
            index.deletion_protection = deletion_protection
        if tags is not None:
            merged = {**index.tags, **check_tags(tags, allow_empty_values=True)}
            merged = {k: v for k, v in merged.items() if v not in ("", None)}  # "" removes a tag
            if merged != index.tags:
                changes["tags"] = {"from": index.tags, "to": merged}
                index.tags = merged
        if len(index.tags) > MAX_TAGS:
            raise ApplicationError(
                "validation_error", f"An index has at most {MAX_TAGS} tags.",
                details={"field": "tags", "max": MAX_TAGS},
            )  # fmt: skip
        if not changes:
            return index
        index.save(
            update_fields=[
                "ef_search",
                "deletion_protection",
                "tags",
                "target_recall",
                "updated_at",
            ]
        )
        audit_record(
            actor=actor,
            action="index.configured",
            tenant=tenant,
            target_type="index",
            target_id=index.id,
            target_label=_label(index),
            details=changes,
        )
    return index


def index_delete(*, actor: Actor, tenant: Tenant, index: Index) -> Index:
    tenant_guard(actor=actor, tenant=tenant, minimum_role=Role.MEMBER, require_active=False)
    if index.deletion_protection:
        raise ApplicationError(
            "deletion_protected",
            "Deletion protection is enabled for this index; disable it first.",
            status=403,
            details={"index": index.name},
        )
    with transaction.atomic(), tenant_scope(tenant.id):
        index = Index.objects.select_for_update().get(pk=index.pk)
        if index.status == IndexStatus.DELETED:
            return index
        _drop_storage(index)
        index.status = IndexStatus.DELETED
        index.deleted_at = timezone.now()
        index.save(update_fields=["status", "deleted_at", "updated_at"])
        audit_record(
            actor=actor,
            action="index.deleted",
            tenant=tenant,
            target_type="index",
            target_id=index.id,
            target_label=_label(index),
        )
    return index


def _unavailable(what: str, exc: Exception) -> ApplicationError:
    return ApplicationError(
        "data_plane_unavailable",
        f"The vector database could not {what}; try again.",
        status=503,
        details={"reason": type(exc).__name__},
    )


def _create_storage(index: Index, vector_type: str) -> None:
    """The index's table (pgvector, shared or dedicated) or collection (Qdrant). Idempotent."""
    if index.engine == Engine.QDRANT:
        _qdrant_storage(index, create=True)
        return
    url = cluster_pg_url(index.cluster) if index.cluster is not None else None
    try:
        with shared_tier.connect(url) as conn:
            shared_tier.create_index_table(
                conn,
                shared_tier.IndexSpec(
                    tenant_id=index.tenant_id,
                    index_id=index.id,
                    dimension=index.dimension,
                    vector_type=vector_type,
                    metric=index.metric,
                    hnsw_m=index.hnsw_m,
                    hnsw_ef_construction=index.hnsw_ef_construction,
                    text_field=index.text_field,
                ),
            )
    except psycopg.Error as exc:
        if not pgerrors.unavailable(exc):
            raise  # a bug, not an outage: a 500, logged
        raise _unavailable("create the index", exc) from exc


def _drop_storage(index: Index) -> None:
    if index.engine == Engine.QDRANT:
        _qdrant_storage(index, create=False)
        return
    url = cluster_pg_url(index.cluster) if index.cluster is not None else None
    try:
        with shared_tier.connect(url) as conn:
            shared_tier.drop_index_table(conn, tenant_id=index.tenant_id, index_id=index.id)
    except psycopg.Error as exc:
        if not pgerrors.unavailable(exc):
            raise
        raise _unavailable("drop the index", exc) from exc


def _qdrant_storage(index: Index, *, create: bool) -> None:
    # Imported here, not at the top: qdrant-client takes ~1 s to import, paid on a process's
    # first Qdrant index only (the web server imports it at start: controlplane/wsgi.py).
    from ..storage import qdrant_tier

    if index.cluster is None:  # a Qdrant index always has a cluster (index_create checks)
        raise ApplicationError("unsupported_combination", "A Qdrant index needs a cluster.")
    try:
        with cluster_qdrant_client(index.cluster) as client:
            if create:
                qdrant_tier.create_collection(client, qdrant_tier.spec_for(index))
            else:
                qdrant_tier.drop_collection(client, index.id)
    except qdrant_tier.QdrantUnavailable as exc:
        raise _unavailable("create the index" if create else "drop the index", exc) from exc


PLAYGROUND_KEY_MINUTES = 10
"""How long a console playground key lives."""


def index_playground_key(*, actor: Actor, tenant: Tenant, index: Index) -> tuple[ApiKey, str]:
    """A short-lived key for the console's query playground: scope `read`, this index only,
    expiring in PLAYGROUND_KEY_MINUTES, minted for (and audited as) the signed-in member. The
    playground then queries the real gateway with it, like any client; the key appears in the
    tenant's key list (named `console:<index>`) and can be revoked there."""
    if index.status != IndexStatus.READY:
        raise ConflictError(
            "index_not_ready",
            "The index is not ready yet.",
            details={"status": index.status},
        )
    return api_key_create(
        actor=actor,
        tenant=tenant,
        name=f"console:{index.name}",
        scopes=[Scope.READ],
        index_names=[index.name],
        expires_at=timezone.now() + timedelta(minutes=PLAYGROUND_KEY_MINUTES),
    )
