"""Collections of indexes on a tenant's dedicated Qdrant cluster, run by the control plane.

One collection per index, `i_<index id hex>`, holding every namespace of the index (the `_ns`
payload field, indexed as the tenant field). Points carry the payload layout described in
gateway/backends/qdrant_filters.py and docs/qdrant-engine.md:

- a named dense vector `dense` (size = the index's dimension; cosine / euclidean / dotproduct
  become Cosine / Euclid / Dot; HNSW m and ef_construct from the index);
- a named sparse vector `sparse` (Pinecone's sparse values; sparse-dense queries need the
  dotproduct metric, which the gateway checks, but records may carry sparse values on any
  index, as on the shared tier);
- keyword payload indexes on `_ns` (is_tenant), `_id` (with prefix matching, for list),
  `_keys` ($exists) and `_eq` (every equality filter).

Plain functions over a sync `QdrantClient`, no Django: callable from a Celery task or a script.
Both are idempotent; both raise `QdrantUnavailable` when the cluster cannot be reached, answers
a server error or refuses the key (worth retrying), and qdrant-client's `UnexpectedResponse`
for any other refusal (the spec itself is wrong).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from vectorplane.contract.storage import DENSE, SPARSE, collection_name

_DISTANCE: Final = {
    "cosine": models.Distance.COSINE,
    "euclidean": models.Distance.EUCLID,
    "dotproduct": models.Distance.DOT,
}

# (field, index parameters): what every collection's filters and lookups rely on.
PAYLOAD_INDEXES: Final[tuple[tuple[str, models.KeywordIndexParams], ...]] = (
    ("_ns", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)),
    ("_id", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, prefix=True)),
    ("_keys", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD)),
    ("_eq", models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD)),
)


_P = ParamSpec("_P")
_R = TypeVar("_R")


class QdrantUnavailable(Exception):
    """The cluster did not answer, answered a server error, or refused the API key."""


def _reachable(function: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return function(*args, **kwargs)
        except ResponseHandlingException as exc:  # the transport failed (qdrant-client's wrap)
            raise QdrantUnavailable(str(exc)) from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and (
                exc.status_code >= 500 or exc.status_code in (401, 403)
            ):
                raise QdrantUnavailable(f"{exc.status_code}: {exc.content!r}") from exc
            raise

    return wrapper


@dataclass(frozen=True)
class QdrantIndexSpec:
    index_id: uuid.UUID
    tenant_id: uuid.UUID
    dimension: int
    metric: str  # cosine | euclidean | dotproduct
    hnsw_m: int
    hnsw_ef_construction: int
    text_field: bool = False

    def __post_init__(self) -> None:
        if self.metric not in _DISTANCE:
            raise ValueError(f"unknown metric {self.metric!r}")
        if self.dimension < 1:
            raise ValueError("dimension must be positive")

    @property
    def name(self) -> str:
        return collection_name(self.index_id)


def spec_for(index: Any) -> QdrantIndexSpec:
    """The spec of an index (anything with the `provisioning.models.Index` attributes)."""
    return QdrantIndexSpec(
        index_id=index.id,
        tenant_id=index.tenant_id,
        dimension=index.dimension,
        metric=index.metric,
        hnsw_m=index.hnsw_m,
        hnsw_ef_construction=index.hnsw_ef_construction,
        text_field=index.text_field,
    )


@_reachable
def create_collection(client: QdrantClient, spec: QdrantIndexSpec) -> None:
    """Create the index's collection and its payload indexes; a no-op for what exists.

    An existing collection is not altered (its vectors' size and distance cannot change);
    missing payload indexes are added."""
    name = spec.name
    if not client.collection_exists(name):
        try:
            client.create_collection(
                collection_name=name,
                vectors_config={
                    DENSE: models.VectorParams(size=spec.dimension, distance=_DISTANCE[spec.metric])
                },
                sparse_vectors_config={SPARSE: models.SparseVectorParams()},
                hnsw_config=models.HnswConfigDiff(
                    m=spec.hnsw_m, ef_construct=spec.hnsw_ef_construction
                ),
            )
        except UnexpectedResponse as exc:
            # Created meanwhile by a concurrent (retried) task: fine, it is the same spec.
            if exc.status_code != 409 and not client.collection_exists(name):
                raise
    have = client.get_collection(name).payload_schema or {}
    for field, params in PAYLOAD_INDEXES:
        if field not in have:
            client.create_payload_index(name, field, field_schema=params, wait=True)


@_reachable
def drop_collection(client: QdrantClient, index_id: uuid.UUID) -> None:
    """Delete the index's collection (every namespace, every point); a no-op when absent."""
    try:
        client.delete_collection(collection_name(index_id))
    except UnexpectedResponse as exc:
        if exc.status_code != 404:
            raise
