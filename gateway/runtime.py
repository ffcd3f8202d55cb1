"""The gateway's long-lived state: what one process holds between requests.

`Gateway` owns the registry (the cached control-plane view), the shared tier's store, one store
per dedicated cluster (made on first use, remade when the cluster's endpoint changes), the
meter, the rate limiter and the process's metrics. Requests reach it through
`gateway.app.dispatch`; it imports no engine client (the backends do).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from vectorplane import config, crypto
from vectorplane.contract import hosts

from .backends import VectorStore
from .backends.pgvector import EXACT_SCAN_ROWS, PgvectorStore
from .backends.qdrant import QdrantStore
from .errors import GatewayError, not_found_index
from .metering import Meter
from .ratelimit import RateLimiter, RedisLink, TenantLock
from .registry import ClusterInfo, IndexInfo, Registry

logger = logging.getLogger("vectorplane.gateway")


@dataclass(frozen=True)
class Backend:
    """A dedicated cluster's store, and the endpoint it was made for."""

    fingerprint: str
    store: VectorStore


class Gateway:
    def __init__(self, *, control_url: str, data_url: str, pepper: str) -> None:
        self.registry = Registry(control_url)
        self.store = PgvectorStore(
            data_url,
            exact_scan_rows=config.env_int("VECTORPLANE_EXACT_SCAN_ROWS", EXACT_SCAN_ROWS),
        )
        self.pepper = pepper.encode()
        # Read once: what a host-form request's host ends with ("" when not configured).
        self.host_suffix = hosts.host_suffix(config.env_str("VECTORPLANE_GATEWAY_DOMAIN", ""))
        self.backends: dict[uuid.UUID, Backend] = {}
        self.backend_locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.registry.on_cluster_change = self.forget_cluster
        self.metrics = CollectorRegistry()
        self.requests = Counter(
            "vectorplane_gateway_requests",
            "Requests",
            ["operation", "status"],
            registry=self.metrics,
        )
        self.latency = Histogram(
            "vectorplane_gateway_request_seconds",
            "Request latency",
            ["operation", "status"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.metrics,
        )
        self.cache = Gauge(
            "vectorplane_gateway_cache_lookups",
            "Registry cache lookups",
            ["result"],
            registry=self.metrics,
        )
        self.journal_errors = Counter(
            "vectorplane_gateway_usage_journal_errors",
            "Usage journal writes that failed (the usage was kept in memory only)",
            registry=self.metrics,
        )
        self.meter = Meter.from_config(self.registry.pool, on_journal_error=self.journal_errors.inc)
        self.pool_in_use = Gauge(
            "vectorplane_gateway_pool_connections",
            "Data pool connections",
            ["state"],
            registry=self.metrics,
        )
        # Global per-tenant limits (gateway/ratelimit.py): the request rate, and the Qdrant
        # vector quota's count-then-write, shared by every gateway process through Redis.
        self.redis = RedisLink.from_config()
        self.limiter = RateLimiter.from_config(self.redis, metrics=self.metrics)
        self.quota_lock = TenantLock(self.redis, "qdrant-quota")

    async def open(self) -> None:
        await self.redis.open()
        self.limiter.start()
        await self.registry.open()
        await self.store.open()
        await self.meter.start()

    async def close(self) -> None:
        await self.meter.stop()
        await self.limiter.close()
        for backend in list(self.backends.values()):
            await backend.store.close()
        self.backends.clear()
        await self.store.close()
        await self.registry.close()
        await self.redis.close()

    # ------------------------------------------------------------------ stores

    async def store_for(self, index: IndexInfo) -> VectorStore:
        """The store holding the index: the shared tier's, or its dedicated cluster's."""
        if index.cluster_id is None:
            return self.store
        return await self.backend(index, index.cluster_id)

    async def backend(self, index: IndexInfo, cluster_id: uuid.UUID) -> VectorStore:
        """The store of a dedicated cluster's index: a pgvector pool or a Qdrant client per
        cluster, made on first use and remade when the cluster's endpoint changes."""
        cluster = await self.registry.cluster(cluster_id)
        if cluster is None or cluster.tenant_id != index.tenant_id:
            raise not_found_index(index.name)
        if cluster.status not in ("ready", "updating"):
            raise GatewayError(
                503,
                "cluster_unavailable",
                f"The index's cluster is {cluster.status}; try again when it is ready.",
                {"index": index.name, "cluster_status": cluster.status},
            )
        fingerprint = cluster.fingerprint
        current = self.backends.get(cluster.id)
        if current is not None and current.fingerprint == fingerprint:
            return current.store
        lock = self.backend_locks.setdefault(cluster.id, asyncio.Lock())
        async with lock:
            current = self.backends.get(cluster.id)
            if current is not None and current.fingerprint == fingerprint:
                return current.store
            try:
                store = await self._open_backend(cluster)
            except Exception as exc:
                logger.warning("cluster %s unreachable: %s", cluster.id, exc)
                raise GatewayError(
                    503,
                    "cluster_unavailable",
                    "The index's cluster does not answer; try again shortly.",
                    {"index": index.name},
                ) from exc
            self.backends[cluster.id] = Backend(fingerprint, store)
            if current is not None:
                self._close_later(current.store)
            return store

    async def _open_backend(self, cluster: ClusterInfo) -> VectorStore:
        credentials = crypto.decrypt_json(cluster.credentials_encrypted)
        endpoint = cluster.endpoint
        if cluster.engine == "qdrant":
            qdrant = QdrantStore(
                endpoint["url"], credentials["api_key"], quota_lock=self.quota_lock.hold
            )
            await qdrant.open()
            return qdrant
        store = PgvectorStore(
            config.postgres_url(
                user=credentials["gateway_user"],
                password=credentials["gateway_password"],
                host=endpoint["host"],
                port=endpoint["port"],
                database=endpoint["database"],
            ),
            min_size=1,
            max_size=config.env_int("VECTORPLANE_CLUSTER_POOL_SIZE", 8),
            exact_scan_rows=self.store.exact_scan_rows,
        )
        await store.open(timeout=5)
        return store

    def forget_cluster(self, cluster_id: uuid.UUID) -> None:
        """The cluster's row changed: drop its connections (in-flight requests finish first)."""
        backend = self.backends.pop(cluster_id, None)
        if backend is not None:
            self._close_later(backend.store)

    def _close_later(self, store: VectorStore) -> None:
        async def close() -> None:
            await asyncio.sleep(30)
            await store.close()

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
