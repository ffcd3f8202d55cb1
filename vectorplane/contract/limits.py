"""Limits every part agrees on: the plans' limit fields (tenants' models, the gateway's
registry), pgvector's dimension limits (the control plane's DDL), and the data plane's request
limits (the gateway's validation, docs/gateway-openapi.yaml and the README's table)."""

from __future__ import annotations

from typing import Final

from .storage import SPARSE_DIMENSIONS

LIMIT_FIELDS: Final[tuple[str, ...]] = (
    "max_indexes",
    "max_vectors",
    "max_storage_bytes",
    "max_qps",
    "max_dimension",
    "max_upsert_batch",
    "max_metadata_bytes",
)
"""The numeric limits of a plan, each overridable per tenant (the same column names in
`tenants_plan` and `tenants_tenantlimitoverride`)."""

MAX_VECTOR_DIMENSION: Final = 2000
"""pgvector's HNSW index takes `vector` columns of at most this many dimensions."""
MAX_HALFVEC_DIMENSION: Final = 4000
"""... and `halfvec` (float16) columns of at most this many."""

# ---------------------------------------------------------------------------- data plane

MAX_BODY_BYTES: Final = 2 * 1024 * 1024
MAX_BATCH: Final = 1000
MAX_TOP_K: Final = 10_000
MAX_ID_BYTES: Final = 512
MAX_METADATA_BYTES: Final = 40 * 1024
MAX_FETCH_IDS: Final = 1000
MAX_LIST_LIMIT: Final = 1000
MAX_EF_SEARCH: Final = 1000
MAX_NAMESPACE_BYTES: Final = 512
MAX_SPARSE_INDEX: Final = SPARSE_DIMENSIONS - 1
"""Sparse indices are 0..MAX_SPARSE_INDEX (pgvector's sparsevec has at most 1e9 dimensions)."""
MAX_SPARSE_NONZEROS: Final = 16_000
"""Non-zero entries of one sparse vector: pgvector's sparsevec limit, applied on every engine."""
MAX_TEXT_BYTES: Final = 128 * 1024
"""UTF-8 bytes of a record's full-text `text`. PostgreSQL caps a tsvector at 1 MiB of lexemes
and positions; compound words (`ab-cd` is indexed as `ab-cd`, `ab` and `cd`), URLs and
lower-casing that lengthens a letter make a crafted text's tsvector up to ~2.75x its size
(measured: such texts fail from ~380 KB), so an eighth of the cap leaves a wide margin
(gateway/tests/test_text_limit.py tries crafted texts against the real server)."""
FLOAT32_BOUND: Final = (2 - 2**-24) * 2**127
"""A double rounds to a finite float32 (pgvector's and Qdrant's storage) iff |x| is below
this (halfway between float32's largest value, 3.4028234663852886e38, and 2^128)."""
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
