"""What the gateway knows of the control plane: keys, tenants, indexes, limits.

Read from the control-plane database with a read-only role and cached in the process. A
dedicated connection LISTENs on `vectorplane_changes` (row triggers installed by the
`provisioning` migrations) and evicts exactly what changed, so a revoked key, a suspended
tenant or a new index is seen within milliseconds; entries also expire after `ttl` seconds in
case a notification was missed (the listener reconnects and clears everything after an
outage). A cached request runs no control-plane query.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from vectorplane.contract.filters import EMPTY, Filter
from vectorplane.contract.limits import LIMIT_FIELDS

logger = logging.getLogger("vectorplane.gateway.registry")



@dataclass(frozen=True)
class KeyInfo:
    id: uuid.UUID
    prefix: str
    secret_hash: str
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_status: str
    scopes: frozenset[str]
    index_names: frozenset[str]
    namespaces: frozenset[str]
    row_filter: dict[str, Any] | None
    expires_at: datetime | None
    revoke_after: datetime | None
    revoked_at: datetime | None
    # The row filter compiled once per load: ANDed into every read of this key.
    row_guard: Filter = EMPTY
    # Every id the key writes starts with it ("": any id).
    id_prefix: str = ""
    # The tenant's payment state (tenants.models.PaymentState): `payment_required` refuses writes.
    tenant_payment_state: str = "current"


@dataclass(frozen=True)
class IndexInfo:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    dimension: int
    metric: str
    vector_type: str
    ef_search: int
    text_field: bool
    schema_name: str
    table_name: str
    status: str
    engine: str = "pgvector"
    # None: the shared tier; else the dedicated cluster holding the index.
    cluster_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ClusterInfo:
    id: uuid.UUID
    tenant_id: uuid.UUID
    engine: str
    status: str
    endpoint: dict[str, Any]
    credentials_encrypted: str
    generation: int
    # Where it answers, as one string: the gateway remakes a cluster's store when it changes.
    fingerprint: str = ""


@dataclass(frozen=True)
class Limits:
    max_indexes: int
    max_vectors: int
    max_storage_bytes: int
    max_qps: int
    max_dimension: int
    max_upsert_batch: int
    max_metadata_bytes: int


K = TypeVar("K")
V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    value: V
    loaded: float


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    notifications: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Registry:
    def __init__(self, control_url: str, *, ttl: float = 60.0, pool_size: int = 4) -> None:
        self.control_url = control_url
        self.ttl = ttl
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            control_url,
            connection_class=AsyncConnection[DictRow],
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )
        self._keys: dict[str, _Entry[KeyInfo | None]] = {}
        self._indexes: dict[tuple[uuid.UUID, str], _Entry[IndexInfo | None]] = {}
        self._limits: dict[uuid.UUID, _Entry[Limits]] = {}
        self._tenant_slugs: dict[str, _Entry[uuid.UUID | None]] = {}
        self._clusters: dict[uuid.UUID, _Entry[ClusterInfo | None]] = {}
        # Called with a cluster id when its row changes (the gateway drops its connections).
        self.on_cluster_change: Callable[[uuid.UUID], None] | None = None
        self.stats = Stats()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        self._listener = asyncio.create_task(self._listen(), name="registry-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout=10)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.pool.close()

    # ------------------------------------------------------------------ cache plumbing

    def _fresh(self, entry: _Entry[Any] | None) -> bool:
        # Without a live LISTEN connection no cached entry is trusted.
        return (
            entry is not None
            and self.listening.is_set()
            and time.monotonic() - entry.loaded < self.ttl
        )

    def clear(self) -> None:
        self._keys.clear()
        self._indexes.clear()
        self._limits.clear()
        self._tenant_slugs.clear()
        self._clusters.clear()

    def _hit(self, cache: dict[K, _Entry[V]], key: K) -> _Entry[V] | None:
        """The fresh cached entry of `key` (None: load it), counting the hit or the miss."""
        entry = cache.get(key)
        if entry is not None and self._fresh(entry):
            self.stats.hits += 1
            return entry
        self.stats.misses += 1
        return None

    # ------------------------------------------------------------------ lookups

    async def key(self, prefix: str) -> KeyInfo | None:
        hit = self._hit(self._keys, prefix)
        if hit is not None:
            return hit.value
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    SELECT k.id, k.prefix, k.secret_hash, k.tenant_id, t.slug AS tenant_slug,
                           t.status AS tenant_status, t.payment_state AS tenant_payment_state,
                           k.scopes, k.index_names, k.namespaces,
                           k.row_filter, k.id_prefix, k.expires_at, k.revoke_after,
                           k.revoked_at
                    FROM tenants_apikey k JOIN tenants_tenant t ON t.id = k.tenant_id
                    WHERE k.prefix = %s
                    """,
                    (prefix,),
                )
            ).fetchone()
        info = None
        if row is not None:
            info = KeyInfo(
                id=row["id"],
                prefix=row["prefix"],
                secret_hash=row["secret_hash"],
                tenant_id=row["tenant_id"],
                tenant_slug=row["tenant_slug"],
                tenant_status=row["tenant_status"],
                tenant_payment_state=row["tenant_payment_state"],
                scopes=frozenset(row["scopes"]),
                index_names=frozenset(row["index_names"]),
                namespaces=frozenset(row["namespaces"]),
                row_filter=row["row_filter"] or None,
                expires_at=row["expires_at"],
                revoke_after=row["revoke_after"],
                revoked_at=row["revoked_at"],
                row_guard=Filter.of(row["row_filter"] or {}),
                id_prefix=row["id_prefix"],
            )
        # Unknown prefixes are cached too (briefly, by TTL), so garbage keys cost no query.
        self._keys[prefix] = _Entry(info, time.monotonic())
        return info

    async def index(self, tenant_id: uuid.UUID, name: str) -> IndexInfo | None:
        cache_key = (tenant_id, name)
        hit = self._hit(self._indexes, cache_key)
        if hit is not None:
            return hit.value
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    SELECT id, tenant_id, name, dimension, metric, vector_type, ef_search,
                           text_field, schema_name, table_name, status, engine, cluster_id
                    FROM provisioning_index
                    WHERE tenant_id = %s AND name = %s AND status = 'ready'
                    """,
                    (tenant_id, name),
                )
            ).fetchone()
        info = IndexInfo(**row) if row is not None else None
        self._indexes[cache_key] = _Entry(info, time.monotonic())
        return info

    async def cluster(self, cluster_id: uuid.UUID) -> ClusterInfo | None:
        hit = self._hit(self._clusters, cluster_id)
        if hit is not None:
            return hit.value
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    """
                    SELECT id, tenant_id, engine, status, endpoint, credentials_encrypted,
                           observed_generation AS generation
                    FROM provisioning_cluster WHERE id = %s
                    """,
                    (cluster_id,),
                )
            ).fetchone()
        info = None
        if row is not None:
            endpoint = orjson.dumps(row["endpoint"], option=orjson.OPT_SORT_KEYS).decode()
            info = ClusterInfo(**row, fingerprint=endpoint)
        self._clusters[cluster_id] = _Entry(info, time.monotonic())
        return info

    async def tenant_id_for_slug(self, slug: str) -> uuid.UUID | None:
        hit = self._hit(self._tenant_slugs, slug)
        if hit is not None:
            return hit.value
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT id FROM tenants_tenant WHERE slug = %s", (slug,))
            ).fetchone()
        value = row["id"] if row else None
        self._tenant_slugs[slug] = _Entry(value, time.monotonic())
        return value

    async def limits(self, tenant_id: uuid.UUID) -> Limits:
        hit = self._hit(self._limits, tenant_id)
        if hit is not None:
            return hit.value
        columns = ", ".join(f"coalesce(o.{f}, p.{f}) AS {f}" for f in LIMIT_FIELDS)
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    f"SELECT {columns} FROM tenants_tenant t "  # noqa: S608 - fixed names
                    "JOIN tenants_plan p ON p.id = t.plan_id "
                    "LEFT JOIN tenants_tenantlimitoverride o ON o.tenant_id = t.id "
                    "WHERE t.id = %s",
                    (tenant_id,),
                )
            ).fetchone()
        if row is None:
            raise LookupError(f"tenant {tenant_id} has no plan")
        limits = Limits(**row)
        self._limits[tenant_id] = _Entry(limits, time.monotonic())
        return limits

    # ------------------------------------------------------------------ invalidation

    def apply_change(self, payload: dict[str, Any]) -> None:
        """Evict what a `vectorplane_changes` notification says changed."""
        table = payload.get("table")
        self.stats.notifications += 1
        self.stats.by_kind[str(table)] = self.stats.by_kind.get(str(table), 0) + 1
        row_id = payload.get("id")
        tenant_id = payload.get("tenant_id")
        if table == "tenants_apikey":
            for prefix in [
                p for p, e in self._keys.items() if e.value and str(e.value.id) == row_id
            ]:
                del self._keys[prefix]
                self.stats.evictions += 1
        elif table == "tenants_tenant":
            for prefix in [
                p for p, e in self._keys.items() if e.value and str(e.value.tenant_id) == row_id
            ]:
                del self._keys[prefix]
                self.stats.evictions += 1
            self._tenant_slugs.clear()
            self._limits.pop(uuid.UUID(row_id), None) if row_id else None
        elif table == "provisioning_index":
            for cache_key in [k for k in self._indexes if str(k[0]) == tenant_id]:
                del self._indexes[cache_key]
                self.stats.evictions += 1
        elif table == "provisioning_cluster":
            if row_id:
                cluster_id = uuid.UUID(row_id)
                self._clusters.pop(cluster_id, None)
                self.stats.evictions += 1
                if self.on_cluster_change is not None:
                    self.on_cluster_change(cluster_id)
        elif table == "tenants_tenantlimitoverride":
            if tenant_id:
                self._limits.pop(uuid.UUID(tenant_id), None)
        elif table == "tenants_plan":
            self._limits.clear()
        else:
            self.clear()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.control_url, autocommit=True
                ) as conn:
                    await conn.execute("LISTEN vectorplane_changes")
                    # Anything may have changed while we were not listening.
                    self.clear()
                    self.listening.set()
                    delay = 0.5
                    async for notify in conn.notifies():
                        try:
                            self.apply_change(json.loads(notify.payload))
                        except (ValueError, TypeError):
                            logger.warning("bad change notification: %r", notify.payload)
                            self.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.listening.clear()
                self.clear()
                logger.exception("change listener lost its connection; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
