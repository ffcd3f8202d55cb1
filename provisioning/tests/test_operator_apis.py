"""The platform operators' API (`/api/v1/operator/...`): staff see every tenant and cluster and
the platform's health; anyone else gets what an unknown URL gets."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.celery import app as celery_app
from gateway.tests.conftest import RedisProcess, Server
from provisioning import heartbeat
from provisioning.models import Cluster, ClusterStatus
from provisioning.services import clusters as cluster_services
from provisioning.steps import cluster_set_status
from provisioning.storage import shared_tier
from provisioning.tasks import clusters_reconcile
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, add_member, make_key, make_tenant

pytestmark = pytest.mark.django_db

TENANTS = "/api/v1/operator/tenants"
CLUSTERS = "/api/v1/operator/clusters"
HEALTH = "/api/v1/operator/health"


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _cluster(tenant: Tenant, by: Any, name: str) -> Any:
    """A cluster as ordered (`pending`), with no task queued (no server started)."""
    with mock.patch.object(cluster_services, "_enqueue"):
        return cluster_services.cluster_create(
            actor=Actor(user=by), tenant=tenant, name=name, engine="qdrant", size="xs"
        )


def _store_vectors(tenant: Tenant, index_id: uuid.UUID, count: int) -> None:
    """What the gateway's upserts leave in the shared tier's namespace_stats, as the tenant."""
    with shared_tier.connect() as conn:
        shared_tier.ensure_base(conn)
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        conn.execute(
            "INSERT INTO public.namespace_stats (tenant_id, index_id, namespace, vector_count) "
            "VALUES (%s, %s, 'ns', %s)",
            (tenant.id, index_id, count),
        )
        conn.commit()


# ---------------------------------------------------------------------------- who may call


def _unknown_url_answer(client: APIClient) -> tuple[int, Any, str | None]:
    response = client.get("/api/v1/operator/no-such-page")
    return response.status_code, response.json(), response.get("Content-Type")


@pytest.mark.parametrize("path", [TENANTS, CLUSTERS, HEALTH])
def test_a_tenant_owner_gets_the_unknown_url_answer(path: str, owner: Any, tenant: Tenant) -> None:
    client = _client(owner)
    expected = _unknown_url_answer(client)
    assert expected[0] == 404 and expected[1]["error"]["code"] == "not_found"
    for method in ("get", "post", "delete", "options"):
        response = getattr(client, method)(path)
        assert (response.status_code, response.json(), response.get("Content-Type")) == expected
        assert not response.has_header("Allow"), method  # no hint that a view is there


@pytest.mark.parametrize("path", [TENANTS, CLUSTERS, HEALTH])
def test_api_keys_anonymous_and_bad_credentials_get_the_unknown_url_answer(
    path: str, tenant: Tenant, admin_key: str
) -> None:
    expected = _unknown_url_answer(APIClient())
    read_key = make_key(tenant, scopes=[Scope.READ])[1]
    callers = [
        APIClient(),
        _bearer(admin_key),
        _bearer(read_key),  # no admin scope: elsewhere `insufficient_scope`
        _bearer("vpk_notakey_notakey"),
        _bearer("garbage"),
    ]
    keyed = APIClient()
    keyed.credentials(HTTP_API_KEY=admin_key)
    callers.append(keyed)
    for client in callers:
        response = client.get(path)
        answer = (response.status_code, response.json(), response.get("Content-Type"))
        assert answer == expected, path
        assert not response.has_header("WWW-Authenticate")


def test_an_inactive_staff_user_gets_the_unknown_url_answer(db: Any) -> None:
    gone = UserFactory(email="gone@example.test", is_staff=True, is_active=False)
    assert _client(gone).get(TENANTS).status_code == 404


def test_a_staff_users_personal_token_reaches_it(operator: Any) -> None:
    _token, secret = tenant_services.personal_token_create(actor=Actor(user=operator), name="t")
    assert _bearer(secret).get(TENANTS).status_code == 200
    # A method the route does not have is the staff's 405 (the route is no secret to them).
    assert _bearer(secret).post(TENANTS).status_code == 405


# ---------------------------------------------------------------------------- tenants


def test_staff_see_every_tenant_with_its_counts(
    operator: Any, owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    add_member(tenant, UserFactory(email="second@example.test"))
    owner_client = _client(owner)
    index = owner_client.post(
        "/api/v1/tenants/acme/indexes", {"name": "docs", "dimension": 3}, format="json"
    )
    assert index.status_code == 201, index.json()
    owner_client.post(
        "/api/v1/tenants/acme/indexes", {"name": "more", "dimension": 3}, format="json"
    )
    _store_vectors(tenant, uuid.UUID(index.json()["id"]), 7)
    tenant_services.tenant_change_plan(
        actor=Actor(user=operator), tenant=other_tenant, plan_slug="enterprise"
    )
    _cluster(other_tenant, operator, "c1")
    gone = make_tenant(owner=owner, name="Gone", slug="gone")
    tenant_services.tenant_delete(actor=Actor(user=owner), tenant=gone)

    response = _client(operator).get(TENANTS)
    assert response.status_code == 200, response.json()
    rows = {row["slug"]: row for row in response.json()["data"]}
    assert set(rows) == {"acme", "evil", "gone"}  # the operator is a member of none
    acme, evil = rows["acme"], rows["evil"]
    assert (acme["member_count"], acme["index_count"], acme["cluster_count"]) == (2, 2, 0)
    assert acme["stored_vectors"] == 7 and acme["plan"] == "free" and acme["status"] == "active"
    assert (evil["member_count"], evil["index_count"], evil["cluster_count"]) == (1, 0, 1)
    assert evil["plan"] == "enterprise" and evil["stored_vectors"] == 0
    assert rows["gone"]["status"] == "deleted"
    assert set(acme) == {
        "id", "slug", "name", "plan", "status", "status_reason", "member_count", "index_count",
        "cluster_count", "stored_vectors", "created_at",
    }  # fmt: skip


def test_tenant_counts_take_one_query_per_page(operator: Any) -> None:
    for i in range(6):
        t = make_tenant(name=f"T{i}", slug=f"tenant-{i}")
        add_member(t)
    client = _client(operator)
    client.get(TENANTS)  # warm up (session, plans)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(TENANTS, {"limit": 2}).json()["data"]) == 2
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(TENANTS, {"limit": 6}).json()["data"]) == 6
    assert len(many.captured_queries) == len(few.captured_queries)  # no query per row


def test_tenant_filters_and_pages(operator: Any, owner: Any) -> None:
    for slug, name in (("alpha", "Alpha Corp"), ("beta", "Beta"), ("gamma", "ALPHABET soup")):
        make_tenant(owner=owner, name=name, slug=slug)
    suspended = make_tenant(owner=owner, name="Sleepy", slug="sleepy")
    tenant_services.tenant_suspend(actor=Actor(user=operator), tenant=suspended, reason="bills")
    client = _client(operator)

    def slugs(**params: str) -> list[str]:
        response = client.get(TENANTS, params)
        assert response.status_code == 200, response.json()
        return [row["slug"] for row in response.json()["data"]]

    assert slugs(q="alpha") == ["gamma", "alpha"]  # slug or name, any case, newest first
    assert slugs(q="EEP") == ["sleepy"]
    assert slugs(status="suspended") == ["sleepy"]
    assert set(slugs(status="active")) == {"alpha", "beta", "gamma"}
    assert slugs(status="active", q="bet") == ["gamma", "beta"]
    assert slugs(q="nothing-like-it") == []

    first = client.get(TENANTS, {"limit": 3}).json()
    assert len(first["data"]) == 3 and first["next_cursor"]
    second = client.get(TENANTS, {"limit": 3, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] is None
    seen = [r["slug"] for r in first["data"] + second["data"]]
    assert seen == ["sleepy", "gamma", "beta", "alpha"]

    for bad in ({"status": "asleep"}, {"limit": "0"}, {"cursor": "@@"}, {"q": "x" * 101},
                {"colour": "red"}):  # fmt: skip
        response = client.get(TENANTS, bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] in {
            "validation_error", "invalid_cursor", "unknown_field",
        }  # fmt: skip


def test_stored_vectors_is_null_when_the_shared_tier_does_not_answer(
    operator: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORPLANE_DATA_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    response = _client(operator).get(TENANTS)
    assert response.status_code == 200
    assert [row["stored_vectors"] for row in response.json()["data"]] == [None]


# ---------------------------------------------------------------------------- clusters


def test_staff_see_every_tenants_clusters(
    operator: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    for t in (tenant, other_tenant):
        tenant_services.tenant_change_plan(actor=Actor(user=operator), tenant=t, plan_slug="pro")
    a = _cluster(tenant, operator, "a1")
    _cluster(tenant, operator, "a2")
    b = _cluster(other_tenant, operator, "b1")
    with tenant_scope(other_tenant.id):
        cluster_set_status(cluster=b, to=ClusterStatus.FAILED, message="no capacity")
    with tenant_scope(tenant.id):
        cluster_set_status(cluster=a, to=ClusterStatus.DELETED, message="")
    client = _client(operator)
    response = client.get(CLUSTERS)
    assert response.status_code == 200, response.json()
    rows = response.json()["data"]
    assert [(r["tenant"], r["name"]) for r in rows] == [("evil", "b1"), ("acme", "a2")]
    failed = rows[0]
    assert failed["status"] == "failed" and failed["last_error"] == "no capacity"
    assert (failed["engine"], failed["size"], failed["replicas"]) == ("qdrant", "xs", 1)
    assert rows[1]["last_error"] == "" and rows[1]["status"] == "pending"
    assert [r["name"] for r in client.get(CLUSTERS, {"status": "failed"}).json()["data"]] == ["b1"]
    assert [r["name"] for r in client.get(CLUSTERS, {"status": "deleted"}).json()["data"]] == ["a1"]
    page = client.get(CLUSTERS, {"limit": 1}).json()
    assert len(page["data"]) == 1 and page["next_cursor"]
    rest = client.get(CLUSTERS, {"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [r["name"] for r in rest["data"]] == ["a2"]
    assert client.get(CLUSTERS, {"status": "broken"}).status_code == 400


def test_cluster_list_takes_one_query_per_page(operator: Any, tenant: Tenant) -> None:
    tenant_services.tenant_change_plan(
        actor=Actor(user=operator), tenant=tenant, plan_slug="enterprise"
    )
    for i in range(4):
        _cluster(tenant, operator, f"c{i}")
    client = _client(operator)
    client.get(CLUSTERS)
    with CaptureQueriesContext(connection) as few:
        client.get(CLUSTERS, {"limit": 1})
    with CaptureQueriesContext(connection) as many:
        client.get(CLUSTERS, {"limit": 4})
    assert len(many.captured_queries) == len(few.captured_queries)


# ---------------------------------------------------------------------------- health


def _parts(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {part["name"]: part for part in body["parts"]}


def test_health_reports_each_part(
    operator: Any, gateway_server: Server, heartbeat_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORPLANE_GATEWAY_URL", gateway_server.url)
    heartbeat.reconcile_finished()
    response = _client(operator).get(HEALTH)
    assert response.status_code == 200
    parts = _parts(response.json())
    assert set(parts) == {"database", "broker", "gateway", "workers", "reconcile"}
    assert parts["database"]["ok"] is True and parts["database"]["error"] == ""
    assert parts["gateway"]["ok"] is True, parts["gateway"]
    assert parts["gateway"]["target"] == f"{gateway_server.url}/readyz"
    assert parts["reconcile"]["ok"] is True, parts["reconcile"]
    assert re.fullmatch(r"last reconcile \d+ s ago \(every \d+ s\)", parts["reconcile"]["target"])
    # No worker runs for this process's broker: reported, not raised (tests/console/
    # test_operator.py sees a real worker answer).
    assert parts["workers"]["ok"] is False and parts["workers"]["error"]
    assert all(part["latency_ms"] >= 0 for part in parts.values())
    ok = all(part["ok"] for part in parts.values())
    assert response.json()["status"] == ("ok" if ok else "degraded")


def test_health_reports_a_part_that_is_down_without_a_5xx(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORPLANE_GATEWAY_URL", "http://127.0.0.1:1")  # nothing listens
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://:secret@127.0.0.1:1/0")
    response = _client(operator).get(HEALTH)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    parts = _parts(body)
    assert parts["database"]["ok"] is True
    assert parts["gateway"]["ok"] is False and parts["gateway"]["error"]
    assert parts["broker"]["ok"] is False and parts["broker"]["error"]
    assert "secret" not in response.content.decode()  # the broker URL's password is not shown
    assert parts["broker"]["target"] == "redis://127.0.0.1:1/0"


def test_health_reports_a_gateway_that_is_not_ready(
    operator: Any, gateway_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECTORPLANE_GATEWAY_URL", gateway_server.url + "/elsewhere")  # 404 there
    gateway = _parts(_client(operator).get(HEALTH).json())["gateway"]
    assert gateway["ok"] is False and "404" in gateway["error"]


@pytest.fixture
def heartbeat_redis(redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """The control plane's Redis for the reconcile's heartbeat: a database of the session's."""
    url = redis_server.url(7)
    monkeypatch.setenv("REDIS_URL", url)
    with redis.Redis.from_url(url) as client:
        client.delete(heartbeat.KEY)
    return url


def _reconcile(operator: Any) -> dict[str, Any]:
    return _parts(_client(operator).get(HEALTH).json())["reconcile"]


def test_reconcile_health_follows_the_beat(operator: Any, heartbeat_redis: str) -> None:
    missing = _reconcile(operator)
    assert missing["ok"] is False and "no reconcile has finished yet" in missing["error"]
    clusters_reconcile(check_ready=False)  # the beat's task, run here: it records its end
    assert _reconcile(operator)["ok"] is True
    heartbeat.reconcile_finished(at=time.time() - 3600)  # an hour without a reconcile
    stale = _reconcile(operator)
    assert stale["ok"] is False and re.search(r"finished 36\d\d s ago", stale["error"]), stale


def test_reconcile_health_names_a_stuck_cluster(
    operator: Any, tenant: Tenant, owner: Any, heartbeat_redis: str
) -> None:
    tenant_services.tenant_change_plan(actor=Actor(user=operator), tenant=tenant, plan_slug="pro")
    cluster = _cluster(tenant, owner, "stuck")
    heartbeat.reconcile_finished()
    assert _reconcile(operator)["ok"] is True  # pending for seconds: not stuck
    Cluster.objects.unscoped().filter(pk=cluster.pk).update(
        updated_at=timezone.now() - timedelta(minutes=25)
    )
    stuck = _reconcile(operator)
    assert stuck["ok"] is False
    assert stuck["error"] == f"cluster {tenant.slug}/stuck has been pending for 25 min"


def test_reconcile_health_reports_a_redis_that_is_down(
    operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    heartbeat.reconcile_finished()  # logged, not raised
    down = _reconcile(operator)
    assert down["ok"] is False and "ConnectionError" in down["error"]
