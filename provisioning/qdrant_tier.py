"""Collections of indexes on a tenant's dedicated Qdrant cluster, run by the control plane.

One collection per index, `i_<index id hex>`, holding every namespace of the index (the `_ns`
payload field, indexed as the tenant field). Points carry the payload layout described in
gateway/qdrant_filters.py and docs/qdrant-engine.md:

- a named dense vector `dense` (size = the index's dimension; cosine / euclidean / dotproduct
  become Cosine / Euclid / Dot; HNSW m and ef_construct from the index);
- a named sparse vector `sparse` (Pinecone's sparse values; sparse-dense queries need the
  dotproduct metric, which the gateway checks, but records may carry sparse values on any
  index, as on the shared tier);
- keyword payload indexes on `_ns` (is_tenant), `_id` (with prefix matching, for list),
  `_keys` ($exists) and `_eq` (every equality filter).

Plain functions over a sync `QdrantClient`, no Django: callable from a Celery task or a script.
Both are idempotent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

DENSE: Final = "dense"
SPARSE: Final = "sparse"

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


def collection_name(index_id: uuid.UUID) -> str:
    return f"i_{index_id.hex}"


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


def _missing(exc: UnexpectedResponse) -> bool:
    return exc.status_code == 404


def _exists(client: QdrantClient, name: str) -> bool:
    try:
        client.get_collection(name)
    except UnexpectedResponse as exc:
        if _missing(exc):
            return False
        raise
    return True


def create_collection(client: QdrantClient, spec: QdrantIndexSpec) -> None:
    """Create the index's collection and its payload indexes; a no-op for what exists.

    An existing collection is not altered (its vectors' size and distance cannot change);
    missing payload indexes are added."""
    name = spec.name
    if not _exists(client, name):
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
            if exc.status_code != 409 and not _exists(client, name):
                raise
    have = client.get_collection(name).payload_schema or {}
    for field, params in PAYLOAD_INDEXES:
        if field not in have:
            client.create_payload_index(name, field, field_schema=params, wait=True)


def drop_collection(client: QdrantClient, index_id: uuid.UUID) -> None:
    """Delete the index's collection (every namespace, every point); a no-op when absent."""
    try:
        client.delete_collection(collection_name(index_id))
    except UnexpectedResponse as exc:
        if not _missing(exc):
            raise
