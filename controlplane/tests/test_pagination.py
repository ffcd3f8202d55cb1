"""Keyset pagination: complete, no duplicates, ties broken by id, forged cursors refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db


def _walk(client: APIClient, url: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = client.get(url, params).json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_walk_is_complete_with_timestamp_ties(owner: Any, tenant: Tenant, limit: int) -> None:
    keys = [make_key(tenant, name=f"k{i}")[0] for i in range(17)]
    # Many rows sharing one created_at: order must fall back to id, without loss or repeats.
    same = timezone.now()
    with tenant_scope(tenant.id):
        ApiKey.objects.filter(pk__in=[k.pk for k in keys[3:12]]).update(created_at=same)
    client = APIClient()
    client.force_authenticate(owner)
    seen = _walk(client, "/api/v1/tenants/acme/api-keys", limit)
    assert len(seen) == len(set(seen)) == 17
    assert set(seen) == {str(k.pk) for k in keys}


def test_deep_page_query_is_bounded_by_the_cursor(owner: Any, tenant: Tenant) -> None:
    for i in range(5):
        make_key(tenant, name=f"k{i}")
    client = APIClient()
    client.force_authenticate(owner)
    cursor = client.get("/api/v1/tenants/acme/api-keys", {"limit": 2}).json()["next_cursor"]
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/tenants/acme/api-keys", {"limit": 2, "cursor": cursor})
    page_sql = next(
        q["sql"]
        for q in queries.captured_queries
        if "tenants_apikey" in q["sql"] and "LIMIT" in q["sql"]
    )
    assert '"tenants_apikey"."created_at" <=' in page_sql  # the index bound


@pytest.mark.parametrize(
    "cursor", ["x", "bm90IGpzb24", "WyJhIl0", "WyJub3QtYS1kYXRlIiwgIm5vdC1hLXV1aWQiXQ", "W10"]
)
def test_forged_cursor_is_400(owner: Any, tenant: Tenant, cursor: str) -> None:
    client = APIClient()
    client.force_authenticate(owner)
    response = client.get("/api/v1/tenants/acme/api-keys", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
