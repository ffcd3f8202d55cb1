"""The tenant's usage over time (`usage/summary`, `usage/errors`, `usage/stored-vectors/history`)
and the hourly stored-vectors sample that feeds it: sums over indexes per hour, filters, ranges,
pagination, roles, and another tenant's rows never counted or reached."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from provisioning import sampling, selectors
from provisioning.models import ErrorRecord, Index, StoredVectorsRecord, UsageRecord
from provisioning.storage import shared_tier
from tenants.models import Role, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

T = "/api/v1/tenants/acme/usage"
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _mallory() -> Any:
    """The other tenant's owner (the `other_tenant` fixture's)."""
    return get_user_model().objects.get(email="mallory@example.test")


def _client(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _usage(tenant: Tenant, name: str, hour: datetime, **counts: int) -> None:
    with tenant_scope(tenant.id):
        UsageRecord.objects.create(tenant=tenant, index_id=uuid.uuid5(tenant.id, name),
                                   index_name=name, hour=hour, **counts)  # fmt: skip


def _error(tenant: Tenant, hour: datetime, code: str, status: int, n: int, index: str = "") -> None:
    with tenant_scope(tenant.id):
        ErrorRecord.objects.create(tenant=tenant, index_name=index, hour=hour, code=code,
                                   status=status, requests=n)  # fmt: skip


def _stored(tenant: Tenant, name: str, hour: datetime, vectors: int) -> None:
    with tenant_scope(tenant.id):
        StoredVectorsRecord.objects.create(
            tenant=tenant, index_id=uuid.uuid5(tenant.id, name), index_name=name, hour=hour,
            vectors=vectors, dimension=3, sampled_at=hour,
        )  # fmt: skip


def test_summary_sums_the_indexes_per_hour_with_errors_and_stored_vectors(
    members: dict[str, Any], tenant: Tenant, other_tenant: Tenant
) -> None:
    _usage(tenant, "a", HOUR, requests=10, read_units=5, write_units=2, queries=4)
    _usage(tenant, "b", HOUR, requests=1, read_units=1, vectors_written=7)
    _usage(tenant, "a", HOUR - timedelta(hours=2), requests=3)
    _usage(tenant, "a", HOUR - timedelta(days=3), requests=1000)  # outside the default 24 h
    _error(tenant, HOUR, "invalid_filter", 400, 4, index="a")
    _error(tenant, HOUR, "rate_limited", 429, 6)
    _error(tenant, HOUR - timedelta(hours=2), "invalid_filter", 400, 1, index="b")
    _stored(tenant, "a", HOUR, 100)
    _stored(tenant, "b", HOUR, 20)
    _usage(other_tenant, "a", HOUR, requests=999)
    _error(other_tenant, HOUR, "not_found", 404, 999)
    _stored(other_tenant, "a", HOUR, 999)

    response = _client(members[Role.VIEWER]).get(f"{T}/summary")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [h["requests"] for h in body["hours"]] == [11, 3]  # newest first, acme's only
    assert (body["indexes"], body["clusters"]) == (0, 0)
    now = body["hours"][0]
    assert (now["read_units"], now["write_units"], now["queries"], now["vectors_written"]) == (
        6, 2, 4, 7,
    )  # fmt: skip
    assert (now["error_requests"], now["stored_vectors"]) == (10, 120)
    assert (body["hours"][1]["error_requests"], body["hours"][1]["stored_vectors"]) == (1, None)
    assert body["errors_by_code"] == [
        {"code": "rate_limited", "status": 429, "requests": 6},
        {"code": "invalid_filter", "status": 400, "requests": 5},
    ]
    week = _client(members[Role.VIEWER]).get(
        f"{T}/summary", {"since": (HOUR - timedelta(days=7)).isoformat()}
    )
    assert [h["requests"] for h in week.json()["hours"]] == [11, 3, 1000]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": HOUR.isoformat(), "until": (HOUR - timedelta(hours=1)).isoformat()}, "since"),
        ({"since": (HOUR - timedelta(days=32)).isoformat(), "until": HOUR.isoformat()}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
    ],
)
def test_summary_ranges_are_checked(
    owner: Any, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    response = _client(owner).get(f"{T}/summary", params)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]["fields"]


def test_errors_list_filters_and_pages(owner: Any, tenant: Tenant, other_tenant: Tenant) -> None:
    for i in range(5):
        _error(tenant, HOUR - timedelta(hours=i), "invalid_filter", 400, i + 1, index="a")
    _error(tenant, HOUR, "rate_limited", 429, 9)
    _error(other_tenant, HOUR, "rate_limited", 429, 99)
    client = _client(owner)
    rows = client.get(f"{T}/errors").json()["data"]
    assert len(rows) == 6 and {r["requests"] for r in rows} == {1, 2, 3, 4, 5, 9}
    assert rows[0]["hour"] >= rows[-1]["hour"]
    no_index = client.get(f"{T}/errors", {"index": ""}).json()["data"]
    assert [(r["code"], r["requests"], r["index_name"]) for r in no_index] == [
        ("rate_limited", 9, "")
    ]
    coded = client.get(f"{T}/errors", {"code": "invalid_filter", "limit": "2"})
    page = coded.json()
    assert [r["requests"] for r in page["data"]] == [1, 2] and page["next_cursor"]
    rest = client.get(f"{T}/errors", {"code": "invalid_filter", "cursor": page["next_cursor"]})
    assert [r["requests"] for r in rest.json()["data"]] == [3, 4, 5]
    assert client.get(f"{T}/errors", {"code": "x" * 65}).status_code == 400


def test_another_tenant_and_a_key_cannot_read_the_usage(
    owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    _error(tenant, HOUR, "rate_limited", 429, 9)
    _stored(tenant, "a", HOUR, 5)
    intruder = _client(_mallory())
    for path in ("summary", "errors", "stored-vectors/history"):
        response = intruder.get(f"{T}/{path}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    # Their own tenant's answers hold none of acme's rows.
    theirs = intruder.get(f"/api/v1/tenants/{other_tenant.slug}/usage/errors").json()["data"]
    assert theirs == []
    # The other tenant's admin key gets the same 404; acme's own read key is refused its scope.
    cases = [(other_tenant, ["read", "admin"], (404, "not_found")),
             (tenant, ["read"], (403, "insufficient_scope"))]  # fmt: skip
    for owner_of, scopes, expected in cases:
        _key, secret = make_key(owner_of, scopes=scopes)
        key = APIClient()
        key.credentials(HTTP_API_KEY=secret)
        for path in ("summary", "errors", "stored-vectors/history"):
            response = key.get(f"{T}/{path}")
            assert (response.status_code, response.json()["error"]["code"]) == expected


def _ready_index(owner: Any, name: str, slug: str = "acme") -> Index:
    response = _client(owner).post(f"/api/v1/tenants/{slug}/indexes",
                                   {"name": name, "dimension": 3}, format="json")  # fmt: skip
    assert response.status_code == 201, response.json()
    return Index.objects.unscoped().get(name=name, tenant__slug=slug)


def _set_count(index: Index, vectors: int) -> None:
    """What the gateway's upserts keep (public.namespace_stats), for the sample to read."""
    with shared_tier.connect() as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
        conn.execute(
            "INSERT INTO public.namespace_stats (tenant_id, index_id, namespace, vector_count) "
            "VALUES (%s, %s, '', %s) ON CONFLICT (index_id, namespace) DO UPDATE "
            "SET vector_count = EXCLUDED.vector_count",
            (index.tenant_id, index.id, vectors),
        )
        conn.commit()


def test_the_hourly_sample_is_idempotent_per_index_hour_and_isolated(
    owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    docs, faq = _ready_index(owner, "docs"), _ready_index(owner, "faq")
    theirs = _ready_index(_mallory(), "docs", other_tenant.slug)
    _set_count(docs, 40)
    _set_count(theirs, 7)
    at = HOUR + timedelta(minutes=5)
    assert sampling.stored_vectors_sample(now=at)["failed"] == 0
    _set_count(docs, 42)
    sampling.stored_vectors_sample(now=at + timedelta(minutes=30))  # same hour: replaces
    sampling.stored_vectors_sample(now=at - timedelta(hours=1))  # an hour before
    with tenant_scope(tenant.id):
        rows = sorted(StoredVectorsRecord.objects.values_list("index_name", "hour", "vectors"))
    assert rows == [("docs", HOUR - timedelta(hours=1), 42), ("docs", HOUR, 42),
                    ("faq", HOUR - timedelta(hours=1), 0), ("faq", HOUR, 0)]  # fmt: skip
    history = _client(owner).get(f"{T}/stored-vectors/history", {"index": "docs"}).json()["data"]
    assert [(r["vectors"], r["dimension"]) for r in history] == [(42, 3), (42, 3)]
    assert history[0]["hour"] > history[1]["hour"] and history[0]["index_id"] == str(docs.id)
    with tenant_scope(other_tenant.id):
        assert list(StoredVectorsRecord.objects.values_list("vectors", flat=True)) == [7, 7]
    assert faq.dimension == 3


def test_a_tenant_whose_engine_fails_does_not_stop_the_others_samples(
    owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    _ready_index(owner, "docs")
    _ready_index(_mallory(), "docs", other_tenant.slug)
    real = selectors.stored_vectors

    def failing_for_acme(*, tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
        if tenant_id == tenant.id:
            raise OSError("cluster does not answer")
        return real(tenant_id=tenant_id)

    with mock.patch.object(selectors, "stored_vectors", failing_for_acme):
        counts = sampling.stored_vectors_sample()
    assert counts == {"tenants": 1, "indexes": 1, "failed": 1}
    with tenant_scope(other_tenant.id):
        assert StoredVectorsRecord.objects.count() == 1
    with tenant_scope(tenant.id):
        assert StoredVectorsRecord.objects.count() == 0


def test_stored_vectors_now_answers_some_indexes_and_the_total(owner: Any, tenant: Tenant) -> None:
    docs, faq = _ready_index(owner, "docs"), _ready_index(owner, "faq")
    _set_count(docs, 40)
    _set_count(faq, 2)
    client = _client(owner)
    every = client.get(f"{T}/stored-vectors").json()
    assert every == {"data": [{"index": "docs", "vectors": 40}, {"index": "faq", "vectors": 2}],
                     "total": 42}  # fmt: skip
    some = client.get(f"{T}/stored-vectors?index=faq&index=nope").json()
    assert some == {"data": [{"index": "faq", "vectors": 2}], "total": 42}
    top = client.get(f"{T}/stored-vectors?largest=1").json()
    assert top == {"data": [{"index": "docs", "vectors": 40}], "total": 42}
    too_many = "&".join(f"index=i{i}" for i in range(101))
    for query in (too_many, "index=Bad_Name", "limit=5", "largest=0", "largest=101"):
        response = client.get(f"{T}/stored-vectors?{query}")
        assert response.status_code == 400, (query, response.json())
