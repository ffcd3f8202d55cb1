"""Usage metering: counted in the gateway's memory per (index, hour), flushed to the control
plane's `provisioning_usagerecord` in one batched upsert every `interval` seconds and at
shutdown, with the latency histogram of the answered requests per (index, hour, bucket)
(`provisioning_latencyrecord`, buckets of `vectorplane.contract.latency`) and the refused
requests per (tenant, hour, index, error code, status) (`provisioning_errorrecord`) in the same
transaction. A flush that fails is merged back and retried, so nothing is lost while the process
lives; a crash (SIGKILL) loses at most the last interval's counts (5 s by default)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from vectorplane.contract.latency import bucket_of

from .registry import IndexInfo

logger = logging.getLogger("vectorplane.gateway.metering")

FIELDS = ("requests", "read_units", "write_units", "queries", "vectors_written", "vectors_deleted")
_Key = tuple[uuid.UUID, uuid.UUID, str, datetime]
_LatencyKey = tuple[uuid.UUID, uuid.UUID, str, datetime, int]
_ErrorKey = tuple[uuid.UUID, str, datetime, str, int]

_LATENCY_UPSERT = (
    "INSERT INTO provisioning_latencyrecord (tenant_id, index_id, index_name, hour, bucket, "
    "requests) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (index_id, hour, bucket) DO UPDATE "
    "SET requests = provisioning_latencyrecord.requests + EXCLUDED.requests"
)
_ERROR_UPSERT = (
    "INSERT INTO provisioning_errorrecord (tenant_id, index_name, hour, code, status, requests) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, hour, index_name, code, status) "
    "DO UPDATE SET requests = provisioning_errorrecord.requests + EXCLUDED.requests"
)


def _this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class Meter:
    def __init__(self, pool: AsyncConnectionPool[Any], *, interval: float = 5.0) -> None:
        self.pool = pool
        self.interval = interval
        self.counts: dict[_Key, list[int]] = defaultdict(lambda: [0] * len(FIELDS))
        self.latency: dict[_LatencyKey, int] = defaultdict(int)
        self.errors: dict[_ErrorKey, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None
        self.flushed_rows = 0

    def record(self, index: IndexInfo, *, seconds: float | None = None, **amounts: int) -> None:
        """Count a request's usage, and its latency (`seconds`) when it was answered."""
        hour = _this_hour()
        row = self.counts[(index.tenant_id, index.id, index.name, hour)]
        for i, name in enumerate(FIELDS):
            row[i] += amounts.get(name, 0)
        if seconds is not None:
            self.latency[(index.tenant_id, index.id, index.name, hour, bucket_of(seconds))] += 1

    def record_error(self, tenant_id: uuid.UUID, index_name: str, code: str, status: int) -> None:
        """Count a refused request of an authenticated key: its tenant, the index it reached
        ("" when none was resolved: the name is then the caller's, not a fact), code and
        status. Bounded: the codes are the gateway's own, the index names the tenant's."""
        self.errors[(tenant_id, index_name, _this_hour(), code, status)] += 1

    async def flush(self) -> int:
        if not self.counts and not self.latency and not self.errors:
            return 0
        pending, self.counts = self.counts, defaultdict(lambda: [0] * len(FIELDS))
        latency, self.latency = self.latency, defaultdict(int)
        errors, self.errors = self.errors, defaultdict(int)
        rows = [(t, i, n, h, *c) for (t, i, n, h), c in pending.items()]
        latency_rows = [(*key, count) for key, count in latency.items()]
        error_rows = [(*ekey, count) for ekey, count in errors.items()]
        columns = [sql.Identifier(f) for f in FIELDS]
        query = sql.SQL(
            "INSERT INTO provisioning_usagerecord (tenant_id, index_id, index_name, hour, {cols}) "
            "VALUES ({marks}) ON CONFLICT (index_id, hour) DO UPDATE SET {updates}"
        ).format(
            cols=sql.SQL(", ").join(columns),
            marks=sql.SQL(", ").join(sql.Placeholder() * (4 + len(FIELDS))),
            updates=sql.SQL(", ").join(
                sql.SQL("{c} = provisioning_usagerecord.{c} + EXCLUDED.{c}").format(c=c)
                for c in columns
            ),
        )
        try:
            async with self.pool.connection() as conn:
                conn_: AsyncConnection[Any] = conn
                async with conn_.transaction(), conn_.cursor() as cur:
                    if rows:
                        await cur.executemany(query, rows)
                    if latency_rows:
                        await cur.executemany(_LATENCY_UPSERT, latency_rows)
                    if error_rows:
                        await cur.executemany(_ERROR_UPSERT, error_rows)
        except Exception:
            # Put the counts back: they go out with the next flush.
            for key, values in pending.items():
                row = self.counts[key]
                for i, v in enumerate(values):
                    row[i] += v
            for lkey, count in latency.items():
                self.latency[lkey] += count
            for ekey, count in errors.items():
                self.errors[ekey] += count
            raise
        self.flushed_rows += len(rows)
        return len(rows)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("usage flush failed; will retry")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
