"""Dedicated clusters through the management API, with the `local` driver's real servers:
lifecycle (create, index, resize, delete), plan limits, roles, another tenant's attempts, the
state machine, failures and operator retry, drift repair, credentials at rest.

Celery runs inline here (root conftest): the services queue their task on commit, and
`django_capture_on_commit_callbacks(execute=True)` runs it when the API call's transaction
commits, so each call returns with the worker's work done.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.test import Client
from rest_framework.test import APIClient

from conftest import as_user
from provisioning import connections, steps, tasks
from provisioning.drivers.local import LocalDriver
from provisioning.models import Cluster, ClusterStatus, Index
from tenants.models import Membership, Plan, Role, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, add_member
from vectorplane import config, crypto
from vectorplane.contract.storage import tenant_role_name

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants/{slug}"


def _pro(tenant: Tenant) -> Tenant:
    Tenant.objects.filter(pk=tenant.pk).update(plan=Plan.objects.get(slug="pro"))
    tenant.refresh_from_db()
    return tenant


def _create(api: APIClient, tenant: Tenant, capture: Any, **body: Any) -> Any:
    body = {"name": "c1", "engine": "pgvector", "size": "xs", **body}
    with capture(execute=True):
        response = api.post(BASE.format(slug=tenant.slug) + "/clusters", body, format="json")
    return response


def _cluster(tenant: Tenant, name: str) -> Cluster:
    return Cluster.objects.unscoped().get(tenant=tenant, name=name)


@pytest.fixture
def pro(tenant: Tenant) -> Tenant:
    return _pro(tenant)


@pytest.fixture
def owner_api(api: APIClient, owner: Any) -> APIClient:
    return as_user(api, owner)


def test_pgvector_cluster_lifecycle(
    owner_api: APIClient, pro: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    response = _create(owner_api, pro, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"  # the answer is sent before the worker runs
    assert "credentials" not in str(body) and "endpoint" not in body
    cluster = _cluster(pro, "c1")
    assert cluster.status == ClusterStatus.READY, cluster.status_message
    assert cluster.observed_generation == cluster.generation == 1
    assert cluster.endpoint["port"] > 0 and cluster.ready_at is not None

    detail = owner_api.get(BASE.format(slug=pro.slug) + "/clusters/c1").json()
    assert detail["status"] == "ready" and detail["indexes"] == []

    # An index on the cluster: its table lives in the cluster's own server, under RLS.
    response = owner_api.post(
        BASE.format(slug=pro.slug) + "/indexes",
        {"name": "docs", "dimension": 4, "tier": "dedicated", "cluster": "c1"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["cluster"] == "c1" and response.json()["tier"] == "dedicated"
    index = Index.objects.unscoped().get(tenant=pro, name="docs")
    with psycopg.connect(connections.cluster_gateway_url(cluster)) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False)
        # The gateway's own role has no right on the table; the tenant's role, which it may
        # take for a transaction, has.
        table = f'"{index.schema_name}"."{index.table_name}"'
        for statement in (f"SELECT count(*) FROM {table}",  # noqa: S608
                          f"INSERT INTO {table} (id, embedding) VALUES ('a', '[1,2,3,4]')"):  # noqa: S608
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
        conn.execute("SELECT set_config('role', %s, true)", (tenant_role_name(pro.id),))
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # noqa: S608
        conn.rollback()
    # The shared tier's database has no such table.
    with psycopg.connect(config.data_database_url()) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"{index.schema_name}.{index.table_name}",)
                            ).fetchone() == (None,)  # fmt: skip

    # Resize: a new generation, applied by the worker.
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.patch(
            BASE.format(slug=pro.slug) + "/clusters/c1", {"size": "s"}, format="json"
        )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "updating"
    cluster.refresh_from_db()
    assert (cluster.status, cluster.size, cluster.generation, cluster.observed_generation) == (
        "ready", "s", 2, 2,
    )  # fmt: skip

    # Delete: the server stops, its data goes, its indexes are deleted.
    driver = LocalDriver()
    folder = driver.cluster_dir(steps.spec_for(cluster))
    owner_url = connections.cluster_pg_url(cluster)
    assert folder.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.delete(BASE.format(slug=pro.slug) + "/clusters/c1")
    assert response.status_code == 202 and response.json()["status"] == "deleting"
    cluster.refresh_from_db()
    index.refresh_from_db()
    assert cluster.status == ClusterStatus.DELETED and cluster.deleted_at is not None
    assert index.status == "deleted"
    assert not folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(owner_url, connect_timeout=2)
    assert owner_api.get(BASE.format(slug=pro.slug) + "/clusters/c1").status_code == 404
    # The name is free again.
    assert _create(owner_api, pro, django_capture_on_commit_callbacks).status_code == 202


def test_plan_limits(
    owner_api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    response = _create(owner_api, tenant, capture)  # the free plan
    assert response.status_code == 403 and response.json()["error"]["code"] == "plan_limit"
    _pro(tenant)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"size": "xl"}, 403, "plan_limit"),
        ({"size": "huge"}, 400, "validation_error"),
        ({"engine": "milvus"}, 400, "validation_error"),
        ({"engine": "pgvector", "replicas": 2}, 400, "unsupported_combination"),
        ({"engine": "qdrant", "replicas": 4}, 403, "plan_limit"),
        ({"name": "Bad Name"}, 400, "validation_error"),
        ({"unknown": 1}, 400, "unknown_field"),
    ]
    for body, status, code in cases:
        response = _create(owner_api, tenant, capture, **body)
        assert response.status_code == status, (body, response.content)
        assert response.json()["error"]["code"] == code, (body, response.content)
    assert not Cluster.objects.unscoped().filter(tenant=tenant).exists()
    plan = Plan.objects.get(slug="pro")
    Plan.objects.filter(pk=plan.pk).update(max_clusters=1)
    assert _create(owner_api, tenant, capture).status_code == 202
    response = _create(owner_api, tenant, capture)
    assert response.status_code == 409 and response.json()["error"]["code"] == "cluster_exists"
    response = _create(owner_api, tenant, capture, name="c2")
    assert response.status_code == 403 and response.json()["error"]["code"] == "quota_exceeded"


def test_roles_and_other_tenants(
    api: APIClient,
    owner: Any,
    pro: Tenant,
    other_tenant: Tenant,
    django_capture_on_commit_callbacks: Any,
) -> None:
    capture = django_capture_on_commit_callbacks
    member = add_member(pro, UserFactory(email="m@example.test"), Role.MEMBER)
    viewer = add_member(pro, UserFactory(email="v@example.test"), Role.VIEWER)
    assert _create(as_user(APIClient(), member), pro, capture).status_code == 403
    assert _create(as_user(APIClient(), owner), pro, capture).status_code == 202
    viewer_api = as_user(APIClient(), viewer)
    listed = viewer_api.get(BASE.format(slug=pro.slug) + "/clusters").json()["data"]
    assert [c["name"] for c in listed] == ["c1"]
    assert viewer_api.delete(BASE.format(slug=pro.slug) + "/clusters/c1").status_code == 403

    # Mallory owns another tenant: nothing of acme's cluster is reachable or revealed.
    _pro(other_tenant)
    mallory = as_user(
        APIClient(), Membership.objects.unscoped().get(tenant=other_tenant).user
    )
    for path in (f"/api/v1/tenants/{pro.slug}/clusters", f"/api/v1/tenants/{pro.slug}/clusters/c1"):
        assert mallory.get(path).status_code == 404
    assert mallory.delete(f"/api/v1/tenants/{pro.slug}/clusters/c1").status_code == 404
    evil = BASE.format(slug=other_tenant.slug)
    assert mallory.get(evil + "/clusters").json()["data"] == []
    assert mallory.get(evil + "/clusters/c1").status_code == 404
    assert mallory.patch(evil + "/clusters/c1", {"size": "s"}, format="json").status_code == 404
    # Naming acme's cluster for an index in her own tenant finds nothing.
    response = mallory.post(
        evil + "/indexes",
        {"name": "steal", "dimension": 4, "tier": "dedicated", "cluster": "c1"},
        format="json",
    )
    assert response.status_code == 404, response.content
    assert _cluster(pro, "c1").status == ClusterStatus.READY


def test_index_needs_a_ready_cluster_of_its_engine(
    owner_api: APIClient, pro: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    # Without running the queued task the cluster stays pending.
    response = owner_api.post(
        BASE.format(slug=pro.slug) + "/clusters",
        {"name": "slow", "engine": "pgvector", "size": "xs"},
        format="json",
    )
    assert response.status_code == 202
    indexes = BASE.format(slug=pro.slug) + "/indexes"
    body = {"name": "ix", "dimension": 4, "tier": "dedicated", "cluster": "slow"}
    response = owner_api.post(indexes, body, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "cluster_not_ready"
    response = owner_api.post(indexes, {**body, "engine": "qdrant"}, format="json")
    assert response.json()["error"]["code"] == "unsupported_combination"
    response = owner_api.post(indexes, {**body, "tier": "shared"}, format="json")
    assert response.json()["error"]["code"] == "unsupported_combination"
    response = owner_api.post(indexes, {"name": "ix", "dimension": 4, "tier": "dedicated"},
                              format="json")  # fmt: skip
    assert response.json()["error"]["code"] == "validation_error"


def test_failure_then_operator_retry(
    pro: Tenant,
    owner: Any,
    operator: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A permanent driver error (no such Qdrant binary) moves the cluster to failed with the
    reason; after the operator fixes it, the admin's retry action provisions it."""
    monkeypatch.setenv("VECTORPLANE_QDRANT_BINARY", "/nonexistent/qdrant")
    response = _create(
        as_user(APIClient(), owner), pro, django_capture_on_commit_callbacks, engine="qdrant"
    )
    assert response.status_code == 202
    cluster = _cluster(pro, "c1")
    assert cluster.status == ClusterStatus.FAILED
    assert "/nonexistent/qdrant" in cluster.status_message
    monkeypatch.delenv("VECTORPLANE_QDRANT_BINARY")
    operator.is_superuser = True
    operator.save()
    admin = Client()
    admin.force_login(operator)
    page = admin.get(f"/admin/provisioning/cluster/{cluster.pk}/change/")
    assert page.status_code == 200 and "/nonexistent/qdrant" in page.content.decode()
    assert connections.credentials(cluster)["api_key"] not in page.content.decode()
    assert admin.get("/admin/provisioning/cluster/").status_code == 200
    assert admin.get("/admin/provisioning/index/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/admin/provisioning/cluster/",
            {"action": "retry", "_selected_action": [str(cluster.pk)]},
        )
    assert response.status_code == 302 and "login" not in response["Location"], response
    cluster.refresh_from_db()
    assert cluster.status == ClusterStatus.READY, cluster.status_message
    assert cluster.endpoint["url"].startswith("http://127.0.0.1:")
    LocalDriver().destroy(steps.spec_for(cluster))


def test_reconcile_restarts_a_dead_server(
    owner_api: APIClient, pro: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    assert _create(owner_api, pro, django_capture_on_commit_callbacks).status_code == 202
    cluster = _cluster(pro, "c1")
    spec = steps.spec_for(cluster)
    driver = LocalDriver()
    driver.stop(spec)  # the server dies (what `make run`'s Ctrl-C does too)
    assert driver.observe(spec).state == "absent"
    counts = tasks.clusters_reconcile(inline=True)
    assert counts["drifted"] == 1
    cluster.refresh_from_db()
    assert cluster.status == ClusterStatus.READY
    observed = driver.observe(spec)
    assert observed.state == "ready" and observed.endpoint is not None
    assert observed.endpoint.port == cluster.endpoint["port"]  # the endpoint is kept
    with psycopg.connect(connections.cluster_gateway_url(cluster), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # A second reconcile finds nothing to do.
    assert tasks.clusters_reconcile(inline=True) == {"applied": 0, "destroyed": 0, "drifted": 0}
    driver.destroy(spec)


def test_state_machine_is_compare_and_set(
    pro: Tenant,
    other_tenant: Tenant,
    owner_api: APIClient,
    django_capture_on_commit_callbacks: Any,
) -> None:
    owner_api.post(
        BASE.format(slug=pro.slug) + "/clusters",
        {"name": "sm", "engine": "pgvector", "size": "xs"},
        format="json",
    )
    cluster = _cluster(pro, "sm")
    with tenant_scope(pro.id):  # where the tasks run the steps
        assert not steps.transition(cluster.id, ClusterStatus.READY)  # pending -/-> ready
        assert steps.transition(cluster.id, ClusterStatus.PROVISIONING)
        assert steps.transition(cluster.id, ClusterStatus.DELETING)
        assert not steps.transition(cluster.id, ClusterStatus.READY)  # deleting -/-> ready
    assert tasks.cluster_apply.apply(args=(str(cluster.id),)).get() == "skipped"
    with tenant_scope(other_tenant.id):  # fails closed: another tenant's cluster is not moved
        assert not steps.transition(cluster.id, ClusterStatus.DELETED)
    with tenant_scope(pro.id):
        assert steps.transition(cluster.id, ClusterStatus.DELETED)
        assert not steps.transition(cluster.id, ClusterStatus.DELETING)


def test_credentials_encrypted_at_rest_and_rotated(
    pro: Tenant, owner_api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner_api.post(
        BASE.format(slug=pro.slug) + "/clusters",
        {"name": "enc", "engine": "pgvector", "size": "xs"},
        format="json",
    )
    cluster = _cluster(pro, "enc")
    secret = connections.credentials(cluster)["admin_password"]
    assert len(secret) >= 24 and secret not in cluster.credentials_encrypted
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(c)::text FROM provisioning_cluster c WHERE id = %s",
                       [cluster.id])  # fmt: skip
        assert secret not in cursor.fetchone()[0]

    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("VECTORPLANE_CREDENTIALS_KEY", old_key)
    crypto.reset()
    token = crypto.encrypt_json({"p": secret})
    monkeypatch.setenv("VECTORPLANE_CREDENTIALS_KEY", new_key)
    crypto.reset()
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt_json(token)  # the old key is gone: nothing decrypts
    monkeypatch.setenv("VECTORPLANE_CREDENTIALS_OLD_KEYS", old_key)
    crypto.reset()
    assert crypto.decrypt_json(token) == {"p": secret}
    rotated = crypto.reencrypt(token)
    monkeypatch.delenv("VECTORPLANE_CREDENTIALS_OLD_KEYS")
    crypto.reset()
    assert crypto.decrypt_json(rotated) == {"p": secret}
    monkeypatch.delenv("VECTORPLANE_CREDENTIALS_KEY")
    crypto.reset()


def test_size_catalogue(owner_api: APIClient, pro: Tenant) -> None:
    data = owner_api.get(BASE.format(slug=pro.slug) + "/cluster-sizes").json()["data"]
    allowed = {row["slug"]: row["allowed"] for row in data}
    assert allowed == {"xs": True, "s": True, "m": True, "l": False, "xl": False}
