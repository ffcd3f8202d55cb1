"""The Qdrant backend: an index on a tenant's dedicated Qdrant cluster, with the shared tier's
API and semantics.

`QdrantStore` is a `VectorStore` (gateway/backends/__init__.py), as `PgvectorStore` is, over
Qdrant's REST API with one connection pool per cluster. The collection of an index is the name
the control plane stored on it (`vectorplane.contract.storage.collection_name`); its points
carry the payload layout of gateway/backends/qdrant_filters.py, which translates the filters.
docs/qdrant-engine.md has the whole contract; in short:

- point ids are uuid5(namespace NUL id), so an upsert of the same (namespace, id) replaces;
  every read and write is confined to the namespace (the `_ns` condition, or the id itself);
- scores are Pinecone's: cosine similarity, dot product, squared euclidean distance (Qdrant
  answers the distance: it is squared here; the order, closest first, is unchanged);
- cosine vectors are sent unit-normalised (in double precision: Qdrant would normalise in
  float32, where a norm can overflow); their norm is kept (`_norm`) and values
  are given back as normalised x norm (the sent float32 values to ~1e-7, relative);
- writes wait for Qdrant's acknowledgement (`wait=true`);
- the vector quota counts every point of every index collection of the cluster (a dedicated
  cluster holds one tenant): exact, and never overshot. An upsert holds, from the count to the
  acknowledged write, the store's lock (this process) and `quota_lock(tenant)`, the gateway's
  per-tenant lock in Redis (gateway/ratelimit.py: every gateway process). While Redis is down
  or slow that lock is skipped, and N processes may then overshoot by at most one batch each;
- row guards (a key's row filter) are checked on the stored metadata in Python (`Filter.test`,
  the kernel's evaluation) and also sent to Qdrant as a condition of the write;
- full-text (`text`) queries are refused: UnsupportedOnEngine (400 `unsupported_on_engine`).

Requests are Qdrant REST JSON built as plain dicts (orjson) and sent with one aiohttp session
per store (keep-alive pool); an outage is BackendUnavailable, any other refusal QdrantError
(no qdrant-client in the gateway: it costs ~1.4 s to import). This is the hot
path of a benchmark against Qdrant Edge called directly: on the development machine
`AsyncQdrantClient.query_points` cost ~1.6 ms of client CPU per query (httpx ~1.2 ms, its
pydantic models ~0.1-0.15 ms) against ~0.4 ms here; numbers in docs/qdrant-engine.md.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Final

import aiohttp
import numpy as np
import orjson

from vectorplane.contract.filters import EMPTY, Filter
from vectorplane.contract.storage import DENSE, SPARSE

from . import (
    BackendUnavailable,
    IndexRef,
    Match,
    MetadataTooLarge,
    QuotaExceeded,
    Record,
    RowFilterViolation,
    Sparse,
    UnsupportedOnEngine,
    encode_token,
    reported,
)
from .qdrant_filters import Condition, field, filter_json, record_payload

__all__ = ["STATS_NAMESPACES", "QdrantError", "QdrantStore", "point_id"]

# Fixed forever: point ids are derived from it.
_POINT_NAMESPACE: Final = uuid.UUID("5c1f6f0e-4a53-5b0e-9d1e-7663746f7270")
STATS_NAMESPACES: Final = 100_000
"""describe_index_stats reports at most this many namespaces (the largest first)."""
_JSON: Final = {"Content-Type": "application/json"}
# Qdrant's answers that mean "not now" (overloaded, behind a proxy that lost it): retry.
_UNAVAILABLE_STATUSES: Final = frozenset({429, 502, 503, 504})


class QdrantError(Exception):
    """Qdrant refused a request (an answer of status `status`): with validation before it,
    a bug, not the client's fault."""

    def __init__(self, status: int, content: bytes) -> None:
        super().__init__(f"Qdrant answered {status}: {content[:500]!r}")
        self.status = status
        self.content = content
_WAIT: Final = {"wait": "true"}


def point_id(namespace: str, record_id: str) -> str:
    """The point id of a record: neither part can contain NUL, so the pair is unambiguous."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{namespace}\x00{record_id}"))


def _in_namespace(namespace: str) -> Condition:
    return field("_ns", match={"value": namespace})


def _norm(values: Sequence[float]) -> float:
    return math.sqrt(math.fsum(v * v for v in values))


def _direction(metric: str, values: list[float]) -> list[float]:
    """What Qdrant is sent for a dense vector: for cosine, the unit vector computed here in
    double precision (Qdrant normalises in float32, where the norm of a vector with values
    near float32's limit overflows and the vector would be stored as zeros); else as is."""
    if metric != "cosine":
        return values
    norm = _norm(values)
    return [v / norm for v in values] if norm else values


def _score(point: dict[str, Any]) -> float:
    """A point's score; JSON has no infinity, so an overflowed float32 score arrives as null
    (reported as the bound: gateway.backends.reported)."""
    value = point.get("score")
    return math.inf if value is None else float(value)


def _sparse_json(sparse: tuple[list[int], list[float]]) -> dict[str, Any]:
    return {"indices": sparse[0], "values": sparse[1]}


QuotaLock = Callable[[uuid.UUID], AbstractAsyncContextManager[object]]
"""Given a tenant id, a context held around an upsert's quota count and its write."""


def _no_lock(tenant_id: uuid.UUID) -> AbstractAsyncContextManager[object]:
    return nullcontext()


class QdrantStore:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 30,
        max_connections: int = 64,
        quota_lock: QuotaLock = _no_lock,
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = {"api-key": api_key}
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # Held from the quota count (and the guard check) to the acknowledged write: the lock
        # of this process, and, for upserts (which may add points), the tenant's lock across
        # gateway processes (process first, so that one request per process waits in Redis).
        self._lock = asyncio.Lock()
        self._quota_lock = quota_lock

    async def open(self) -> None:
        """Connect, and check that the cluster answers and accepts the key; raises (closed)
        otherwise."""
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            raise_for_status=False,
        )
        try:
            await self._call("GET", "/collections")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ plumbing

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One REST call; answers its `result`. Raises BackendUnavailable when the cluster
        cannot be reached, times out or answers 429/502/503/504, QdrantError for any other
        refusal."""
        if self._session is None:
            raise RuntimeError("QdrantStore.open() was not called (or close() was)")
        try:
            async with self._session.request(
                method,
                self.url + path,
                data=None if body is None else orjson.dumps(body),
                headers=_JSON if body is not None else None,
                params=params,
            ) as response:
                content = await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if status in _UNAVAILABLE_STATUSES:
            raise BackendUnavailable(f"Qdrant answered {status}")
        if status >= 300:
            raise QdrantError(status, content)
        return orjson.loads(content)["result"]

    async def _points(self, name: str, action: str, body: dict[str, Any]) -> Any:
        return await self._call("POST", f"/collections/{name}/points/{action}", body)

    async def _write(self, method: str, name: str, action: str, body: dict[str, Any]) -> None:
        suffix = f"/{action}" if action else ""
        await self._call(method, f"/collections/{name}/points{suffix}", body, _WAIT)

    async def _retrieve(
        self, name: str, ids: list[str], payload: bool | list[str], vectors: bool
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call(
            "POST",
            f"/collections/{name}/points",
            {"ids": ids, "with_payload": payload, "with_vector": vectors},
        )
        return found

    async def _count(self, name: str, where: dict[str, Any] | None) -> int:
        body: dict[str, Any] = {"exact": True}
        if where is not None:
            body["filter"] = where
        return int((await self._points(name, "count", body))["count"])

    async def _tenant_total(self) -> int:
        """Points in every index collection of the cluster (one tenant's cluster)."""
        listed = await self._call("GET", "/collections")
        names = [c["name"] for c in listed["collections"] if c["name"].startswith("i_")]

        async def count(name: str) -> int:
            try:
                return await self._count(name, None)
            except QdrantError as exc:
                if exc.status == 404:  # an index dropped meanwhile holds nothing
                    return 0
                raise

        return sum(await asyncio.gather(*(count(n) for n in names)))

    @staticmethod
    def _point(index: IndexRef, namespace: str, record: Record) -> dict[str, Any]:
        vector: dict[str, Any] = {DENSE: _direction(index.metric, record.values)}
        if record.sparse is not None:
            vector[SPARSE] = _sparse_json(record.sparse)
        norm = _norm(record.values) if index.metric == "cosine" else None
        return {
            "id": point_id(namespace, record.id),
            "vector": vector,
            "payload": record_payload(
                namespace, record.id, record.metadata or {}, norm=norm, text=record.text
            ),
        }

    @staticmethod
    def _values(index: IndexRef, point: dict[str, Any]) -> list[float]:
        """The stored vector as pgvector gives it back: float32 values, each the shortest
        decimal of its float32 (so 0.1 reads 0.1, and a cosine vector rebuilt from its unit
        vector and norm reads back the values sent, within float32)."""
        vector = point.get("vector") or {}
        dense: list[float] = vector.get(DENSE) or []
        if not dense:
            return []
        values = np.asarray(dense, dtype=np.float64)
        if index.metric == "cosine":
            values = values * float((point.get("payload") or {}).get("_norm", 1.0))
        rounded: list[float] = orjson.loads(
            orjson.dumps(values.astype(np.float32), option=orjson.OPT_SERIALIZE_NUMPY)
        )
        return rounded

    @staticmethod
    def _sparse(point: dict[str, Any]) -> dict[str, list[Any]] | None:
        sparse = (point.get("vector") or {}).get(SPARSE)
        if sparse is None:
            return None
        pairs = sorted(zip(sparse["indices"], sparse["values"], strict=True))
        return {"indices": [i for i, _ in pairs], "values": [float(v) for _, v in pairs]}

    # ------------------------------------------------------------------ writes

    async def upsert(
        self,
        index: IndexRef,
        namespace: str,
        records: list[Record],
        *,
        max_vectors: int,
        guard: Filter = EMPTY,
    ) -> int:
        """Insert or replace; returns the number written. Raises QuotaExceeded (and writes
        nothing) when the tenant would then hold more than `max_vectors` vectors, and
        RowFilterViolation (writing nothing) when one of the ids exists with metadata outside
        `guard`."""
        unique: dict[str, Record] = {}
        for record in records:
            unique[record.id] = record  # the last occurrence of an id wins
        points = [self._point(index, namespace, r) for r in unique.values()]
        name = index.table_name
        body: dict[str, Any] = {"points": points}
        guarded = guard.tree is not None
        if guarded:
            # Qdrant checks it too: a record changed meanwhile (by another process) to fall
            # outside the guard is left as it is.
            body["update_filter"] = filter_json(guard)
        async with self._lock, self._quota_lock(index.tenant_id):
            # Both at once (one round trip less); the total is only needed for new ids.
            existing, total = await asyncio.gather(
                self._retrieve(name, [p["id"] for p in points], ["m"] if guarded else False, False),
                self._tenant_total(),
            )
            if guarded:
                for found in existing:
                    if not guard.test((found.get("payload") or {}).get("m") or {}):
                        raise RowFilterViolation()
            inserted = len(points) - len(existing)
            if inserted > 0 and total + inserted > max_vectors:
                raise QuotaExceeded(total, max_vectors)
            await self._write("PUT", name, "", body)
        return len(points)

    async def update(
        self,
        index: IndexRef,
        namespace: str,
        record_id: str,
        *,
        values: list[float] | None,
        sparse: Sparse | None,
        set_metadata: dict[str, Any] | None,
        guard: Filter,
        new_metadata_check: Callable[[Mapping[str, object]], bool] | None = None,
        max_metadata_bytes: int | None = None,
    ) -> bool:
        """Update one record (values, sparse values, merge metadata) as Store.update does: the
        record must pass `guard`; `new_metadata_check(metadata) -> bool` vets the merged
        metadata (RowFilterViolation), whose size must fit `max_metadata_bytes`
        (MetadataTooLarge). Returns whether a record was updated. The change is one point
        upsert (update only, guarded by Qdrant as well): all or nothing."""
        name = index.table_name
        pid = point_id(namespace, record_id)
        async with self._lock:
            found = await self._retrieve(name, [pid], True, True)
            if not found:
                return False
            payload = found[0].get("payload") or {}
            metadata = payload.get("m") or {}
            if not guard.test(metadata):
                return False
            merged = metadata if set_metadata is None else {**metadata, **set_metadata}
            if new_metadata_check is not None and not new_metadata_check(merged):
                raise RowFilterViolation()
            size = len(orjson.dumps(merged))
            if max_metadata_bytes is not None and size > max_metadata_bytes:
                raise MetadataTooLarge(size, max_metadata_bytes)
            stored = found[0].get("vector") or {}
            vector: dict[str, Any] = {}
            norm = payload.get("_norm")
            if values is not None:
                vector[DENSE] = _direction(index.metric, values)
                norm = _norm(values) if index.metric == "cosine" else None
            elif stored.get(DENSE):
                vector[DENSE] = stored[DENSE]
            if sparse is not None:
                vector[SPARSE] = _sparse_json(sparse)
            elif stored.get(SPARSE) is not None:
                vector[SPARSE] = stored[SPARSE]
            point = {
                "id": pid,
                "vector": vector,
                "payload": record_payload(
                    namespace, record_id, merged, norm=norm, text=payload.get("_text")
                ),
            }
            body: dict[str, Any] = {"points": [point], "update_mode": "update_only"}
            guarded = filter_json(guard)
            if guarded is not None:
                body["update_filter"] = guarded
            await self._write("PUT", name, "", body)
        return True

    async def delete(
        self,
        index: IndexRef,
        namespace: str,
        *,
        ids: list[str] | None = None,
        where: Filter = EMPTY,
    ) -> int:
        """Delete the namespace's records with these ids, or (ids None) all of its records,
        restricted to `where`; returns how many were deleted."""
        name = index.table_name
        guarded = where.tree is not None
        async with self._lock:
            if ids is not None:
                wanted = list(dict.fromkeys(point_id(namespace, i) for i in ids))
                found = await self._retrieve(name, wanted, ["m"] if guarded else False, False)
                if guarded:
                    found = [
                        f for f in found if where.test((f.get("payload") or {}).get("m") or {})
                    ]
                targets = [f["id"] for f in found]
                if not targets:
                    return 0
                if guarded:
                    # Checked by Qdrant as well: a record changed meanwhile stays.
                    body: dict[str, Any] = {"filter": filter_json(where, {"has_id": targets})}
                else:
                    body = {"points": targets}
                await self._write("POST", name, "delete", body)
                return len(targets)
            selection = filter_json(where, _in_namespace(namespace))
            counted = await self._count(name, selection)
            if counted:
                await self._write("POST", name, "delete", {"filter": selection})
            return counted

    # ------------------------------------------------------------------ reads

    async def fetch(
        self, index: IndexRef, namespace: str, ids: list[str], where: Filter
    ) -> list[dict[str, Any]]:
        wanted = list(dict.fromkeys(point_id(namespace, i) for i in ids))
        found = await self._retrieve(
            index.table_name, wanted, ["m", "_id", "_ns", "_norm"], True
        )
        out = []
        for point in found:
            payload = point.get("payload") or {}
            metadata = payload.get("m") or {}
            if payload.get("_ns") != namespace or not where.test(metadata):
                continue
            out.append(
                {
                    "id": payload["_id"],
                    "values": self._values(index, point),
                    "sparse": self._sparse(point),
                    "metadata": metadata,
                }
            )
        return out

    async def vector_of(
        self, index: IndexRef, namespace: str, record_id: str, where: Filter
    ) -> list[float] | None:
        rows = await self.fetch(index, namespace, [record_id], where)
        return rows[0]["values"] if rows else None

    async def query(
        self,
        index: IndexRef,
        namespace: str,
        vector: list[float],
        top_k: int,
        where: Filter,
        *,
        ef_search: int,
        include_values: bool,
        include_metadata: bool,
        sparse: Sparse | None = None,
        text: str | None = None,
    ) -> list[Match]:
        if text is not None:
            raise UnsupportedOnEngine(
                "Full-text (text) queries are not supported on indexes on a Qdrant cluster.",
                {"engine": "qdrant", "field": "text"},
            )
        name = index.table_name
        hybrid = sparse is not None
        # The shared tier's candidate set and HNSW breadth, so that scores and recall agree.
        limit = max(top_k * 10, 100) if hybrid else top_k
        ef = max(ef_search, limit) if limit <= 1000 else 1000
        fields = ["_id"]
        if include_metadata:
            fields.append("m")
        if include_values and index.metric == "cosine":
            fields.append("_norm")
        if not any(vector):
            # An all-zero query vector ranks nothing (as on pgvector): the filter's matches
            # with score 0 (in point order), or ranked by the sparse vector alone.
            return await self._unranked(
                index, name, namespace, top_k, where, sparse, fields, include_values,
                include_metadata,
            )  # fmt: skip
        found = await self._points(
            name,
            "query",
            {
                "query": _direction(index.metric, vector),
                "using": DENSE,
                "filter": filter_json(where, _in_namespace(namespace)),
                "params": {"hnsw_ef": ef},
                "limit": limit,
                "with_payload": fields,
                "with_vector": [DENSE, SPARSE] if include_values else False,
            },
        )
        points: list[dict[str, Any]] = found["points"]
        euclidean = index.metric == "euclidean"
        scored = [(p, _score(p) * _score(p) if euclidean else _score(p)) for p in points]
        if sparse is not None and points:
            # Pinecone's sparse-dense score over the dense candidates: dense + sparse dot.
            extra = await self._points(
                name,
                "query",
                {
                    "query": _sparse_json(sparse),
                    "using": SPARSE,
                    "filter": {"must": [{"has_id": [p["id"] for p in points]}]},
                    "limit": len(points),
                    "with_payload": False,
                    "with_vector": False,
                },
            )
            bonus = {p["id"]: _score(p) for p in extra["points"]}
            scored = [(p, s + bonus.get(p["id"], 0.0)) for p, s in scored]
            scored.sort(key=lambda pair: -pair[1])
        return [
            self._match(index, point, score, include_values, include_metadata)
            for point, score in scored[:top_k]
        ]

    async def _unranked(
        self, index: IndexRef, name: str, namespace: str, top_k: int, where: Filter,
        sparse: Sparse | None, fields: list[str], include_values: bool,
        include_metadata: bool,
    ) -> list[dict[str, Any]]:  # fmt: skip
        selection = filter_json(where, _in_namespace(namespace))
        vectors: list[str] | bool = [DENSE, SPARSE] if include_values else False
        scored: list[tuple[dict[str, Any], float]]
        if sparse is None:
            body: dict[str, Any] = {"filter": selection, "limit": top_k, "with_payload": fields,
                                    "with_vector": vectors}  # fmt: skip
            points = (await self._points(name, "scroll", body))["points"]
            scored = [(p, 0.0) for p in points]
        else:
            body = {"query": _sparse_json(sparse), "using": SPARSE, "filter": selection,
                    "limit": top_k, "with_payload": fields, "with_vector": vectors}  # fmt: skip
            points = (await self._points(name, "query", body))["points"]
            scored = [(p, _score(p)) for p in points]
            if len(scored) < top_k:
                # Records without a sparse vector (or no overlap) score 0, as on pgvector.
                seen = {p["id"] for p, _ in scored}
                rest = await self._points(
                    name, "scroll",
                    {"filter": selection, "limit": top_k + len(seen), "with_payload": fields,
                     "with_vector": vectors},
                )  # fmt: skip
                scored += [(p, 0.0) for p in rest["points"] if p["id"] not in seen]
        return [
            self._match(index, point, score, include_values, include_metadata)
            for point, score in scored[:top_k]
        ]

    def _match(
        self, index: IndexRef, point: dict[str, Any], score: float, include_values: bool,
        include_metadata: bool,
    ) -> dict[str, Any]:  # fmt: skip
        payload = point.get("payload") or {}
        item: dict[str, Any] = {"id": payload["_id"], "score": reported(score)}
        if include_values:
            item["values"] = self._values(index, point)
            sp = self._sparse(point)
            if sp is not None:
                item["sparseValues"] = sp
        if include_metadata:
            item["metadata"] = payload.get("m") or {}
        return item

    async def list_ids(
        self, index: IndexRef, namespace: str, prefix: str, limit: int, after: str | None,
        where: Filter,
    ) -> tuple[list[str], str | None]:  # fmt: skip
        """Ids of the namespace (with `prefix`, within `where`), `limit` at a time, in the order
        of their point ids (a fixed hash order, not sorted by id). The token is the last id
        returned; the next page starts after that id's point (present or not)."""
        conditions = [_in_namespace(namespace)]
        if prefix:
            conditions.append(field("_id", match={"prefix": prefix}))
        start = point_id(namespace, after) if after is not None else None
        body: dict[str, Any] = {
            "filter": filter_json(where, *conditions),
            "limit": limit + 1 + (1 if start is not None else 0),
            "with_payload": ["_id"],
            "with_vector": False,
        }
        if start is not None:
            body["offset"] = start
        points = (await self._points(index.table_name, "scroll", body))["points"]
        if start is not None and points and points[0]["id"] == start:
            points = points[1:]
        ids = [str(p["payload"]["_id"]) for p in points[: limit + 1]]
        if len(ids) > limit:
            return ids[:limit], encode_token(ids[limit - 1])
        return ids, None

    async def stats(
        self, index: IndexRef, where: Filter, namespaces: frozenset[str]
    ) -> dict[str, int]:
        """Vectors per namespace (within `where`, and `namespaces` when not empty)."""
        conditions = []
        if namespaces:
            conditions.append(field("_ns", match={"any": sorted(namespaces)}))
        body: dict[str, Any] = {"key": "_ns", "limit": STATS_NAMESPACES, "exact": True}
        selection = filter_json(where, *conditions)
        if selection is not None:
            body["filter"] = selection
        found = await self._call("POST", f"/collections/{index.table_name}/facet", body)
        return {str(hit["value"]): int(hit["count"]) for hit in found["hits"] if hit["count"] > 0}
