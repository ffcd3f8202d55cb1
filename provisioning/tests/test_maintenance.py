"""ANALYZE after large writes (`provisioning.maintenance.indexes_analyze`): a freshly loaded
index table gets statistics — and the planner then ranks by its HNSW index, not an exact
scan — while a table with few changes is left to autovacuum."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from provisioning import maintenance, tasks
from provisioning.models import Index
from provisioning.storage import shared_tier
from tenants.models import Tenant
from vectorplane import pgsql

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants/acme/indexes"


def _index(owner: Any, name: str) -> Index:
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(BASE, {"name": name, "dimension": 8}, format="json")
    assert response.status_code == 201, response.json()
    index: Index = Index.objects.unscoped().get(pk=response.json()["id"])
    return index


def _load(index: Index, n: int) -> None:
    rng = random.Random(n)
    with shared_tier.connect() as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
        with conn.cursor() as cur:
            cur.executemany(
                f'INSERT INTO "{index.schema_name}"."{index.table_name}" '  # noqa: S608 - ours
                "(id, embedding) VALUES (%s, %s::vector)",
                [(f"v{i}", pgsql.vector_text([rng.gauss(0, 1) for _ in range(8)]))
                 for i in range(n)],
            )  # fmt: skip
        conn.commit()
    # The cumulative statistics are flushed when the loading session ends: wait for them.
    deadline = time.monotonic() + 30
    while _stats(index)[0] < n:
        assert time.monotonic() < deadline, "pg_stat_user_tables never saw the load"
        time.sleep(0.05)


def _stats(index: Index) -> tuple[int, bool]:
    """(rows changed since the last ANALYZE, analyzed at all) of the index's table."""
    with shared_tier.connect() as conn:
        row = conn.execute(
            "SELECT n_mod_since_analyze, last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL"
            " FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
            (index.schema_name, index.table_name),
        ).fetchone()
    assert row is not None
    return int(str(row[0])), bool(row[1])


def _plan_uses_hnsw(index: Index) -> bool:
    with shared_tier.connect() as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
        plan = conn.execute(
            f'EXPLAIN SELECT id FROM "{index.schema_name}"."{index.table_name}" '  # noqa: S608
            "WHERE namespace = '' ORDER BY embedding <=> %s::vector LIMIT 10",
            (pgsql.vector_text([0.1] * 8),),
        ).fetchall()
    return f"{index.table_name}_hnsw" in " ".join(str(r[0]) for r in plan)


def test_a_fresh_load_is_analyzed_and_ranked_by_hnsw(owner: Any, tenant: Tenant) -> None:
    loaded = _index(owner, "loaded")
    small = _index(owner, "small")
    _load(loaded, 3000)
    _load(small, 20)
    assert not _plan_uses_hnsw(loaded)  # no statistics: a handful of rows, ranked exactly
    analyzed = tasks.indexes_analyze.apply().get()
    assert analyzed["failed"] == 0 and analyzed["analyzed"] >= 1
    assert _stats(loaded) == (0, True)
    assert _stats(small) == (20, False)  # under VECTORPLANE_ANALYZE_MIN_ROWS: autovacuum's
    assert _plan_uses_hnsw(loaded)
    # Idempotent: nothing stale is left of ours.
    again = maintenance.indexes_analyze()
    assert _stats(loaded) == (0, True) and again["failed"] == 0
