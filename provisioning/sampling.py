"""Samples the platform takes of itself: the vectors each index stores, once an hour
(`provisioning.tasks.stored_vectors_sample`, on the beat), for the console's chart and for the
storage that billing charges by GB-hour."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.utils import timezone

from tenants.scoping import tenant_scope

from . import selectors
from .models import IndexStatus, StoredVectorsRecord

logger = logging.getLogger("vectorplane.provisioning.metrics")


def stored_vectors_sample(*, now: datetime | None = None) -> dict[str, int]:
    """One row per ready index for the hour of `now` (default: now), with the vectors it
    stores (`selectors.stored_vectors`: the engines' own counts). Idempotent per index-hour: a
    second sample in the same hour replaces the first. A tenant whose engine does not answer is
    skipped (logged, counted in `failed`) and the others are still sampled; its hour has no
    row, which the chart shows as a gap rather than a zero."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    counts = {"tenants": 0, "indexes": 0, "failed": 0}
    for tenant_id in selectors.tenants_with_indexes():
        try:
            sampled = _sample_tenant(tenant_id, hour=hour, now=now)
        except Exception:  # one tenant's engine down must not stop the others' samples
            logger.exception("stored-vectors sample of tenant %s failed", tenant_id)
            counts["failed"] += 1
            continue
        counts["tenants"] += 1
        counts["indexes"] += sampled
    return counts


def _sample_tenant(tenant_id: uuid.UUID, *, hour: datetime, now: datetime) -> int:
    per_index = selectors.stored_vectors(tenant_id=tenant_id)
    with tenant_scope(tenant_id):
        rows = [
            StoredVectorsRecord(
                tenant_id=tenant_id,
                index_id=index.id,
                index_name=index.name,
                hour=hour,
                vectors=per_index.get(index.id, 0),
                dimension=index.dimension,
                sampled_at=now,
            )
            for index in selectors.index_list().filter(status=IndexStatus.READY)
        ]
        StoredVectorsRecord.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["index_id", "hour"],
            update_fields=["index_name", "vectors", "dimension", "sampled_at"],
        )
    return len(rows)
