"""The evaluate API's measurement (`provisioning.storage.recall`) on a scratch index table of
random Gaussian vectors: recall@k and p50/p95 per ef_search, against the exact scan.

    .venv/bin/python -m vectorplane exec -- .venv/bin/python bench/recall_eval.py
    .venv/bin/python -m vectorplane exec -- .venv/bin/python bench/recall_eval.py \\
        --rows 20000 --dimension 64 --sample 200 --ef-search 10 40 100 200

The table is made by the shared tier's own DDL (`shared_tier.create_index_table`: HNSW, RLS)
in the data database `python -m vectorplane exec` points at, for a throwaway tenant id, loaded
with one multi-row INSERT per 1,000 vectors, measured exactly as an evaluation does (ANALYZE,
`ORDER BY random()` sample, own id left out) and dropped. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioning.storage import recall, shared_tier
from vectorplane import pgsql
from vectorplane.contract.storage import schema_name, table_name
from vectorplane.pgfilters import compile_filter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--metric", default="euclidean", choices=sorted(pgsql.DISTANCE_OPERATOR))
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[10, 40, 100, 200])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    tenant_id, index_id = uuid.uuid4(), uuid.uuid4()
    spec = shared_tier.IndexSpec(tenant_id, index_id, args.dimension, "vector", args.metric,
                                 args.m, args.ef_construction, False)  # fmt: skip
    table = f'"{schema_name(tenant_id)}"."{table_name(index_id)}"'
    rng = random.Random(args.seed)
    with shared_tier.connect() as conn:
        shared_tier.create_index_table(conn, spec)
        conn.commit()
        try:
            started = time.perf_counter()
            for first in range(0, args.rows, 1000):
                batch = range(first, min(first + 1000, args.rows))
                values = ", ".join(["(%s, %s::vector)"] * len(batch))
                params: list[object] = []
                for i in batch:
                    vector = [rng.gauss(0, 1) for _ in range(args.dimension)]
                    params += [f"v{i}", pgsql.vector_text(vector)]
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
                conn.execute(f"INSERT INTO {table} (id, embedding) VALUES {values}",  # noqa: S608
                             params)  # fmt: skip
                conn.commit()
            loaded = time.perf_counter() - started
            target = recall.Target(tenant_id, schema_name(tenant_id), table_name(index_id),
                                   args.metric, "vector")  # fmt: skip
            evaluator = recall.Evaluator(conn, target, namespace="", where=compile_filter({}),
                                         top_k=args.top_k)  # fmt: skip
            evaluator.analyze()
            queries = evaluator.sample(args.sample)
            started = time.perf_counter()
            per_ef, exact_ms = evaluator.measure(queries, args.ef_search, lambda d, t: None)
            measured = time.perf_counter() - started
        finally:
            conn.rollback()
            shared_tier.drop_index_table(conn, tenant_id=tenant_id, index_id=index_id)
            conn.commit()
    print(json.dumps({
        "rows": args.rows, "dimension": args.dimension, "metric": args.metric, "m": args.m,
        "ef_construction": args.ef_construction, "queries": len(queries), "top_k": args.top_k,
        "load_seconds": round(loaded, 1), "measure_seconds": round(measured, 1),
        "exact_p50_ms": recall.percentile(exact_ms, 0.5),
        "exact_p95_ms": recall.percentile(exact_ms, 0.95),
        "by_ef_search": [r.summary() for r in per_ef],
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
