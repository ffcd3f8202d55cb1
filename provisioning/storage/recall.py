"""Measured recall of a pgvector index (the shared tier's or a dedicated cluster's table): exact
neighbours by a sequential scan against the HNSW index's answers, per `hnsw.ef_search` value.
Run by the control plane's worker as the data database's owner acting as the tenant
(`app.tenant_id` under FORCE ROW LEVEL SECURITY, as `shared_tier.drop_index_table` does); no
Django here.

How it measures (README "Measured recall"):

* **queries**: either `sample` stored vectors of the namespace (matching the filter, if any),
  drawn by `ORDER BY random() LIMIT n` over the matching rows — a uniform sample, at the cost of
  one scan of them (TABLESAMPLE would be cheaper but, with a namespace or a filter, can return
  fewer rows than asked and favours rows that share pages), or the vectors the caller gave;
* **statistics**: the table is ANALYZEd first — a freshly loaded table has none, and the
  planner then ranks by an exact scan instead of the HNSW index (the evaluation would measure
  recall 1 everywhere, and the gateway's queries pay exact scans until autovacuum runs); each
  ef_search value's result says whether its plan used the HNSW index (`hnsw_used`, from
  EXPLAIN of the first query);
* **exact answer**: the same query with `enable_indexscan = off` (the HNSW index is an index
  scan; a bitmap scan of the metadata index may still serve the filter, which stays exact);
* **HNSW answer**: per ef_search value, `hnsw.ef_search = max(ef_search, k)` as the gateway
  sets it, and `hnsw.iterative_scan = relaxed_order` when a filter is given (as the gateway's
  filtered queries do), re-sorted by distance;
* a **sampled** vector always finds itself: both answers are asked for k + 1 neighbours and the
  vector's own id is removed from both, so recall is over its k other neighbours;
* **recall@k** of a query: the share of the exact answer's k neighbours the HNSW answer found,
  where an HNSW neighbour at a distance not greater than the exact k-th distance counts too
  (ties: two rows at the same distance are equally right); the mean over the queries whose
  exact answer is not empty. Latency is the wall time of the HNSW query (execute and fetch)
  seen from the worker, p50 and p95 by nearest rank.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from vectorplane.pgfilters import Compiled
from vectorplane.pgsql import DISTANCE_OPERATOR

# pgvector's distance operator per metric (the same the gateway ranks with).
_TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Target:
    """The table to measure."""

    tenant_id: uuid.UUID
    schema: str
    table: str
    metric: str
    vector_type: str


@dataclass
class EfResult:
    ef_search: int
    effective_ef_search: int
    recalls: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    hnsw_used: bool | None = None

    def summary(self) -> dict[str, object]:
        return {
            "ef_search": self.ef_search,
            "effective_ef_search": self.effective_ef_search,
            "hnsw_used": self.hnsw_used,
            "recall": round(sum(self.recalls) / len(self.recalls), 6) if self.recalls else None,
            "queries": len(self.recalls),
            "p50_ms": percentile(self.latencies_ms, 0.50),
            "p95_ms": percentile(self.latencies_ms, 0.95),
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..1), rounded to µs; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 3)


def recall_of(
    exact: Sequence[tuple[str, float]], found: Sequence[tuple[str, float]]
) -> float | None:
    """Recall of `found` against `exact` (each: (id, distance), nearest first, at most k):
    None when `exact` is empty (nothing to find)."""
    if not exact:
        return None
    wanted = {row_id for row_id, _ in exact}
    bound = exact[-1][1]
    bound += _TIE_TOLERANCE * max(1.0, abs(bound))
    hits = sum(1 for row_id, d in found if row_id in wanted or d <= bound)
    return min(hits, len(exact)) / len(exact)


class Evaluator:
    """Measures one table. `progress(done, total)` is called after each query."""

    def __init__(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        target: Target,
        *,
        namespace: str,
        where: Compiled,
        top_k: int,
    ) -> None:
        # Never prepared: PostgreSQL keeps a prepared statement's plan across changes of the
        # planner settings, so the exact scan's plan (index scans off) would be reused for the
        # HNSW queries, and the other way round (psycopg prepares after 5 executions).
        conn.prepare_threshold = None
        self.conn = conn
        self.target = target
        self.namespace = namespace
        self.where = where
        self.top_k = top_k
        self.table = sql.Identifier(target.schema, target.table)
        self.operator = sql.SQL(DISTANCE_OPERATOR[target.metric])
        self.cast = sql.SQL(target.vector_type)

    def _enter(self) -> None:
        self.conn.execute(
            "SELECT set_config('app.tenant_id', %s, true)", (str(self.target.tenant_id),)
        )

    def analyze(self) -> None:
        """Fresh planner statistics for the table (ANALYZE reads a sample of at most 30,000
        rows per the default statistics target): without any, a freshly loaded table is
        estimated at a handful of rows and ranked by an exact scan instead of its HNSW index,
        which would measure recall 1 for every ef_search."""
        with self.conn.transaction():
            self.conn.execute(sql.SQL("ANALYZE {}").format(self.table))

    def sample(self, n: int) -> list[tuple[str, str]]:
        """(id, vector text) of `n` stored vectors drawn uniformly (fewer if fewer match)."""
        query = sql.SQL(
            "SELECT id, embedding::text FROM {} WHERE namespace = %s AND {} "
            "ORDER BY random() LIMIT %s"
        ).format(self.table, self.where.sql)
        with self.conn.transaction():
            self._enter()
            rows = self.conn.execute(query, [self.namespace, *self.where.params, n]).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def _query(self) -> sql.Composed:
        return sql.SQL(
            "WITH c AS MATERIALIZED (SELECT id, embedding {op} %s::{cast} AS d FROM {table} "
            "WHERE namespace = %s AND {where} ORDER BY embedding {op} %s::{cast} LIMIT %s) "
            "SELECT id, d FROM c ORDER BY d, id"
        ).format(op=self.operator, cast=self.cast, table=self.table, where=self.where.sql)

    def _params(self, vector: str, limit: int) -> list[object]:
        return [vector, self.namespace, *self.where.params, vector, limit]

    def _neighbours(self, vector: str, limit: int) -> list[tuple[str, float]]:
        rows = self.conn.execute(self._query(), self._params(vector, limit)).fetchall()
        return [(str(r[0]), float(str(r[1]))) for r in rows]

    def _uses_hnsw(self, vector: str, limit: int) -> bool:
        """Whether the planner ranks this query with the table's HNSW index (under the
        transaction's settings)."""
        explain = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(self._query())
        row = self.conn.execute(explain, self._params(vector, limit)).fetchone()
        index_name = f"{self.target.table}_hnsw"
        return row is not None and f'"Index Name": "{index_name}"' in json.dumps(row[0])

    def measure(
        self,
        queries: Sequence[tuple[str | None, str]],
        ef_values: Sequence[int],
        progress: Callable[[int, int], None],
    ) -> tuple[list[EfResult], list[float]]:
        """Per ef_search value its recalls and latencies, and the exact scans' latencies.
        `queries`: (own id to leave out, or None; vector text)."""
        k = self.top_k
        filtered = not self.where.is_true
        # Sampled vectors are asked for one more neighbour: their own id is dropped.
        limit = k + 1 if any(own_id is not None for own_id, _ in queries) else k
        results = [EfResult(ef, max(ef, limit)) for ef in ef_values]
        exact_ms: list[float] = []
        for done, (own_id, vector) in enumerate(queries, start=1):

            def drop_own(
                rows: list[tuple[str, float]], own: str | None = own_id
            ) -> list[tuple[str, float]]:
                return [r for r in rows if r[0] != own][:k]

            with self.conn.transaction():
                self._enter()
                self.conn.execute("SELECT set_config('enable_indexscan', 'off', true)")
                started = time.perf_counter()
                exact = drop_own(self._neighbours(vector, limit))
                exact_ms.append((time.perf_counter() - started) * 1000)
                self.conn.execute("SELECT set_config('enable_indexscan', 'on', true)")
                self.conn.execute(
                    "SELECT set_config('hnsw.iterative_scan', %s, true)",
                    ("relaxed_order" if filtered else "off",),
                )
                for result in results:
                    self.conn.execute(
                        "SELECT set_config('hnsw.ef_search', %s, true)",
                        (str(result.effective_ef_search),),
                    )
                    if result.hnsw_used is None:
                        result.hnsw_used = self._uses_hnsw(vector, limit)
                    started = time.perf_counter()
                    found = drop_own(self._neighbours(vector, limit))
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    recall = recall_of(exact, found)
                    if recall is not None:
                        result.recalls.append(recall)
            progress(done, len(queries))
        return results, exact_ms
