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
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from psycopg import sql
from psycopg_pool import PoolTimeout
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vectorplane import config, crypto

from . import filters
from .errors import GatewayError, bad_request, not_found_index
from .filters import Compiled, FilterError
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

logger = logging.getLogger("vectorplane.gateway")

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_BATCH = 1000
MAX_TOP_K = 10_000
MAX_ID_BYTES = 512
MAX_METADATA_BYTES = 40 * 1024
MAX_FETCH_IDS = 1000
MAX_SPARSE_INDEX = 1_000_000_000 - 1
MAX_NAMESPACE_BYTES = 512


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


async def _body(request: Request) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise bad_request(
            "request_too_large", "The request body is over 2 MB.", max_bytes=MAX_BODY_BYTES
        )
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise bad_request(
                "request_too_large", "The request body is over 2 MB.", max_bytes=MAX_BODY_BYTES
            )
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)  # refuses NaN and Infinity, as JSON does
    except orjson.JSONDecodeError as exc:
        raise bad_request("malformed_json", f"The body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("validation_error", "The body must be a JSON object.")
    return data


def _check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request("unknown_field", f"Unknown field {unknown[0]!r}.", fields=unknown)


def _namespace(value: Any, key: KeyInfo) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise bad_request("validation_error", "namespace must be a string.", field="namespace")
    if len(value.encode()) > MAX_NAMESPACE_BYTES or "\x00" in value:
        raise bad_request(
            "validation_error", "namespace is too long or invalid.", field="namespace"
        )
    if key.namespaces and value not in key.namespaces:
        raise GatewayError(
            403,
            "namespace_forbidden",
            "This API key may not use that namespace.",
            {"namespace": value},
        )
    return value


def _id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("validation_error", f"{field} must be a non-empty string.", field=field)
    if len(value.encode()) > MAX_ID_BYTES or "\x00" in value:
        raise bad_request(
            "id_too_long", f"{field} is over {MAX_ID_BYTES} bytes or invalid.", field=field
        )
    return value


def _vector(value: Any, dimension: int, field: str, metric: str = "") -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise bad_request("validation_error", f"{field} must be a list of numbers.", field=field)
    if len(value) != dimension:
        raise bad_request(
            "dimension_mismatch",
            f"{field} has {len(value)} dimensions; the index has {dimension}.",
            field=field,
            expected=dimension,
            got=len(value),
        )
    floats = [float(v) for v in value]
    if not all(math.isfinite(v) for v in floats):
        raise bad_request("invalid_value", f"{field} holds NaN or Infinity.", field=field)
    if metric == "cosine" and not any(floats):
        raise bad_request(
            "invalid_value", f"{field} is all zeros, which has no cosine similarity.", field=field
        )
    return floats


def _sparse(value: Any, field: str) -> tuple[list[int], list[float]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"indices", "values"}:
        raise bad_request("validation_error", f"{field} must be {{indices, values}}.", field=field)
    indices, values = value.get("indices"), value.get("values")
    if not isinstance(indices, list) or not isinstance(values, list) or len(indices) != len(values):
        raise bad_request(
            "validation_error",
            f"{field}: indices and values must be lists of equal length.",
            field=field,
        )
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_SPARSE_INDEX
               for i in indices):  # fmt: skip
        raise bad_request(
            "validation_error",
            f"{field}.indices must be integers in [0, {MAX_SPARSE_INDEX}].",
            field=field,
        )
    if len(set(indices)) != len(indices):
        raise bad_request("validation_error", f"{field}.indices must be unique.", field=field)
    floats = []
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise bad_request("validation_error", f"{field}.values must be numbers.", field=field)
        if not math.isfinite(float(v)):
            raise bad_request("invalid_value", f"{field}.values hold NaN or Infinity.", field=field)
        floats.append(float(v))
    pairs = sorted(zip(indices, floats, strict=True))
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _metadata(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("validation_error", f"{field} must be an object.", field=field)
    # Pinecone drops null-valued keys rather than storing them.
    value = {k: v for k, v in value.items() if v is not None}
    for k, v in value.items():
        if (
            "\x00" in k
            or (isinstance(v, str) and "\x00" in v)
            or (isinstance(v, list) and any(isinstance(x, str) and "\x00" in x for x in v))
        ):
            raise bad_request(
                "invalid_metadata", f"{field}.{k!r}: NUL characters are not allowed.", field=field
            )
        ok = isinstance(v, str | bool | int | float) or (
            isinstance(v, list) and all(isinstance(x, str) for x in v)
        )
        if not ok or (isinstance(v, float) and not math.isfinite(v)):
            raise bad_request(
                "invalid_metadata",
                f"{field}.{k}: values are strings, numbers, booleans or lists of strings.",
                field=field,
                key=k,
            )
    size = len(orjson.dumps(value))
    if size > MAX_METADATA_BYTES:
        raise bad_request(
            "metadata_too_large",
            f"{field} is {size} bytes; the limit is {MAX_METADATA_BYTES}.",
            field=field,
            bytes=size,
            max_bytes=MAX_METADATA_BYTES,
        )
    return value


def _filter(value: Any) -> Compiled:
    if value is None:
        return filters.compile_filter({})
    try:
        return filters.compile_filter(value)
    except FilterError as exc:
        raise GatewayError(400, exc.code, exc.message, exc.details) from exc


def _row_filter(key: KeyInfo) -> Compiled:
    return key.row_guard


def _bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request("validation_error", f"{name} must be a boolean.", field=name)
    return value


# ====================================================================== operations

Handler = Callable[[Gateway, Context, Request], Awaitable[Response]]


async def op_upsert(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    _check_fields(body, {"vectors", "namespace"})
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
    namespace = _namespace(body.get("namespace"), key)
    max_meta = min(MAX_METADATA_BYTES, limits.max_metadata_bytes)
    records = []
    for i, v in enumerate(vectors):
        if not isinstance(v, dict):
            raise bad_request("validation_error", f"vectors[{i}] must be an object.")
        allowed = {"id", "values", "sparseValues", "metadata"} | (
            {"text"} if index.text_field else set()
        )
        unknown = sorted(set(v) - allowed)
        if unknown:
            raise bad_request("unknown_field", f"vectors[{i}]: unknown field {unknown[0]!r}.",
                              fields=unknown, index=i)  # fmt: skip
        metadata = _metadata(v.get("metadata"), f"vectors[{i}].metadata")
        if metadata is not None and len(orjson.dumps(metadata)) > max_meta:
            raise bad_request("metadata_too_large", f"vectors[{i}].metadata is over your plan's "
                              f"{max_meta} bytes.", max_bytes=max_meta)  # fmt: skip
        if key.row_filter and not filters.matches(key.row_filter, metadata or {}):
            raise GatewayError(
                403,
                "row_filter_violation",
                f"vectors[{i}].metadata does not satisfy this key's row filter.",
                {"index": i, "row_filter": key.row_filter},
            )
        text = v.get("text")
        if text is not None and (not isinstance(text, str) or "\x00" in text):
            raise bad_request(
                "validation_error", f"vectors[{i}].text must be a string without NUL characters."
            )
        records.append(
            Record(
                id=_id(v.get("id"), f"vectors[{i}].id"),
                values=_vector(
                    v.get("values"), index.dimension, f"vectors[{i}].values", index.metric
                ),
                sparse=_sparse(v.get("sparseValues"), f"vectors[{i}].sparseValues"),
                metadata=metadata,
                text=text,
            )
        )
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
    _check_fields(body, {"vector", "id", "topK", "filter", "namespace", "includeValues",
                         "includeMetadata", "sparseVector", "text", "efSearch"})  # fmt: skip
    top_k = body.get("topK", 10)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise bad_request("invalid_top_k", f"topK must be an integer from 1 to {MAX_TOP_K}.",
                          field="topK", max=MAX_TOP_K)  # fmt: skip
    namespace = _namespace(body.get("namespace"), key)
    where = filters.combine(_row_filter(key), _filter(body.get("filter")))
    if ("vector" in body) == ("id" in body):
        raise bad_request("validation_error", "Send exactly one of vector and id.")
    if "vector" in body:
        vector = _vector(body["vector"], index.dimension, "vector", index.metric)
    else:
        found = await ctx.store.vector_of(index, namespace, _id(body["id"]), _row_filter(key))
        if found is None:
            raise GatewayError(404, "not_found", "No vector with that id.", {"id": body["id"]})
        vector = found
    sparse = _sparse(body.get("sparseVector"), "sparseVector")
    if sparse is not None and index.metric != "dotproduct":
        raise bad_request(
            "unsupported_combination",
            "Sparse-dense queries need an index with the dotproduct metric (Pinecone's rule).",
            metric=index.metric,
        )
    text = body.get("text")
    if text is not None and (not isinstance(text, str) or not index.text_field):
        raise bad_request(
            "unsupported_combination",
            "text queries need an index created with text_field and a string query.",
        )
    ef = body.get("efSearch", index.ef_search)
    if not isinstance(ef, int) or isinstance(ef, bool) or not 1 <= ef <= 1000:
        raise bad_request("validation_error", "efSearch must be 1-1000.", field="efSearch")
    matches = await ctx.store.query(
        index, namespace, vector, top_k, where, ef_search=ef,
        include_values=_bool(body, "includeValues"),
        include_metadata=_bool(body, "includeMetadata"),
        sparse=sparse, text=text,
    )  # fmt: skip
    read_units = max(1, top_k // 100 + 1)
    ctx.usage.update(read_units=read_units, queries=1)
    return _json({"results": [], "matches": matches, "namespace": namespace,
                  "usage": {"readUnits": read_units}})  # fmt: skip


async def op_fetch(gw: Gateway, ctx: Context, request: Request) -> Response:
    key, index = ctx.key, ctx.index
    ids = request.query_params.getlist("ids")
    if not ids:
        raise bad_request("validation_error", "Pass at least one ids parameter.", field="ids")
    if len(ids) > MAX_FETCH_IDS:
        raise bad_request("batch_too_large", f"At most {MAX_FETCH_IDS} ids.", max=MAX_FETCH_IDS)
    ids = [_id(i, "ids") for i in ids]
    namespace = _namespace(request.query_params.get("namespace"), key)
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
    _check_fields(body, {"id", "values", "sparseValues", "setMetadata", "namespace"})
    record_id = _id(body.get("id"))
    namespace = _namespace(body.get("namespace"), key)
    values = (
        _vector(body["values"], index.dimension, "values", index.metric)
        if "values" in body
        else None
    )
    sparse = _sparse(body.get("sparseValues"), "sparseValues")
    set_metadata = _metadata(body.get("setMetadata"), "setMetadata")
    check = None
    if key.row_filter:
        row_filter = key.row_filter

        def check(metadata: dict[str, Any]) -> bool:
            return filters.matches(row_filter, metadata)

    limits = await gw.registry.limits(key.tenant_id)
    max_meta = min(MAX_METADATA_BYTES, limits.max_metadata_bytes)
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
    _check_fields(body, {"ids", "deleteAll", "filter", "namespace"})
    namespace = _namespace(body.get("namespace"), key)
    modes = [m for m in ("ids", "deleteAll", "filter") if body.get(m) not in (None, False)]
    if len(modes) != 1:
        raise bad_request("validation_error", "Send exactly one of ids, deleteAll and filter.")
    row = _row_filter(key)
    if modes == ["ids"]:
        ids = body["ids"]
        if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
            raise bad_request("validation_error", f"ids must be a list of 1-{MAX_BATCH} ids.")
        deleted = await ctx.store.delete(
            index, namespace, ids=[_id(i, "ids") for i in ids], where=row
        )
    elif modes == ["deleteAll"]:
        if body["deleteAll"] is not True:
            raise bad_request("validation_error", "deleteAll must be true.")
        deleted = await ctx.store.delete(index, namespace, where=row)
    else:
        if not isinstance(body["filter"], dict) or not body["filter"]:
            raise bad_request("invalid_filter", "filter must be a non-empty object.")
        deleted = await ctx.store.delete(
            index, namespace, where=filters.combine(row, _filter(body["filter"]))
        )
    ctx.usage.update(write_units=1, vectors_deleted=deleted)
    return _json({})


async def op_list(gw: Gateway, ctx: Context, request: Request) -> Response:
    key, index = ctx.key, ctx.index
    params = request.query_params
    namespace = _namespace(params.get("namespace"), key)
    prefix = params.get("prefix", "")
    if len(prefix.encode()) > MAX_ID_BYTES or "\x00" in prefix:
        raise bad_request("validation_error", "prefix is too long.", field="prefix")
    raw_limit = params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise bad_request("validation_error", "limit must be 1-1000.", field="limit")
    after = None
    token = params.get("paginationToken")
    if token:
        try:
            after = decode_token(token)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request("invalid_cursor", "The paginationToken is not valid.") from exc
        if "\x00" in after or len(after.encode()) > MAX_ID_BYTES:
            raise bad_request("invalid_cursor", "The paginationToken is not valid.")
    ids, next_token = await ctx.store.list_ids(
        index, namespace, prefix, int(raw_limit), after, _row_filter(key)
    )
    body: dict[str, Any] = {"vectors": [{"id": i} for i in ids], "namespace": namespace,
                            "usage": {"readUnits": 1}}  # fmt: skip
    if next_token:
        body["pagination"] = {"next": next_token}
    ctx.usage.update(read_units=1)
    return _json(body)


async def op_stats(gw: Gateway, ctx: Context, request: Request) -> Response:
    body, key, index = ctx.body, ctx.key, ctx.index
    _check_fields(body, {"filter"})
    where = filters.combine(_row_filter(key), _filter(body.get("filter")))
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
# describe_index_stats is also a GET in Pinecone's API.
EXTRA_ROUTES = {("GET", "describe_index_stats"): "describe_index_stats"}


# ====================================================================== dispatch


def _host_index(request: Request, key: KeyInfo) -> str | None:
    domain = config.env_str("VECTORPLANE_GATEWAY_DOMAIN", "")
    host = request.headers.get("host", "").split(":")[0].lower()
    if not domain or not host.endswith("." + domain):
        return None
    label = host[: -len(domain) - 1]
    suffix = "-" + key.tenant_slug
    if not label.endswith(suffix):
        # Another tenant's host (or a made-up one): the same answer as an unknown index.
        raise not_found_index(label)
    return label[: -len(suffix)]


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
            index_name = _host_index(request, key)
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
        if "\x00" in index_name or len(index_name) > 45:
            raise not_found_index(index_name)
        index = await gw.registry.index(key.tenant_id, index_name)
        if index is None:
            raise not_found_index(index_name)
        dedicated = index.cluster_id is not None
        body = await _body(request) if request.method == "POST" else {}
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


def _unavailable(exc: Exception, index_name: str | None, dedicated: bool) -> GatewayError | None:
    """A 503 for a vector database that does not answer (down, restarting, overloaded past
    its timeout) — the client should retry — rather than a 500 for a bug."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ResponseHandlingException) or (
        isinstance(exc, UnexpectedResponse) and status is not None and status >= 500
    ) or (dedicated and isinstance(exc, psycopg.OperationalError | PoolTimeout)):
        return GatewayError(
            503,
            "cluster_unavailable",
            "The index's cluster does not answer; try again shortly.",
            {"index": index_name},
        )
    if isinstance(exc, psycopg.OperationalError | PoolTimeout):
        return GatewayError(
            503,
            "data_plane_unavailable",
            "The vector database does not answer; try again shortly.",
            {"index": index_name},
        )
    return None


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


async def not_found(request: Request, exc: Exception) -> Response:
    return GatewayError(404, "not_found", "No such endpoint.").response()


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return GatewayError(405, "method_not_allowed", "Method not allowed.").response()


def build_routes() -> list[Route]:
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
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
