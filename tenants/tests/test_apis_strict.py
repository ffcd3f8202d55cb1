"""Issue 8 on the management API: what the schema says is what is accepted. Values of the wrong
JSON type are refused, not coerced; query parameters are validated before any early return;
names that cannot exist are 404 (NUL never reaches PostgreSQL); fields with NUL are 400; the
e-mail limit is enforced by the serializer. Every case was a 500 or a silent acceptance."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from provisioning.models import Index
from tenants.models import Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key
from tenants.tests.test_apis_errors import assert_error, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(owner: Any) -> APIClient:
    c = APIClient()
    c.force_authenticate(owner)
    return c


def key_client(secret: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_API_KEY=secret)
    return c


# ============================================================================ strict types


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {"name": 0}, "name"),
        ("", {"name": ["Acme"]}, "name"),
        ("/indexes", {"name": "docs", "dimension": "3"}, "dimension"),
        ("/indexes", {"name": "docs", "dimension": 3.0}, "dimension"),
        ("/indexes", {"name": "docs", "dimension": True}, "dimension"),
        ("/indexes", {"name": "docs", "dimension": 3, "deletion_protection": "true"},
         "deletion_protection"),
        ("/indexes", {"name": "docs", "dimension": 3, "deletion_protection": 1},
         "deletion_protection"),
        ("/indexes", {"name": "docs", "dimension": 3, "tags": {"env": 1}}, "tags"),
        ("/indexes", {"name": 5, "dimension": 3}, "name"),
        ("/api-keys", {"name": "k", "scopes": [1]}, "scopes"),
        ("/api-keys", {"name": "k", "scopes": "read"}, "scopes"),
        ("/api-keys", {"name": 12, "scopes": ["read"]}, "name"),
        ("/invitations", {"email": 7}, "email"),
    ],
)  # fmt: skip
def test_wrong_json_types_are_refused_not_coerced(
    client: APIClient, tenant: Tenant, path: str, body: dict[str, Any], field: str
) -> None:
    method = client.patch if path == "" else client.post
    error = assert_error(method(url("acme", path), body, format="json"), 400, "validation_error")
    assert field in error["details"]["fields"], error
    tenant.refresh_from_db()
    assert tenant.name == "Acme"
    with tenant_scope(tenant.id):
        assert not Index.objects.exists()


def test_the_right_types_still_pass(client: APIClient, tenant: Tenant) -> None:
    response = client.patch(url("acme"), {"name": "Acme 2"}, format="json")
    assert response.status_code == 200, response.content
    response = client.post(
        url("acme", "/indexes"),
        {"name": "docs", "dimension": 3, "deletion_protection": False, "tags": {"env": "dev"}},
        format="json",
    )
    assert response.status_code == 201, response.content


# ============================================================================ query parameters


@pytest.mark.parametrize("limit", ["", " 5", "5.0", "abc", "0", "101", "٣", "1e2"])
@pytest.mark.parametrize(
    "path",
    ["/api/v1/tenants", "/api/v1/tenants/acme/api-keys", "/api/v1/tenants/acme/members",
     "/api/v1/tenants/acme/audit-events", "/api/v1/tenants/acme/indexes",
     "/api/v1/tenants/acme/usage", "/api/v1/personal-access-tokens"],
)  # fmt: skip
def test_limit_must_be_an_integer_in_range(
    client: APIClient, tenant: Tenant, path: str, limit: str
) -> None:
    assert_error(client.get(path, {"limit": limit}), 400, "validation_error")
    assert client.get(path, {"limit": "100"}).status_code == 200


def test_personal_tokens_list_validates_its_parameters_for_api_keys(tenant: Tenant) -> None:
    """An API key has no personal tokens, but its list is validated like anyone's."""
    secret = make_key(tenant, scopes=[Scope.ADMIN])[1]
    c = key_client(secret)
    assert_error(c.get("/api/v1/personal-access-tokens", {"limit": "x"}), 400, "validation_error")
    assert_error(
        c.get("/api/v1/personal-access-tokens", {"cursor": "%%%"}), 400, "invalid_cursor"
    )
    ok = c.get("/api/v1/personal-access-tokens", {"limit": "5"})
    assert ok.status_code == 200 and ok.json() == {"data": [], "next_cursor": None}


# ============================================================================ names and NUL


@pytest.mark.parametrize("name", ["\x00", "a\x00b", "docs\x00", "x" * 450, "Docs", "docs\n"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/tenants/acme/indexes/{}"), ("patch", "/api/v1/tenants/acme/indexes/{}"),
     ("delete", "/api/v1/tenants/acme/indexes/{}"), ("get", "/api/v1/tenants/acme/clusters/{}"),
     ("patch", "/api/v1/tenants/acme/clusters/{}"), ("delete", "/api/v1/tenants/acme/clusters/{}"),
     ("get", "/indexes/{}"), ("patch", "/indexes/{}"), ("delete", "/indexes/{}")],
)  # fmt: skip
def test_a_name_that_cannot_exist_is_not_found(
    client: APIClient, tenant: Tenant, method: str, path: str, name: str
) -> None:
    if path.startswith("/indexes"):
        secret = make_key(tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])[1]
        c = key_client(secret)
    else:
        c = client
    target = path.format(name.replace("\x00", "%00").replace("\n", "%0A"))
    body = {"deletion_protection": "disabled"} if path.startswith("/indexes") else {}
    response = getattr(c, method)(target, body, format="json")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "tags",
    [{"env\x00": "x"}, {"env": "x\x00"}, {"": "x"}, {"e v": "x"}, {"k" * 81: "x"},
     {"env": "v" * 121}, {f"k{i}": "v" for i in range(21)}],
)  # fmt: skip
def test_bad_tags_are_refused_by_both_apis(
    client: APIClient, tenant: Tenant, tags: dict[str, str]
) -> None:
    assert_error(
        client.post(url("acme", "/indexes"), {"name": "docs", "dimension": 3, "tags": tags},
                    format="json"),
        400,
        "validation_error",
    )  # fmt: skip
    secret = make_key(tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])[1]
    pc = key_client(secret)
    assert_error(
        pc.post("/indexes", {"name": "pc", "dimension": 3, "metric": "cosine",
                             "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
                             "tags": tags}, format="json"),
        400,
        "validation_error",
    )  # fmt: skip
    ok = client.post(url("acme", "/indexes"), {"name": "docs", "dimension": 3}, format="json")
    assert ok.status_code == 201, ok.content
    assert_error(
        client.patch(url("acme", "/indexes/docs"), {"tags": tags}, format="json"),
        400,
        "validation_error",
    )
    assert_error(pc.patch("/indexes/docs", {"tags": tags}, format="json"), 400, "validation_error")
    with tenant_scope(tenant.id):
        assert Index.objects.get(name="docs").tags == {}


@pytest.mark.parametrize("raw", [b'""', b"[1]", b"1", b"null", b'"x"'])
def test_pinecone_configure_needs_a_json_object(tenant: Tenant, raw: bytes) -> None:
    secret = make_key(tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])[1]
    pc = key_client(secret)
    created = pc.post("/indexes", {"name": "pc", "dimension": 3}, format="json")
    assert created.status_code == 201, created.content
    response = pc.generic("PATCH", "/indexes/pc", raw.decode(), content_type="application/json")
    assert_error(response, 400, "validation_error")


# ============================================================================ e-mail length


def test_signup_email_length_is_the_accounts_limit(db: Any) -> None:
    c = APIClient()
    local = "a" * 64
    at_limit = f"{local}@{'b' * 40}.{'c' * 39}.test"  # labels of at most 63 characters
    over = f"{local}@{'b' * 40}.{'c' * 40}.test"
    assert len(at_limit) == 150 and len(over) == 151
    for email in (over, f"{local}@{'c' * 60}.{'d' * 60}.{'e' * 60}.test"):
        error = assert_error(
            c.post("/api/v1/auth/signup", {"email": email, "password": "a-long-password"},
                   format="json"),
            400,
            "validation_error",
        )  # fmt: skip
        assert "email" in error["details"]["fields"]
    response = c.post(
        "/api/v1/auth/signup", {"email": at_limit, "password": "a-long-password"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["email"] == at_limit
