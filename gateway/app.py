"""The data-plane gateway: a pure ASGI (Starlette) application that imports no Django.

Every request: authenticate the `Api-Key` (cached prefix lookup + HMAC), resolve the index from
the path (`/v1/indexes/{index}/...`, tenant from the key) or from the host
(`{index}-{tenant}.{domain}`), check scopes, restrictions, tenant status and the tenant's
query rate, then run the operation on the shared pgvector tier under row-level security.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import yaml
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from psycopg import sql
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vectorplane import config, crypto, pgerrors
from vectorplane.contract import hosts, names

from . import filters
from . import validation as v
from .errors import GatewayError, bad_request, not_found_index
from .filters import Compiled
from .metering import Meter
from .qdrant_store import QdrantStore  # at start: qdrant-client takes ~1 s to import
from .ratelimit import RateLimiter, RedisLink, TenantLock
from .registry import ClusterInfo, IndexInfo, KeyInfo, Registry
from .store import (
    MetadataTooLarge,
    QuotaExceeded,
    Record,
    RowFilterViolation,
    Store,
    decode_token,
)
from .validation import (
    MAX_BATCH,
    MAX_EF_SEARCH,
    MAX_FETCH_IDS,
    MAX_ID_BYTES,
    MAX_METADATA_BYTES,
    MAX_TOP_K,
)

logger = logging.getLogger("vectorplane.gateway")



# ====================================================================== state


@dataclass(frozen=True)
class Backend:
    fingerprint: str
    store: Any


class Gateway:
    def __init__(self, *, control_url: str, data_url: str, pepper: str) -> None:
        self.registry = Registry(control_url)
        self.store = Store(
            data_url, exact_scan_rows=config.env_int("VECTORPLANE_EXACT_SCAN_ROWS", 0)
        )
        self.meter = Meter(
            self.registry.pool, interval=float(config.env_int("VECTORPLANE_USAGE_FLUSH_SECONDS", 5))
        )
        self.pepper = pepper.encode()
        # Read once: what a host-form request's host ends with ("" when not configured).
        self.host_suffix = hosts.host_suffix(config.env_str("VECTORPLANE_GATEWAY_DOMAIN", ""))
        self.backends: dict[uuid.UUID, Backend] = {}
        self.backend_locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.registry.on_cluster_change = self.forget_cluster
        self.metrics = CollectorRegistry()
        self.requests = Counter(
            "vectorplane_gateway_requests",
            "Requests",
            ["operation", "status"],
            registry=self.metrics,
        )
        self.latency = Histogram(
            "vectorplane_gateway_request_seconds",
            "Request latency",
            ["operation", "status"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.metrics,
        )
        self.cache = Gauge(
            "vectorplane_gateway_cache_lookups",
            "Registry cache lookups",
            ["result"],
            registry=self.metrics,
        )
        self.pool_in_use = Gauge(
            "vectorplane_gateway_pool_connections",
            "Data pool connections",
            ["state"],
            registry=self.metrics,
        )
        # Global per-tenant limits (gateway/ratelimit.py): the request rate, and the Qdrant
        # vector quota's count-then-write, shared by every gateway process through Redis.
        self.redis = RedisLink.from_config()
        self.limiter = RateLimiter.from_config(self.redis, metrics=self.metrics)
        self.quota_lock = TenantLock(self.redis, "qdrant-quota")

    async def open(self) -> None:
        await self.redis.open()
        self.limiter.start()
        await self.registry.open()
        await self.store.open()
        self.meter.start()

    async def close(self) -> None:
        await self.meter.stop()
        await self.limiter.close()
        for backend in list(self.backends.values()):
            await backend.store.close()
        self.backends.clear()
        await self.store.close()
        await self.registry.close()
        await self.redis.close()

    # ------------------------------------------------------------------ dedicated clusters

    async def backend(self, index: IndexInfo) -> Any:
        """The store of a dedicated cluster's index: a pgvector pool or a Qdrant client per
        cluster, made on first use and remade when the cluster's endpoint changes."""
        assert index.cluster_id is not None  # noqa: S101 - dispatch checks
        cluster = await self.registry.cluster(index.cluster_id)
        if cluster is None or cluster.tenant_id != index.tenant_id:
            raise not_found_index(index.name)
        if cluster.status not in ("ready", "updating"):
            raise GatewayError(
                503,
                "cluster_unavailable",
                f"The index's cluster is {cluster.status}; try again when it is ready.",
                {"index": index.name, "cluster_status": cluster.status},
            )
        fingerprint = cluster.fingerprint
        current = self.backends.get(cluster.id)
        if current is not None and current.fingerprint == fingerprint:
            return current.store
        lock = self.backend_locks.setdefault(cluster.id, asyncio.Lock())
        async with lock:
            current = self.backends.get(cluster.id)
            if current is not None and current.fingerprint == fingerprint:
                return current.store
            try:
                store = await self._open_backend(cluster)
            except Exception as exc:
                logger.warning("cluster %s unreachable: %s", cluster.id, exc)
                raise GatewayError(
                    503,
                    "cluster_unavailable",
                    "The index's cluster does not answer; try again shortly.",
                    {"index": index.name},
                ) from exc
            self.backends[cluster.id] = Backend(fingerprint, store)
            if current is not None:
                self._close_later(current.store)
            return store

    async def _open_backend(self, cluster: ClusterInfo) -> Any:
        credentials = crypto.decrypt_json(cluster.credentials_encrypted)
        endpoint = cluster.endpoint
        if cluster.engine == "qdrant":
            qdrant = QdrantStore(
                endpoint["url"], credentials["api_key"], quota_lock=self.quota_lock.hold
            )
            await qdrant.open()
            return qdrant
        url = (
            f"postgresql://{quote(credentials['gateway_user'], safe='')}:"
            f"{quote(credentials['gateway_password'], safe='')}@{endpoint['host']}:"
            f"{endpoint['port']}/{endpoint['database']}"
        )
        store = Store(
            url,
            min_size=1,
            max_size=config.env_int("VECTORPLANE_CLUSTER_POOL_SIZE", 8),
            exact_scan_rows=self.store.exact_scan_rows,
        )
        await store.open(timeout=5)
        return store

    def forget_cluster(self, cluster_id: uuid.UUID) -> None:
        """The cluster's row changed: drop its connections (in-flight requests finish first)."""
        backend = self.backends.pop(cluster_id, None)
        if backend is not None:
            self._close_later(backend.store)

    def _close_later(self, store: Any) -> None:
        async def close() -> None:
            await asyncio.sleep(30)
            await store.close()

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ auth

    async def authenticate(self, request: Request) -> KeyInfo:
        raw = request.headers.get("api-key")
        if raw is None:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                raw = auth[7:]
        if not raw:
            raise GatewayError(401, "unauthenticated", "Send your API key in the Api-Key header.")
        raw = raw.strip()
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != "vpk" or len(parts[1]) != 12 or len(raw) > 200:
            raise GatewayError(401, "invalid_credentials", "The API key is not valid.")
        key = await self.registry.key(parts[1])
        digest = hmac.new(self.pepper, raw.encode(), hashlib.sha256).hexdigest()
        if key is None or not hmac.compare_digest(digest, key.secret_hash):
            raise GatewayError(401, "invalid_credentials", "The API key is not valid.")
        now = datetime.now(UTC)
        if key.revoked_at is not None or (key.revoke_after is not None and key.revoke_after <= now):
            raise GatewayError(401, "api_key_revoked", "This API key is revoked.")
        if key.expires_at is not None and key.expires_at <= now:
            raise GatewayError(401, "api_key_expired", "This API key is expired.")
        if key.tenant_status == "deleted":
            raise GatewayError(401, "api_key_revoked", "This API key is revoked.")
        if key.tenant_status == "suspended":
            raise GatewayError(403, "tenant_suspended", "This tenant is suspended.")
        return key

    async def throttle(self, key: KeyInfo) -> None:
        limits = await self.registry.limits(key.tenant_id)
        wait = await self.limiter.admit(key.tenant_id, limits.max_qps)
        if wait is not None:
            raise GatewayError(
                429,
                "rate_limited",
                f"Your plan allows {limits.max_qps} requests per second.",
                {"max_qps": limits.max_qps},
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )


# ====================================================================== helpers


@dataclass
class Context:
    key: KeyInfo
    index: IndexInfo
    body: dict[str, Any]
    store: Any  # Store (pgvector, shared or dedicated) or QdrantStore: the same methods
    usage: dict[str, int] = field(default_factory=dict)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _row_filter(key: KeyInfo) -> Compiled:
    return key.row_guard


def _writable(key: KeyInfo, ids: list[str]) -> None:
    """A key's writes by id are confined to its `id_prefix`. A key bound to rows must have one
    (the control plane requires it): two end users' ids then never meet, so an upsert cannot
    reveal whether an id exists outside the key's rows (README, "Keys bound to rows")."""
    prefix = key.id_prefix
    if not prefix and key.row_filter is None:
        return
    if not prefix:  # a key made before id prefixes existed: fail closed
        raise GatewayError(
            403,
            "id_forbidden",
            "This key is bound to rows but has no id_prefix, so it may not write by id; "
            "mint a new key with an id_prefix.",
            {"id_prefix": ""},
        )
    for record_id in ids:
        if not record_id.startswith(prefix):
            raise GatewayError(
                403,
                "id_forbidden",
                "This API key may only write ids that start with its id_prefix.",
                {"id": record_id, "id_prefix": prefix},
            )


# ====================================================================== operations

Handler = Callable[[Gateway, Context, Request], Awaitable[Response]]

_RECORD_FIELDS = frozenset({"id", "values", "sparseValues", "metadata"})


async def op_upsert(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"vectors", "namespace"})
    vectors = body.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        raise bad_request("validation_error", "vectors must be a non-empty list.", field="vectors")
    limits = await gw.registry.limits(key.tenant_id)
    max_batch = min(MAX_BATCH, limits.max_upsert_batch)
    if len(vectors) > max_batch:
        raise bad_request(
            "batch_too_large",
            f"At most {max_batch} vectors per upsert.",
            max=max_batch,
            got=len(vectors),
        )
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    max_meta = min(MAX_METADATA_BYTES, limits.max_metadata_bytes)
    allowed = _RECORD_FIELDS | {"text"} if index.text_field else _RECORD_FIELDS
    records = []
    for i, item in enumerate(vectors):
        if not isinstance(item, dict):
            raise bad_request("validation_error", f"vectors[{i}] must be an object.")
        item = v.present(item)
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise bad_request("unknown_field", f"vectors[{i}]: unknown field {unknown[0]!r}.",
                              fields=unknown, index=i)  # fmt: skip
        metadata = v.metadata(item.get("metadata"), f"vectors[{i}].metadata", max_meta)
        if key.row_filter and not key.row_guard.test(metadata or {}):
            raise GatewayError(
                403,
                "row_filter_violation",
                f"vectors[{i}].metadata does not satisfy this key's row filter.",
                {"index": i, "row_filter": key.row_filter},
            )
        text = item.get("text")
        records.append(
            Record(
                id=v.record_id(item.get("id"), f"vectors[{i}].id"),
                values=v.dense(
                    item.get("values"), index.dimension, f"vectors[{i}].values", stored=True
                ),
                sparse=v.sparse(item.get("sparseValues"), f"vectors[{i}].sparseValues"),
                metadata=metadata,
                text=None if text is None else v.full_text(text, f"vectors[{i}].text"),
            )
        )
    _writable(key, [r.id for r in records])
    try:
        count = await ctx.store.upsert(
            index,
            namespace,
            records,
            max_vectors=limits.max_vectors,
            guard=filters.compile_filter(
                key.row_filter, column=sql.Identifier("existing", "metadata")
            )
            if key.row_filter
            else None,
        )
    except RowFilterViolation as exc:
        raise GatewayError(
            403,
            "row_filter_violation",
            "A vector with one of these ids exists outside this key's row filter.",
            {"row_filter": key.row_filter},
        ) from exc
    except QuotaExceeded as exc:
        raise GatewayError(
            403,
            "quota_exceeded",
            f"Your plan allows {exc.maximum} vectors.",
            {"limit": "max_vectors", "max": exc.maximum, "current": exc.current},
        ) from exc
    ctx.usage.update(write_units=count, vectors_written=count)
    return _json({"upsertedCount": count})


async def op_query(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"vector", "id", "topK", "filter", "namespace", "includeValues",
                          "includeMetadata", "sparseVector", "text", "efSearch"})  # fmt: skip
    top_k = v.integer(body, "topK", 10, 1, MAX_TOP_K, code="invalid_top_k")
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    where = filters.combine(_row_filter(key), v.metadata_filter(body.get("filter")))
    if ("vector" in body) == ("id" in body):
        raise bad_request("validation_error", "Send exactly one of vector and id.")
    if "vector" in body:
        vector = v.dense(body["vector"], index.dimension, "vector", stored=False)
    else:
        record_id = v.record_id(body["id"])
        found = await ctx.store.vector_of(index, namespace, record_id, _row_filter(key))
        if found is None:
            raise GatewayError(404, "not_found", "No vector with that id.", {"id": record_id})
        vector = found
    sparse = v.sparse(body.get("sparseVector"), "sparseVector")
    if sparse is not None and index.metric != "dotproduct":
        raise bad_request(
            "unsupported_combination",
            "Sparse-dense queries need an index with the dotproduct metric (Pinecone's rule).",
            metric=index.metric,
        )
    text = body.get("text")
    if text is not None:
        if not index.text_field:
            raise bad_request(
                "unsupported_combination",
                "text queries need an index created with text_field.",
            )
        text = v.full_text(text, "text")
    ef = v.integer(body, "efSearch", index.ef_search, 1, MAX_EF_SEARCH)
    matches = await ctx.store.query(
        index, namespace, vector, top_k, where, ef_search=ef,
        include_values=v.boolean(body, "includeValues"),
        include_metadata=v.boolean(body, "includeMetadata"),
        sparse=sparse, text=text,
    )  # fmt: skip
    read_units = max(1, top_k // 100 + 1)
    ctx.usage.update(read_units=read_units, queries=1)
    return _json({"results": [], "matches": matches, "namespace": namespace,
                  "usage": {"readUnits": read_units}})  # fmt: skip


async def op_fetch(gw: Gateway, ctx: Context, request: Request) -> Response:
    """`GET ?ids=..&ids=..&namespace=` (Pinecone's), or `POST {"ids": [...], "namespace"}` (ours:
    the same answer, for id lists whose URL would pass the HTTP server's 64 KiB limit)."""
    key, index = ctx.key, ctx.index
    if request.method == "POST":
        v.check_fields(ctx.body, {"ids", "namespace"})
        ids = ctx.body.get("ids")
        if not isinstance(ids, list):
            raise bad_request("validation_error", "ids must be a list of ids.", field="ids")
        raw_namespace = ctx.body.get("namespace")
    else:
        params = v.query_params(request)
        ids = params.get("ids", [])
        raw_namespace = params.get("namespace", [None])[-1]
    if not ids:
        raise bad_request("validation_error", "Pass at least one id.", field="ids")
    if len(ids) > MAX_FETCH_IDS:
        raise bad_request("batch_too_large", f"At most {MAX_FETCH_IDS} ids.", max=MAX_FETCH_IDS)
    ids = [v.record_id(i, "ids") for i in ids]
    namespace = v.namespace(raw_namespace, key.namespaces)
    rows = await ctx.store.fetch(index, namespace, ids, _row_filter(key))
    vectors = {}
    for r in rows:
        item: dict[str, Any] = {"id": r["id"], "values": r["values"], "metadata": r["metadata"]}
        if r["sparse"] is not None:
            item["sparseValues"] = r["sparse"]
        vectors[r["id"]] = item
    ctx.usage.update(read_units=1)
    return _json({"vectors": vectors, "namespace": namespace, "usage": {"readUnits": 1}})


async def op_update(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"id", "values", "sparseValues", "setMetadata", "namespace"})
    record_id = v.record_id(body.get("id"))
    _writable(key, [record_id])
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    values = (
        v.dense(body["values"], index.dimension, "values", stored=True)
        if "values" in body
        else None
    )
    sparse = v.sparse(body.get("sparseValues"), "sparseValues")
    limits = await gw.registry.limits(key.tenant_id)
    max_meta = min(MAX_METADATA_BYTES, limits.max_metadata_bytes)
    set_metadata = v.metadata(body.get("setMetadata"), "setMetadata")
    check = key.row_guard.test if key.row_filter else None
    try:
        updated = await ctx.store.update(
            index, namespace, record_id, values=values, sparse=sparse,
            set_metadata=set_metadata, guard=_row_filter(key), new_metadata_check=check,
            max_metadata_bytes=max_meta,
        )  # fmt: skip
    except RowFilterViolation as exc:
        raise GatewayError(
            403,
            "row_filter_violation",
            "The updated metadata would not satisfy this key's row filter.",
        ) from exc
    except MetadataTooLarge as exc:
        raise bad_request(
            "metadata_too_large",
            f"The merged metadata would be {exc.size} bytes; the limit is {exc.maximum}.",
            bytes=exc.size,
            max_bytes=exc.maximum,
        ) from exc
    if not updated:
        raise GatewayError(404, "not_found", "No vector with that id.", {"id": record_id})
    ctx.usage.update(write_units=1, vectors_written=1)
    return _json({})


async def op_delete(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"ids", "deleteAll", "filter", "namespace"})
    namespace = v.namespace(body.get("namespace"), key.namespaces)
    modes = [m for m in ("ids", "deleteAll", "filter") if body.get(m) not in (None, False)]
    if len(modes) != 1:
        raise bad_request("validation_error", "Send exactly one of ids, deleteAll and filter.")
    row = _row_filter(key)
    if modes == ["ids"]:
        ids = body["ids"]
        if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
            raise bad_request("validation_error", f"ids must be a list of 1-{MAX_BATCH} ids.")
        checked = [v.record_id(i, "ids") for i in ids]
        _writable(key, checked)
        deleted = await ctx.store.delete(index, namespace, ids=checked, where=row)
    elif modes == ["deleteAll"]:
        if body["deleteAll"] is not True:
            raise bad_request("validation_error", "deleteAll must be true.")
        deleted = await ctx.store.delete(index, namespace, where=row)
    else:
        if not isinstance(body["filter"], dict) or not body["filter"]:
            raise bad_request("invalid_filter", "filter must be a non-empty object.")
        deleted = await ctx.store.delete(
            index, namespace, where=filters.combine(row, v.metadata_filter(body["filter"]))
        )
    ctx.usage.update(write_units=1, vectors_deleted=deleted)
    return _json({})


async def op_list(gw: Gateway, ctx: Context, request: Request) -> Response:
    key, index = ctx.key, ctx.index
    params = {name: values[-1] for name, values in v.query_params(request).items()}
    namespace = v.namespace(params.get("namespace"), key.namespaces)
    prefix = params.get("prefix", "")
    if "\x00" in prefix or v.text_bytes(prefix) > MAX_ID_BYTES:
        raise bad_request(
            "validation_error", f"prefix is over {MAX_ID_BYTES} bytes or holds NUL.",
            field="prefix",
        )  # fmt: skip
    limit = v.query_integer(params.get("limit"), "limit", 100, 1, v.MAX_LIST_LIMIT)
    after = None
    token = params.get("paginationToken")
    if token:
        try:
            after = decode_token(token)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request("invalid_cursor", "The paginationToken is not valid.") from exc
        if "\x00" in after or v.text_bytes(after) > MAX_ID_BYTES:
            raise bad_request("invalid_cursor", "The paginationToken is not valid.")
    ids, next_token = await ctx.store.list_ids(
        index, namespace, prefix, limit, after, _row_filter(key)
    )
    body: dict[str, Any] = {"vectors": [{"id": i} for i in ids], "namespace": namespace,
                            "usage": {"readUnits": 1}}  # fmt: skip
    if next_token:
        body["pagination"] = {"next": next_token}
    ctx.usage.update(read_units=1)
    return _json(body)


async def op_stats(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    v.check_fields(body, {"filter"})
    where = filters.combine(_row_filter(key), v.metadata_filter(body.get("filter")))
    counts = await ctx.store.stats(index, where, key.namespaces)
    ctx.usage.update(read_units=1)
    return _json(
        {
            "namespaces": {ns: {"vectorCount": n} for ns, n in sorted(counts.items())},
            "dimension": index.dimension,
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": index.metric,
            "vectorType": "dense",
        }
    )


# operation name -> (HTTP method, path under the index, scope, handler)
OPERATIONS: dict[str, tuple[str, str, str, Handler]] = {
    "upsert": ("POST", "vectors/upsert", "write", op_upsert),
    "query": ("POST", "query", "read", op_query),
    "fetch": ("GET", "vectors/fetch", "read", op_fetch),
    "update": ("POST", "vectors/update", "write", op_update),
    "delete": ("POST", "vectors/delete", "write", op_delete),
    "list": ("GET", "vectors/list", "read", op_list),
    "describe_index_stats": ("POST", "describe_index_stats", "read", op_stats),
}
# describe_index_stats is also a GET in Pinecone's API; fetch is also a POST in ours (a body
# holds 1,000 ids of 512 bytes; a URL over 65,534 bytes is refused by the HTTP server itself).
EXTRA_ROUTES = {
    ("GET", "describe_index_stats"): "describe_index_stats",
    ("POST", "vectors/fetch"): "fetch",
}


# ====================================================================== dispatch


def _host_index(gw: Gateway, request: Request, key: KeyInfo) -> str | None:
    """The index of a host-form request (`{index}-{tenant}.{domain}`), or None when the request
    is not in the host form."""
    label = hosts.host_label(request.headers.get("host", ""), gw.host_suffix)
    if label is None:
        return None
    index = hosts.index_of_label(label, key.tenant_slug)
    if index is None:
        # Another tenant's host (or a made-up one): the same answer as an unknown index.
        raise not_found_index(label)
    return index


async def dispatch(
    gw: Gateway, request: Request, operation: str, index_name: str | None
) -> Response:
    _method, _path, scope, handler = OPERATIONS[operation]
    started = time.perf_counter()
    status = 500
    dedicated = False
    try:
        key = await gw.authenticate(request)
        if index_name is None:
            index_name = _host_index(gw, request, key)
            if index_name is None:
                raise GatewayError(404, "not_found", "No such endpoint.")
        if scope not in key.scopes:
            raise GatewayError(
                403,
                "insufficient_scope",
                f"This API key lacks the {scope} scope.",
                {"required_scope": scope, "scopes": sorted(key.scopes)},
            )
        await gw.throttle(key)
        # Checked before the lookup, so a restricted key cannot tell which names exist.
        if key.index_names and index_name not in key.index_names:
            raise GatewayError(
                403,
                "index_forbidden",
                "This API key may not use that index.",
                {"index": index_name},
            )
        if not names.is_name(index_name):  # it cannot exist (nor reach PostgreSQL with NUL)
            raise not_found_index(index_name)
        index = await gw.registry.index(key.tenant_id, index_name)
        if index is None:
            raise not_found_index(index_name)
        dedicated = index.cluster_id is not None
        body = await v.json_body(request) if request.method == "POST" else {}
        store = gw.store if index.cluster_id is None else await gw.backend(index)
        ctx = Context(key=key, index=index, body=body, store=store)
        response = await handler(gw, ctx, request)
        if response.status_code < 400:
            gw.meter.record(index, requests=1, **ctx.usage)
    except GatewayError as exc:
        response = exc.response()
    except Exception as exc:
        unavailable = _unavailable(exc, index_name, dedicated)
        if unavailable is not None:
            logger.warning("gateway %s: %s: %s", operation, type(exc).__name__, exc)
            response = unavailable.response()
        else:
            logger.exception("gateway error in %s", operation)
            response = GatewayError(
                500, "internal_error", "An internal error occurred."
            ).response()
    status = response.status_code
    gw.requests.labels(operation, str(status)).inc()
    gw.latency.labels(operation, str(status)).observe(time.perf_counter() - started)
    return response


_UNAVAILABLE_HTTP = frozenset({429, 502, 503, 504})


def _database_down(exc: BaseException) -> bool:
    if pgerrors.unavailable(exc):
        return True
    if isinstance(exc, ResponseHandlingException):  # Qdrant unreachable or timed out
        return True
    return isinstance(exc, UnexpectedResponse) and exc.status_code in _UNAVAILABLE_HTTP


def _unavailable(exc: Exception, index_name: str | None, dedicated: bool) -> GatewayError | None:
    """A 503 for a vector database that does not answer (down, restarting, overloaded past
    its timeout) — the client should retry. None for every other error: the request's own
    fault is refused before any engine sees it (gateway/validation.py), so what is left is a
    bug, answered 500 and logged."""
    if not _database_down(exc):
        return None
    if dedicated or isinstance(exc, ResponseHandlingException | UnexpectedResponse):
        return GatewayError(
            503,
            "cluster_unavailable",
            "The index's cluster does not answer; try again shortly.",
            {"index": index_name},
        )
    return GatewayError(
        503,
        "data_plane_unavailable",
        "The vector database does not answer; try again shortly.",
        {"index": index_name},
    )


def _route(operation: str, *, path_form: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        index = request.path_params.get("index") if path_form else None
        return await dispatch(gw, request, operation, index)

    return endpoint


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        async with gw.store.pool.connection() as conn:
            await conn.execute("SELECT 1")
            await conn.rollback()
        ready = gw.registry.listening.is_set()
    except Exception:  # any failure means not ready
        ready = False
    return JSONResponse(
        {"status": "ok" if ready else "unavailable"}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    stats = gw.registry.stats
    gw.cache.labels("hit").set(stats.hits)
    gw.cache.labels("miss").set(stats.misses)
    pool = gw.store.pool.get_stats()
    gw.pool_in_use.labels("size").set(pool.get("pool_size", 0))
    gw.pool_in_use.labels("available").set(pool.get("pool_available", 0))
    return Response(generate_latest(gw.metrics), media_type=CONTENT_TYPE_LATEST)


# This API's OpenAPI description, served by `openapi_routes`.
OPENAPI_PATH = Path(__file__).resolve().parents[1] / "docs" / "gateway-openapi.yaml"


def openapi_routes(path: Path = OPENAPI_PATH) -> list[Route]:
    """`GET /openapi.yaml` and `GET /openapi.json`: the data plane's OpenAPI description
    (docs/gateway-openapi.yaml), read once when the app is built and served without
    credentials. An install without the file serves neither (the JSON 404; a warning at start)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        logger.warning("the gateway's OpenAPI schema is not served: %s", exc)
        return []
    as_json = orjson.dumps(yaml.safe_load(text))

    async def openapi_yaml(request: Request) -> Response:
        return Response(text, media_type="application/yaml")

    async def openapi_json(request: Request) -> Response:
        return Response(as_json, media_type="application/json")

    return [Route("/openapi.yaml", openapi_yaml), Route("/openapi.json", openapi_json)]


async def not_found(request: Request, exc: Exception) -> Response:
    return GatewayError(404, "not_found", "No such endpoint.").response()


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return GatewayError(405, "method_not_allowed", "Method not allowed.").response()


def build_routes() -> list[Route]:
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *openapi_routes(),
    ]
    for operation, (method, path, _scope, _handler) in OPERATIONS.items():
        methods = [method] + [m for (m, p), op in EXTRA_ROUTES.items() if op == operation]
        routes.append(Route(f"/v1/indexes/{{index}}/{path}", _route(operation, path_form=True),
                            methods=methods))  # fmt: skip
        routes.append(Route(f"/{path}", _route(operation, path_form=False), methods=methods))
    return routes


def create_app(
    *, control_url: str | None = None, data_url: str | None = None, pepper: str | None = None
) -> Starlette:
    if pepper is None:
        pepper = (
            config.env_str("VECTORPLANE_KEY_PEPPER")
            if config.is_production()
            else config.env_str("VECTORPLANE_KEY_PEPPER", config.state_secret("key-pepper"))
        )
    gateway = Gateway(
        control_url=control_url or config.gateway_control_database_url(),
        data_url=data_url or config.gateway_data_database_url(),
        pepper=pepper,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.open()
        try:
            yield
        finally:
            await gateway.close()

    app = Starlette(
        routes=build_routes(),
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
    )
    app.state.gateway = gateway
    return app


def application() -> Starlette:
    """Factory for `granian --interface asgi --factory gateway.app:application`."""
    return create_app()
