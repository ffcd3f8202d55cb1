"""Fixtures for the data-plane gateway's end-to-end tests: a real `granian` process serving
`gateway.app:application` (and, for the Pinecone client tests, the control plane), over HTTP on
127.0.0.1, against the pytest-django control-plane test database (as the gateway's read-only
role `vp_gateway`) and the per-session shared-tier data database of the root conftest.

Tenants, keys and indexes are created through the services and committed at once (the
`platform` fixture opens the test database in autocommit mode, as a transactional test does),
so the gateway (another process, another connection) sees them; its LISTEN/NOTIFY cache
invalidation is part of what is tested. Unlike a `django_db(transaction=True)` test, nothing is
flushed afterwards: a flush (TRUNCATE of every table) costs ~0.4 s per test, which alone would
take this suite past its time budget. Every test therefore names its tenants, users and
indexes with a random suffix, and the test databases are dropped with the session.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from provisioning import connections
from provisioning.models import Cluster, Index
from provisioning.services import clusters as cluster_services
from provisioning.services import indexes as index_services
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import ApiKey, Plan, Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.selectors import tenant_effective_limits
from tenants.tests.factories import UserFactory
from vectorplane import config
from vectorplane.embedded import EmbeddedRedis

REPO = Path(__file__).resolve().parents[2]
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
GATEWAY_DOMAIN = "gw.vectorplane.test"
START_TIMEOUT = 60.0


# ============================================================================ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


@dataclass
class Server:
    """A server process we started; `stop()` ends it (and only it, by its process group)."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def wait_ready(self, path: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if client.get(self.url + path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} never answered 200 on {path}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group we started
                self.proc.wait(timeout=10)


def start_server(
    name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, port: int
) -> Server:
    log = log_dir / f"{name}.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=dict(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name=name, url=f"http://127.0.0.1:{port}", proc=proc, log=log)


def _control_db_name() -> str:
    from django.db import connection

    return str(connection.settings_dict["NAME"])


def gateway_control_url(database: str) -> str:
    explicit = os.environ.get("GATEWAY_CONTROL_DATABASE_URL")
    if explicit:
        return _with_database(explicit, database)
    return config.embedded_gateway_url(database)


class RedisProcess:
    """The bundled redis-server (as `make run` and the worker-crash test use it) on a free port,
    in a folder of its own: nothing else uses it, so tests cannot collide with another run's
    keys. It can be stopped and started again on the same port, or paused (SIGSTOP: it accepts
    connections and answers nothing, as an overloaded server) and resumed."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="vp-test-redis-"))
        self.redis = EmbeddedRedis(self.folder, free_port())
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return self.redis.url(db)

    def start(self) -> None:
        assert self.proc is None
        proc = subprocess.Popen(
            self.redis.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.proc = proc
        self.redis.wait_until_ready(alive=lambda: proc.poll() is None)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    """The session's Redis: the gateway processes' global limits (gateway/ratelimit.py)."""
    server = RedisProcess()
    try:
        yield server
    finally:
        server.close()


def start_gateway(name: str, log_dir: Path, redis: RedisProcess, **extra_env: str) -> Server:
    """A gateway process (granian, one worker) on the test databases, its global limits in
    `redis`; answers once it is ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        GATEWAY_CONTROL_DATABASE_URL=gateway_control_url(_control_db_name()),
        GATEWAY_DATA_DATABASE_URL=config.gateway_data_database_url(),
        VECTORPLANE_STATE_DIR=str(config.state_dir()),
        VECTORPLANE_GATEWAY_DOMAIN=GATEWAY_DOMAIN,
        VECTORPLANE_GATEWAY_REDIS_URL=redis.url(),
        # Each process's own usage journal folder unless the test shares one on purpose
        # (test_metering_journal.py): a session's journals are no other session's to replay.
        VECTORPLANE_USAGE_JOURNAL_DIR=str(log_dir / "usage-journal"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env)
    argv = [
        sys.executable, "-m", "granian",
        "--interface", "asgi",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--no-access-log",
        "--factory", "gateway.app:application",
    ]  # fmt: skip
    server = start_server(name, argv, env, log_dir, port)
    try:
        server.wait_ready("/readyz")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def control_plane_port() -> int:
    """The control plane's port, chosen before the gateway starts: the gateway answers the
    console on that origin cross-origin (its query playground)."""
    return free_port()


@pytest.fixture(scope="session")
def gateway_server(
    django_db_setup: None,
    data_database: str,
    redis_server: RedisProcess,
    control_plane_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """One gateway process for the session, in host-routing mode too
    (`{index}-{tenant}.gw.vectorplane.test` on the bare routes), answering the session's
    control plane (the console) cross-origin."""
    server = start_gateway(
        "gateway", tmp_path_factory.mktemp("gateway"), redis_server,
        VECTORPLANE_GATEWAY_CORS_ORIGINS=f"http://127.0.0.1:{control_plane_port}",
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


# The session Redis's database holding the control plane's Celery queue (0 holds the gateway's
# rate-limit buckets).
CONTROL_PLANE_BROKER_DB = 1


@pytest.fixture(scope="session")
def control_plane_server(
    django_db_setup: None,
    data_database: str,
    redis_server: RedisProcess,
    gateway_server: Server,
    control_plane_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """The control plane (Django under granian WSGI) on the test database, as the
    `vectorplane` role, announcing `gateway_server` as the data-plane host. It queues its
    Celery tasks on the session's Redis (`CONTROL_PLANE_BROKER_DB`), where nothing runs them
    unless a test starts a worker on that broker (tests/console/test_clusters.py)."""
    from django.db import connection

    db = connection.settings_dict
    database_url = (
        f"postgresql://{quote(str(db['USER']), safe='')}:{quote(str(db['PASSWORD']), safe='')}"
        f"@{db['HOST']}:{db['PORT']}/{quote(str(db['NAME']), safe='')}"
    )
    port = control_plane_port
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DATABASE_URL=database_url,
        DATABASE_CONN_MAX_AGE="0",
        VECTORPLANE_DATA_DATABASE_URL=data_database,
        VECTORPLANE_GATEWAY_URL=gateway_server.url,
        VECTORPLANE_STATE_DIR=str(config.state_dir()),
        CELERY_BROKER_URL=redis_server.url(CONTROL_PLANE_BROKER_DB),
        REDIS_URL=redis_server.url(CONTROL_PLANE_BROKER_DB),  # the reconcile's heartbeat
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="controlplane.settings",
        PYTHONUNBUFFERED="1",
    )
    env.pop("VECTORPLANE_GATEWAY_ROUTING", None)
    argv = [
        sys.executable, "-m", "granian",
        "--interface", "wsgi",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--blocking-threads", "4",
        "--no-access-log",
        "controlplane.wsgi:application",
    ]  # fmt: skip
    server = start_server("controlplane", argv, env, tmp_path_factory.mktemp("controlplane"), port)
    try:
        server.wait_ready("/readyz")
        yield server
    finally:
        server.stop()


# ============================================================================ HTTP


@dataclass
class Gateway:
    """An HTTP client of the gateway process."""

    server: Server
    client: httpx.Client
    domain: str = GATEWAY_DOMAIN

    @property
    def url(self) -> str:
        return self.server.url

    def request(
        self,
        method: str,
        path: str,
        key: str | None,
        body: Any = None,
        *,
        params: Any = None,
        headers: Mapping[str, str | bytes] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        merged: dict[str, str | bytes] = {"Api-Key": key} if key is not None else {}
        merged.update(headers or {})
        # As bytes: hostile keys and Host names may be non-ASCII.
        sent = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in merged.items()]
        if body is not None:
            return self.client.request(method, path, json=body, params=params, headers=sent)
        return self.client.request(method, path, params=params, headers=sent, content=content)

    def post(self, path: str, key: str | None, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, key, body, **kw)

    def get(self, path: str, key: str | None, **kw: Any) -> httpx.Response:
        return self.request("GET", path, key, **kw)

    # Operations in the path form, answering the JSON body after checking the status.
    def op(
        self,
        index: str,
        operation: str,
        key: str,
        body: Any = None,
        *,
        expect: int = 200,
        params: Any = None,
    ) -> Any:
        method, path = OPERATION_ROUTES[operation]
        response = self.request(
            method,
            f"/v1/indexes/{quote(index, safe='')}/{path}",
            key,
            body if method == "POST" else None,
            params=params,
        )
        assert response.status_code == expect, (operation, response.status_code, response.text)
        return response.json() if response.content else None

    def upsert(self, index: str, key: str, vectors: list[dict[str, Any]], **body: Any) -> Any:
        return self.op(index, "upsert", key, {"vectors": vectors, **body})

    def query(self, index: str, key: str, **body: Any) -> Any:
        return self.op(index, "query", key, body)

    def fetch(self, index: str, key: str, ids: list[str], namespace: str | None = None) -> Any:
        params: list[tuple[str, str]] = [("ids", i) for i in ids]
        if namespace is not None:
            params.append(("namespace", namespace))
        return self.op(index, "fetch", key, params=params)

    def stats(self, index: str, key: str, **body: Any) -> Any:
        return self.op(index, "describe_index_stats", key, body)

    def list_ids(self, index: str, key: str, **params: Any) -> Any:
        return self.op(index, "list", key, params=params)

    def ids(self, index: str, key: str, namespace: str = "") -> list[str]:
        """Every id of a namespace, walking the list pages, sorted (list's order is the
        engine's: id order on pgvector, point order on Qdrant)."""
        found: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"namespace": namespace, "limit": 1000}
            if token:
                params["paginationToken"] = token
            page = self.list_ids(index, key, **params)
            found += [v["id"] for v in page["vectors"]]
            token = (page.get("pagination") or {}).get("next")
            if not token:
                assert len(found) == len(set(found)), found  # no id twice across pages
                return sorted(found)


OPERATION_ROUTES: dict[str, tuple[str, str]] = {
    "upsert": ("POST", "vectors/upsert"),
    "query": ("POST", "query"),
    "fetch": ("GET", "vectors/fetch"),
    "update": ("POST", "vectors/update"),
    "delete": ("POST", "vectors/delete"),
    "list": ("GET", "vectors/list"),
    "describe_index_stats": ("POST", "describe_index_stats"),
}


@pytest.fixture(scope="session")
def gateway(gateway_server: Server) -> Iterator[Gateway]:
    with httpx.Client(base_url=gateway_server.url, timeout=30.0) as client:
        yield Gateway(server=gateway_server, client=client)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is exactly `{"error": {"code", "message", "details"}}` with this status
    and code; answers `details`."""
    assert response.status_code == status, (status, code, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, body
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["details"], dict), body
    details: dict[str, Any] = error["details"]
    return details


# ============================================================================ control plane


_SEED_PLANS = importlib.import_module("tenants.migrations.0002_seed_plans")
_SEED_CLUSTERS = importlib.import_module("tenants.migrations.0005_plan_cluster_limits")


def ensure_plans() -> None:
    """Put back the seeded plans that a transactional test's flush truncated."""
    for spec in _SEED_PLANS.PLANS:
        Plan.objects.get_or_create(
            slug=spec["slug"], defaults={**spec, **_SEED_CLUSTERS.CLUSTERS[spec["slug"]]}
        )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Where `TenantCtx.index()` puts indexes: the conformance suite runs the same tests on each.
TARGETS = ("shared", "pgvector", "qdrant")


@dataclass
class TenantCtx:
    tenant: Tenant
    actor: Actor  # an operator, and the tenant's owner
    keys: dict[str, ApiKey] = field(default_factory=dict)
    target: str = "shared"
    cluster: Cluster | None = None

    @property
    def slug(self) -> str:
        return self.tenant.slug

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id

    def key(
        self,
        *,
        scopes: list[str] | None = None,
        index_names: list[str] | None = None,
        namespaces: list[str] | None = None,
        row_filter: dict[str, Any] | None = None,
        id_prefix: str = "",
        expires_at: datetime | None = None,
        name: str = "key",
    ) -> str:
        key, secret = tenant_services.api_key_create(
            actor=self.actor,
            tenant=self.tenant,
            name=name,
            scopes=scopes or [Scope.READ, Scope.WRITE],
            index_names=index_names,
            namespaces=namespaces,
            row_filter=row_filter,
            id_prefix=id_prefix,
            expires_at=expires_at,
        )
        self.keys[secret] = key
        return secret

    def index(
        self,
        name: str | None = None,
        *,
        dimension: int = 3,
        metric: str = "cosine",
        text_field: bool = False,
    ) -> Index:
        dedicated: dict[str, Any] = {}
        if self.target != "shared":
            dedicated = {"tier": "dedicated", "engine": self.target, "cluster": self.dedicated()}
        return index_services.index_create(
            actor=self.actor,
            tenant=self.tenant,
            name=name or unique("ix"),
            dimension=dimension,
            metric=metric,
            text_field=text_field,
            **dedicated,
        )

    def dedicated(self) -> Cluster:
        """The tenant's dedicated cluster of the target engine. Clusters are pooled for the
        session: one freed by an earlier test is handed to this tenant (its row re-owned, so the
        gateway sees the change through LISTEN/NOTIFY) instead of starting a new server; a new
        one is provisioned when none is free (the task runs inline: Celery is eager in tests,
        and the database is in autocommit mode). Provisioning itself is tested in
        provisioning/tests/test_clusters.py."""
        if self.cluster is None:
            free = _FREE_CLUSTERS.setdefault(self.target, [])
            if free:
                cluster = free.pop()
            else:
                # Made by an enterprise tenant (whatever this tenant's plan), then re-owned.
                slug = unique("pool")
                owner = tenant_services.tenant_create(
                    actor=self.actor, name=slug, slug=slug, plan_slug="enterprise"
                )
                cluster = cluster_services.cluster_create(
                    actor=self.actor, tenant=owner, name=unique("dedicated"),
                    engine=self.target, size="xs",
                )  # fmt: skip
            Cluster.objects.unscoped().filter(pk=cluster.pk).update(
                tenant=self.tenant, name=unique("dedicated")
            )
            limits = tenant_effective_limits(tenant=self.tenant).limits
            if "dedicated" not in limits["allowed_tiers"]:
                # A plan without dedicated clusters (a limits test's): allow this one.
                self.limits(allowed_tiers=["shared", "dedicated"],
                            allowed_engines=["pgvector", "qdrant"])  # fmt: skip
            cluster = Cluster.objects.unscoped().get(pk=cluster.pk)
            assert cluster.status == "ready", cluster.status_message
            self.cluster = cluster
        return self.cluster

    def delete_index(self, index: Index) -> None:
        index_services.index_delete(actor=self.actor, tenant=self.tenant, index=index)

    def limits(self, **values: Any) -> None:
        tenant_services.tenant_limits_override_set(
            actor=self.actor, tenant=self.tenant, values=values, reason="test"
        )


@dataclass
class Platform:
    operator: Any
    target: str = "shared"
    tenants: list[TenantCtx] = field(default_factory=list)

    def tenant(self, plan: str = "enterprise") -> TenantCtx:
        """A new tenant on `plan` (enterprise by default: 5,000 queries a second, so that no
        test but the rate-limit one is throttled), whose indexes go to `target`."""
        actor = Actor(user=self.operator)
        slug = unique("t")
        tenant = tenant_services.tenant_create(actor=actor, name=slug, slug=slug, plan_slug=plan)
        ctx = TenantCtx(tenant=tenant, actor=actor, target=self.target)
        self.tenants.append(ctx)
        return ctx

    def release(self) -> None:
        """Give the test's dedicated clusters back to the session's pool, emptied of the test's
        indexes (a cluster belongs to one tenant for life; its vector quota counts all of it)."""
        for ctx in self.tenants:
            if ctx.cluster is not None:
                with tenant_scope(ctx.tenant.id):
                    live = Index.objects.filter(cluster=ctx.cluster).exclude(status="deleted")
                    live.update(deletion_protection=False)
                    for index in live:
                        ctx.delete_index(index)
                _FREE_CLUSTERS.setdefault(ctx.cluster.engine, []).append(ctx.cluster)
                ctx.cluster = None


# Dedicated clusters no test is using, by engine (see TenantCtx.dedicated). Their servers are
# stopped with the session (root conftest: local_clusters).
_FREE_CLUSTERS: dict[str, list[Cluster]] = {}


@pytest.fixture
def platform(django_db_blocker: Any, gateway: Gateway) -> Iterator[Platform]:
    """Tenants on demand, owned by a fresh platform operator; the database is open (autocommit)
    for the whole test."""
    with django_db_blocker.unblock():
        ensure_plans()  # a transactional test of another module may have flushed them
        operator = UserFactory(email=f"{unique('ops')}@example.test", is_staff=True)
        yield Platform(operator=operator)


def conformance(platform: Platform, request: pytest.FixtureRequest) -> Iterator[Platform]:
    """The conformance suite: `platform` once per target of TARGETS (shared pgvector tier,
    dedicated pgvector cluster, dedicated Qdrant cluster). A module opts in with one line,

        platform = pytest.fixture(params=TARGETS, name="platform")(conformance)

    (an override of `platform` that takes the conftest's), and every test of it runs on each."""
    platform.target = request.param
    try:
        yield platform
    finally:
        platform.release()


# ============================================================================ data database


def pg_owner_url(index: Index) -> str:
    """The owner's URL of the pgvector database holding the index (shared tier or cluster)."""
    if index.cluster_id is not None:
        cluster = Cluster.objects.unscoped().get(pk=index.cluster_id)
        return connections.cluster_pg_url(cluster)
    return os.environ["VECTORPLANE_DATA_DATABASE_URL"]


def data_rows(index: Index) -> dict[tuple[str, str], Any]:
    """An index's rows read directly from where they are stored (bypassing the gateway):
    {(namespace, id): metadata}. pgvector (shared tier or dedicated cluster): as the database
    owner, acting as the index's tenant (FORCE ROW LEVEL SECURITY binds the owner too)."""
    if index.engine == "qdrant":
        return qdrant_rows(index)
    with psycopg.connect(pg_owner_url(index), autocommit=False) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
        query = sql.SQL("SELECT namespace, id, metadata FROM {}").format(
            sql.Identifier(index.schema_name, index.table_name)
        )
        rows = conn.execute(query).fetchall()
        conn.rollback()
    return {(r[0], r[1]): r[2] for r in rows}


def qdrant_rows(index: Index) -> dict[tuple[str, str], Any]:
    """A Qdrant index's points read from its cluster with qdrant-client (the payload layout of
    gateway/qdrant_filters.py: `_ns`, `_id`, `m`)."""
    assert index.cluster_id is not None
    cluster = Cluster.objects.unscoped().get(pk=index.cluster_id)
    rows: dict[tuple[str, str], Any] = {}
    with connections.cluster_qdrant_client(cluster) as client:
        offset = None
        while True:
            points, offset = client.scroll(
                index.table_name, limit=1000, offset=offset, with_payload=["_ns", "_id", "m"]
            )
            for point in points:
                payload = point.payload or {}
                rows[(payload["_ns"], payload["_id"])] = payload.get("m") or {}
            if offset is None:
                return rows


# ============================================================================ helpers


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def cosine(a: list[float], b: list[float]) -> float:
    return dot(a, b) / math.sqrt(dot(a, a) * dot(b, b))


def poll(
    probe: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool], timeout: float
) -> tuple[httpx.Response, float]:
    """Call `probe` until `done(response)`; answers the last response and the seconds taken
    (fails after `timeout`)."""
    started = time.perf_counter()
    while True:
        response = probe()
        elapsed = time.perf_counter() - started
        if done(response):
            return response, elapsed
        if elapsed > timeout:
            raise AssertionError(
                f"not done after {elapsed:.3f}s: {response.status_code} {response.text}"
            )


# ============================================================================ compat venvs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_compat.py's tests run last, so that building their venvs on a cold cache (a clean
    clone, as in CI: from half a minute to three, as fast as PyPI answers) overlaps the whole
    run instead of a part of it. Nothing else depends on the order."""
    items.sort(key=lambda item: item.path.name == "test_compat.py")  # stable


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building test_compat.py's venvs as soon as it is collected, so that a cold cache
    is filled while the tests before it run (gateway/tests/compat/venvs.py)."""
    from gateway.tests.compat import venvs

    wanted = {
        value
        for item in session.items
        if item.path.name == "test_compat.py" and hasattr(item, "callspec")
        for value in item.callspec.params.values()
    }
    venvs.start(sorted(wanted & venvs.names()))
