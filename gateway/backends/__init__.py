"""The engines behind the gateway, behind one typed interface (`VectorStore`).

A backend is one engine's store: `pgvector.PgvectorStore` (the shared tier, and each dedicated
pgvector cluster) and `qdrant.QdrantStore` (each dedicated Qdrant cluster). The operations layer
(`gateway/operations.py`) validates a request (`gateway/validation.py`) and calls the same
methods on either; the conformance suite (`gateway/tests/test_gateway_*.py`) runs every test on
each. A backend:

- takes the kernel's parsed filters (`vectorplane.contract.filters.Filter`) and compiles them
  its own way (SQL, a Qdrant payload filter), caching what it compiled on the filter;
- raises `BackendUnavailable` when its engine does not answer (down, restarting, overloaded past
  its timeout) — the client should retry: 503 — and nothing else of its engine's errors: an
  error the request caused was refused by validation first, so anything else is a bug (500);
- raises the domain errors below (quota, row guard, metadata size, an unsupported request).

Nothing here imports an engine's client: `gateway.app` imports no psycopg, aiohttp or
qdrant-client type (the backends do, each its own).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from vectorplane.contract.filters import EMPTY, Filter

Sparse: TypeAlias = tuple[list[int], list[float]]
"""A sparse vector as validated: indices (sorted, unique) and their values."""
Match: TypeAlias = dict[str, Any]
"""A query match, in Pinecone's shape: `id`, `score`, and `values`/`sparseValues`/`metadata`
when asked for."""
Fetched: TypeAlias = dict[str, Any]
"""A fetched record: `id`, `values`, `sparse` (`{"indices", "values"}` or None), `metadata`."""


@dataclass(frozen=True)
class Record:
    id: str
    values: list[float]
    sparse: Sparse | None
    metadata: dict[str, Any] | None
    text: str | None = None
    # The metadata as JSON, serialised once by validation (its size is checked on it).
    metadata_json: bytes | None = None


class IndexRef(Protocol):
    """What a backend needs of an index (the registry's `IndexInfo`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def dimension(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def vector_type(self) -> str: ...
    @property
    def text_field(self) -> bool: ...
    @property
    def schema_name(self) -> str: ...
    @property
    def table_name(self) -> str: ...


class VectorStore(Protocol):
    """One engine's store of indexes. Every method works within one namespace of one index
    and within `where`/`guard` (a key's row filter, and the request's filter)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def upsert(
        self, index: IndexRef, namespace: str, records: list[Record], *, max_vectors: int,
        guard: Filter = EMPTY,
    ) -> int:  # fmt: skip
        """Insert or replace (the last occurrence of an id wins); the number written. Raises
        QuotaExceeded (writing nothing) past `max_vectors` for the tenant, RowFilterViolation
        (writing nothing) when an id exists with metadata outside `guard`."""
        ...

    async def update(
        self, index: IndexRef, namespace: str, record_id: str, *, values: list[float] | None,
        sparse: Sparse | None, set_metadata: dict[str, Any] | None, guard: Filter,
        new_metadata_check: Callable[[Mapping[str, object]], bool] | None = None,
        max_metadata_bytes: int | None = None,
    ) -> bool:  # fmt: skip
        """Update one record within `guard`; whether one was updated. RowFilterViolation when
        the merged metadata fails `new_metadata_check`, MetadataTooLarge past the size."""
        ...

    async def delete(
        self, index: IndexRef, namespace: str, *, ids: list[str] | None = None,
        where: Filter = EMPTY,
    ) -> int:  # fmt: skip
        """Delete these ids (or, ids None, every record) within `where`; how many."""
        ...

    async def fetch(
        self, index: IndexRef, namespace: str, ids: list[str], where: Filter
    ) -> list[Fetched]: ...

    async def vector_of(
        self, index: IndexRef, namespace: str, record_id: str, where: Filter
    ) -> list[float] | None: ...

    async def query(
        self, index: IndexRef, namespace: str, vector: list[float], top_k: int, where: Filter,
        *, ef_search: int, include_values: bool, include_metadata: bool,
        sparse: Sparse | None = None, text: str | None = None,
    ) -> list[Match]:  # fmt: skip
        """The `top_k` nearest within `where`, Pinecone's scores. An all-zero `vector` ranks
        nothing: the filter's matches, score 0 (or ranked by `sparse` alone)."""
        ...

    async def list_ids(
        self, index: IndexRef, namespace: str, prefix: str, limit: int, after: str | None,
        where: Filter,
    ) -> tuple[list[str], str | None]: ...  # fmt: skip

    async def stats(
        self, index: IndexRef, where: Filter, namespaces: frozenset[str]
    ) -> dict[str, int]: ...


# ---------------------------------------------------------------------------- errors


class BackendUnavailable(Exception):
    """The engine does not answer (connection refused or lost, a pool or request timeout, the
    server shutting down, overloaded): the request may succeed if retried."""


class QuotaExceeded(Exception):
    def __init__(self, current: int, maximum: int) -> None:
        super().__init__(f"{current} of {maximum}")
        self.current = current
        self.maximum = maximum


class RowFilterViolation(Exception):
    pass


class MetadataTooLarge(Exception):
    def __init__(self, size: int, maximum: int) -> None:
        super().__init__(f"{size} > {maximum}")
        self.size = size
        self.maximum = maximum


class UnsupportedOnEngine(Exception):
    """The request is valid, but this engine cannot answer it with the platform's semantics
    (HTTP 400 `unsupported_on_engine`: never a silently different answer)."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


# ---------------------------------------------------------------------------- shared helpers

SCORE_BOUND = 3.4028234663852886e38


def reported(score: float) -> float:
    """A score as JSON can carry it: the engines compute in float32, so a dot product or
    distance of vectors near float32's limit overflows to infinity; it is reported as
    ±3.4028234663852886e38 (float32's largest value), and NaN (infinity minus infinity in a
    sparse-dense sum) as 0."""
    if score != score:
        return 0.0
    return max(-SCORE_BOUND, min(SCORE_BOUND, score))


def encode_token(value: str) -> str:
    """A list pagination token: the last id of the page, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    """The id a list token holds. Raises ValueError for anything `encode_token` did not make:
    only the URL-safe alphabet (a stray character is an error, not skipped), UTF-8 inside."""
    if not token.isascii():
        raise ValueError("not base64")
    padded = (token + "=" * (-len(token) % 4)).encode()
    return base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
