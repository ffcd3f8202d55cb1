"""Shared pytest fixtures. Tests run against real PostgreSQL: `DATABASE_URL`, or the embedded
server that `make test` (`python -m vectorplane exec -- pytest`) starts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rest_framework.test import APIClient

from tenants.models import Role, Scope, Tenant
from tenants.tests.factories import UserFactory, add_member, make_key, make_tenant
from vectorplane import config


def _databases_for_setup_always_default() -> None:
    """pytest-django creates the test database only when a collected test carries the
    `django_db` mark; live-server tests (the gateway's, the worker-crash test) open it through
    `django_db_blocker` without the mark, so a run of just those would use the development
    database. Always set up `default`."""
    import pytest_django.fixtures as fixtures

    original = fixtures._get_databases_for_setup

    def with_default(items: Any) -> tuple[set[str], set[str]]:
        aliases, serialized = original(items)
        return {*aliases, "default"}, set(serialized)

    fixtures._get_databases_for_setup = with_default


_databases_for_setup_always_default()


# What makes a test need a server process (`server`, left out of `make test-fast`): one of
# these fixtures, or being in one of these modules (they start their servers themselves:
# Redis, the Qdrant host, local clusters, the supervisor, compat venvs' clients).
SERVER_FIXTURES = frozenset(
    {"gateway_server", "control_plane_server", "redis_server", "qdrant_host"}
)
DB_FIXTURES = frozenset({"django_db_setup", "data_database", "postgres_url"})
SERVER_MODULES = frozenset({
    "gateway/tests/test_qdrant_filters.py",
    "gateway/tests/test_qdrant_store.py",
    "gateway/tests/test_ratelimit.py",
    "gateway/tests/test_compat.py",
    "provisioning/tests/test_clusters.py",
    "tenants/tests/test_tasks.py",
    "vectorplane/tests/test_embedded.py",
    "vectorplane/tests/test_qdrant_host.py",
    "vectorplane/tests/test_supervisor.py",
})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `server` (see above) and `db`: the test, or a fixture it uses, asks for PostgreSQL
    (`-m "not db and not server and not slow"` runs with no database at all)."""
    root = Path(__file__).resolve().parent
    server, db = pytest.mark.server, pytest.mark.db
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        where = item.path.resolve().relative_to(root).as_posix()
        if names & SERVER_FIXTURES or where in SERVER_MODULES:
            item.add_marker(server)
        if names & DB_FIXTURES or item.get_closest_marker("django_db") is not None:
            item.add_marker(db)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """One test database per pytest process, so concurrent runs on one server (a developer's
    `make test` beside `make run`, or parallel sessions) never drop each other's database."""
    from django.conf import settings

    database: dict[str, Any] = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session")
def django_db_setup(
    data_database: str, local_clusters: Path, django_db_setup: None
) -> Iterator[None]:
    """pytest-django's test database, set up only for tests that use a database (so the pure
    tests need no PostgreSQL), after the scratch data database and the clusters folder: the
    migrations and every test with a database see both.

    At the end, before pytest-django drops the test database, every other session on it is
    ended: a server process's pool, or a Django connection opened in another context (the
    browser tests' event loop), would otherwise make the DROP fail."""
    yield
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    name = settings.DATABASES["default"]["NAME"]
    admin = config.database_url().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.fixture(scope="session")
def data_database() -> Iterator[str]:
    """A scratch shared-tier database per pytest process (`test_<data db>_<pid>`), created
    from template1 (which carries the vector extension) and dropped at the end. Its URLs are
    put in the environment, where `vectorplane.config` reads them at call time."""
    owner_url = config.data_database_url()
    name = f"test_{owner_url.rsplit('/', 1)[1]}_{os.getpid()}"
    admin = owner_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template1").format(sql.Identifier(name)))
    test_owner_url = owner_url.rsplit("/", 1)[0] + "/" + name
    saved = {
        k: os.environ.get(k) for k in ("VECTORPLANE_DATA_DATABASE_URL", "GATEWAY_DATA_DATABASE_URL")
    }
    os.environ["VECTORPLANE_DATA_DATABASE_URL"] = test_owner_url
    if config.uses_embedded_postgres():
        os.environ["GATEWAY_DATA_DATABASE_URL"] = config.embedded_gateway_url(name)
    try:
        yield test_owner_url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def local_clusters() -> Iterator[Path]:
    """Dedicated clusters made by tests (the `local` driver's real servers) live in a scratch
    folder, and every process under it is stopped at the end. Celery tasks run inline
    (`task_always_eager`); the worker-crash test starts real workers instead."""
    from controlplane.celery import app
    from provisioning.drivers.local import stop_all

    folder = Path(tempfile.mkdtemp(prefix="vp-test-clusters-"))
    saved = os.environ.get("VECTORPLANE_CLUSTERS_DIR")
    os.environ["VECTORPLANE_CLUSTERS_DIR"] = str(folder)
    app.conf.task_always_eager = True
    try:
        yield folder
    finally:
        app.conf.task_always_eager = False
        stop_all(folder)
        shutil.rmtree(folder, ignore_errors=True)
        if saved is None:
            os.environ.pop("VECTORPLANE_CLUSTERS_DIR", None)
        else:
            os.environ["VECTORPLANE_CLUSTERS_DIR"] = saved


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The control-plane database's URL, for tests that talk SQL to PostgreSQL directly."""
    return config.database_url()


@pytest.fixture(autouse=True)
def _plans_seeded_for_transactional_tests(request: pytest.FixtureRequest) -> None:
    """A transactional test's flush truncates every table, the plans the migrations seeded
    included: put them back before each transactional test (any order of tests then works)."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker is not None and marker.kwargs.get("transaction")
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        from gateway.tests.conftest import ensure_plans

        ensure_plans()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """PBKDF2 with Django's default iterations costs ~0.3 s per user; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def owner(db: Any) -> Any:
    return UserFactory(email="owner@example.test")


@pytest.fixture
def tenant(owner: Any) -> Tenant:
    return make_tenant(owner=owner, name="Acme", slug="acme")


@pytest.fixture
def other_tenant(db: Any) -> Tenant:
    return make_tenant(owner=UserFactory(email="mallory@example.test"), name="Evil", slug="evil")


@pytest.fixture
def operator(db: Any) -> Any:
    return UserFactory(email="ops@example.test", is_staff=True)


@pytest.fixture
def members(tenant: Tenant, owner: Any) -> dict[str, Any]:
    """One user per role in `tenant`."""
    return {
        Role.OWNER: owner,
        Role.ADMIN: add_member(tenant, UserFactory(email="admin@example.test"), Role.ADMIN),
        Role.MEMBER: add_member(tenant, UserFactory(email="member@example.test"), Role.MEMBER),
        Role.VIEWER: add_member(tenant, UserFactory(email="viewer@example.test"), Role.VIEWER),
    }


@pytest.fixture
def admin_key(tenant: Tenant) -> str:
    return make_key(tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN], name="admin")[1]


def as_user(client: APIClient, user: Any) -> APIClient:
    client.force_authenticate(user=user)
    return client
