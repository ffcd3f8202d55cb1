"""Per-index latency (`GET .../indexes/{name}/latency`): hourly p50/p95/p99 from the gateway's
histogram rows, ranges and their limits, roles, and another tenant's index not found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from provisioning.models import Index, LatencyRecord
from tenants.models import Role, Tenant
from tenants.scoping import tenant_scope
from vectorplane.contract.latency import BOUNDS_MS, bucket_of

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants/acme/indexes"


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def docs(owner: Any, tenant: Tenant) -> Index:
    created = _client(owner).post(BASE, {"name": "docs", "dimension": 3}, format="json")
    assert created.status_code == 201, created.json()
    with tenant_scope(tenant.id):
        return Index.objects.get(name="docs")


def _record(tenant: Tenant, index: Index, hour: datetime, seconds: float, n: int) -> None:
    with tenant_scope(tenant.id):
        LatencyRecord.objects.create(
            tenant=tenant, index_id=index.id, index_name=index.name, hour=hour,
            bucket=bucket_of(seconds), requests=n,
        )  # fmt: skip


def test_hourly_percentiles_newest_first(
    members: dict[str, Any], tenant: Tenant, docs: Index
) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _record(tenant, docs, now, 0.004, 90)  # 90 requests at <= 5 ms
    _record(tenant, docs, now, 0.040, 9)  # 9 at <= 50 ms
    _record(tenant, docs, now, 0.9, 1)  # 1 at <= 1000 ms
    _record(tenant, docs, now - timedelta(hours=2), 0.0008, 10)
    _record(tenant, docs, now - timedelta(days=3), 0.0008, 10)  # outside the default 24 h
    response = _client(members[Role.VIEWER]).get(f"{BASE}/docs/latency")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["index"] == "docs" and body["bounds_ms"] == list(BOUNDS_MS)
    hours = body["hours"]
    assert [h["requests"] for h in hours] == [100, 10]
    assert (hours[0]["p50_ms"], hours[0]["p95_ms"], hours[0]["p99_ms"]) == (5, 50, 50)
    assert (hours[1]["p50_ms"], hours[1]["p99_ms"]) == (1, 1)
    span = {"since": (now - timedelta(days=4)).isoformat(),
            "until": (now + timedelta(hours=1)).isoformat()}  # fmt: skip
    wide = _client(members[Role.VIEWER]).get(f"{BASE}/docs/latency", span)
    assert [h["requests"] for h in wide.json()["hours"]] == [100, 10, 10]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"hour": "1"}, "hour"),
    ],
)
def test_bad_ranges_are_400(owner: Any, docs: Index, params: dict[str, str], field: str) -> None:
    response = _client(owner).get(f"{BASE}/docs/latency", params)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] in ("validation_error", "unknown_field")
    assert field in str(response.json()["error"]["details"])


def test_another_tenant_cannot_read_it(owner: Any, other_tenant: Tenant, docs: Index) -> None:
    intruder = get_user_model().objects.get(email="mallory@example.test")
    assert _client(intruder).get(f"{BASE}/docs/latency").status_code == 404
    assert _client(intruder).get("/api/v1/tenants/evil/indexes/docs/latency").status_code == 404
    assert _client(owner).get(f"{BASE}/nope/latency").status_code == 404
