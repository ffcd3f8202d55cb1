"""Index creation's two steps: the row is written under the tenant lock (`initializing`) and
committed; the storage (a table in the shared tier or in a dedicated cluster's PostgreSQL, or a
Qdrant collection) is created afterwards, outside any lock, and only then is the index `ready`.

- While one index's storage is being created, the tenant's other writes that take the tenant
  lock (another index, a rename) go on: proven with a barrier inside the storage step and
  `FOR UPDATE NOWAIT` on the tenant's row.
- When the storage cannot be created the answer is today's (503 `data_plane_unavailable` for
  an outage, 500 for a bug) and no row is left behind: no `ready` index, no `initializing`
  one holding the name or a quota slot, no `index.created` audit event.

Outages are real: the data database or the cluster's server is a closed port.
"""

from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from controlplane.errors import ApplicationError
from provisioning.models import Cluster, ClusterStatus, Index, IndexStatus
from provisioning.services import indexes
from provisioning.storage import shared_tier
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import AuditEvent, Plan, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, make_tenant
from vectorplane import crypto

BASE = "/api/v1/tenants/{slug}/indexes"
WAIT = 30.0  # seconds: a barrier that is not reached in this time fails the test


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pro(tenant: Tenant) -> Tenant:
    Tenant.objects.filter(pk=tenant.pk).update(plan=Plan.objects.get(slug="pro"))
    tenant.refresh_from_db()
    return tenant


def _unreachable_cluster(tenant: Tenant, engine: str, name: str = "gone") -> Cluster:
    """A `ready` cluster row whose server does not answer (its port is closed)."""
    port = _closed_port()
    if engine == "qdrant":
        endpoint: dict[str, Any] = {"url": f"http://127.0.0.1:{port}"}
        creds = {"api_key": "k"}
    else:
        endpoint = {"host": "127.0.0.1", "port": port, "database": "vectorplane_data"}
        creds = {"admin_user": "a", "admin_password": "p", "gateway_user": "g",
                 "gateway_password": "p"}  # fmt: skip
    with tenant_scope(tenant.id):
        return Cluster.objects.create(
            tenant=tenant, name=name, engine=engine, driver="local", size="xs",
            status=ClusterStatus.READY, endpoint=endpoint, stack_name=f"test-{name}",
            credentials_encrypted=crypto.encrypt_json(creds), observed_generation=1,
        )  # fmt: skip


def _left_behind(tenant: Tenant, name: str) -> list[tuple[str, str]]:
    with tenant_scope(tenant.id):
        rows = list(Index.objects.filter(name=name).values_list("name", "status"))
        audited = AuditEvent.objects.filter(action="index.created", target_label=name).exists()
    return rows + ([("audit", "index.created")] if audited else [])


# ============================================================================ failures


@pytest.mark.django_db
def test_shared_tier_outage_is_503_and_leaves_no_index(
    owner: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = APIClient()
    api.force_authenticate(owner)
    url = BASE.format(slug=tenant.slug)
    monkeypatch.setenv(
        "VECTORPLANE_DATA_DATABASE_URL", f"postgresql://x:y@127.0.0.1:{_closed_port()}/data"
    )
    response = api.post(url, {"name": "docs", "dimension": 3}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "data_plane_unavailable"
    assert _left_behind(tenant, "docs") == []
    monkeypatch.undo()
    # The name and the quota slot are free: the same request succeeds once the tier answers.
    response = api.post(url, {"name": "docs", "dimension": 3}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "ready"


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["pgvector", "qdrant"])
def test_dedicated_cluster_outage_is_503_and_leaves_no_index(
    owner: Any, tenant: Tenant, engine: str
) -> None:
    _pro(tenant)
    _unreachable_cluster(tenant, engine)
    api = APIClient()
    api.force_authenticate(owner)
    body = {"name": "docs", "dimension": 3, "tier": "dedicated", "engine": engine,
            "cluster": "gone"}  # fmt: skip
    response = api.post(BASE.format(slug=tenant.slug), body, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "data_plane_unavailable"
    assert _left_behind(tenant, "docs") == []


@pytest.mark.django_db
def test_a_bug_in_storage_creation_is_500_and_leaves_no_index(
    owner: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(shared_tier, "create_index_table", broken)
    api = APIClient()
    api.force_authenticate(owner)
    response = api.post(BASE.format(slug=tenant.slug), {"name": "docs", "dimension": 3},
                        format="json")  # fmt: skip
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert _left_behind(tenant, "docs") == []


# ============================================================================ no lock held


@pytest.fixture
def committed_tenant(transactional_db: Any) -> Iterator[tuple[Any, Tenant]]:
    """An owner and a tenant, committed (other threads' connections see them). The seeded
    plans are put back first: an earlier transactional test's flush may have removed them."""
    plans = importlib.import_module("tenants.migrations.0002_seed_plans").PLANS
    clusters = importlib.import_module("tenants.migrations.0005_plan_cluster_limits").CLUSTERS
    for spec in plans:
        Plan.objects.get_or_create(slug=spec["slug"], defaults={**spec, **clusters[spec["slug"]]})
    owner = UserFactory(email="owner@example.test")
    yield owner, make_tenant(owner=owner, name="Acme", slug="acme")


class _InFlight:
    """`index_create` of one index name on a thread of its own, held inside its storage step
    (after its row committed) until `release()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str,
                 create: Callable[[], Index]) -> None:  # fmt: skip
        self.entered = threading.Event()
        self.released = threading.Event()
        self.result: Index | None = None
        self.error: BaseException | None = None
        real = indexes._create_storage

        def held(index: Index, vector_type: str) -> None:
            if index.name == name:
                self.entered.set()
                assert self.released.wait(WAIT), "never released"
            real(index, vector_type)

        monkeypatch.setattr(indexes, "_create_storage", held)
        self._create = create
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._create()
        except BaseException as exc:  # the test thread asserts on it
            self.error = exc
        finally:
            connection.close()  # this thread's connection

    def __enter__(self) -> _InFlight:
        self.thread.start()
        assert self.entered.wait(WAIT), f"the storage step was not reached: {self.error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def _tenant_lock_is_free(tenant: Tenant) -> bool:
    try:
        with transaction.atomic():
            Tenant.objects.select_for_update(nowait=True).get(pk=tenant.pk)
    except DatabaseError:
        return False
    return True


def test_storage_is_created_outside_the_tenant_lock(
    committed_tenant: tuple[Any, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, tenant = committed_tenant
    actor = Actor(user=owner)

    def create() -> Index:
        return indexes.index_create(actor=actor, tenant=tenant, name="slow", dimension=3)

    with _InFlight(monkeypatch, "slow", create) as slow:
        # The row is committed as `initializing` (the gateway routes only `ready` indexes)...
        with tenant_scope(tenant.id):
            assert Index.objects.get(name="slow").status == IndexStatus.INITIALIZING
        # ...and the tenant's row is not locked: what needs the lock does not wait.
        assert _tenant_lock_is_free(tenant)
        other = indexes.index_create(actor=actor, tenant=tenant, name="fast", dimension=3)
        assert other.status == IndexStatus.READY
        renamed = tenant_services.tenant_update(actor=actor, tenant=tenant, name="Acme 2")
        assert renamed.name == "Acme 2"
        # The name is taken meanwhile.
        with pytest.raises(ApplicationError) as taken:
            indexes.index_create(actor=actor, tenant=tenant, name="slow", dimension=3)
        assert taken.value.code == "index_exists"
    assert slow.error is None, slow.error
    assert slow.result is not None and slow.result.status == IndexStatus.READY
    with tenant_scope(tenant.id):
        assert Index.objects.get(name="slow").status == IndexStatus.READY
        assert AuditEvent.objects.filter(action="index.created", target_label="slow").exists()
    with shared_tier.connect() as conn:
        table = f"{slow.result.schema_name}.{slow.result.table_name}"
        assert conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (table,)


def test_a_failure_while_unlocked_leaves_no_usable_index(
    committed_tenant: tuple[Any, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dedicated pgvector cluster that does not answer: the tenant is not locked while the
    connection is tried, and the failed index is gone afterwards."""
    owner, tenant = committed_tenant
    _pro(tenant)
    _unreachable_cluster(tenant, "pgvector")
    with tenant_scope(tenant.id):
        cluster = Cluster.objects.get(name="gone")
    actor = Actor(user=owner)

    def create() -> Index:
        return indexes.index_create(actor=actor, tenant=tenant, name="docs", dimension=3,
                                    tier="dedicated", cluster=cluster)  # fmt: skip

    with _InFlight(monkeypatch, "docs", create):
        assert _tenant_lock_is_free(tenant)
        with tenant_scope(tenant.id):
            assert Index.objects.get(name="docs").status == IndexStatus.INITIALIZING
        shared = indexes.index_create(actor=actor, tenant=tenant, name="other", dimension=3)
        assert shared.status == IndexStatus.READY
    assert _left_behind(tenant, "docs") == []


def test_an_index_deleted_while_its_storage_is_created_is_not_revived(
    committed_tenant: tuple[Any, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the `initializing` index meanwhile wins: the creation answers 404 and drops
    the table it made, so nothing is orphaned."""
    owner, tenant = committed_tenant
    actor = Actor(user=owner)

    def create() -> Index:
        return indexes.index_create(actor=actor, tenant=tenant, name="docs", dimension=3)

    with _InFlight(monkeypatch, "docs", create) as inflight:
        with tenant_scope(tenant.id):
            row = Index.objects.get(name="docs")
        indexes.index_delete(actor=actor, tenant=tenant, index=row)
    assert isinstance(inflight.error, ApplicationError), inflight.error
    assert inflight.error.status_code == 404
    with tenant_scope(tenant.id):
        assert Index.objects.get(pk=row.pk).status == IndexStatus.DELETED
    with shared_tier.connect() as conn:
        table = f"{row.schema_name}.{row.table_name}"
        assert conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,)
