"""Where an index's data lives in its engine. The control plane creates these places (DDL,
collections); the gateway reaches them through the names the control plane stored on the
index row (`schema_name`, `table_name`), never by computing them per request; the tenant's
database role (`tenant_role_name`) follows from the tenant's id."""

from __future__ import annotations

import uuid
from typing import Final

DENSE: Final = "dense"
"""The name of a Qdrant point's dense vector."""
SPARSE: Final = "sparse"
"""The name of a Qdrant point's sparse vector."""
SPARSE_DIMENSIONS: Final = 1_000_000_000
"""pgvector's sparsevec dimension of every index (its maximum): sparse indices are
0..SPARSE_DIMENSIONS - 1 on every engine."""


def schema_name(tenant_id: uuid.UUID) -> str:
    """A tenant's PostgreSQL schema on a pgvector cluster (shared or dedicated)."""
    return f"t_{tenant_id.hex}"


def tenant_role_name(tenant_id: uuid.UUID) -> str:
    """A tenant's PostgreSQL role on a pgvector cluster: granted DML on that tenant's tables
    only; the gateway's login role may `SET ROLE` to it (never inherits its rights)."""
    return f"vp_t_{tenant_id.hex}"


def table_name(index_id: uuid.UUID) -> str:
    """An index's table on a pgvector cluster."""
    return f"i_{index_id.hex}"


def collection_name(index_id: uuid.UUID) -> str:
    """An index's collection on a Qdrant cluster."""
    return f"i_{index_id.hex}"
