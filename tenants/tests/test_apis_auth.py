"""Authentication flows: sign-up, login, sessions and CSRF, /auth/me, personal access tokens,
and accepting invitations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import services
from tenants.actors import Actor
from tenants.models import Invitation, Membership, PersonalAccessToken, Role, Scope, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import PASSWORD, UserFactory, make_key
from tenants.tests.test_apis_errors import (
    assert_error,
    bearer,
    last_audit_id,
    new_audit_events,
    url,
)

pytestmark = pytest.mark.django_db


LOGIN = url(None, "/auth/login")
ME = url(None, "/auth/me")
TOKENS = url(None, "/personal-access-tokens")


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def with_secret(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(secret))
    return client


# --------------------------------------------------------------------------- sign-up and login


def test_signup_starts_a_session(db: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        url(None, "/auth/signup"),
        {"email": "Ada@Example.test", "password": PASSWORD, "name": "Ada Lovelace"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "id": response.json()["id"],
        "email": "ada@example.test",
        "name": "Ada Lovelace",
        "is_operator": False,
    }
    assert "sessionid" in response.cookies
    me = client.get(ME).json()
    assert me["user"]["email"] == "ada@example.test" and me["api_key"] is None
    # The new user can create a tenant with the session (and a CSRF token).
    token = client.get(url(None, "/auth/csrf")).json()["csrf_token"]
    response = client.post(
        url(None, "/tenants"), {"name": "Ada's"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201 and response.json()["role"] == Role.OWNER


def test_signup_with_a_taken_email(owner: Any) -> None:
    response = APIClient().post(
        url(None, "/auth/signup"),
        {"email": "OWNER@example.test", "password": PASSWORD},
        format="json",
    )
    assert_error(response, 409, "email_taken")


@pytest.mark.parametrize("password", ["password123", "12345678", "ada@example.test"])
def test_signup_with_a_weak_password(db: Any, password: str) -> None:
    response = APIClient().post(
        url(None, "/auth/signup"),
        {"email": "ada@example.test", "password": password},
        format="json",
    )
    error = assert_error(response, 400, "validation_error")
    assert error["details"]["password"]


def test_signup_can_be_disabled(db: Any, settings: Any) -> None:
    settings.VECTORPLANE_ALLOW_SIGNUP = False
    response = APIClient().post(
        url(None, "/auth/signup"),
        {"email": "ada@example.test", "password": PASSWORD},
        format="json",
    )
    assert_error(response, 403, "permission_denied")


def test_login_starts_a_session(owner: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        LOGIN, {"email": "Owner@Example.test", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "owner@example.test"
    assert client.get(ME).json()["user"]["id"] == owner.pk


@pytest.mark.parametrize(
    "body",
    [
        {"email": "owner@example.test", "password": "wrong"},
        {"email": "owner@example.test", "password": PASSWORD + " "},
        {"email": "nobody@example.test", "password": PASSWORD},
    ],
    ids=["wrong-password", "trailing-space", "unknown-user"],
)
def test_login_failures_are_indistinguishable(owner: Any, body: dict[str, str]) -> None:
    client = APIClient()
    response = client.post(LOGIN, body, format="json")
    error = assert_error(response, 401, "invalid_credentials")
    assert error["message"] == "Wrong email address or password."
    assert_error(client.get(ME), 401, "unauthenticated")


def test_login_of_a_deactivated_user(owner: Any) -> None:
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    response = APIClient().post(
        LOGIN, {"email": "owner@example.test", "password": PASSWORD}, format="json"
    )
    assert_error(response, 401, "invalid_credentials")


def test_login_body_is_validated(db: Any) -> None:
    assert_error(APIClient().post(LOGIN, {"email": "x"}, format="json"), 400, "validation_error")
    assert_error(
        APIClient().post(LOGIN, {"email": "x", "password": "y", "remember": True}, format="json"),
        400,
        "unknown_field",
    )


# --------------------------------------------------------------------------- sessions and CSRF


@pytest.fixture
def session(owner: Any, tenant: Tenant) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        LOGIN, {"email": "owner@example.test", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return client


def test_login_itself_needs_no_csrf_token(session: APIClient) -> None:
    """(The session fixture logged in with a CSRF-enforcing client and no token.)"""
    assert session.get(ME).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", url("acme", "/api-keys"), {"name": "k", "scopes": ["read"]}),
        ("patch", url("acme"), {"name": "CSRFed"}),
        ("delete", url("acme"), None),
        ("post", TOKENS, {"name": "t"}),
        ("post", url(None, "/auth/logout"), None),
    ],
)
def test_unsafe_session_request_without_csrf_token_is_refused(
    session: APIClient, tenant: Tenant, method: str, path: str, body: Any
) -> None:
    before = last_audit_id()
    call = getattr(session, method)
    response = call(path, body, format="json") if body is not None else call(path)
    # Its own code, so a client can tell a missing token from a missing role.
    error = assert_error(response, 403, "csrf_failed")
    assert error["message"] == "CSRF Failed: CSRF token missing."
    assert new_audit_events(before) == []
    tenant.refresh_from_db()
    assert tenant.name == "Acme" and tenant.status == "active"
    assert session.get(ME).status_code == 200  # still signed in


def test_wrong_csrf_token_is_refused(session: APIClient) -> None:
    session.get(url(None, "/auth/csrf"))
    response = session.patch(url("acme"), {"name": "x"}, format="json", HTTP_X_CSRFTOKEN="x" * 64)
    error = assert_error(response, 403, "csrf_failed")
    assert error["message"].startswith("CSRF Failed:")


def test_csrf_token_makes_unsafe_session_requests_work(session: APIClient) -> None:
    response = session.get(url(None, "/auth/csrf"))
    assert response.status_code == 200
    token = response.json()["csrf_token"]
    assert "csrftoken" in response.cookies
    headers = {"HTTP_X_CSRFTOKEN": token}
    response = session.patch(url("acme"), {"name": "Renamed"}, format="json", **headers)
    assert response.status_code == 200, response.content
    response = session.post(TOKENS, {"name": "from the console"}, format="json", **headers)
    assert response.status_code == 201, response.content
    assert session.post(url(None, "/auth/logout"), **headers).status_code == 204
    assert_error(session.get(ME), 401, "unauthenticated")


def test_safe_session_requests_need_no_csrf_token(session: APIClient) -> None:
    for path in (ME, url(None, "/tenants"), url("acme"), url("acme", "/api-keys")):
        assert session.get(path).status_code == 200, path


def test_token_requests_need_no_csrf_token(tenant: Tenant, admin_key: str) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(**bearer(admin_key))
    response = client.patch(url("acme"), {"name": "By key"}, format="json")
    assert response.status_code == 200, response.content


def test_csrf_endpoint_is_public(db: Any) -> None:
    response = APIClient().get(url(None, "/auth/csrf"))
    assert response.status_code == 200 and len(response.json()["csrf_token"]) >= 32


def test_logout_requires_authentication(db: Any) -> None:
    assert_error(APIClient().post(url(None, "/auth/logout")), 401, "unauthenticated")


# --------------------------------------------------------------------------- /auth/me


def test_me_for_a_user(owner: Any) -> None:
    response = as_user(owner).get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "user": {
            "id": owner.pk,
            "email": "owner@example.test",
            "name": owner.get_full_name(),
            "is_operator": False,
        },
        "api_key": None,
    }


def test_me_for_an_operator(operator: Any) -> None:
    assert as_user(operator).get(ME).json()["user"]["is_operator"] is True


def test_me_for_a_key(tenant: Tenant) -> None:
    key, secret = make_key(tenant, scopes=[Scope.ADMIN, Scope.READ], name="ops")
    response = with_secret(secret).get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "user": None,
        "api_key": {
            "id": str(key.id),
            "prefix": f"vpk_{key.prefix}",
            "tenant": "acme",
            "scopes": ["admin", "read"],
        },
    }


def test_me_for_a_personal_token(owner: Any) -> None:
    _, secret = services.personal_token_create(actor=Actor(user=owner), name="cli")
    body = with_secret(secret).get(ME).json()
    assert body["user"]["id"] == owner.pk and body["api_key"] is None


def test_me_for_nobody(db: Any) -> None:
    assert_error(APIClient().get(ME), 401, "unauthenticated")


# --------------------------------------------------------------------------- personal tokens


def test_personal_token_lifecycle(owner: Any, tenant: Tenant) -> None:
    session = as_user(owner)
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = session.post(TOKENS, {"name": "laptop", "expires_at": expires}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "prefix",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
        "token",
    }
    secret = body["token"]
    token_client = with_secret(secret)
    # It acts as the user, with the user's roles.
    assert token_client.get(url("acme")).json()["role"] == Role.OWNER
    assert token_client.patch(url("acme"), {"name": "Via token"}, format="json").status_code == 200
    # Listed without its secret.
    listed = session.get(TOKENS).json()["data"]
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None
    # A token cannot mint tokens.
    assert_error(
        token_client.post(TOKENS, {"name": "child"}, format="json"), 403, "permission_denied"
    )
    assert PersonalAccessToken.objects.filter(user=owner).count() == 1
    # Revoked: refused from then on.
    assert session.delete(url(None, f"/personal-access-tokens/{body['id']}")).status_code == 204
    assert_error(token_client.get(url("acme")), 401, "token_revoked")
    assert session.get(TOKENS).json()["data"][0]["revoked_at"] is not None


def test_a_token_may_revoke_itself(owner: Any) -> None:
    token, secret = services.personal_token_create(actor=Actor(user=owner), name="cli")
    client = with_secret(secret)
    assert client.delete(url(None, f"/personal-access-tokens/{token.id}")).status_code == 204
    assert_error(client.get(ME), 401, "token_revoked")


def test_keys_cannot_mint_personal_tokens(tenant: Tenant, admin_key: str) -> None:
    response = with_secret(admin_key).post(TOKENS, {"name": "x"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert with_secret(admin_key).get(TOKENS).json() == {"data": [], "next_cursor": None}


def test_tokens_are_private_to_their_user(owner: Any, members: dict[str, Any]) -> None:
    token, secret = services.personal_token_create(actor=Actor(user=owner), name="mine")
    other = as_user(members[Role.ADMIN])
    assert other.get(TOKENS).json()["data"] == []
    response = other.delete(url(None, f"/personal-access-tokens/{token.id}"))
    error = assert_error(response, 404, "not_found")
    assert error["message"] == "The token was not found."
    assert with_secret(secret).get(ME).status_code == 200


def test_token_cannot_be_created_expired(owner: Any) -> None:
    past = (timezone.now() - timedelta(seconds=5)).isoformat()
    response = as_user(owner).post(TOKENS, {"name": "old", "expires_at": past}, format="json")
    assert_error(response, 400, "validation_error")


def test_token_acts_with_the_users_current_role(tenant: Tenant, members: dict[str, Any]) -> None:
    _, secret = services.personal_token_create(actor=Actor(user=members[Role.VIEWER]), name="v")
    client = with_secret(secret)
    assert client.get(url("acme")).status_code == 200
    assert_error(client.patch(url("acme"), {"name": "x"}, format="json"), 403, "permission_denied")


# --------------------------------------------------------------------------- invitations


ACCEPT = url(None, "/invitations/accept")


@pytest.fixture
def invited(tenant: Tenant, owner: Any) -> dict[str, Any]:
    response = as_user(owner).post(
        url("acme", "/invitations"),
        {"email": "Invitee@Example.test", "role": Role.ADMIN},
        format="json",
    )
    assert response.status_code == 201, response.content
    return {
        "id": response.json()["id"],
        "token": response.json()["token"],
        "user": UserFactory(email="invitee@example.test"),
    }


def test_accept_by_the_invited_email(tenant: Tenant, invited: dict[str, Any]) -> None:
    client = as_user(invited["user"])
    assert_error(client.get(url("acme")), 404, "not_found")
    response = client.post(ACCEPT, {"token": invited["token"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"tenant": "acme", "role": Role.ADMIN}
    with tenant_scope(tenant.id):
        assert Membership.objects.get(user=invited["user"]).role == Role.ADMIN
        invitation = Invitation.objects.get(pk=invited["id"])
    assert invitation.accepted_by_id == invited["user"].pk and invitation.accepted_at
    assert client.get(url("acme")).json()["role"] == Role.ADMIN
    # Reusing the token fails.
    assert_error(
        client.post(ACCEPT, {"token": invited["token"]}, format="json"), 404, "invitation_invalid"
    )


def test_accept_through_a_personal_token(tenant: Tenant, invited: dict[str, Any]) -> None:
    _, secret = services.personal_token_create(actor=Actor(user=invited["user"]), name="t")
    response = with_secret(secret).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert response.status_code == 200, response.content


def test_accept_by_another_email(
    tenant: Tenant, invited: dict[str, Any], members: dict[str, Any]
) -> None:
    stranger: Any = UserFactory(email="stranger@example.test")
    for user in (stranger, members[Role.VIEWER]):
        response = as_user(user).post(ACCEPT, {"token": invited["token"]}, format="json")
        assert_error(response, 403, "invitation_email_mismatch")
    with tenant_scope(tenant.id):
        assert not Membership.objects.filter(user=stranger).exists()
        assert Membership.objects.get(user=members[Role.VIEWER]).role == Role.VIEWER
    # The invitation is still good for its addressee.
    response = as_user(invited["user"]).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert response.status_code == 200


def test_revoked_invitation(tenant: Tenant, owner: Any, invited: dict[str, Any]) -> None:
    assert as_user(owner).delete(url("acme", f"/invitations/{invited['id']}")).status_code == 204
    response = as_user(invited["user"]).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert_error(response, 404, "invitation_invalid")


def test_expired_invitation(tenant: Tenant, invited: dict[str, Any]) -> None:
    Invitation.objects.unscoped().filter(pk=invited["id"]).update(expires_at=timezone.now())
    response = as_user(invited["user"]).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert_error(response, 404, "invitation_invalid")


def test_replaced_invitation(tenant: Tenant, owner: Any, invited: dict[str, Any]) -> None:
    response = as_user(owner).post(
        url("acme", "/invitations"),
        {"email": "invitee@example.test", "role": Role.VIEWER},
        format="json",
    )
    client = as_user(invited["user"])
    assert_error(
        client.post(ACCEPT, {"token": invited["token"]}, format="json"), 404, "invitation_invalid"
    )
    response = client.post(ACCEPT, {"token": response.json()["token"]}, format="json")
    assert response.json() == {"tenant": "acme", "role": Role.VIEWER}


def test_invitation_to_a_deleted_tenant(
    tenant: Tenant, owner: Any, invited: dict[str, Any]
) -> None:
    assert as_user(owner).delete(url("acme")).status_code == 204
    response = as_user(invited["user"]).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert_error(response, 404, "invitation_invalid")


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "vpi_aaaaaaaaaaaa_nothing", "vpk_aaaaaaaaaaaa_a-key-not-an-invite"],
)
def test_unknown_invitation_tokens(invited: dict[str, Any], token: str) -> None:
    response = as_user(invited["user"]).post(ACCEPT, {"token": token}, format="json")
    if token == "":
        assert_error(response, 400, "validation_error")
    else:
        assert_error(response, 404, "invitation_invalid")


def test_tampered_invitation_token(invited: dict[str, Any]) -> None:
    token = invited["token"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = as_user(invited["user"]).post(ACCEPT, {"token": tampered}, format="json")
    assert_error(response, 404, "invitation_invalid")


def test_keys_cannot_accept_invitations(
    tenant: Tenant, invited: dict[str, Any], admin_key: str
) -> None:
    response = with_secret(admin_key).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert_error(response, 403, "permission_denied")
    assert_error(
        APIClient().post(ACCEPT, {"token": invited["token"]}, format="json"), 401, "unauthenticated"
    )


def test_signup_then_accept(tenant: Tenant, owner: Any) -> None:
    token = (
        as_user(owner)
        .post(
            url("acme", "/invitations"),
            {"email": "newbie@example.test", "role": Role.MEMBER},
            format="json",
        )
        .json()["token"]
    )
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        url(None, "/auth/signup"),
        {"email": "newbie@example.test", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 201
    csrf = client.get(url(None, "/auth/csrf")).json()["csrf_token"]
    response = client.post(ACCEPT, {"token": token}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200 and response.json()["role"] == Role.MEMBER
    slugs = [t["slug"] for t in client.get(url(None, "/tenants")).json()["data"]]
    assert slugs == ["acme"]


def test_accepting_when_already_a_member_keeps_the_role(
    tenant: Tenant, owner: Any, invited: dict[str, Any]
) -> None:
    with tenant_scope(tenant.id):
        Membership.objects.create(tenant=tenant, user=invited["user"], role=Role.VIEWER)
    before = last_audit_id()
    response = as_user(invited["user"]).post(ACCEPT, {"token": invited["token"]}, format="json")
    assert response.status_code == 200 and response.json()["role"] == Role.VIEWER
    assert [e.action for e in new_audit_events(before)] == ["invitation.accepted"]
