"""`manage.py shared_tier_access`: bring every pgvector index table (the shared tier's and each
dedicated cluster's) to the two walls of `provisioning/storage/shared_tier.py` — the tenant's
role with the rights, the gateway's login role with none, both policies. Idempotent: run it once
after upgrading from a version whose gateway role had rights on the tables itself."""

from __future__ import annotations

from typing import Any

import psycopg
from django.core.management.base import BaseCommand

from provisioning.connections import cluster_pg_url
from provisioning.models import Index
from provisioning.storage import shared_tier
from tenants.models import Engine


class Command(BaseCommand):
    help = "Apply the per-tenant roles, grants and policies to every pgvector index table."

    def handle(self, *args: Any, **options: Any) -> None:
        done = failed = 0
        # Every tenant's indexes: an operator's command (tenants/scoping.py allows it).
        indexes = Index.objects.unscoped().filter(engine=Engine.PGVECTOR).select_related("cluster")
        for index in indexes.order_by("cluster_id", "tenant_id"):
            url = cluster_pg_url(index.cluster) if index.cluster is not None else None
            try:
                with shared_tier.connect(url) as conn:
                    exists = conn.execute(
                        "SELECT to_regclass(%s)", (f'"{index.schema_name}"."{index.table_name}"',)
                    ).fetchone()
                    if exists is None or exists[0] is None:
                        continue  # not created yet, or dropped: nothing to bring over
                    shared_tier.tenant_access_apply(conn, index.tenant_id, index.id)
                    conn.commit()
                done += 1
            except psycopg.Error as exc:
                failed += 1
                self.stderr.write(f"{index.tenant_id}/{index.name}: {exc}")
        self.stdout.write(f"shared tier access: {done} index tables brought over, {failed} failed")
