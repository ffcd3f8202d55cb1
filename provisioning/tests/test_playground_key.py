"""The console's playground key (`POST .../indexes/{name}/playground-key`): scope read, one
index, expiring in minutes, audited; members only; another tenant's index is not found; a
row-bound or index-restricted API key cannot reach it either (keys with the admin scope are
the only keys that use the management API, and then only as their tenant)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.models import Index
from provisioning.services.indexes import PLAYGROUND_KEY_MINUTES
from tenants.models import ApiKey, AuditEvent, Role, Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants/acme/indexes"


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def docs(owner: Any, tenant: Tenant) -> str:
    created = _client(owner).post(BASE, {"name": "docs", "dimension": 3}, format="json")
    assert created.status_code == 201, created.json()
    return "docs"


def test_a_member_gets_a_read_key_for_one_index_that_expires(
    members: dict[str, Any], tenant: Tenant, docs: str
) -> None:
    member = members[Role.MEMBER]
    response = _client(member).post(f"{BASE}/docs/playground-key")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"].startswith("vpk_") and body["index"] == "docs"
    assert body["host"].endswith("/v1/indexes/docs")
    expires = datetime.fromisoformat(body["expires_at"])
    left = expires - timezone.now()
    assert timedelta(minutes=PLAYGROUND_KEY_MINUTES - 1) < left <= timedelta(
        minutes=PLAYGROUND_KEY_MINUTES
    )
    with tenant_scope(tenant.id):
        key = ApiKey.objects.get(pk=body["key_id"])
        assert key.scopes == [Scope.READ]
        assert key.index_names == ["docs"]
        assert key.name == "console:docs"
        event = AuditEvent.objects.filter(action="api_key.created", target_id=str(key.id)).get()
    assert event.actor_user_id == member.id


def test_viewers_cannot_mint_one(members: dict[str, Any], docs: str) -> None:
    response = _client(members[Role.VIEWER]).post(f"{BASE}/docs/playground-key")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_another_tenant_and_a_missing_index_are_not_found(
    owner: Any, other_tenant: Tenant, docs: str
) -> None:
    intruder = get_user_model().objects.get(email="mallory@example.test")  # evil's owner
    foreign = _client(intruder).post(f"{BASE}/docs/playground-key")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    cross = _client(intruder).post("/api/v1/tenants/evil/indexes/docs/playground-key")
    assert cross.status_code == 404
    missing = _client(owner).post(f"{BASE}/nope/playground-key")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_an_index_that_is_not_ready_is_a_conflict(owner: Any, tenant: Tenant, docs: str) -> None:
    with tenant_scope(tenant.id):
        Index.objects.filter(name="docs").update(status="initializing")
    response = _client(owner).post(f"{BASE}/docs/playground-key")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "index_not_ready",
        "message": "The index is not ready yet.",
        "details": {"status": "initializing"},
    }


def test_an_api_key_without_admin_scope_cannot_mint_one(tenant: Tenant, docs: str) -> None:
    _key, secret = make_key(tenant, scopes=[Scope.READ, Scope.WRITE])
    client = APIClient()
    client.credentials(HTTP_API_KEY=secret)
    response = client.post(f"{BASE}/docs/playground-key")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
