"""A cluster's state history (`ClusterEvent`, `GET .../clusters/{name}/events`): every status
change recorded with the spec it concerns, newest first, paginated; the last error in the
detail; another tenant, another tenant's key and a row-bound key reach nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from conftest import as_user
from provisioning import steps
from provisioning.drivers.local import LocalDriver
from provisioning.models import Cluster, ClusterEvent, ClusterStatus
from tenants.actors import Actor
from tenants.models import Membership, Plan, Role, Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.services import api_key_create
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants/{slug}/clusters"


def _pro(tenant: Tenant) -> Tenant:
    Tenant.objects.filter(pk=tenant.pk).update(plan=Plan.objects.get(slug="pro"))
    tenant.refresh_from_db()
    return tenant


def _moves(tenant: Tenant, name: str) -> list[tuple[str, str, int, str, int]]:
    with tenant_scope(tenant.id):
        events = ClusterEvent.objects.filter(cluster__name=name).order_by("at", "id")
        return [(e.from_status, e.to_status, e.generation, e.size, e.replicas) for e in events]


def test_every_status_change_is_recorded_with_its_spec(
    api: APIClient, owner: Any, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    pro = _pro(tenant)
    client = as_user(api, owner)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            BASE.format(slug=pro.slug),
            {"name": "c1", "engine": "pgvector", "size": "xs"},
            format="json",
        )
    assert created.status_code == 202, created.content
    with django_capture_on_commit_callbacks(execute=True):
        resized = client.patch(BASE.format(slug=pro.slug) + "/c1", {"size": "s"}, format="json")
    assert resized.status_code == 202, resized.content
    cluster = Cluster.objects.unscoped().get(tenant=pro, name="c1")
    spec = steps.spec_for(cluster)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(BASE.format(slug=pro.slug) + "/c1").status_code == 202
    assert not LocalDriver().cluster_dir(spec).exists()
    assert _moves(pro, "c1") == [
        ("", "pending", 1, "xs", 1),
        ("pending", "provisioning", 1, "xs", 1),
        ("provisioning", "ready", 1, "xs", 1),
        ("ready", "updating", 2, "s", 1),
        ("updating", "ready", 2, "s", 1),
        ("ready", "deleting", 2, "s", 1),
        ("deleting", "deleted", 2, "s", 1),
    ]
    cluster.refresh_from_db()
    with tenant_scope(pro.id):
        last = ClusterEvent.objects.filter(cluster=cluster).first()
    assert last is not None and last.at == cluster.updated_at  # the same write


def test_events_api_newest_first_paginated_and_last_error(
    api: APIClient, owner: Any, tenant: Tenant
) -> None:
    pro = _pro(tenant)
    client = as_user(api, owner)
    # Without running the queued task: the steps move it, as a worker would.
    client.post(BASE.format(slug=pro.slug), {"name": "c2", "engine": "qdrant", "size": "xs"},
                format="json")  # fmt: skip
    cluster = Cluster.objects.unscoped().get(tenant=pro, name="c2")
    detail = client.get(BASE.format(slug=pro.slug) + "/c2").json()
    assert (detail["last_error"], detail["last_error_at"]) == ("", None)
    with tenant_scope(pro.id):
        assert steps.transition(cluster.id, ClusterStatus.PROVISIONING)
        steps.record_failure(cluster, "no such binary")
        assert steps.transition(cluster.id, ClusterStatus.PROVISIONING)
    page = client.get(BASE.format(slug=pro.slug) + "/c2/events", {"limit": 2})
    assert page.status_code == 200, page.content
    body = page.json()
    assert [(e["from_status"], e["to_status"]) for e in body["data"]] == [
        ("failed", "provisioning"), ("provisioning", "failed"),
    ]  # fmt: skip
    assert body["data"][1]["message"] == "no such binary"
    assert body["data"][1]["size"] == "xs" and body["data"][1]["replicas"] == 1
    rest = client.get(BASE.format(slug=pro.slug) + "/c2/events",
                      {"limit": 2, "cursor": body["next_cursor"]}).json()  # fmt: skip
    assert [(e["from_status"], e["to_status"]) for e in rest["data"]] == [
        ("pending", "provisioning"), ("", "pending"),
    ]  # fmt: skip
    assert rest["next_cursor"] is None
    detail = client.get(BASE.format(slug=pro.slug) + "/c2").json()
    assert detail["status"] == "provisioning" and detail["last_error"] == "no such binary"
    assert detail["last_error_at"] == body["data"][1]["at"]
    bad = client.get(BASE.format(slug=pro.slug) + "/c2/events", {"cursor": "!!"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    assert client.get(BASE.format(slug=pro.slug) + "/nope/events").status_code == 404


def test_events_of_another_tenant_are_not_found(
    api: APIClient, owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    pro = _pro(tenant)
    body = {"name": "c3", "engine": "qdrant", "size": "xs"}
    as_user(api, owner).post(BASE.format(slug=pro.slug), body, format="json")
    path = BASE.format(slug=pro.slug) + "/c3/events"
    own = BASE.format(slug=other_tenant.slug) + "/c3/events"
    mallory = as_user(APIClient(), Membership.objects.unscoped().get(tenant=other_tenant).user)
    assert mallory.get(path).status_code == 404
    assert mallory.get(own).status_code == 404
    _key, foreign = make_key(other_tenant, scopes=[Scope.ADMIN])
    keyed = APIClient()
    keyed.credentials(HTTP_API_KEY=foreign)
    assert keyed.get(path).status_code == 404
    assert keyed.get(own).status_code == 404
    with tenant_scope(pro.id):
        by = Membership.objects.filter(role=Role.OWNER).first()
    assert by is not None
    _row, row_secret = api_key_create(
        actor=Actor(user=by.user), tenant=pro, name="rows", scopes=[Scope.READ],
        row_filter={"user_id": {"$eq": "u1"}},
    )  # fmt: skip
    bound = APIClient()
    bound.credentials(HTTP_API_KEY=row_secret)
    response = bound.get(path)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
