"""Members and invitations through the API: the last-owner rule, ownership transfer, leaving,
role changes, member listing, and managing invitations (the accept flow: test_apis_auth)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tenants import services
from tenants.actors import Actor
from tenants.models import Invitation, Membership, Role, Tenant
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, add_member
from tenants.tests.test_apis_errors import (
    assert_error,
    last_audit_id,
    new_audit_events,
    url,
)

pytestmark = pytest.mark.django_db


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def member_url(user: Any) -> str:
    return url("acme", f"/members/{user.pk}")


def role_of(tenant: Tenant, user: Any) -> str | None:
    with tenant_scope(tenant.id):
        return Membership.objects.filter(user=user).values_list("role", flat=True).first()


def owners(tenant: Tenant) -> set[int]:
    with tenant_scope(tenant.id):
        return set(Membership.objects.filter(role=Role.OWNER).values_list("user_id", flat=True))


# --------------------------------------------------------------------------- the last owner


@pytest.mark.parametrize("new_role", [Role.ADMIN, Role.MEMBER, Role.VIEWER])
def test_sole_owner_cannot_demote_itself(
    tenant: Tenant, owner: Any, members: dict[str, Any], new_role: str
) -> None:
    before = last_audit_id()
    response = as_user(owner).patch(member_url(owner), {"role": new_role}, format="json")
    error = assert_error(response, 409, "last_owner")
    assert "owner" in error["message"]
    assert role_of(tenant, owner) == Role.OWNER
    assert new_audit_events(before) == []


def test_sole_owner_cannot_leave(tenant: Tenant, owner: Any, members: dict[str, Any]) -> None:
    before = last_audit_id()
    assert_error(as_user(owner).delete(member_url(owner)), 409, "last_owner")
    assert role_of(tenant, owner) == Role.OWNER
    assert new_audit_events(before) == []


def test_sole_owner_of_a_tenant_alone_cannot_leave(tenant: Tenant, owner: Any) -> None:
    assert_error(as_user(owner).delete(member_url(owner)), 409, "last_owner")


def test_with_two_owners_one_may_leave_then_the_other_may_not(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    second = add_member(tenant, UserFactory(email="second@example.test"), Role.OWNER)
    before = last_audit_id()
    assert as_user(owner).delete(member_url(owner)).status_code == 204
    [event] = new_audit_events(before)
    assert (event.action, event.target_id, event.details) == (
        "member.left",
        str(owner.pk),
        {"role": "owner"},
    )
    assert owners(tenant) == {second.pk}
    assert_error(as_user(second).delete(member_url(second)), 409, "last_owner")
    assert_error(
        as_user(second).patch(member_url(second), {"role": Role.ADMIN}, format="json"),
        409,
        "last_owner",
    )
    # The one who left is gone, like a stranger.
    assert_error(as_user(owner).get(url("acme")), 404, "not_found")


def test_with_two_owners_one_may_demote_itself(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    second = add_member(tenant, UserFactory(email="second@example.test"), Role.OWNER)
    response = as_user(owner).patch(member_url(owner), {"role": Role.VIEWER}, format="json")
    assert response.status_code == 200 and response.json()["role"] == Role.VIEWER
    assert owners(tenant) == {second.pk}


def test_an_owner_may_remove_another_owner_but_not_the_last(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    second = add_member(tenant, UserFactory(email="second@example.test"), Role.OWNER)
    assert as_user(second).delete(member_url(owner)).status_code == 204
    assert owners(tenant) == {second.pk}


def test_ownership_transfer(tenant: Tenant, owner: Any, members: dict[str, Any]) -> None:
    admin = members[Role.ADMIN]
    client = as_user(owner)
    before = last_audit_id()
    response = client.patch(member_url(admin), {"role": Role.OWNER}, format="json")
    assert response.status_code == 200 and response.json()["role"] == Role.OWNER
    response = client.patch(member_url(owner), {"role": Role.ADMIN}, format="json")
    assert response.status_code == 200 and response.json()["role"] == Role.ADMIN
    assert owners(tenant) == {admin.pk}
    assert [(e.action, e.target_id, e.details) for e in new_audit_events(before)] == [
        ("member.role_changed", str(admin.pk), {"role": {"from": "admin", "to": "owner"}}),
        ("member.role_changed", str(owner.pk), {"role": {"from": "owner", "to": "admin"}}),
    ]
    # The former owner is now an admin: it can no longer touch the new owner or delete.
    assert_error(
        client.patch(member_url(admin), {"role": Role.ADMIN}, format="json"),
        403,
        "permission_denied",
    )
    assert_error(client.delete(url("acme")), 403, "permission_denied")
    # The new owner can.
    assert as_user(admin).get(url("acme")).json()["role"] == Role.OWNER


def test_transfer_then_leave(tenant: Tenant, owner: Any, members: dict[str, Any]) -> None:
    admin = members[Role.ADMIN]
    client = as_user(owner)
    assert client.patch(member_url(admin), {"role": Role.OWNER}, format="json").status_code == 200
    assert client.delete(member_url(owner)).status_code == 204
    assert owners(tenant) == {admin.pk}
    assert role_of(tenant, owner) is None


# --------------------------------------------------------------------------- role changes


def test_admin_manages_non_owners(tenant: Tenant, members: dict[str, Any]) -> None:
    admin = as_user(members[Role.ADMIN])
    other_admin = add_member(tenant, UserFactory(email="admin2@example.test"), Role.ADMIN)
    for user, role in [
        (members[Role.VIEWER], Role.MEMBER),
        (members[Role.MEMBER], Role.ADMIN),
        (other_admin, Role.VIEWER),
        (members[Role.ADMIN], Role.MEMBER),  # an admin may step down itself
    ]:
        response = admin.patch(member_url(user), {"role": role}, format="json")
        assert response.status_code == 200, (user, response.content)
        assert role_of(tenant, user) == role


def test_same_role_is_a_no_op(tenant: Tenant, owner: Any, members: dict[str, Any]) -> None:
    before = last_audit_id()
    viewer = members[Role.VIEWER]
    response = as_user(owner).patch(member_url(viewer), {"role": Role.VIEWER}, format="json")
    assert response.status_code == 200 and response.json()["role"] == Role.VIEWER
    assert new_audit_events(before) == []


@pytest.mark.parametrize("body", [{"role": "superuser"}, {"role": ""}, {"role": None}, {}])
def test_invalid_role(tenant: Tenant, owner: Any, members: dict[str, Any], body: Any) -> None:
    response = as_user(owner).patch(member_url(members[Role.VIEWER]), body, format="json")
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]["fields"]) == {"role"}


def test_unknown_member(tenant: Tenant, owner: Any, other_tenant: Tenant) -> None:
    client = as_user(owner)
    stranger = UserFactory(email="stranger@example.test")
    for path in (member_url(stranger), url("acme", "/members/0")):
        assert_error(client.get(path), 404, "not_found")
        assert_error(client.patch(path, {"role": Role.ADMIN}, format="json"), 404, "not_found")
        assert_error(client.delete(path), 404, "not_found")


def test_member_output(tenant: Tenant, owner: Any, members: dict[str, Any]) -> None:
    admin = members[Role.ADMIN]
    response = as_user(members[Role.VIEWER]).get(member_url(admin))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"user_id", "email", "name", "role", "created_at"}
    assert body["user_id"] == admin.pk and body["email"] == "admin@example.test"
    assert body["role"] == Role.ADMIN and body["name"] == admin.get_full_name()


def test_members_list_walks_all_members(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    for i in range(8):
        add_member(tenant, UserFactory(email=f"m{i}@example.test"), Role.VIEWER)
    client = as_user(members[Role.VIEWER])
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = client.get(url("acme", "/members"), params).json()
        seen.extend(m["user_id"] for m in body["data"])
        cursor = body["next_cursor"]
        if not cursor:
            break
    with tenant_scope(tenant.id):
        expected = list(
            Membership.objects.order_by("-created_at", "-id").values_list("user_id", flat=True)
        )
    assert seen == expected and len(seen) == len(set(seen)) == 12


def test_removed_member_loses_access_and_its_personal_token_too(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    member = members[Role.MEMBER]
    _, secret = services.personal_token_create(actor=Actor(user=member), name="cli")
    pat = APIClient()
    pat.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert pat.get(url("acme", "/api-keys")).status_code == 200
    assert as_user(owner).delete(member_url(member)).status_code == 204
    assert_error(pat.get(url("acme", "/api-keys")), 404, "not_found")
    assert pat.get(url(None, "/auth/me")).status_code == 200  # the token itself still works


def test_removed_members_keys_keep_working(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    """Keys belong to the tenant, not to the member who minted them (revoke them explicitly)."""
    member = as_user(members[Role.MEMBER])
    response = member.post(
        url("acme", "/api-keys"), {"name": "m", "scopes": ["read"]}, format="json"
    )
    key_id = response.json()["id"]
    assert as_user(owner).delete(member_url(members[Role.MEMBER])).status_code == 204
    listed = as_user(owner).get(url("acme", f"/api-keys/{key_id}")).json()
    assert listed["status"] == "active"


# --------------------------------------------------------------------------- invitations


def invite(client: APIClient, email: str, role: str = Role.MEMBER) -> Any:
    return client.post(url("acme", "/invitations"), {"email": email, "role": role}, format="json")


def test_invitation_output_and_list(tenant: Tenant, owner: Any, members: dict[str, Any]) -> None:
    client = as_user(members[Role.ADMIN])
    response = invite(client, "New.Person@Example.TEST", Role.VIEWER)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "role",
        "status",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
        "token",
    }
    assert body["email"] == "new.person@example.test"
    assert (body["role"], body["status"], body["invited_by"]) == (
        Role.VIEWER,
        "pending",
        "admin@example.test",
    )
    listed = client.get(url("acme", "/invitations")).json()["data"]
    assert [i["id"] for i in listed] == [body["id"]]
    assert "token" not in listed[0]


def test_inviting_an_existing_member_conflicts(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    before = last_audit_id()
    assert_error(invite(as_user(owner), "VIEWER@example.test"), 409, "already_member")
    assert new_audit_events(before) == []
    with tenant_scope(tenant.id):
        assert not Invitation.objects.exists()


def test_a_new_invitation_replaces_the_pending_one(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    client = as_user(owner)
    first = invite(client, "twice@example.test", Role.VIEWER).json()
    second = invite(client, "Twice@example.test", Role.ADMIN).json()
    listed = {i["id"]: i["status"] for i in client.get(url("acme", "/invitations")).json()["data"]}
    assert listed == {first["id"]: "revoked", second["id"]: "pending"}


def test_invitation_can_be_revoked_once(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    client = as_user(owner)
    invitation_id = invite(client, "gone@example.test").json()["id"]
    path = url("acme", f"/invitations/{invitation_id}")
    before = last_audit_id()
    assert client.delete(path).status_code == 204
    assert client.delete(path).status_code == 204  # idempotent
    assert [e.action for e in new_audit_events(before)] == ["invitation.revoked"]
    listed = client.get(url("acme", "/invitations")).json()["data"]
    assert listed[0]["status"] == "revoked"


def test_unknown_invitation(tenant: Tenant, owner: Any) -> None:
    response = as_user(owner).delete(
        url("acme", "/invitations/00000000-0000-0000-0000-000000000000")
    )
    error = assert_error(response, 404, "not_found")
    assert error["message"] == "The invitation was not found."


def test_deleting_the_tenant_withdraws_pending_invitations(
    tenant: Tenant, owner: Any, members: dict[str, Any]
) -> None:
    client = as_user(owner)
    invite(client, "late@example.test")
    assert client.delete(url("acme")).status_code == 204
    with tenant_scope(tenant.id):
        assert not Invitation.objects.filter(revoked_at__isnull=True).exists()
