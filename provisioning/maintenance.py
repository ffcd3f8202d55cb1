"""Upkeep of the data tier that the gateway cannot do (it runs no DDL or maintenance): ANALYZE
of freshly loaded index tables, on the beat (`provisioning.tasks.indexes_analyze`).

There is no bulk-import path in the control plane or the gateway (vectors arrive through the
gateway's upserts, at most 1,000 per request; benchmarks COPY straight into the tables), so
"after a bulk load" means: whenever an index table has changed a lot since its statistics were
taken (`shared_tier.analyze_stale_tables`), in the shared tier and in every ready pgvector
cluster. Below `tasks` in provisioning's import order.
"""

from __future__ import annotations

import logging

import psycopg
from celery import current_app
from kombu.exceptions import KombuError

from vectorplane import config

from . import selectors
from .connections import cluster_pg_url
from .storage import shared_tier

logger = logging.getLogger(__name__)

# `reevaluation.after_large_writes_task`, by name: that module uses the services, which queue
# the tasks of this one.
REEVALUATE_AFTER_WRITES = "provisioning.reevaluation.after_large_writes"


def indexes_analyze() -> dict[str, int]:
    """ANALYZE the stale index tables of every pgvector database; a database that does not
    answer is logged and skipped (counted in `failed`), the others are still visited."""
    min_rows = config.env_int("VECTORPLANE_ANALYZE_MIN_ROWS", 1000)
    fraction = float(config.env_str("VECTORPLANE_ANALYZE_FRACTION", "0.2"))
    urls: list[tuple[str, str | None]] = [("shared tier", None)]
    urls += [(f"cluster {c.id}", cluster_pg_url(c)) for c in selectors.pgvector_clusters_ready()]
    counts = {"databases": 0, "analyzed": 0, "failed": 0, "reevaluations": 0}
    for label, url in urls:
        try:
            with shared_tier.connect(url) as conn:
                conn.autocommit = True
                done = shared_tier.analyze_stale_tables(
                    conn, min_rows=min_rows, fraction=fraction
                )
        except psycopg.Error:
            logger.warning("ANALYZE of %s's index tables failed", label, exc_info=True)
            counts["failed"] += 1
            continue
        if done:
            logger.info("ANALYZE %s: %s", label, ", ".join(done))
        counts["databases"] += 1
        counts["analyzed"] += len(done)
        if done:  # a large write: indexes with a target recall are measured again
            try:
                current_app.tasks[REEVALUATE_AFTER_WRITES].delay(done)
                counts["reevaluations"] += 1
            except (KombuError, OSError):
                logger.warning("could not queue the re-evaluation of %s", done, exc_info=True)
    return counts
