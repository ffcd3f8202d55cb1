"""Filtered queries on GloVe 400k x 50 (1% selectivity): the two strategies and their knobs.

    .venv/bin/python bench/dp_filters.py            # ~4 min
    .venv/bin/python bench/dp_filters.py --glove-limit 50000 --queries 50   # quick look

A follow-up to `bench/dataplane.py recall`, same set-up: a private embedded PostgreSQL, the
index made through the services, GloVe loaded with binary COPY, 1% of the records tagged
`{"rare": true}`, and queries sent as the gateway's database role (row-level security on), with
the same SQL as `gateway.backends.pgvector.PgvectorStore.query`. It measures, with direct SQL only:

1. the HNSW iterative scan (the gateway's default) at ef_search 100 for several
   `hnsw.max_scan_tuples` (pgvector's default 20,000 bounds how far the scan walks);
2. the exact ranking (`enable_indexscan` off) as the gateway's role, then again after a
   superuser marks `jsonb_contains` LEAKPROOF. Under row-level security PostgreSQL uses an
   operator as an index condition only if it is leakproof, so without that the metadata GIN
   index is never used for the gateway's filters and every filtered exact query reads the
   whole table;
3. EXPLAIN ANALYZE of each.

It writes `bench/results/dataplane_filters.json` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataplane as dp

from vectorplane import config
from vectorplane.pgfilters import compile_filter
from vectorplane.pgsql import vector_text


def explain(url: str, q: dp.DirectQuery, qtext: str, settings: dict[str, str]) -> dict[str, Any]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.execute(dp.DirectQuery.SET, (str(q.index.tenant_id), "100", settings["iterative"]))
        for name, value in settings.items():
            if name != "iterative":
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        explain_sql = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(q.query)
        row = conn.execute(explain_sql, q.params(qtext)).fetchone()
        conn.rollback()
    assert row is not None
    plan = row[0][0]
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        name = node["Node Type"]
        if "Index Name" in node:
            name += " (hnsw)" if node["Index Name"].endswith("_hnsw") else " (metadata GIN)"
        nodes.append(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"nodes": " > ".join(nodes), "execution_ms": round(plan["Execution Time"], 2)}


async def measure(
    url: str, q: dp.DirectQuery, texts: list[str], truth: dp.Ints, clients: int,
    settings: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    conns = [
        await psycopg.AsyncConnection.connect(url, autocommit=False, prepare_threshold=5)
        for _ in range(clients)
    ]
    iterative = settings["iterative"]
    extra = [(k, v) for k, v in settings.items() if k != "iterative"]

    async def run(conn: psycopg.AsyncConnection[Any], qtext: str) -> list[str]:
        async with conn.pipeline():
            await conn.execute(dp.DirectQuery.SET, (str(q.index.tenant_id), "100", iterative))
            for name, value in extra:
                await conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            cursor = await conn.execute(q.query, q.params(qtext))
        rows = await cursor.fetchall()
        await conn.rollback()
        return [r[0] for r in rows]

    def make(conn: psycopg.AsyncConnection[Any]) -> dp.Call:
        async def call(i: int) -> list[str] | None:
            return await run(conn, texts[i])

        return call

    calls = [make(c) for c in conns]
    try:
        await dp.each_once(calls, min(len(texts), 20))
        lat, wall, found = await dp.each_once(calls, len(texts))
    finally:
        for conn in conns:
            await conn.close()
    s = dp.Sample.of("direct", clients, lat, wall)
    return {"qps": s.qps, "p50_ms": s.p50_ms, "p95_ms": s.p95_ms,
            "recall_at_10": round(dp.recall_at(found, truth, 10), 4)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/dp_filters.py", description=__doc__.split("\n")[0])
    parser.add_argument("--glove-limit", type=int, default=0)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-scan-tuples", type=dp.int_list, default=[20_000, 50_000, 200_000])
    parser.add_argument("--output", type=Path, default=dp.RESULTS_DIR / "dataplane_filters.json")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    vectors = dp.glove(args.glove_limit or None)
    rng = np.random.default_rng(42)  # the same split and tags as dataplane.py recall
    held = rng.choice(len(vectors), 1000, replace=False)
    keep = np.setdiff1d(np.arange(len(vectors)), held)
    queries, data = vectors[held][: args.queries], vectors[keep]
    n = len(data)
    rare = np.sort(rng.choice(n, max(10, n // 100), replace=False))
    meta = np.full(n, b"{}".ljust(13), dtype="S13")
    meta[rare] = b'{"rare":true}'
    truth = dp.exact_topk(data, queries, 10, subset=rare)
    texts = [vector_text(q.tolist()) for q in queries]
    out: dict[str, Any] = {"meta": {**dp.machine(), "vectors": n, "queries": len(queries),
                                    "clients": args.clients, "matches": len(rare)}}  # fmt: skip
    rows: list[dict[str, Any]] = []
    try:
        with dp.Platform("filters", keep=args.keep) as plat:
            out["versions"] = plat.versions()
            (index,), _ = plat.tenant("bench-filters", [{"name": "glove", "dimension": 50}])
            out["load"] = vars(dp.bulk_load(plat.owner_url, index, dp.make_ids(0, n), data, meta))
            where = compile_filter(dp.RARE_FILTER)
            q = dp.DirectQuery(index, where)
            cases: list[tuple[str, dict[str, str]]] = [
                (f"HNSW iterative scan, max_scan_tuples {m:,}",
                 {"iterative": "relaxed_order", "hnsw.max_scan_tuples": str(m)})
                for m in args.max_scan_tuples
            ]  # fmt: skip
            exact = {"iterative": "off", "enable_indexscan": "off"}
            cases.append(("exact ranking, jsonb_contains as shipped (not leakproof)", exact))
            for label, settings in cases:
                dp.log(label)
                row = {
                    "case": label,
                    **asyncio.run(
                        measure(plat.gateway_url, q, texts, truth, args.clients, settings)
                    ),
                }
                row["plan"] = explain(plat.gateway_url, q, texts[0], settings)
                rows.append(row)
                dp.log(f"  {row}")
            with plat.pg.superuser_connect(config.EMBEDDED_DATA_DB_NAME) as conn:
                conn.execute("ALTER FUNCTION jsonb_contains(jsonb, jsonb) LEAKPROOF")
            label = "exact ranking, jsonb_contains marked LEAKPROOF (superuser)"
            dp.log(label)
            row = {
                "case": label,
                **asyncio.run(measure(plat.gateway_url, q, texts, truth, args.clients, exact)),
            }
            row["plan"] = explain(plat.gateway_url, q, texts[0], exact)
            rows.append(row)
            dp.log(f"  {row}")
    except dp.BenchError as exc:
        print(f"bench/dp_filters.py: error: {exc}", file=sys.stderr)
        return 1
    out["rows"] = rows
    out["meta"]["runtime_seconds"] = round(time.monotonic() - started, 1)
    dp.write_json(args.output, out)
    print(f"GloVe {n:,} x 50, filter matches {len(rare):,} ({len(rare) / n:.1%}); "
          f"{len(queries)} queries, {args.clients} clients, ef_search 100, direct SQL as the "
          "gateway's role\n")  # fmt: skip
    print("| strategy | recall@10 | q/s | p50 ms | plan (EXPLAIN ANALYZE, one query) |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['case']} | {r['recall_at_10']:.3f} | {r['qps']:.0f} | {r['p50_ms']:.1f} | "
              f"{r['plan']['nodes']} ({r['plan']['execution_ms']} ms) |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
