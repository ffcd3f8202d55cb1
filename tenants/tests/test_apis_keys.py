"""API keys, personal access tokens and invitation tokens: stored only as HMAC-SHA-256 under the
pepper, and refused when garbage, unknown, revoked, expired, past their rotation grace, lacking
the admin scope, or belonging to a deleted tenant."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import services
from tenants.actors import Actor
from tenants.models import (
    ApiKey,
    Invitation,
    PersonalAccessToken,
    Role,
    Scope,
    Tenant,
    TenantStatus,
)
from tenants.scoping import tenant_scope
from tenants.tests.factories import make_key
from tenants.tests.test_apis_errors import (
    assert_error,
    bearer,
    last_audit_id,
    new_audit_events,
    url,
)

pytestmark = pytest.mark.django_db


TEXTUAL = ("text", "character varying", "character", "json", "jsonb", "ARRAY", "USER-DEFINED")


def pepper_hmac(secret: str) -> str:
    return hmac.new(
        settings.VECTORPLANE_KEY_PEPPER.encode(), secret.encode(), hashlib.sha256
    ).hexdigest()


def textual_columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s AND data_type = ANY(%s)",
            [table, list(TEXTUAL)],
        )
        return [row[0] for row in cursor.fetchall()]


def every_table() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        return [row[0] for row in cursor.fetchall()]


def tables_containing(needle: str) -> list[str]:
    """Every `table.column` of the database whose text (cast) contains `needle`."""
    hits = []
    with connection.cursor() as cursor:
        for table in every_table():
            for column in textual_columns(table):
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s',  # noqa: S608
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    hits.append(f"{table}.{column}")
    return hits


def secret_parts(secret: str) -> list[str]:
    """The whole secret and its secret part after `<kind>_<prefix>_` (the prefix is public)."""
    _, prefix, rest = secret.split("_", 2)
    assert len(prefix) == 12 and len(rest) >= 40
    return [secret, rest, rest[:20], rest[-20:]]


@pytest.fixture
def owner_api(api: APIClient, owner: Any, tenant: Tenant) -> APIClient:
    api.force_authenticate(owner)
    return api


# --------------------------------------------------------------------------- hashing at rest


def test_api_key_secret_is_stored_nowhere(owner_api: APIClient, tenant: Tenant) -> None:
    response = owner_api.post(
        url("acme", "/api-keys"),
        {"name": "ci", "scopes": ["read", "write"], "namespaces": ["prod"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["key"]
    assert secret.startswith(f"{body['prefix']}_")
    key = ApiKey.objects.unscoped().get(pk=body["id"])
    assert key.prefix == secret.split("_")[1]
    # The stored hash is HMAC-SHA-256(pepper, whole key) — not a bare SHA-256.
    assert key.secret_hash == pepper_hmac(secret)
    assert key.secret_hash != hashlib.sha256(secret.encode()).hexdigest()
    # No field of the row holds the secret or its secret part...
    for value in (key.name, key.prefix, key.secret_hash, *key.scopes, *key.namespaces):
        for part in secret_parts(secret):
            assert part not in value
    # ... and no text column of any table does (tenants_apikey, tenants_auditevent.details, ...).
    assert "tenants_apikey" in every_table() and "details" in textual_columns("tenants_auditevent")
    for part in secret_parts(secret):
        assert tables_containing(part) == [], part
    # The raw row agrees: secret_hash column is the HMAC, prefix is only the public part.
    with connection.cursor() as cursor:
        cursor.execute("SELECT prefix, secret_hash FROM tenants_apikey WHERE id = %s", [key.id])
        assert cursor.fetchone() == (key.prefix, pepper_hmac(secret))
    # The secret is not shown again.
    listed = owner_api.get(url("acme", "/api-keys")).content.decode()
    detail = owner_api.get(url("acme", f"/api-keys/{key.id}")).content.decode()
    audit = owner_api.get(url("acme", "/audit-events")).content.decode()
    for text in (listed, detail, audit):
        assert secret_parts(secret)[1] not in text
        assert key.secret_hash not in text


def test_the_sanity_of_the_scan(owner_api: APIClient, tenant: Tenant) -> None:
    """The database scan finds what is there (so an empty result above means something)."""
    response = owner_api.post(
        url("acme", "/api-keys"), {"name": "needle-in-name", "scopes": ["read"]}, format="json"
    )
    assert response.status_code == 201
    hits = tables_containing("needle-in-name")
    assert "tenants_apikey.name" in hits and "tenants_auditevent.target_label" in hits
    prefix = response.json()["prefix"].removeprefix("vpk_")
    assert "tenants_apikey.prefix" in tables_containing(prefix)
    assert "tenants_apikey.secret_hash" in tables_containing(pepper_hmac(response.json()["key"]))


def test_rotated_key_secret_is_stored_nowhere(owner_api: APIClient, tenant: Tenant) -> None:
    key, old_secret = make_key(tenant)
    response = owner_api.post(url("acme", f"/api-keys/{key.id}/rotate"), {}, format="json")
    assert response.status_code == 201, response.content
    new_secret = response.json()["key"]
    new = ApiKey.objects.unscoped().get(pk=response.json()["id"])
    assert new.secret_hash == pepper_hmac(new_secret)
    for secret in (old_secret, new_secret):
        for part in secret_parts(secret):
            assert tables_containing(part) == []


def test_personal_token_secret_is_stored_nowhere(owner_api: APIClient) -> None:
    response = owner_api.post(url(None, "/personal-access-tokens"), {"name": "cli"}, format="json")
    assert response.status_code == 201, response.content
    secret = response.json()["token"]
    assert secret.startswith(f"{response.json()['prefix']}_") and secret.startswith("vpp_")
    token = PersonalAccessToken.objects.get(pk=response.json()["id"])
    assert token.secret_hash == pepper_hmac(secret)
    for part in secret_parts(secret):
        assert tables_containing(part) == [], part
    listed = owner_api.get(url(None, "/personal-access-tokens")).content.decode()
    assert secret_parts(secret)[1] not in listed and token.secret_hash not in listed


def test_invitation_token_is_stored_nowhere(owner_api: APIClient, tenant: Tenant) -> None:
    response = owner_api.post(
        url("acme", "/invitations"), {"email": "new@example.test", "role": "admin"}, format="json"
    )
    assert response.status_code == 201, response.content
    secret = response.json()["token"]
    assert secret.startswith("vpi_")
    invitation = Invitation.objects.unscoped().get(pk=response.json()["id"])
    assert invitation.token_hash == pepper_hmac(secret)
    assert invitation.token_prefix == secret.split("_")[1]
    for part in secret_parts(secret):
        assert tables_containing(part) == [], part
    listed = owner_api.get(url("acme", "/invitations")).content.decode()
    assert secret_parts(secret)[1] not in listed and invitation.token_hash not in listed


def test_a_different_pepper_invalidates_every_key(
    api: APIClient, tenant: Tenant, admin_key: str, settings: Any
) -> None:
    api.credentials(**bearer(admin_key))
    assert api.get(url("acme")).status_code == 200
    settings.VECTORPLANE_KEY_PEPPER = "another pepper"
    assert_error(api.get(url("acme")), 401, "invalid_credentials")


# --------------------------------------------------------------------------- key states


def key_client(secret: str, header: str = "bearer") -> APIClient:
    client = APIClient()
    if header == "bearer":
        client.credentials(**bearer(secret))
    else:
        client.credentials(HTTP_API_KEY=secret)
    return client


@pytest.fixture
def admin_key_row(tenant: Tenant, admin_key: str) -> ApiKey:
    return ApiKey.objects.unscoped().get(prefix=admin_key.split("_")[1])


@pytest.mark.parametrize("header", ["bearer", "api-key"])
def test_valid_admin_key_works_in_either_header(
    tenant: Tenant, admin_key: str, admin_key_row: ApiKey, header: str
) -> None:
    response = key_client(admin_key, header).get(url("acme"))
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == "acme" and response.json()["role"] == Role.ADMIN
    admin_key_row.refresh_from_db()
    assert admin_key_row.last_used_at is not None


@pytest.mark.parametrize("header", ["bearer", "api-key"])
def test_revoked_key_is_refused(
    owner_api: APIClient, tenant: Tenant, admin_key: str, admin_key_row: ApiKey, header: str
) -> None:
    response = owner_api.post(url("acme", f"/api-keys/{admin_key_row.id}/revoke"))
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    error = assert_error(key_client(admin_key, header).get(url("acme")), 401, "api_key_revoked")
    assert error["message"] == "This API key is revoked."


def test_expired_key_is_refused(tenant: Tenant, admin_key: str, admin_key_row: ApiKey) -> None:
    ApiKey.objects.unscoped().filter(pk=admin_key_row.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(key_client(admin_key).get(url("acme")), 401, "api_key_expired")


def test_key_with_future_expiry_works(owner_api: APIClient, tenant: Tenant) -> None:
    expires = (timezone.now() + timedelta(hours=1)).isoformat()
    response = owner_api.post(
        url("acme", "/api-keys"),
        {"name": "short", "scopes": ["admin"], "expires_at": expires},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert key_client(response.json()["key"]).get(url("acme")).status_code == 200


def test_key_cannot_be_created_already_expired(owner_api: APIClient, tenant: Tenant) -> None:
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = owner_api.post(
        url("acme", "/api-keys"),
        {"name": "x", "scopes": ["read"], "expires_at": past},
        format="json",
    )
    assert_error(response, 400, "validation_error")


def test_rotation_grace_period(owner_api: APIClient, tenant: Tenant, admin_key: str) -> None:
    old = ApiKey.objects.unscoped().get(prefix=admin_key.split("_")[1])
    response = owner_api.post(
        url("acme", f"/api-keys/{old.id}/rotate"), {"grace_seconds": 3600}, format="json"
    )
    assert response.status_code == 201, response.content
    new_secret = response.json()["key"]
    assert response.json()["rotated_from"] == str(old.id)
    assert response.json()["scopes"] == sorted(old.scopes) and response.json()["name"] == old.name
    # During the grace period both keys work, and the old one shows as rotating.
    assert key_client(admin_key).get(url("acme")).status_code == 200
    assert key_client(new_secret).get(url("acme")).status_code == 200
    assert owner_api.get(url("acme", f"/api-keys/{old.id}")).json()["status"] == "rotating"
    # The grace period ends: the old key is refused even before the sweeper revokes it.
    ApiKey.objects.unscoped().filter(pk=old.pk).update(
        revoke_after=timezone.now() - timedelta(seconds=1)
    )
    assert_error(key_client(admin_key).get(url("acme")), 401, "api_key_revoked")
    assert key_client(new_secret).get(url("acme")).status_code == 200
    # And the sweeper then revokes it for good, once.
    assert services.api_keys_revoke_expired_grace() == 1
    assert services.api_keys_revoke_expired_grace() == 0
    old.refresh_from_db()
    assert old.revoked_at is not None


def test_rotation_without_grace_revokes_at_once(
    owner_api: APIClient, tenant: Tenant, admin_key: str
) -> None:
    old = ApiKey.objects.unscoped().get(prefix=admin_key.split("_")[1])
    response = owner_api.post(
        url("acme", f"/api-keys/{old.id}/rotate"), {"grace_seconds": 0}, format="json"
    )
    assert response.status_code == 201
    assert_error(key_client(admin_key).get(url("acme")), 401, "api_key_revoked")
    assert key_client(response.json()["key"]).get(url("acme")).status_code == 200


def test_rotation_default_grace_comes_from_settings(
    owner_api: APIClient, tenant: Tenant, settings: Any
) -> None:
    settings.VECTORPLANE_KEY_ROTATION_GRACE_SECONDS = 600
    key, _ = make_key(tenant)
    start = timezone.now()
    assert (
        owner_api.post(url("acme", f"/api-keys/{key.id}/rotate"), {}, format="json").status_code
        == 201
    )
    key.refresh_from_db()
    assert key.revoke_after is not None
    assert timedelta(seconds=599) <= key.revoke_after - start <= timedelta(seconds=605)


@pytest.mark.parametrize("grace", [-1, 30 * 24 * 3600 + 1, "soon"])
def test_rotation_grace_bounds(owner_api: APIClient, tenant: Tenant, grace: Any) -> None:
    key, _ = make_key(tenant)
    response = owner_api.post(
        url("acme", f"/api-keys/{key.id}/rotate"), {"grace_seconds": grace}, format="json"
    )
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]["fields"]) == {"grace_seconds"}


def test_a_key_is_rotated_once(owner_api: APIClient, tenant: Tenant) -> None:
    key, _ = make_key(tenant)
    path = url("acme", f"/api-keys/{key.id}/rotate")
    assert owner_api.post(path, {}, format="json").status_code == 201
    assert_error(owner_api.post(path, {}, format="json"), 409, "api_key_already_rotated")


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_dead_key_cannot_be_rotated(owner_api: APIClient, tenant: Tenant, state: str) -> None:
    key, _ = make_key(tenant)
    field = "revoked_at" if state == "revoked" else "expires_at"
    ApiKey.objects.unscoped().filter(pk=key.pk).update(
        **{field: timezone.now() - timedelta(seconds=1)}
    )
    before = last_audit_id()
    response = owner_api.post(url("acme", f"/api-keys/{key.id}/rotate"), {}, format="json")
    error = assert_error(response, 409, "api_key_not_rotatable")
    assert error["details"] == {"reason": state}
    assert new_audit_events(before) == []
    with tenant_scope(tenant.id):
        assert ApiKey.objects.count() == 1


def test_revoking_twice_is_a_no_op(owner_api: APIClient, tenant: Tenant) -> None:
    key, _ = make_key(tenant)
    path = url("acme", f"/api-keys/{key.id}/revoke")
    first = owner_api.post(path)
    before = last_audit_id()
    second = owner_api.post(path)
    assert first.status_code == second.status_code == 200
    assert first.json()["revoked_at"] == second.json()["revoked_at"]
    assert new_audit_events(before) == []


@pytest.mark.parametrize(
    "scopes", [[Scope.READ], [Scope.WRITE], [Scope.READ, Scope.WRITE]], ids=["r", "w", "rw"]
)
@pytest.mark.parametrize("path", ["", "/api-keys", "/audit-events"])
def test_key_without_admin_scope_is_refused_on_the_management_api(
    tenant: Tenant, scopes: list[str], path: str
) -> None:
    _, secret = make_key(tenant, scopes=scopes)
    error = assert_error(key_client(secret).get(url("acme", path)), 403, "insufficient_scope")
    assert error["details"]["required_scope"] == "admin"
    assert sorted(error["details"]["scopes"]) == sorted(scopes)


def test_key_without_admin_scope_cannot_reach_global_routes_either(tenant: Tenant) -> None:
    _, secret = make_key(tenant, scopes=[Scope.READ])
    client = key_client(secret)
    for path in ("/auth/me", "/tenants", "/plans", "/personal-access-tokens"):
        assert_error(client.get(url(None, path)), 403, "insufficient_scope")


GARBAGE = [
    "",
    "   ",
    "nonsense",
    "vpk_",
    "vpk_short_secret",
    "vpk_ABCDEFGHIJKL_uppercase-prefix",
    "vpk_abcdefghijkl_",
    "vpx_abcdefghijkl_unknown-kind",
    "vpk_abcdefghijkl_" + "x" * 300,  # too long
    "vpk_abcdéfghijkl_not-ascii",
    "'; DROP TABLE tenants_apikey; --",
]


@pytest.mark.parametrize("raw", GARBAGE)
@pytest.mark.parametrize("header", ["bearer", "api-key"])
def test_garbage_credentials(tenant: Tenant, raw: str, header: str) -> None:
    client = APIClient()
    if header == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    else:
        client.credentials(HTTP_API_KEY=raw)
    error = assert_error(client.get(url("acme")), 401, "invalid_credentials")
    assert error["message"] == "The key or token is not valid."


def test_unknown_and_wrong_secret_keys_are_indistinguishable(
    tenant: Tenant, admin_key: str
) -> None:
    kind, prefix, rest = admin_key.split("_", 2)
    wrong_secret = f"{kind}_{prefix}_{rest[::-1]}"
    unknown_prefix = f"{kind}_zzzzzzzzzzzz_{rest}"
    answers = []
    for raw in (wrong_secret, unknown_prefix, admin_key + "x"):
        response = key_client(raw).get(url("acme"))
        assert_error(response, 401, "invalid_credentials")
        answers.append(response.content)
    assert len(set(answers)) == 1


def test_invitation_token_is_not_a_credential(owner_api: APIClient, tenant: Tenant) -> None:
    token = owner_api.post(
        url("acme", "/invitations"), {"email": "i@example.test"}, format="json"
    ).json()["token"]
    assert_error(key_client(token).get(url("acme")), 401, "invalid_credentials")


def test_other_authorization_schemes_are_not_credentials(tenant: Tenant, admin_key: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {admin_key}")
    assert_error(client.get(url("acme")), 401, "unauthenticated")


def test_deleted_tenants_keys_are_refused(
    owner_api: APIClient, owner: Any, tenant: Tenant, admin_key: str
) -> None:
    rotating, rotating_secret = make_key(tenant, scopes=[Scope.ADMIN], name="rotating")
    services.api_key_rotate(
        actor=Actor(user=owner), tenant=tenant, api_key=rotating, grace_seconds=3600
    )
    assert key_client(rotating_secret).get(url("acme")).status_code == 200
    assert owner_api.delete(url("acme")).status_code == 204
    for secret in (admin_key, rotating_secret):
        assert_error(key_client(secret).get(url("acme")), 401, "api_key_revoked")
        assert_error(key_client(secret).get(url(None, "/tenants")), 401, "api_key_revoked")


def test_deleted_tenant_refuses_its_keys_even_if_not_revoked(
    tenant: Tenant, admin_key: str
) -> None:
    """Defence in depth: authentication checks the tenant's status, not only the key's."""
    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.DELETED)
    assert ApiKey.objects.unscoped().filter(revoked_at__isnull=True).exists()
    assert_error(key_client(admin_key).get(url(None, "/auth/me")), 401, "api_key_revoked")


def test_suspended_tenants_admin_key_still_authenticates(tenant: Tenant, admin_key: str) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(status=TenantStatus.SUSPENDED)
    response = key_client(admin_key).get(url("acme"))
    assert response.status_code == 200 and response.json()["status"] == "suspended"


# --------------------------------------------------------------------------- personal tokens


@pytest.fixture
def pat(owner: Any, tenant: Tenant) -> tuple[PersonalAccessToken, str]:
    return services.personal_token_create(actor=Actor(user=owner), name="cli")


def test_personal_token_works(pat: tuple[PersonalAccessToken, str]) -> None:
    token, secret = pat
    response = key_client(secret).get(url("acme"))
    assert response.status_code == 200 and response.json()["role"] == Role.OWNER
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_personal_token_is_refused(
    owner_api: APIClient, pat: tuple[PersonalAccessToken, str]
) -> None:
    token, secret = pat
    assert owner_api.delete(url(None, f"/personal-access-tokens/{token.id}")).status_code == 204
    assert_error(key_client(secret).get(url("acme")), 401, "token_revoked")


def test_expired_personal_token_is_refused(pat: tuple[PersonalAccessToken, str]) -> None:
    token, secret = pat
    PersonalAccessToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(key_client(secret).get(url("acme")), 401, "token_expired")


def test_personal_token_of_a_deactivated_user_is_refused(
    owner: Any, pat: tuple[PersonalAccessToken, str]
) -> None:
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    assert_error(key_client(pat[1]).get(url("acme")), 401, "invalid_credentials")


def test_personal_token_with_wrong_secret_is_refused(pat: tuple[PersonalAccessToken, str]) -> None:
    kind, prefix, rest = pat[1].split("_", 2)
    assert_error(
        key_client(f"{kind}_{prefix}_{rest[:-1]}").get(url("acme")), 401, "invalid_credentials"
    )


def test_personal_token_in_the_api_key_header(pat: tuple[PersonalAccessToken, str]) -> None:
    """The Api-Key header carries any of our credentials; the kind is in the secret."""
    assert key_client(pat[1], "api-key").get(url("acme")).status_code == 200


# --------------------------------------------------------------------------- keys bound to rows


def test_a_write_key_bound_to_rows_needs_an_id_prefix(owner_api: APIClient) -> None:
    """Issue 8 §3: the id prefix is what keeps a row-bound key from probing foreign ids."""
    keys = url("acme", "/api-keys")
    row_filter = {"user_id": {"$eq": "u42"}}
    missing = owner_api.post(keys, {"name": "u42", "scopes": ["read", "write"],
                                    "row_filter": row_filter}, format="json")  # fmt: skip
    assert missing.status_code == 400, missing.content
    assert missing.json()["error"]["details"] == {"field": "id_prefix"}
    for bad in ("u\x0042", "x" * 257):
        response = owner_api.post(keys, {"name": "u42", "scopes": ["write"],
                                         "row_filter": row_filter, "id_prefix": bad},
                                  format="json")  # fmt: skip
        assert response.status_code == 400, response.content
    read_only = owner_api.post(keys, {"name": "r", "scopes": ["read"], "row_filter": row_filter},
                               format="json")  # fmt: skip
    assert read_only.status_code == 201 and read_only.json()["id_prefix"] == ""
    made = owner_api.post(keys, {"name": "u42", "scopes": ["read", "write"],
                                 "row_filter": row_filter, "id_prefix": "u42#"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["id_prefix"] == "u42#" and body["row_filter"] == row_filter
    rotated = owner_api.post(url("acme", f"/api-keys/{body['id']}/rotate"), {}, format="json")
    assert rotated.status_code == 201, rotated.content
    assert rotated.json()["id_prefix"] == "u42#"
    assert owner_api.get(url("acme", f"/api-keys/{body['id']}")).json()["id_prefix"] == "u42#"
