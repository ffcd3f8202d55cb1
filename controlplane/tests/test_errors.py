"""Errors outside the happy path still answer in the one JSON shape."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants import services
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def _assert_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


def test_unexpected_exception_is_a_json_500(
    monkeypatch: pytest.MonkeyPatch, owner: Any, tenant: Tenant
) -> None:
    def boom(**kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "tenant_update", boom)
    client = APIClient()
    client.force_authenticate(owner)
    response = client.patch("/api/v1/tenants/acme", {"name": "x"}, format="json")
    assert response.status_code == 500
    _assert_shape(response.json(), "internal_error")
    assert "fire" not in response.content.decode()  # no internals leak


def test_unauthenticated_is_401_with_shape() -> None:
    response = APIClient().get("/api/v1/tenants")
    assert response.status_code == 401
    _assert_shape(response.json(), "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_url_outside_drf_is_json_404() -> None:
    response = APIClient().get("/no/such/page")
    assert response.status_code == 404
    _assert_shape(response.json(), "not_found")


def test_health_endpoints() -> None:
    client = APIClient()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
