"""Audit trail: exactly the right row for every mutation through the API (action, actor, target,
tenant, source IP), none for a refused one; and the audit list (cursor walk, filters, errors)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from tenants import services, urls
from tenants.actors import Actor
from tenants.models import (
    ActorType,
    ApiKey,
    AuditEvent,
    Invitation,
    PersonalAccessToken,
    Role,
    Scope,
    Tenant,
)
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


IP = "203.0.113.77"
UA = "audit-test/1.0"


@dataclass
class Ctx:
    tenant: Tenant
    users: dict[str, Any]
    admin_key: ApiKey
    admin_key_secret: str
    owner_pat: PersonalAccessToken
    owner_pat_secret: str
    key: ApiKey
    invitation: Invitation
    invitation_token: str
    responses: dict[str, Any] = field(default_factory=dict)

    def client(self, actor: str) -> APIClient:
        client = APIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
        if actor == "key":
            client.credentials(**bearer(self.admin_key_secret))
        elif actor == "pat":
            client.credentials(**bearer(self.owner_pat_secret))
        elif actor != "anonymous":
            client.force_authenticate(self.users[actor])
        return client


@pytest.fixture
def ctx(tenant: Tenant, members: dict[str, Any], operator: Any) -> Ctx:
    users = {**members, "operator": operator}
    users["invitee"] = UserFactory(email="invitee@example.test")
    admin_key, admin_secret = make_key(tenant, scopes=[Scope.ADMIN], name="admin")
    pat, pat_secret = services.personal_token_create(
        actor=Actor(user=members[Role.OWNER]), name="p"
    )
    key, _ = make_key(tenant, name="target key")
    invitation, token = services.invitation_create(
        actor=Actor(user=members[Role.OWNER]),
        tenant=tenant,
        email="invitee@example.test",
        role=Role.ADMIN,
    )
    return Ctx(tenant, users, admin_key, admin_secret, pat, pat_secret, key, invitation, token)


@dataclass(frozen=True)
class Mutation:
    route: str
    method: str
    actor: str  # a user of ctx.users, "pat" (the owner's token), "key" (admin key), "anonymous"
    path: Callable[[Ctx], str]
    body: Callable[[Ctx], dict[str, Any]] | None
    status: int
    actions: tuple[str, ...]  # of the new audit rows, in order
    target_type: str
    target_id: Callable[[Ctx, Any], str]  # (ctx, response) -> id of the last row's target
    tenant: str | None = "acme"  # slug of the row's tenant, or None for platform events
    acting_user: str | None = None  # for anonymous requests: who the row names as actor
    details: dict[str, Any] | None = None
    setup: Callable[[Ctx], None] | None = None


def _t(rest: str = "") -> Callable[[Ctx], str]:
    return lambda c: url("acme", rest)


def _tenant_id(c: Ctx, r: Any) -> str:
    return str(c.tenant.id)


def _resp_id(c: Ctx, r: Any) -> str:
    return str(r.json()["id"])


def _user_id(who: str) -> Callable[[Ctx, Any], str]:
    return lambda c, r: str(c.users[who].pk)


def _key_id(c: Ctx, r: Any) -> str:
    return str(c.key.id)


def _invitation_id(c: Ctx, r: Any) -> str:
    return str(c.invitation.id)


def _pat_id(c: Ctx, r: Any) -> str:
    return str(c.owner_pat.id)


def _suspend(c: Ctx) -> None:
    services.tenant_suspend(actor=Actor(user=c.users["operator"]), tenant=c.tenant)


def _by_actor(route: str, method: str, actors: list[str], **kw: Any) -> list[Mutation]:
    return [Mutation(route, method, actor, **kw) for actor in actors]


MUTATIONS: list[Mutation] = [
    Mutation(
        "tenants",
        "post",
        "owner",
        lambda c: url(None, "/tenants"),
        lambda c: {"name": "New Co", "slug": "new-co"},
        201,
        ("tenant.created",),
        "tenant",
        _resp_id,
        tenant="new-co",
        details={"name": "New Co", "plan": "free"},
    ),
    Mutation(
        "tenants",
        "post",
        "pat",
        lambda c: url(None, "/tenants"),
        lambda c: {"name": "New Co", "slug": "new-co"},
        201,
        ("tenant.created",),
        "tenant",
        _resp_id,
        tenant="new-co",
    ),
    *_by_actor(
        "tenant",
        "patch",
        ["owner", "pat", "key"],
        path=_t(),
        body=lambda c: {"name": "Acme 2"},
        status=200,
        actions=("tenant.updated",),
        target_type="tenant",
        target_id=_tenant_id,
        details={"name": {"from": "Acme", "to": "Acme 2"}},
    ),
    *_by_actor(
        "tenant",
        "delete",
        ["owner", "pat", "operator"],
        path=_t(),
        body=None,
        status=204,
        actions=("tenant.deleted",),
        target_type="tenant",
        target_id=_tenant_id,
        details={"api_keys_revoked": 2},
    ),
    Mutation(
        "tenant-suspend",
        "post",
        "operator",
        _t("/suspend"),
        lambda c: {"reason": "abuse"},
        200,
        ("tenant.suspended",),
        "tenant",
        _tenant_id,
        details={"reason": "abuse"},
    ),
    Mutation(
        "tenant-reactivate",
        "post",
        "operator",
        _t("/reactivate"),
        None,
        200,
        ("tenant.reactivated",),
        "tenant",
        _tenant_id,
        setup=_suspend,
    ),
    Mutation(
        "tenant-plan",
        "put",
        "operator",
        _t("/plan"),
        lambda c: {"plan": "pro"},
        200,
        ("tenant.plan_changed",),
        "tenant",
        _tenant_id,
        details={"plan": {"from": "free", "to": "pro"}},
    ),
    Mutation(
        "tenant-limits",
        "put",
        "operator",
        _t("/limits"),
        lambda c: {"max_qps": 7, "reason": "deal"},
        200,
        ("tenant.limits_overridden",),
        "tenant",
        _tenant_id,
    ),
    *_by_actor(
        "member",
        "patch",
        ["owner", "pat", "key"],
        path=lambda c: url("acme", f"/members/{c.users[Role.VIEWER].pk}"),
        body=lambda c: {"role": Role.MEMBER},
        status=200,
        actions=("member.role_changed",),
        target_type="user",
        target_id=_user_id(Role.VIEWER),
        details={"role": {"from": "viewer", "to": "member"}},
    ),
    *_by_actor(
        "member",
        "delete",
        ["owner", "key"],
        path=lambda c: url("acme", f"/members/{c.users[Role.MEMBER].pk}"),
        body=None,
        status=204,
        actions=("member.removed",),
        target_type="user",
        target_id=_user_id(Role.MEMBER),
        details={"role": "member"},
    ),
    Mutation(
        "member",
        "delete",
        Role.VIEWER,
        lambda c: url("acme", f"/members/{c.users[Role.VIEWER].pk}"),
        None,
        204,
        ("member.left",),
        "user",
        _user_id(Role.VIEWER),
        details={"role": "viewer"},
    ),
    *_by_actor(
        "invitations",
        "post",
        ["owner", "pat", "key"],
        path=_t("/invitations"),
        body=lambda c: {"email": "New@Example.test", "role": Role.VIEWER},
        status=201,
        actions=("invitation.created",),
        target_type="invitation",
        target_id=_resp_id,
        details={"email": "new@example.test", "role": "viewer"},
    ),
    *_by_actor(
        "invitation",
        "delete",
        ["owner", "key"],
        path=lambda c: url("acme", f"/invitations/{c.invitation.id}"),
        body=None,
        status=204,
        actions=("invitation.revoked",),
        target_type="invitation",
        target_id=_invitation_id,
    ),
    Mutation(
        "invitation-accept",
        "post",
        "invitee",
        lambda c: url(None, "/invitations/accept"),
        lambda c: {"token": c.invitation_token},
        200,
        ("invitation.accepted",),
        "invitation",
        _invitation_id,
        details={"role": "admin"},
    ),
    *_by_actor(
        "api-keys",
        "post",
        ["owner", "pat", "key"],
        path=_t("/api-keys"),
        body=lambda c: {"name": "new", "scopes": ["write", "read"]},
        status=201,
        actions=("api_key.created",),
        target_type="api_key",
        target_id=_resp_id,
    ),
    *_by_actor(
        "api-key-revoke",
        "post",
        ["owner", "pat", "key"],
        path=lambda c: url("acme", f"/api-keys/{c.key.id}/revoke"),
        body=None,
        status=200,
        actions=("api_key.revoked",),
        target_type="api_key",
        target_id=_key_id,
    ),
    # Rotation mints a key (its own `api_key.created`, naming the old key) and marks the old one.
    *_by_actor(
        "api-key-rotate",
        "post",
        ["owner", "pat", "key"],
        path=lambda c: url("acme", f"/api-keys/{c.key.id}/rotate"),
        body=lambda c: {"grace_seconds": 60},
        status=201,
        actions=("api_key.created", "api_key.rotated"),
        target_type="api_key",
        target_id=_key_id,
    ),
    Mutation(
        "tokens",
        "post",
        "owner",
        lambda c: url(None, "/personal-access-tokens"),
        lambda c: {"name": "laptop"},
        201,
        ("personal_token.created",),
        "personal_token",
        _resp_id,
        tenant=None,
    ),
    *_by_actor(
        "token",
        "delete",
        ["owner", "pat"],
        path=lambda c: url(None, f"/personal-access-tokens/{c.owner_pat.id}"),
        body=None,
        status=204,
        actions=("personal_token.revoked",),
        target_type="personal_token",
        target_id=_pat_id,
        tenant=None,
    ),
    Mutation(
        "auth-signup",
        "post",
        "anonymous",
        lambda c: url(None, "/auth/signup"),
        lambda c: {"email": "Fresh@Example.test", "password": PASSWORD, "name": "Fresh Person"},
        201,
        ("user.signed_up",),
        "user",
        _resp_id,
        tenant=None,
        acting_user="fresh",
    ),
    Mutation(
        "auth-login",
        "post",
        "anonymous",
        lambda c: url(None, "/auth/login"),
        lambda c: {"email": "admin@example.test", "password": PASSWORD},
        200,
        ("user.logged_in",),
        "user",
        _user_id(Role.ADMIN),
        tenant=None,
        acting_user=Role.ADMIN,
    ),
]

# Unsafe endpoints that deliberately write no audit row.
NOT_AUDITED = {("auth-logout", "post"): "ends the caller's own session; nothing else changes"}


def test_every_unsafe_endpoint_is_in_the_audit_table() -> None:
    covered = {(m.route, m.method) for m in MUTATIONS} | set(NOT_AUDITED)
    missing = []
    for pattern in urls.urlpatterns:
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in ("post", "put", "patch", "delete"):
            if hasattr(view, method) and (pattern.name, method) not in covered:
                missing.append((pattern.name, method))
    assert not missing, f"mutating endpoints with no audit test: {missing}"


def _mutation_id(m: Mutation) -> str:
    return f"{m.route}-{m.method}-{m.actor}"


@pytest.mark.parametrize("m", MUTATIONS, ids=_mutation_id)
def test_mutation_writes_its_audit_rows(ctx: Ctx, m: Mutation) -> None:
    if m.setup is not None:
        m.setup(ctx)
    client = ctx.client(m.actor)
    before = last_audit_id()
    call = getattr(client, m.method)
    path = m.path(ctx)
    response = call(path, m.body(ctx), format="json") if m.body else call(path)
    assert response.status_code == m.status, response.content[:500]
    events = new_audit_events(before)
    assert [e.action for e in events] == list(m.actions)
    expected_tenant = None if m.tenant is None else Tenant.objects.get(slug=m.tenant).id
    for event in events:
        assert event.tenant_id == expected_tenant
        assert event.source_ip == IP
        assert event.user_agent == UA
        if m.actor == "key":
            assert event.actor_type == ActorType.API_KEY
            assert event.actor_api_key_id == ctx.admin_key.id
            assert event.actor_user_id is None
            assert event.actor_label == f"key admin (vpk_{ctx.admin_key.prefix})"
            assert event.via_token is False
        else:
            if m.actor == "pat":
                user = ctx.users[Role.OWNER]
            elif m.actor == "anonymous":
                user = (
                    ctx.users[m.acting_user]
                    if m.acting_user in ctx.users
                    else get_user_model().objects.get(email="fresh@example.test")
                )
            else:
                user = ctx.users[m.actor]
            assert event.actor_type == ActorType.USER
            assert event.actor_user_id == user.pk
            assert event.actor_api_key_id is None
            assert event.actor_label == user.get_username()
            assert event.via_token is (m.actor == "pat")
    last = events[-1]
    assert last.target_type == m.target_type
    assert last.target_id == m.target_id(ctx, response)
    if m.details is not None:
        assert last.details == m.details
    if m.route == "api-key-rotate":
        created, rotated = events
        new_id = response.json()["id"]
        assert created.target_id == new_id
        assert created.details["rotated_from"] == str(ctx.key.id)
        assert rotated.details["new_key_id"] == new_id


def test_audit_row_is_visible_through_the_api(ctx: Ctx) -> None:
    client = ctx.client("pat")
    response = client.post(
        url("acme", "/api-keys"), {"name": "seen", "scopes": ["read"]}, format="json"
    )
    key_id = response.json()["id"]
    rows = ctx.client(Role.OWNER).get(url("acme", "/audit-events"), {"limit": 1}).json()["data"]
    [row] = rows
    assert set(row) == {
        "id",
        "action",
        "actor",
        "target",
        "source_ip",
        "user_agent",
        "details",
        "created_at",
    }
    assert row["action"] == "api_key.created"
    assert row["actor"] == {
        "type": "user",
        "label": "owner@example.test",
        "user_id": ctx.users[Role.OWNER].pk,
        "api_key_id": None,
        "via_token": True,
    }
    assert row["target"] == {
        "type": "api_key",
        "id": key_id,
        "label": f"seen ({response.json()['prefix']})",
    }
    assert row["source_ip"] == IP and row["user_agent"] == UA
    assert row["details"]["scopes"] == ["read"]


def test_forwarded_for_is_ignored_without_trusted_proxies(ctx: Ctx) -> None:
    client = ctx.client(Role.OWNER)
    before = last_audit_id()
    client.patch(url("acme"), {"name": "X"}, format="json", HTTP_X_FORWARDED_FOR="10.9.9.9")
    [event] = new_audit_events(before)
    assert event.source_ip == IP


def test_forwarded_for_is_used_with_one_trusted_proxy(ctx: Ctx, settings: Any) -> None:
    settings.VECTORPLANE_NUM_PROXIES = 1
    client = ctx.client(Role.OWNER)
    before = last_audit_id()
    client.patch(
        url("acme"), {"name": "X"}, format="json", HTTP_X_FORWARDED_FOR="10.9.9.9, 192.0.2.1"
    )
    [event] = new_audit_events(before)
    assert event.source_ip == "192.0.2.1"


@pytest.mark.parametrize(
    ("hop", "recorded"),
    [
        ("192.0.2.1:51234", "192.0.2.1"),  # ip:port (Azure Application Gateway)
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("unknown", IP),  # not an address: the socket peer is recorded instead
    ],
)
def test_proxy_hop_that_is_not_a_bare_ip_does_not_break_mutations(
    ctx: Ctx, settings: Any, hop: str, recorded: str
) -> None:
    settings.VECTORPLANE_NUM_PROXIES = 1
    before = last_audit_id()
    response = ctx.client(Role.OWNER).patch(
        url("acme"), {"name": "X"}, format="json", HTTP_X_FORWARDED_FOR=hop
    )
    assert response.status_code == 200, response.content
    [event] = new_audit_events(before)
    assert event.source_ip == recorded


# --------------------------------------------------------------------------- refusals write nothing


@dataclass(frozen=True)
class Refusal:
    name: str
    actor: str
    method: str
    path: Callable[[Ctx], str]
    body: dict[str, Any] | Callable[[Ctx], dict[str, Any]] | None
    status: int
    code: str
    setup: Callable[[Ctx], None] | None = None


def _other_tenant(c: Ctx) -> None:
    from tenants.tests.factories import make_tenant

    make_tenant(owner=UserFactory(email="outsider@example.test"), name="Other", slug="other")


def _rotate(c: Ctx) -> None:
    services.api_key_rotate(actor=Actor(user=c.users[Role.OWNER]), tenant=c.tenant, api_key=c.key)


def _owner_id(c: Ctx) -> str:
    return url("acme", f"/members/{c.users[Role.OWNER].pk}")


REFUSALS = [
    Refusal("viewer renames", Role.VIEWER, "patch", _t(), {"name": "x"}, 403, "permission_denied"),
    Refusal("admin deletes", Role.ADMIN, "delete", _t(), None, 403, "permission_denied"),
    Refusal("owner suspends", Role.OWNER, "post", _t("/suspend"), {}, 403, "permission_denied"),
    Refusal(
        "owner changes plan",
        Role.OWNER,
        "put",
        _t("/plan"),
        {"plan": "pro"},
        403,
        "permission_denied",
    ),
    Refusal(
        "key overrides limits",
        "key",
        "put",
        _t("/limits"),
        {"max_qps": 1},
        403,
        "permission_denied",
    ),
    Refusal(
        "member mints admin key",
        Role.MEMBER,
        "post",
        _t("/api-keys"),
        {"name": "x", "scopes": ["admin"]},
        403,
        "permission_denied",
    ),
    Refusal(
        "admin invites owner",
        Role.ADMIN,
        "post",
        _t("/invitations"),
        {"email": "x@example.test", "role": "owner"},
        403,
        "permission_denied",
    ),
    Refusal(
        "admin demotes owner",
        Role.ADMIN,
        "patch",
        _owner_id,
        {"role": "viewer"},
        403,
        "permission_denied",
    ),
    Refusal(
        "member revokes others' key",
        Role.MEMBER,
        "post",
        lambda c: url("acme", f"/api-keys/{c.key.id}/revoke"),
        None,
        403,
        "permission_denied",
    ),
    Refusal(
        "outsider renames",
        "outsider",
        "patch",
        _t(),
        {"name": "x"},
        404,
        "not_found",
        setup=_other_tenant,
    ),
    Refusal(
        "unknown key revoked",
        Role.OWNER,
        "post",
        _t("/api-keys/00000000-0000-0000-0000-000000000000/revoke"),
        None,
        404,
        "not_found",
    ),
    Refusal("sole owner leaves", Role.OWNER, "delete", _owner_id, None, 409, "last_owner"),
    Refusal(
        "sole owner demotes self",
        Role.OWNER,
        "patch",
        _owner_id,
        {"role": "admin"},
        409,
        "last_owner",
    ),
    Refusal(
        "slug taken",
        Role.OWNER,
        "post",
        lambda c: url(None, "/tenants"),
        {"name": "Acme", "slug": "acme"},
        409,
        "slug_taken",
    ),
    Refusal(
        "invite a member",
        Role.OWNER,
        "post",
        _t("/invitations"),
        {"email": "viewer@example.test"},
        409,
        "already_member",
    ),
    Refusal(
        "rotate twice",
        Role.OWNER,
        "post",
        lambda c: url("acme", f"/api-keys/{c.key.id}/rotate"),
        {},
        409,
        "api_key_already_rotated",
        setup=_rotate,
    ),
    Refusal(
        "suspended key create",
        Role.OWNER,
        "post",
        _t("/api-keys"),
        {"name": "x", "scopes": ["read"]},
        403,
        "tenant_suspended",
        setup=_suspend,
    ),
    Refusal(
        "bad scopes",
        Role.OWNER,
        "post",
        _t("/api-keys"),
        {"name": "x", "scopes": "read"},
        400,
        "validation_error",
    ),
    Refusal(
        "unknown field",
        Role.OWNER,
        "patch",
        _t(),
        {"name": "x", "plan": "pro"},
        400,
        "unknown_field",
    ),
    Refusal(
        "unknown plan", "operator", "put", _t("/plan"), {"plan": "platinum"}, 400, "unknown_plan"
    ),
    Refusal(
        "pat mints pat",
        "pat",
        "post",
        lambda c: url(None, "/personal-access-tokens"),
        {"name": "x"},
        403,
        "permission_denied",
    ),
    Refusal(
        "accept as someone else",
        Role.MEMBER,
        "post",
        lambda c: url(None, "/invitations/accept"),
        lambda c: {"token": c.invitation_token},
        403,
        "invitation_email_mismatch",
    ),
    Refusal(
        "accept garbage",
        "invitee",
        "post",
        lambda c: url(None, "/invitations/accept"),
        {"token": "vpi_aaaaaaaaaaaa_nope"},
        404,
        "invitation_invalid",
    ),
    Refusal(
        "login wrong password",
        "anonymous",
        "post",
        lambda c: url(None, "/auth/login"),
        {"email": "owner@example.test", "password": "wrong"},
        401,
        "invalid_credentials",
    ),
    Refusal(
        "signup taken",
        "anonymous",
        "post",
        lambda c: url(None, "/auth/signup"),
        {"email": "owner@example.test", "password": PASSWORD},
        409,
        "email_taken",
    ),
]


@pytest.mark.parametrize("r", REFUSALS, ids=lambda r: r.name.replace(" ", "-"))
def test_refused_mutation_writes_no_audit_row(ctx: Ctx, r: Refusal) -> None:
    if r.setup is not None:
        r.setup(ctx)
    if r.actor == "outsider":
        client = APIClient(REMOTE_ADDR=IP)
        outsider: Any = UserFactory(email="outsider@example.test")
        client.force_authenticate(outsider)
    else:
        client = ctx.client(r.actor)
    body = r.body(ctx) if callable(r.body) else r.body
    before = last_audit_id()
    call = getattr(client, r.method)
    path = r.path(ctx)
    response = call(path, body, format="json") if body is not None else call(path)
    assert_error(response, r.status, r.code)
    assert new_audit_events(before) == []


def test_no_op_mutations_write_no_audit_row(ctx: Ctx) -> None:
    owner = ctx.client(Role.OWNER)
    operator = ctx.client("operator")
    before = last_audit_id()
    assert owner.patch(url("acme"), {"name": "Acme"}, format="json").status_code == 200
    assert owner.patch(url("acme"), {}, format="json").status_code == 200
    viewer_path = url("acme", f"/members/{ctx.users[Role.VIEWER].pk}")
    assert owner.patch(viewer_path, {"role": "viewer"}, format="json").status_code == 200
    assert operator.put(url("acme", "/plan"), {"plan": "free"}, format="json").status_code == 200
    assert operator.post(url("acme", "/reactivate")).status_code == 200
    assert new_audit_events(before) == []


# --------------------------------------------------------------------------- the audit list


def walk(client: APIClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        query = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        response = client.get(url("acme", "/audit-events"), query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["data"]) <= limit
        rows.extend(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
        assert body["data"], "a page with a next cursor must not be empty"
    raise AssertionError("pagination did not end")


# Synthetic events are dated in the past (before the real ones), a day apart.
BASE = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def history(ctx: Ctx, other_tenant: Tenant) -> Ctx:
    """Real events through the API, plus 40 synthetic ones a day apart, plus another tenant's."""
    owner = ctx.client(Role.OWNER)
    admin = ctx.client(Role.ADMIN)
    key = ctx.client("key")
    for i in range(3):
        r = admin.post(
            url("acme", "/api-keys"), {"name": f"a{i}", "scopes": ["read"]}, format="json"
        )
        ctx.responses[f"admin_key_{i}"] = r.json()
    key.post(url("acme", "/api-keys"), {"name": "by-key", "scopes": ["read"]}, format="json")
    owner.post(url("acme", f"/api-keys/{ctx.key.id}/rotate"), {}, format="json")
    owner.post(url("acme", f"/api-keys/{ctx.key.id}/revoke"))
    owner.patch(
        url("acme", f"/members/{ctx.users[Role.VIEWER].pk}"), {"role": "member"}, format="json"
    )
    with tenant_scope(ctx.tenant.id):
        AuditEvent.objects.unscoped().bulk_create(
            AuditEvent(
                tenant=ctx.tenant,
                actor_type=ActorType.SYSTEM,
                actor_label="system",
                action="synthetic.tick",
                target_type="tenant",
                target_id=str(ctx.tenant.id),
                details={"n": n},
            )
            for n in range(40)
        )
        first = AuditEvent.objects.filter(action="synthetic.tick").order_by("id").first()
    assert first is not None
    with connection.cursor() as cursor:  # created_at is auto_now_add: set it afterwards
        cursor.execute(
            "UPDATE tenants_auditevent SET created_at = %s + (id - %s) * interval '1 day' "
            "WHERE action = 'synthetic.tick'",
            [BASE, first.id],
        )
    make_key(other_tenant, name="evil's")  # an event in another tenant
    return ctx


def acme_event_ids(**filters: Any) -> list[int]:
    """acme's events, newest first, in the order the model declares for its listing."""
    return list(
        AuditEvent.objects.unscoped()
        .filter(tenant__slug="acme", **filters)
        .order_by(*(AuditEvent._meta.ordering or ()))
        .values_list("id", flat=True)
    )


@pytest.mark.parametrize("limit", [1, 7, 20, 100])
def test_cursor_walk_returns_every_row_once_newest_first(history: Ctx, limit: int) -> None:
    rows = walk(history.client(Role.OWNER), limit)
    ids = [r["id"] for r in rows]
    assert ids == acme_event_ids()
    assert len(ids) == len(set(ids)) > 50


def test_walk_is_stable_while_new_events_arrive(history: Ctx) -> None:
    client = history.client(Role.OWNER)
    first = client.get(url("acme", "/audit-events"), {"limit": 10}).json()
    # New activity between pages appears on no later page and shifts nothing.
    client.patch(url("acme"), {"name": "Busy"}, format="json")
    rest = walk(client, 10, cursor=first["next_cursor"])
    ids = [r["id"] for r in first["data"] + rest]
    assert len(ids) == len(set(ids))
    assert ids == acme_event_ids()[1:]  # all but the newest (created mid-walk)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "api_key.created"}, {"action": "api_key.created"}),
        ({"action": "api_key."}, {"action__startswith": "api_key."}),
        ({"action": "api_key"}, {"action": "api_key"}),  # no dot: exact, matches nothing
        ({"action": "member."}, {"action__startswith": "member."}),
        ({"action": "synthetic.tick"}, {"action": "synthetic.tick"}),
        ({"target_type": "api_key"}, {"target_type": "api_key"}),
        ({"action": "api_key.", "target_type": "tenant"}, {"pk__in": []}),
    ],
)
def test_action_and_target_type_filters(
    history: Ctx, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    ids = [r["id"] for r in walk(history.client(Role.OWNER), 5, **params)]
    assert ids == acme_event_ids(**expected)
    if expected != {"pk__in": []} and params.get("action") != "api_key":
        assert ids, "the filter must match something for this test to mean anything"


def test_prefix_filter_finds_every_kind_of_key_event(history: Ctx) -> None:
    rows = walk(history.client(Role.OWNER), 3, action="api_key.")
    assert {r["action"] for r in rows} == {"api_key.created", "api_key.rotated", "api_key.revoked"}


def test_actor_filters(history: Ctx) -> None:
    client = history.client(Role.OWNER)
    admin = history.users[Role.ADMIN]
    rows = walk(client, 2, actor_user_id=admin.pk)
    assert [r["id"] for r in rows] == acme_event_ids(actor_user_id=admin.pk)
    assert len(rows) == 3 and all(r["actor"]["user_id"] == admin.pk for r in rows)
    rows = walk(client, 2, actor_api_key_id=str(history.admin_key.id))
    assert len(rows) == 1 and rows[0]["actor"]["api_key_id"] == str(history.admin_key.id)
    assert walk(client, 2, actor_user_id=999999) == []


def test_target_filter(history: Ctx) -> None:
    rows = walk(history.client(Role.OWNER), 2, target_type="api_key", target_id=str(history.key.id))
    # created (in the fixture), rotated, revoked
    assert [r["action"] for r in rows] == ["api_key.revoked", "api_key.rotated", "api_key.created"]
    assert all(r["target"]["id"] == str(history.key.id) for r in rows)


def test_since_is_inclusive_and_until_exclusive(history: Ctx) -> None:
    client = history.client(Role.OWNER)
    since, until = BASE + timedelta(days=3), BASE + timedelta(days=6)
    rows = walk(client, 2, since=since.isoformat(), until=until.isoformat())
    assert [r["details"]["n"] for r in rows] == [5, 4, 3]
    rows = walk(client, 50, since=(BASE + timedelta(days=38)).isoformat(), action="synthetic.tick")
    assert [r["details"]["n"] for r in rows] == [39, 38]
    rows = walk(client, 50, until=(BASE + timedelta(days=1)).isoformat())
    assert [r["details"]["n"] for r in rows] == [0]
    # A zone offset is honoured: 2020-01-03T01:00+01:00 is day 2 at midnight UTC.
    rows = walk(client, 50, since="2020-01-03T01:00:00+01:00", until="2020-01-04T00:00:00Z")
    assert [r["details"]["n"] for r in rows] == [2]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("actor_user_id", "abc"),
        ("actor_user_id", "1.5"),
        ("actor_api_key_id", "not-a-uuid"),
        ("since", "yesterday"),
        ("until", "2030-13-01T00:00:00Z"),
        ("since", "2030-01-01T25:00:00Z"),
        ("target_id", "x" * 65),
        ("target_type", "x" * 33),
        ("action", "x" * 65),
        ("limit", "abc"),
    ],
)
def test_malformed_filter_values(ctx: Ctx, param: str, value: str) -> None:
    response = ctx.client(Role.OWNER).get(url("acme", "/audit-events"), {param: value})
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]["fields"]) == {param}


@pytest.mark.parametrize("limit", ["0", "101", "-1"])
def test_out_of_range_limit(ctx: Ctx, limit: str) -> None:
    response = ctx.client(Role.OWNER).get(url("acme", "/audit-events"), {"limit": limit})
    assert_error(response, 400, "validation_error")


def test_unknown_filter(ctx: Ctx) -> None:
    response = ctx.client(Role.OWNER).get(url("acme", "/audit-events"), {"tenant": "evil"})
    assert_error(response, 400, "unknown_field")


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def real_cursor(client: APIClient, rest: str) -> list[Any]:
    """The decoded values of a genuine next_cursor of `rest` (whatever keys it pages on)."""
    cursor = client.get(url("acme", rest), {"limit": 1}).json()["next_cursor"]
    assert cursor, "need at least two rows"
    values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert isinstance(values, list) and values
    return values


FORGED_RAW = {
    "garbage": "%%%not-base64%%%",
    "not-json": _b64("hello"),
    "object": _b64('{"id": 5}'),
    "empty-list": _b64("[]"),
    "not-utf8": base64.urlsafe_b64encode(b"\xff\xfe[1]").decode(),
}


@pytest.mark.parametrize("cursor", list(FORGED_RAW.values()), ids=list(FORGED_RAW))
def test_forged_cursor(ctx: Ctx, cursor: str) -> None:
    response = ctx.client(Role.OWNER).get(url("acme", "/audit-events"), {"cursor": cursor})
    assert_error(response, 400, "invalid_cursor")


# A genuine cursor with one value replaced (JSON text, so NaN can be spelled).
REPLACEMENTS = {
    "string": '"abc"',
    "null": "null",
    "object": '{"a": 1}',
    "list": "[1]",
    "nan": "NaN",
}


@pytest.mark.parametrize("rest", ["/audit-events", "/members"])
@pytest.mark.parametrize("replacement", list(REPLACEMENTS))
def test_cursor_with_a_forged_value(ctx: Ctx, rest: str, replacement: str) -> None:
    client = ctx.client(Role.OWNER)
    values = real_cursor(client, rest)
    for i in range(len(values)):
        parts = [json.dumps(v) for v in values]
        parts[i] = REPLACEMENTS[replacement]
        response = client.get(url("acme", rest), {"cursor": _b64(f"[{', '.join(parts)}]")})
        assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("rest", ["/audit-events", "/members"])
def test_cursor_with_the_wrong_number_of_values(ctx: Ctx, rest: str) -> None:
    client = ctx.client(Role.OWNER)
    values = real_cursor(client, rest)
    for forged in (values[:-1], [*values, values[-1]]):
        response = client.get(url("acme", rest), {"cursor": _b64(json.dumps(forged))})
        assert_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
@pytest.mark.parametrize("rest", ["/audit-events", "/members"])
def test_cursor_with_an_overflowing_id(ctx: Ctx, rest: str, number: str) -> None:
    client = ctx.client(Role.OWNER)
    values = real_cursor(client, rest)
    assert isinstance(values[-1], int)  # both lists end their keys with an integer id
    parts = [json.dumps(v) for v in values[:-1]] + [number]
    response = client.get(url("acme", rest), {"cursor": _b64(f"[{', '.join(parts)}]")})
    assert_error(response, 400, "invalid_cursor")


def test_audit_list_is_admins_only_and_tenant_scoped(history: Ctx) -> None:
    assert_error(
        history.client(Role.MEMBER).get(url("acme", "/audit-events")), 403, "permission_denied"
    )
    rows = walk(history.client("key"), 100)
    assert {r["id"] for r in rows} == set(acme_event_ids())
    # Platform events (sign-ups, tokens) belong to no tenant and are not in any tenant's list.
    assert not {r["action"] for r in rows} & {"personal_token.created", "user.signed_up"}
    assert PersonalAccessToken.objects.exists()


def test_platform_events_never_match_a_tenant_filter(history: Ctx) -> None:
    """Filtering cannot widen a tenant's trail: platform events match no tenant filter."""
    owner = history.users[Role.OWNER]
    rows = walk(history.client(Role.OWNER), 100, actor_user_id=owner.pk, action="personal_token.")
    assert rows == []
    assert (
        AuditEvent.objects.unscoped()
        .filter(actor_user_id=owner.pk, action="personal_token.created")
        .exists()
    )
