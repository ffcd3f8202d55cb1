"""Every error of the management API has one shape: `{"error": {"code", "message", "details"}}`.

Also holds the small helpers the other `test_apis_*` modules share (`assert_error`, `url`,
`bearer`, `last_audit_id`, `new_audit_events`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Max
from rest_framework.test import APIClient

from tenants.models import ApiKey, AuditEvent, Role, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key

pytestmark = pytest.mark.django_db

API = "/api/v1"

# --------------------------------------------------------------------------- shared helpers


def url(slug: str | None = None, rest: str = "") -> str:
    """`/api/v1/tenants/<slug><rest>`, or `/api/v1<rest>` without a slug."""
    if slug is None:
        return f"{API}{rest}"
    return f"{API}/tenants/{slug}{rest}"


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def assert_error_shape(response: Any) -> dict[str, Any]:
    """The body is exactly {"error": {"code": str, "message": str, "details": dict}}."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    return error


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:600])
    error = assert_error_shape(response)
    assert error["code"] == code, error
    return error


def last_audit_id() -> int:
    return int(AuditEvent.objects.unscoped().aggregate(m=Max("id"))["m"] or 0)


def new_audit_events(after_id: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.unscoped().filter(id__gt=after_id).order_by("id"))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def owner_api(api: APIClient, owner: Any, tenant: Tenant) -> APIClient:
    api.force_authenticate(owner)
    return api


KEYS = url("acme", "/api-keys")
VALID_KEY = {"name": "ci", "scopes": ["read"]}


# --------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", KEYS),
        ("patch", url("acme")),
        ("post", url(None, "/tenants")),
        ("post", url("acme", "/invitations")),
        ("patch", url("acme", "/members/1")),
        ("post", url(None, "/personal-access-tokens")),
    ],
)
@pytest.mark.parametrize(
    "raw",
    [
        b"{bad",
        b'{"name": "x",}',
        b'{"name": NaN, "scopes": ["read"]}',  # strict JSON: no NaN/Infinity
        b"\xff\xfe\x00garbage",
        b'{"name": "unterminated',
    ],
    ids=["brace", "trailing-comma", "nan", "not-utf8", "unterminated"],
)
def test_malformed_json(owner_api: APIClient, method: str, path: str, raw: bytes) -> None:
    before = last_audit_id()
    response = getattr(owner_api, method)(path, data=raw, content_type="application/json")
    assert_error(response, 400, "malformed_json")
    assert new_audit_events(before) == []


def test_malformed_json_on_unauthenticated_login(api: APIClient) -> None:
    response = api.post(url(None, "/auth/login"), data=b"{", content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize(
    ("body", "field", "field_code"),
    [
        ({"name": "ci", "scopes": "read"}, "scopes", "not_a_list"),
        ({"name": "ci", "scopes": {"read": True}}, "scopes", "not_a_list"),
        ({"name": "ci", "scopes": []}, "scopes", "min_length"),
        ({"name": "ci", "scopes": ["root"]}, "scopes", "invalid_choice"),
        ({"name": "ci", "scopes": ["read", "write", "admin", "read"]}, "scopes", "max_length"),
        ({"name": True, "scopes": ["read"]}, "name", "invalid"),
        ({"name": ["ci"], "scopes": ["read"]}, "name", "invalid"),
        ({"name": {"a": 1}, "scopes": ["read"]}, "name", "invalid"),
        ({"name": None, "scopes": ["read"]}, "name", "null"),
        ({"name": "", "scopes": ["read"]}, "name", "blank"),
        ({"name": "x" * 101, "scopes": ["read"]}, "name", "max_length"),
        ({"scopes": ["read"]}, "name", "required"),
        ({"name": "ci"}, "scopes", "required"),
        ({"name": "ci", "scopes": ["read"], "expires_at": "tomorrow"}, "expires_at", "invalid"),
        ({"name": "ci", "scopes": ["read"], "index_names": ["Bad_Name"]}, "index_names", "invalid"),
        ({"name": "ci", "scopes": ["read"], "index_names": "docs"}, "index_names", "not_a_list"),
    ],
)
def test_wrong_types_on_key_create(
    owner_api: APIClient, body: dict[str, Any], field: str, field_code: str
) -> None:
    before = last_audit_id()
    response = owner_api.post(KEYS, body, format="json")
    error = assert_error(response, 400, "validation_error")
    fields = error["details"]["fields"]
    assert set(fields) == {field}, fields
    problems = fields[field]
    # A list field reports either a list of problems or {index: [problems]} per bad item.
    flat = problems if isinstance(problems, list) else [p for v in problems.values() for p in v]
    assert all(set(p) == {"message", "code"} for p in flat), problems
    assert field_code in {p["code"] for p in flat}, problems
    assert new_audit_events(before) == []
    with tenant_scope(Tenant.objects.get(slug="acme").id):
        assert not ApiKey.objects.exists()


def test_number_for_a_string_field_is_refused(owner_api: APIClient) -> None:
    """DRF's CharField would store a JSON number's string; the API refuses the wrong type
    (StrictInputSerializer), like booleans, lists and objects (test_wrong_types_on_key_create)."""
    response = owner_api.post(KEYS, {"name": 5, "scopes": ["read"]}, format="json")
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["fields"] == {"name": [{"message": "Must be a string.",
                                                    "code": "invalid"}]}  # fmt: skip


def test_name_at_the_length_limit_is_accepted(owner_api: APIClient) -> None:
    response = owner_api.post(KEYS, {"name": "x" * 100, "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "field_code"),
    [
        ("patch", url("acme"), {"name": "x" * 101}, "name", "max_length"),
        ("patch", url("acme"), {"name": []}, "name", "invalid"),
        ("post", url(None, "/tenants"), {"name": "x" * 101}, "name", "max_length"),
        ("post", url(None, "/tenants"), {"name": "ok", "slug": "s" * 41}, "slug", "max_length"),
        ("post", url("acme", "/invitations"), {"email": "not-an-email"}, "email", "invalid"),
        (
            "post",
            url("acme", "/invitations"),
            {"email": "a@b.test", "role": "king"},
            "role",
            "invalid_choice",
        ),
        ("post", url("acme", "/suspend"), {"reason": "r" * 301}, "reason", "max_length"),
        ("put", url("acme", "/limits"), {"max_indexes": -1}, "max_indexes", "min_value"),
        ("put", url("acme", "/limits"), {"max_qps": "fast"}, "max_qps", "invalid"),
        (
            "put",
            url("acme", "/limits"),
            {"allowed_tiers": ["gold"]},
            "allowed_tiers",
            "invalid_choice",
        ),
        ("put", url("acme", "/plan"), {"plan": ["pro"]}, "plan", "invalid"),
        (
            "post",
            url(None, "/personal-access-tokens"),
            {"name": "t", "expires_at": 12},
            "expires_at",
            "invalid",
        ),
    ],
)
def test_validation_errors_name_the_field(
    api: APIClient,
    operator: Any,
    tenant: Tenant,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    field_code: str,
) -> None:
    # The operator may call every one of these, so the 400 is the body's fault, not a 403.
    api.force_authenticate(operator)
    before = last_audit_id()
    response = getattr(api, method)(path, body, format="json")
    error = assert_error(response, 400, "validation_error")
    fields = error["details"]["fields"]
    assert set(fields) == {field}, fields
    problems = fields[field]
    flat = problems if isinstance(problems, list) else [p for v in problems.values() for p in v]
    assert field_code in {p["code"] for p in flat}, problems
    assert new_audit_events(before) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"[1, 2]", "list"), (b'"a string"', "str"), (b"42", "int"), (b"null", None)],
)
def test_body_that_is_not_an_object(owner_api: APIClient, raw: bytes, expected: str | None) -> None:
    response = owner_api.post(KEYS, data=raw, content_type="application/json")
    error = assert_error(response, 400, "validation_error")
    problems = error["details"]["fields"]["non_field_errors"]
    assert len(problems) == 1
    if expected is not None:
        assert expected in problems[0]["message"]


def test_empty_body_means_missing_fields(owner_api: APIClient) -> None:
    response = owner_api.post(KEYS, data=b"", content_type="application/json")
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]["fields"]) == {"name", "scopes"}


@pytest.mark.parametrize(
    ("path", "body", "unknown"),
    [
        (KEYS, {**VALID_KEY, "secret": "mine", "tenant": "evil"}, ["secret", "tenant"]),
        (url("acme"), {"name": "New", "status": "active"}, ["status"]),
        (url("acme"), {"nmae": "typo"}, ["nmae"]),
        (url(None, "/tenants"), {"name": "x", "owner": 1}, ["owner"]),
        (url("acme", "/invitations"), {"email": "a@b.test", "tenant": "evil"}, ["tenant"]),
        (
            url("acme", "/api-keys/00000000-0000-0000-0000-000000000000/rotate"),
            {"grace": 5},
            ["grace"],
        ),
    ],
)
def test_unknown_fields_are_refused(
    owner_api: APIClient, path: str, body: dict[str, Any], unknown: list[str]
) -> None:
    method = owner_api.patch if path == url("acme") else owner_api.post
    before = last_audit_id()
    response = method(path, body, format="json")
    error = assert_error(response, 400, "unknown_field")
    problems = error["details"]["fields"]["non_field_errors"]
    assert [p["code"] for p in problems] == ["unknown_field"] * len(unknown)
    assert [p["message"] for p in problems] == [f"Unknown field {name!r}." for name in unknown]
    assert new_audit_events(before) == []


def test_unknown_fields_are_reported_before_field_errors(owner_api: APIClient) -> None:
    """A strict serializer rejects unknown fields before it looks at the known ones."""
    response = owner_api.post(KEYS, {"name": "x" * 101, "bogus": 1}, format="json")
    error = assert_error(response, 400, "unknown_field")
    # The unknown field is reported first (strict serializers check it before field values).
    assert "bogus" in error["details"]["fields"]["non_field_errors"][0]["message"]


# --------------------------------------------------------------------------- transport errors


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
    ],
)
def test_non_json_content_type(owner_api: APIClient, content_type: str) -> None:
    before = last_audit_id()
    response = owner_api.post(KEYS, data="name=ci&scopes=read", content_type=content_type)
    error = assert_error(response, 415, "unsupported_media_type")
    assert content_type.split(";")[0] in error["message"]
    assert new_audit_events(before) == []


def test_oversize_body(owner_api: APIClient) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert limit == 1024 * 1024
    padding = "x" * limit
    raw = json.dumps({"name": padding, "scopes": ["read"]}).encode()
    assert len(raw) > limit
    before = last_audit_id()
    response = owner_api.post(KEYS, data=raw, content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert new_audit_events(before) == []


def test_body_exactly_at_the_limit_is_parsed(owner_api: APIClient) -> None:
    """At the limit the body is read and validated (here: the name is too long), not a 413."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    skeleton = json.dumps({"name": "", "scopes": ["read"]}).encode()
    raw = json.dumps({"name": "x" * (limit - len(skeleton)), "scopes": ["read"]}).encode()
    assert len(raw) == limit
    response = owner_api.post(KEYS, data=raw, content_type="application/json")
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]["fields"]) == {"name"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("put", url("acme"), "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("post", url("acme"), "GET, PATCH, DELETE, HEAD, OPTIONS"),
        ("get", url("acme", "/suspend"), "POST, OPTIONS"),
        ("delete", url("acme", "/api-keys"), "GET, POST, HEAD, OPTIONS"),
        ("patch", url(None, "/tenants"), "GET, POST, HEAD, OPTIONS"),
        ("get", url(None, "/auth/login"), "POST, OPTIONS"),
        ("delete", url(None, "/personal-access-tokens"), "GET, POST, HEAD, OPTIONS"),
    ],
)
def test_wrong_method(owner_api: APIClient, method: str, path: str, allow: str) -> None:
    response = getattr(owner_api, method)(path, {}, format="json")
    error = assert_error(response, 405, "method_not_allowed")
    assert method.upper() in error["message"]
    assert response["Allow"] == allow


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v1/tenants/acme/nope",
        "/api/v1/tenants/acme/",  # no trailing-slash redirects (APPEND_SLASH = False)
        "/api/v1/tenants/acme/api-keys/not-a-uuid",
        "/api/v1/tenants/acme/api-keys/not-a-uuid/revoke",
        "/api/v1/tenants/acme/invitations/1234",
        "/api/v1/tenants/acme/members/abc",
        "/api/v1/tenants/ACME",  # <slug> allows capitals; still no such tenant for the caller
        "/api/v2/tenants",
    ],
)
def test_unknown_url_or_bad_path_parameter(owner_api: APIClient, path: str) -> None:
    response = owner_api.get(path)
    assert_error(response, 404, "not_found")


def test_unknown_url_answers_the_same_unauthenticated(api: APIClient, db: Any) -> None:
    response = api.get("/api/v1/tenants/acme/api-keys/not-a-uuid")
    assert_error(response, 404, "not_found")


def test_member_id_out_of_integer_range(owner_api: APIClient) -> None:
    response = owner_api.get(url("acme", "/members/99999999999999999999999"))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [url(None, "/tenants"), url("acme"), url("acme", "/api-keys"), url(None, "/auth/me")],
)
def test_unauthenticated(api: APIClient, tenant: Tenant, path: str) -> None:
    response = api.get(path)
    assert_error(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="vectorplane"'


def test_bad_limit_on_lists(owner_api: APIClient) -> None:
    for path in (url(None, "/tenants"), KEYS, url("acme", "/members")):
        for limit in ("0", "101", "abc", "-1", "1.5"):
            response = owner_api.get(path, {"limit": limit})
            assert_error(response, 400, "validation_error")


def test_bad_boolean_parameter(owner_api: APIClient) -> None:
    assert_error(owner_api.get(url(None, "/tenants"), {"all": "yes"}), 400, "validation_error")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Mine", "slug": "acme"}, 409, "slug_taken"),
        ({"name": "Mine", "slug": "admin"}, 400, "invalid_slug"),
        ({"name": "Mine", "slug": "Upper"}, 400, "invalid_slug"),
        ({"name": "Mine", "slug": "-x-"}, 400, "invalid_slug"),
        ({"name": "Mine", "plan": "pro"}, 403, "permission_denied"),
    ],
)
def test_tenant_create_errors(
    owner_api: APIClient, body: dict[str, Any], status: int, code: str
) -> None:
    before = last_audit_id()
    count = Tenant.objects.count()
    assert_error(owner_api.post(url(None, "/tenants"), body, format="json"), status, code)
    assert Tenant.objects.count() == count
    assert new_audit_events(before) == []


def test_service_errors_have_the_shape(owner_api: APIClient, tenant: Tenant) -> None:
    """Errors raised by services (not serializers) carry structured details."""
    key, _ = make_key(tenant)
    owner_api.post(url("acme", f"/api-keys/{key.id}/revoke"))
    error = assert_error(
        owner_api.post(url("acme", f"/api-keys/{key.id}/rotate"), {}, format="json"),
        409,
        "api_key_not_rotatable",
    )
    assert error["details"] == {"reason": "revoked"}
    error = assert_error(
        owner_api.patch(
            url("acme", f"/members/{tenant_owner_id(tenant)}"), {"role": Role.ADMIN}, format="json"
        ),
        409,
        "last_owner",
    )
    assert error["details"] == {}


def tenant_owner_id(tenant: Tenant) -> int:
    from tenants.models import Membership

    with tenant_scope(tenant.id):
        return int(Membership.objects.get(role=Role.OWNER).user_id)


# --------------------------------------------------------------------------- HEAD and 405


def test_deeply_nested_json(owner_api: APIClient) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000  # 200 kB, well under the size limit
    response = owner_api.post(KEYS, data=raw, content_type="application/json")
    assert_error(response, 400, "malformed_json")


LIMIT_COLUMNS_MAX = {
    "max_indexes": 2**31 - 1,  # PositiveIntegerField: PostgreSQL integer
    "max_qps": 2**31 - 1,
    "max_vectors": 2**63 - 1,  # PositiveBigIntegerField: PostgreSQL bigint
    "max_storage_bytes": 2**63 - 1,
}


@pytest.mark.parametrize("field", sorted(LIMIT_COLUMNS_MAX))
def test_limits_override_at_the_column_maximum(
    api: APIClient, operator: Any, tenant: Tenant, field: str
) -> None:
    api.force_authenticate(operator)
    response = api.put(url("acme", "/limits"), {field: LIMIT_COLUMNS_MAX[field]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["limits"][field] == LIMIT_COLUMNS_MAX[field]


@pytest.mark.parametrize("field", sorted(LIMIT_COLUMNS_MAX))
def test_limits_override_beyond_the_column_maximum(
    api: APIClient, operator: Any, tenant: Tenant, field: str
) -> None:
    api.force_authenticate(operator)
    body = {field: LIMIT_COLUMNS_MAX[field] + 1}
    error = assert_error(
        api.put(url("acme", "/limits"), body, format="json"), 400, "validation_error"
    )
    assert set(error["details"]["fields"]) == {field}
