"""Every role rule of the management API, as a matrix of actors x operations.

Actors: the four tenant roles, plus a platform operator (staff, not a member) and an
admin-scoped API key of the tenant. Each cell asserts the exact status, the error code of a
refusal, and that a refusal wrote no audit row while an allowed mutation wrote at least one.
The suspended-tenant rules are at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tenants import credentials, services, urls
from tenants.actors import Actor
from tenants.models import ApiKey, Invitation, Membership, Role, Scope, Tenant, TenantStatus
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, add_member, make_key
from tenants.tests.test_apis_errors import (
    assert_error,
    bearer,
    last_audit_id,
    new_audit_events,
    url,
)

pytestmark = pytest.mark.django_db


OWNER, ADMIN, MEMBER, VIEWER = Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER
OPERATOR = "operator"
ADMIN_KEY = "admin_key"
ACTORS = [OWNER, ADMIN, MEMBER, VIEWER, OPERATOR, ADMIN_KEY]


@dataclass
class World:
    tenant: Tenant
    users: dict[str, Any]
    keys: dict[str, ApiKey]
    admin_key: ApiKey
    admin_key_secret: str
    invitation: Invitation
    extras: dict[str, Any] = field(default_factory=dict)

    def client(self, actor: str) -> APIClient:
        client = APIClient()
        if actor == ADMIN_KEY:
            client.credentials(**bearer(self.admin_key_secret))
        else:
            client.force_authenticate(self.users[actor])
        return client

    def own_key(self, actor: str) -> ApiKey:
        return self.keys[actor]

    def others_key(self, actor: str) -> ApiKey:
        """A read/write key created by a user other than `actor`."""
        return self.keys[ADMIN] if actor == OWNER else self.keys[OWNER]


def _key(tenant: Tenant, created_by: Any, name: str, scopes: list[Any]) -> ApiKey:
    """An unsaved key row (the matrix never needs its secret)."""
    new = credentials.generate(credentials.KEY_KIND)
    return ApiKey(
        tenant=tenant,
        name=name,
        prefix=new.prefix,
        secret_hash=new.hash,
        scopes=scopes,
        created_by=created_by,
    )


@pytest.fixture
def world(tenant: Tenant, members: dict[str, Any], operator: Any) -> World:
    users = dict(members)
    users[OPERATOR] = operator
    users["co_owner"] = add_member(tenant, UserFactory(email="co-owner@example.test"), OWNER)
    users["extra"] = add_member(tenant, UserFactory(email="extra@example.test"), VIEWER)
    admin_key, admin_secret = make_key(
        tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN], name="admin key"
    )
    rw = [Scope.READ, Scope.WRITE]
    # A read/write key "created" by each actor — the viewer's while it was still a member; the
    # admin key's own has no creator (keys minted by keys have none).
    keys = {
        actor: _key(tenant, None if actor == ADMIN_KEY else users[actor], f"{actor}'s", rw)
        for actor in ACTORS
    }
    # An admin-scoped key "created" by each actor (the member's and viewer's: while admins).
    admin_scoped = {
        actor: _key(
            tenant, None if actor == ADMIN_KEY else users[actor], f"{actor}'s admin", [Scope.ADMIN]
        )
        for actor in ACTORS
    }
    ApiKey.objects.unscoped().bulk_create([*keys.values(), *admin_scoped.values()])
    invitation, invitation_token = services.invitation_create(
        actor=Actor(user=users[OWNER]), tenant=tenant, email="invitee@example.test", role=MEMBER
    )
    return World(
        tenant=tenant,
        users=users,
        keys=keys,
        admin_key=admin_key,
        admin_key_secret=admin_secret,
        invitation=invitation,
        extras={"admin_scoped": admin_scoped, "invitation_token": invitation_token},
    )


@dataclass(frozen=True)
class Op:
    method: str
    route: str  # URL name in tenants/urls.py
    expected: dict[str, int]
    kwargs: Callable[[World, str], dict[str, Any]] = lambda w, a: {}
    body: dict[str, Any] | None = None
    mutating: bool = True
    setup: Callable[[World], None] | None = None

    def path(self, world: World, actor: str) -> str:
        return reverse(
            f"v1:{self.route}", kwargs={"tenant_slug": "acme", **self.kwargs(world, actor)}
        )


def _row(
    owner: int, admin: int, member: int, viewer: int, operator: int, key: int
) -> dict[str, int]:
    return {
        OWNER: owner,
        ADMIN: admin,
        MEMBER: member,
        VIEWER: viewer,
        OPERATOR: operator,
        ADMIN_KEY: key,
    }


def _suspend(w: World) -> None:
    services.tenant_suspend(actor=Actor(user=w.users[OPERATOR]), tenant=w.tenant, reason="ops")


def _user(who: str) -> Callable[[World, str], dict[str, Any]]:
    return lambda w, a: {"user_id": w.users[who].pk}


def _own_key(w: World, a: str) -> dict[str, Any]:
    return {"key_id": w.own_key(a).id}


def _others_key(w: World, a: str) -> dict[str, Any]:
    return {"key_id": w.others_key(a).id}


def _own_admin_scoped_key(w: World, a: str) -> dict[str, Any]:
    return {"key_id": w.extras["admin_scoped"][a].id}


OPS: dict[str, Op] = {
    # ------------------------------------------------------------------ tenant
    "tenant_get": Op("get", "tenant", _row(200, 200, 200, 200, 200, 200), mutating=False),
    "tenant_patch": Op(
        "patch", "tenant", _row(200, 200, 403, 403, 200, 200), body={"name": "Acme 2"}
    ),
    # Deleting needs the owner role (or an operator): an admin or admin key is refused.
    "tenant_delete": Op("delete", "tenant", _row(204, 403, 403, 403, 204, 403)),
    "tenant_suspend": Op(
        "post", "tenant-suspend", _row(403, 403, 403, 403, 200, 403), body={"reason": "abuse"}
    ),
    "tenant_reactivate": Op(
        "post", "tenant-reactivate", _row(403, 403, 403, 403, 200, 403), setup=_suspend
    ),
    "plan_change": Op(
        "put", "tenant-plan", _row(403, 403, 403, 403, 200, 403), body={"plan": "pro"}
    ),
    "limits_get": Op("get", "tenant-limits", _row(200, 200, 200, 200, 200, 200), mutating=False),
    "limits_override": Op(
        "put", "tenant-limits", _row(403, 403, 403, 403, 200, 403), body={"max_indexes": 50}
    ),
    # ------------------------------------------------------------------ members
    "members_list": Op("get", "members", _row(200, 200, 200, 200, 200, 200), mutating=False),
    "member_get": Op(
        "get", "member", _row(200, 200, 200, 200, 200, 200), _user("extra"), mutating=False
    ),
    "member_change_role": Op(
        "patch", "member", _row(200, 200, 403, 403, 200, 200), _user("extra"), {"role": MEMBER}
    ),
    "member_promote_to_owner": Op(
        "patch", "member", _row(200, 403, 403, 403, 403, 403), _user("extra"), {"role": OWNER}
    ),
    "member_demote_an_owner": Op(
        "patch", "member", _row(200, 403, 403, 403, 403, 403), _user("co_owner"), {"role": ADMIN}
    ),
    "member_remove": Op("delete", "member", _row(204, 204, 403, 403, 204, 204), _user("extra")),
    "member_remove_an_owner": Op(
        "delete", "member", _row(204, 403, 403, 403, 403, 403), _user("co_owner")
    ),
    # ------------------------------------------------------------------ invitations
    "invitations_list": Op(
        "get", "invitations", _row(200, 200, 403, 403, 200, 200), mutating=False
    ),
    "invitation_create": Op(
        "post",
        "invitations",
        _row(201, 201, 403, 403, 201, 201),
        body={"email": "new@example.test", "role": MEMBER},
    ),
    "invitation_create_owner": Op(
        "post",
        "invitations",
        _row(201, 403, 403, 403, 403, 403),
        body={"email": "new@example.test", "role": OWNER},
    ),
    "invitation_revoke": Op(
        "delete",
        "invitation",
        _row(204, 204, 403, 403, 204, 204),
        lambda w, a: {"invitation_id": w.invitation.id},
    ),
    # ------------------------------------------------------------------ API keys
    "keys_list": Op("get", "api-keys", _row(200, 200, 200, 403, 200, 200), mutating=False),
    "key_get": Op(
        "get", "api-key", _row(200, 200, 200, 403, 200, 200), _others_key, mutating=False
    ),
    "key_create_read_write": Op(
        "post",
        "api-keys",
        _row(201, 201, 201, 403, 201, 201),
        body={"name": "k", "scopes": ["read", "write"]},
    ),
    "key_create_admin_scoped": Op(
        "post",
        "api-keys",
        _row(201, 201, 403, 403, 201, 201),
        body={"name": "k", "scopes": ["read", "admin"]},
    ),
    "key_revoke_own": Op("post", "api-key-revoke", _row(200, 200, 200, 403, 200, 200), _own_key),
    "key_revoke_others": Op(
        "post", "api-key-revoke", _row(200, 200, 403, 403, 200, 200), _others_key
    ),
    # A member who created an admin-scoped key (while an admin) may no longer manage it.
    "key_revoke_own_admin_scoped": Op(
        "post", "api-key-revoke", _row(200, 200, 403, 403, 200, 200), _own_admin_scoped_key
    ),
    "key_rotate_own": Op(
        "post", "api-key-rotate", _row(201, 201, 201, 403, 201, 201), _own_key, body={}
    ),
    "key_rotate_others": Op(
        "post", "api-key-rotate", _row(201, 201, 403, 403, 201, 201), _others_key, body={}
    ),
    "key_rotate_own_admin_scoped": Op(
        "post",
        "api-key-rotate",
        _row(201, 201, 403, 403, 201, 201),
        _own_admin_scoped_key,
        body={},
    ),
    # ------------------------------------------------------------------ audit
    "audit_list": Op("get", "audit-events", _row(200, 200, 403, 403, 200, 200), mutating=False),
}

CASES = [(name, actor) for name in OPS for actor in ACTORS]


@pytest.mark.parametrize(("op_name", "actor"), CASES, ids=[f"{o}-{a}" for o, a in CASES])
def test_role_matrix(world: World, op_name: str, actor: str) -> None:
    op = OPS[op_name]
    if op.setup is not None:
        op.setup(world)
    client = world.client(actor)
    before = last_audit_id()
    call = getattr(client, op.method)
    path = op.path(world, actor)
    response = call(path, op.body, format="json") if op.body is not None else call(path)
    expected = op.expected[actor]
    if expected == 403:
        assert_error(response, 403, "permission_denied")
        assert new_audit_events(before) == [], "a refused request wrote an audit row"
    else:
        assert response.status_code == expected, (response.status_code, response.content[:500])
        events = new_audit_events(before)
        if op.mutating:
            assert events, "an allowed mutation wrote no audit row"
            assert {e.tenant_id for e in events} == {world.tenant.id}
        else:
            assert events == []


def test_matrix_covers_every_tenant_scoped_view_method() -> None:
    """A new tenant-scoped route, or a new method on one, must get a row in OPS."""
    covered = {(op.route, op.method) for op in OPS.values()}
    missing = []
    for pattern in urls.urlpatterns:
        if "<slug:tenant_slug>" not in str(pattern.pattern):
            continue
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method) and (pattern.name, method) not in covered:
                missing.append((pattern.name, method))
    assert not missing, f"tenant-scoped endpoints with no role rule tested: {missing}"


# --------------------------------------------------------------------------- leaving


@pytest.mark.parametrize("role", [OWNER, ADMIN, MEMBER, VIEWER])
def test_anyone_may_leave(world: World, role: str) -> None:
    """With a second owner present, even an owner may leave (the last owner: test_apis_members)."""
    user = world.users[role]
    client = world.client(role)
    before = last_audit_id()
    response = client.delete(url("acme", f"/members/{user.pk}"))
    assert response.status_code == 204, response.content
    with tenant_scope(world.tenant.id):
        assert not Membership.objects.filter(user=user).exists()
    [event] = new_audit_events(before)
    assert event.action == "member.left" and event.target_id == str(user.pk)
    # Gone: the tenant is now invisible to the user, like any other tenant.
    assert_error(client.get(url("acme")), 404, "not_found")


def test_operator_is_not_a_member_and_cannot_leave(world: World) -> None:
    response = world.client(OPERATOR).delete(url("acme", f"/members/{world.users[OPERATOR].pk}"))
    assert_error(response, 404, "not_found")


def test_refusal_details_name_the_roles(world: World) -> None:
    error = assert_error(
        world.client(VIEWER).get(url("acme", "/api-keys")), 403, "permission_denied"
    )
    assert error["details"] == {"required_role": MEMBER, "role": VIEWER}
    error = assert_error(
        world.client(MEMBER).get(url("acme", "/audit-events")), 403, "permission_denied"
    )
    assert error["details"] == {"required_role": ADMIN, "role": MEMBER}


def test_member_cannot_change_its_own_role(world: World) -> None:
    member = world.users[MEMBER]
    for role in (ADMIN, OWNER, VIEWER):
        response = world.client(MEMBER).patch(
            url("acme", f"/members/{member.pk}"), {"role": role}, format="json"
        )
        assert_error(response, 403, "permission_denied")
    with tenant_scope(world.tenant.id):
        assert Membership.objects.get(user=member).role == MEMBER


def test_admin_cannot_promote_itself_to_owner(world: World) -> None:
    admin = world.users[ADMIN]
    response = world.client(ADMIN).patch(
        url("acme", f"/members/{admin.pk}"), {"role": OWNER}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    with tenant_scope(world.tenant.id):
        assert Membership.objects.get(user=admin).role == ADMIN


def test_role_checks_use_the_current_role(world: World) -> None:
    """A demoted admin loses admin rights at once (no role is cached in a session)."""
    client = world.client(ADMIN)
    assert client.get(url("acme", "/audit-events")).status_code == 200
    with tenant_scope(world.tenant.id):
        Membership.objects.filter(user=world.users[ADMIN]).update(role=VIEWER)
    assert_error(client.get(url("acme", "/audit-events")), 403, "permission_denied")


def test_read_only_key_of_the_tenant_cannot_use_the_management_api(world: World) -> None:
    _, secret = make_key(world.tenant, scopes=[Scope.READ, Scope.WRITE])
    client = APIClient()
    client.credentials(**bearer(secret))
    error = assert_error(client.get(url("acme")), 403, "insufficient_scope")
    assert error["details"] == {"required_scope": "admin", "scopes": ["read", "write"]}


# --------------------------------------------------------------------------- suspended tenant


@pytest.fixture
def suspended(world: World) -> World:
    response = world.client(OPERATOR).post(
        url("acme", "/suspend"), {"reason": "unpaid invoice"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "suspended"
    assert response.json()["status_reason"] == "unpaid invoice"
    world.tenant.refresh_from_db()
    assert world.tenant.status == TenantStatus.SUSPENDED
    return world


READS = [
    ("", [OWNER, ADMIN, MEMBER, VIEWER, OPERATOR, ADMIN_KEY]),
    ("/members", [OWNER, ADMIN, MEMBER, VIEWER, OPERATOR, ADMIN_KEY]),
    ("/limits", [OWNER, ADMIN, MEMBER, VIEWER, OPERATOR, ADMIN_KEY]),
    ("/api-keys", [OWNER, ADMIN, MEMBER, OPERATOR, ADMIN_KEY]),
    ("/invitations", [OWNER, ADMIN, OPERATOR, ADMIN_KEY]),
    ("/audit-events", [OWNER, ADMIN, OPERATOR, ADMIN_KEY]),
]


@pytest.mark.parametrize(("rest", "actors"), READS, ids=[r or "/" for r, _ in READS])
def test_suspended_tenant_can_still_be_read(suspended: World, rest: str, actors: list[str]) -> None:
    for actor in actors:
        response = suspended.client(actor).get(url("acme", rest))
        assert response.status_code == 200, (actor, response.content)


SUSPENDED_WRITES: list[
    tuple[str, str, Callable[[World], str], dict[str, Any] | None, list[str]]
] = [
    (
        "key_create",
        "post",
        lambda w: url("acme", "/api-keys"),
        {"name": "k", "scopes": ["read"]},
        [OWNER, ADMIN, MEMBER, OPERATOR, ADMIN_KEY],
    ),
    (
        "invitation_create",
        "post",
        lambda w: url("acme", "/invitations"),
        {"email": "new@example.test"},
        [OWNER, ADMIN, OPERATOR, ADMIN_KEY],
    ),
    (
        "tenant_rename",
        "patch",
        lambda w: url("acme"),
        {"name": "Renamed"},
        [OWNER, ADMIN, OPERATOR, ADMIN_KEY],
    ),
    (
        "member_role_change",
        "patch",
        lambda w: url("acme", f"/members/{w.users['extra'].pk}"),
        {"role": MEMBER},
        [OWNER, ADMIN, OPERATOR, ADMIN_KEY],
    ),
    (
        "key_rotate",
        "post",
        lambda w: url("acme", f"/api-keys/{w.keys[OWNER].id}/rotate"),
        {},
        [OWNER, ADMIN, OPERATOR, ADMIN_KEY],
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "actors"),
    SUSPENDED_WRITES,
    ids=[w[0] for w in SUSPENDED_WRITES],
)
def test_suspended_tenant_refuses_writes(
    suspended: World,
    name: str,
    method: str,
    path: Callable[[World], str],
    body: dict[str, Any] | None,
    actors: list[str],
) -> None:
    for actor in actors:
        before = last_audit_id()
        response = getattr(suspended.client(actor), method)(path(suspended), body, format="json")
        error = assert_error(response, 403, "tenant_suspended")
        assert error["details"] == {"reason": "unpaid invoice"}, (actor, error)
        assert new_audit_events(before) == [], actor
    with tenant_scope(suspended.tenant.id):
        assert ApiKey.objects.filter(name="k").count() == 0
        assert not Invitation.objects.filter(email="new@example.test").exists()
        assert not ApiKey.objects.filter(rotated_from=suspended.keys[OWNER]).exists()
    suspended.tenant.refresh_from_db()
    assert suspended.tenant.name == "Acme"


def test_suspended_tenant_role_check_comes_first(suspended: World) -> None:
    """A viewer is refused for its role, not for the suspension (no state is revealed)."""
    response = suspended.client(VIEWER).post(
        url("acme", "/api-keys"), {"name": "k", "scopes": ["read"]}, format="json"
    )
    assert_error(response, 403, "permission_denied")


def test_suspended_tenant_allows_revocations_and_removals(suspended: World) -> None:
    key = suspended.keys[MEMBER]
    response = suspended.client(MEMBER).post(url("acme", f"/api-keys/{key.id}/revoke"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "revoked"
    response = suspended.client(ADMIN).delete(
        url("acme", f"/invitations/{suspended.invitation.id}")
    )
    assert response.status_code == 204, response.content
    response = suspended.client(ADMIN).delete(
        url("acme", f"/members/{suspended.users['extra'].pk}")
    )
    assert response.status_code == 204, response.content
    response = suspended.client(VIEWER).delete(
        url("acme", f"/members/{suspended.users[VIEWER].pk}")
    )
    assert response.status_code == 204, response.content


def test_suspended_tenant_refuses_accepting_an_invitation(suspended: World) -> None:
    invitee: Any = UserFactory(email="invitee@example.test")  # the world's pending invitation
    client = APIClient()
    client.force_authenticate(invitee)
    response = client.post(
        url(None, "/invitations/accept"),
        {"token": suspended.extras["invitation_token"]},
        format="json",
    )
    assert_error(response, 403, "tenant_suspended")
    with tenant_scope(suspended.tenant.id):
        assert not Membership.objects.filter(user=invitee).exists()


def test_reactivation_restores_writes(suspended: World) -> None:
    owner = suspended.client(OWNER)
    body = {"name": "k", "scopes": ["read"]}
    assert_error(owner.post(url("acme", "/api-keys"), body, format="json"), 403, "tenant_suspended")
    response = suspended.client(OPERATOR).post(url("acme", "/reactivate"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active" and response.json()["status_reason"] == ""
    assert owner.post(url("acme", "/api-keys"), body, format="json").status_code == 201
    response = owner.post(url("acme", "/invitations"), {"email": "n@example.test"}, format="json")
    assert response.status_code == 201


def test_suspend_and_reactivate_are_idempotent(world: World) -> None:
    operator = world.client(OPERATOR)
    assert operator.post(url("acme", "/reactivate")).status_code == 200  # already active
    before = last_audit_id()
    assert operator.post(url("acme", "/suspend"), {}, format="json").status_code == 200
    assert operator.post(url("acme", "/suspend"), {}, format="json").status_code == 200
    assert [e.action for e in new_audit_events(before)] == ["tenant.suspended"]


def test_deleted_tenant_cannot_be_suspended(world: World) -> None:
    operator = world.client(OPERATOR)
    assert operator.delete(url("acme")).status_code == 204
    response = operator.post(url("acme", "/suspend"), {}, format="json")
    assert_error(response, 409, "tenant_deleted")
    response = operator.post(url("acme", "/reactivate"))
    assert_error(response, 409, "tenant_deleted")


# --------------------------------------------------------------------------- HEAD and 405

# (actor, path) pairs where GET is allowed (see OPS): HEAD is GET without a body.
HEAD_CASES = [
    pytest.param(VIEWER, "", id="viewer-tenant"),
    pytest.param(VIEWER, "/members", id="viewer-members"),
    pytest.param(VIEWER, "/limits", id="viewer-limits"),
    pytest.param(MEMBER, "/api-keys", id="member-api-keys"),
    pytest.param(ADMIN, "/audit-events", id="admin-audit-events"),
]


@pytest.mark.parametrize(("actor", "rest"), HEAD_CASES)
def test_head_is_allowed_wherever_get_is(world: World, actor: str, rest: str) -> None:
    client = world.client(actor)
    assert client.get(url("acme", rest)).status_code == 200
    response = client.head(url("acme", rest))
    assert response.status_code == 200, response.status_code


WRONG_METHODS = [
    (VIEWER, "put", ""),
    (VIEWER, "post", ""),
    (MEMBER, "delete", "/api-keys"),
    (VIEWER, "patch", "/members"),
]


@pytest.mark.parametrize(
    ("actor", "method", "rest"),
    WRONG_METHODS,
    ids=[f"{a}-{m}{r or '/'}" for a, m, r in WRONG_METHODS],
)
def test_unsupported_method_is_405_whatever_the_role(
    world: World, actor: str, method: str, rest: str
) -> None:
    assert world.client(OWNER).generic(method.upper(), url("acme", rest)).status_code == 405
    response = getattr(world.client(actor), method)(url("acme", rest), {}, format="json")
    assert_error(response, 405, "method_not_allowed")
