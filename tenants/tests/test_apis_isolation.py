"""Tenant isolation of the management API.

Another tenant's routes answer 404 — never 403 — with a body identical to the one for a tenant
that does not exist, for every route of tenants/urls.py and every HTTP method; another tenant's
ids under one's own slug are unknown ids. Also: tenant listing (pagination, `all=true`).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.urls import resolve, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import services, urls
from tenants.actors import Actor
from tenants.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    Scope,
    Tenant,
)
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, add_member, make_key, make_tenant
from tenants.tests.test_apis_errors import (
    assert_error,
    bearer,
    last_audit_id,
    new_audit_events,
    url,
)

pytestmark = pytest.mark.django_db


METHODS = ["get", "post", "put", "patch", "delete", "head", "options"]
MISSING_SLUG = "no-such-tenant"
TENANT_NOT_FOUND = {
    "error": {"code": "not_found", "message": "The tenant was not found.", "details": {}}
}


class Acme:
    """acme's rows that evil will aim at."""

    def __init__(self, tenant: Tenant, members: dict[str, Any]) -> None:
        self.tenant = tenant
        self.members = members
        self.key, self.key_secret = make_key(tenant, name="acme key")
        self.admin_key, self.admin_key_secret = make_key(
            tenant, scopes=[Scope.ADMIN], name="acme admin key"
        )
        self.invitation, _ = services.invitation_create(
            actor=Actor(user=members[Role.OWNER]),
            tenant=tenant,
            email="invitee@example.test",
            role=Role.MEMBER,
        )

    def path_kwargs(self) -> dict[str, Any]:
        return {
            "user_id": self.members[Role.MEMBER].pk,
            "key_id": self.key.id,
            "invitation_id": self.invitation.id,
        }


# Every tenant-scoped route, with a valid body per method so that a broken access check would
# show up as a 2xx (and a mutation), not be masked by a 400.
ROUTE_BODIES: dict[str, dict[str, dict[str, Any]]] = {
    "tenant": {"patch": {"name": "pwned"}},
    "tenant-suspend": {"post": {"reason": "pwned"}},
    "tenant-reactivate": {},
    "tenant-plan": {"put": {"plan": "enterprise"}},
    "tenant-limits": {"put": {"max_indexes": 9999}},
    "members": {},
    "member": {"patch": {"role": Role.OWNER}},
    "invitations": {"post": {"email": "mallory@example.test", "role": Role.OWNER}},
    "invitation": {},
    "api-keys": {"post": {"name": "pwned", "scopes": ["admin"]}},
    "api-key": {},
    "api-key-revoke": {},
    "api-key-rotate": {"post": {"grace_seconds": 0}},
    "audit-events": {},
}
# Routes that live outside any tenant (reviewed: they take no tenant from the URL).
GLOBAL_ROUTES = {
    "auth-csrf",
    "auth-login",
    "auth-logout",
    "auth-signup",
    "auth-me",
    "plans",
    "tenants",
    "invitation-accept",
    "tokens",
    "token",
}


def tenant_routes() -> list[tuple[str, list[str]]]:
    """(url name, path parameters other than the slug) of every tenant-scoped route."""
    routes = []
    for pattern in urls.urlpatterns:
        converters = list(pattern.pattern.converters)
        if "tenant_slug" in converters:
            routes.append((str(pattern.name), [c for c in converters if c != "tenant_slug"]))
    return routes


def test_every_route_is_classified() -> None:
    names = {str(p.name) for p in urls.urlpatterns}
    scoped = {name for name, _ in tenant_routes()}
    assert scoped == set(ROUTE_BODIES), (
        f"tenant-scoped routes missing from ROUTE_BODIES: {scoped - set(ROUTE_BODIES)}; "
        f"stale entries: {set(ROUTE_BODIES) - scoped}"
    )
    assert names - scoped == GLOBAL_ROUTES, (
        "a route outside /tenants/<slug>/ was added or removed; review whether it can reach "
        f"tenant data, then update GLOBAL_ROUTES: {(names - scoped) ^ GLOBAL_ROUTES}"
    )


@pytest.fixture
def acme(tenant: Tenant, members: dict[str, Any]) -> Acme:
    return Acme(tenant, members)


@pytest.fixture
def evil(other_tenant: Tenant) -> dict[str, Any]:
    with tenant_scope(other_tenant.id):
        evil_owner = Membership.objects.get(role=Role.OWNER).user
    _, token_secret = services.personal_token_create(actor=Actor(user=evil_owner), name="t")
    _, key_secret = make_key(other_tenant, scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN])
    viewer = add_member(other_tenant, UserFactory(email="evil-viewer@example.test"), Role.VIEWER)
    return {
        "tenant": other_tenant,
        "owner": evil_owner,
        "viewer": viewer,
        "pat": token_secret,
        "key": key_secret,
    }


def evil_client(evil: dict[str, Any], kind: str) -> APIClient:
    client = APIClient()
    if kind == "user":
        client.force_authenticate(evil["owner"])
    elif kind == "viewer":
        client.force_authenticate(evil["viewer"])
    elif kind == "pat":
        client.credentials(**bearer(evil["pat"]))
    elif kind == "admin_key_bearer":
        client.credentials(**bearer(evil["key"]))
    elif kind == "admin_key_header":
        client.credentials(HTTP_API_KEY=evil["key"])
    else:  # pragma: no cover
        raise AssertionError(kind)
    return client


def send(client: APIClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    call = getattr(client, method)
    if method in {"get", "head", "options"}:
        return call(path)
    return call(path, body or {}, format="json", REMOTE_ADDR="198.51.100.66")


def snapshot(acme: Acme) -> Any:
    """acme's state, to prove a storm of foreign requests changed nothing."""
    tenant = Tenant.objects.select_related("plan").get(pk=acme.tenant.pk)
    with tenant_scope(acme.tenant.id):
        return (
            (tenant.name, tenant.status, tenant.plan.slug),
            sorted(Membership.objects.values_list("user_id", "role")),
            sorted((str(k.id), k.revoked_at, k.revoke_after) for k in ApiKey.objects.all()),
            sorted((str(i.id), i.revoked_at, i.role) for i in Invitation.objects.all()),
            list(AuditEvent.objects.values_list("id", flat=True)),
            hasattr(tenant, "limit_override"),
        )


# The full route x method storm runs for a session user, a personal token and an admin key;
# the other credential shapes (a viewer of evil, the Api-Key header) take the same path and get
# a lighter sweep below.
EVIL_KINDS = ["user", "pat", "admin_key_bearer"]
ROUTE_NAMES = sorted(ROUTE_BODIES)


def _implements(path: str, method: str) -> bool:
    """Whether the view behind `path` has a handler for `method` (HEAD is GET's)."""
    view_class = resolve(path).func.view_class  # type: ignore[attr-defined]
    return hasattr(view_class, "get" if method == "head" else method)


@pytest.mark.parametrize("kind", EVIL_KINDS)
@pytest.mark.parametrize("route", ROUTE_NAMES)
def test_foreign_tenant_route_is_indistinguishable_from_a_missing_one(
    acme: Acme, evil: dict[str, Any], route: str, kind: str
) -> None:
    client = evil_client(evil, kind)
    params = dict(tenant_routes())[route]
    kwargs = {p: acme.path_kwargs()[p] for p in params}
    before = snapshot(acme)
    audit_before = last_audit_id()
    failures = []
    for method in METHODS:
        body = ROUTE_BODIES[route].get(method)
        foreign = send(
            client, method, reverse(f"v1:{route}", kwargs={"tenant_slug": "acme", **kwargs}), body
        )
        missing = send(
            client,
            method,
            reverse(f"v1:{route}", kwargs={"tenant_slug": MISSING_SLUG, **kwargs}),
            body,
        )
        path = reverse(f"v1:{route}", kwargs={"tenant_slug": "acme", **kwargs})
        implemented = _implements(path, method)
        # A method the route does not implement is 405 for everyone (it depends on the route
        # only, so it says nothing about the tenant); every other method is the 404.
        expected = 404 if implemented else 405
        if foreign.status_code != expected:
            failures.append((method, foreign.status_code, foreign.content[:200]))
            continue
        if expected == 404 and method != "head" and json.loads(foreign.content) != TENANT_NOT_FOUND:
            failures.append((method, "body", foreign.content[:200]))
        if (foreign.status_code, foreign.content, sorted(foreign.headers.items())) != (
            missing.status_code,
            missing.content,
            sorted(missing.headers.items()),
        ):
            failures.append((method, "differs from a missing tenant", missing.content[:200]))
    assert not failures, failures
    assert snapshot(acme) == before
    assert new_audit_events(audit_before) == []


@pytest.mark.parametrize("kind", ["viewer", "admin_key_header"])
def test_other_credentials_get_the_missing_tenant_answer_on_every_route(
    acme: Acme, evil: dict[str, Any], kind: str
) -> None:
    client = evil_client(evil, kind)
    for route, params in tenant_routes():
        kwargs = {p: acme.path_kwargs()[p] for p in params}
        for method in ("get", "post"):
            path = reverse(f"v1:{route}", kwargs={"tenant_slug": "acme", **kwargs})
            response = send(client, method, path, ROUTE_BODIES[route].get(method))
            if not _implements(path, method):  # 405 for everyone, tenant or not
                assert response.status_code == 405, (route, method, response.content)
                continue
            assert response.status_code == 404, (route, method, response.content)
            assert json.loads(response.content) == TENANT_NOT_FOUND, (route, method)


@pytest.mark.parametrize("kind", ["user", "pat", "admin_key_bearer"])
def test_deleted_tenant_is_indistinguishable_from_a_missing_one(
    acme: Acme, evil: dict[str, Any], kind: str
) -> None:
    """Even its former owner gets the missing-tenant answer for a deleted tenant."""
    services.tenant_delete(actor=Actor(user=evil["owner"]), tenant=evil["tenant"])
    client = evil_client(evil, kind)
    if kind == "admin_key_bearer":
        # The tenant's keys died with it.
        assert_error(client.get(url("evil")), 401, "api_key_revoked")
        return
    for route, params in tenant_routes():
        kwargs = {p: acme.path_kwargs()[p] for p in params}
        path = reverse(f"v1:{route}", kwargs={"tenant_slug": "evil", **kwargs})
        deleted = client.get(path)
        missing = client.get(reverse(f"v1:{route}", kwargs={"tenant_slug": MISSING_SLUG, **kwargs}))
        assert deleted.status_code == (404 if _implements(path, "get") else 405), route
        assert deleted.content == missing.content, route


def test_read_only_key_of_another_tenant_gets_the_same_answer_everywhere(
    acme: Acme, other_tenant: Tenant
) -> None:
    """A key without the admin scope is refused before any tenant is looked up, so the 403 it
    gets cannot tell an existing tenant from a missing one."""
    _, secret = make_key(other_tenant, scopes=[Scope.READ])
    client = APIClient()
    client.credentials(**bearer(secret))
    foreign = client.get(url("acme", "/api-keys"))
    missing = client.get(url(MISSING_SLUG, "/api-keys"))
    own = client.get(url("evil", "/api-keys"))
    assert_error(foreign, 403, "insufficient_scope")
    assert foreign.content == missing.content == own.content


# --------------------------------------------------------------------------- foreign ids

# Routes with an object id, the parameter, and the methods that read or act on the object.
FOREIGN_ID_ROUTES: dict[str, tuple[str, dict[str, dict[str, Any] | None]]] = {
    "member": ("user_id", {"get": None, "patch": {"role": Role.VIEWER}, "delete": None}),
    "invitation": ("invitation_id", {"delete": None}),
    "api-key": ("key_id", {"get": None}),
    "api-key-revoke": ("key_id", {"post": None}),
    "api-key-rotate": ("key_id", {"post": {}}),
}
NOT_FOUND_MESSAGES = {
    "user_id": "The member was not found.",
    "invitation_id": "The invitation was not found.",
    "key_id": "The API key was not found.",
}


def test_every_object_route_is_in_the_foreign_id_table() -> None:
    with_ids = {name for name, params in tenant_routes() if params}
    assert with_ids == set(FOREIGN_ID_ROUTES)
    for name, params in tenant_routes():
        if params:
            assert [FOREIGN_ID_ROUTES[name][0]] == params


def _random_id(param: str) -> Any:
    return 2_000_000_000 if param == "user_id" else uuid.uuid4()


@pytest.mark.parametrize("kind", ["user", "pat", "admin_key_bearer", "admin_key_header"])
@pytest.mark.parametrize("route", sorted(FOREIGN_ID_ROUTES))
def test_foreign_ids_under_ones_own_slug_are_unknown(
    acme: Acme, evil: dict[str, Any], route: str, kind: str
) -> None:
    client = evil_client(evil, kind)
    param, methods = FOREIGN_ID_ROUTES[route]
    before = snapshot(acme)
    audit_before = last_audit_id()
    ids = {"user_id": acme.members[Role.ADMIN].pk, "key_id": acme.key.id}
    ids["invitation_id"] = acme.invitation.id
    for method, body in methods.items():
        foreign = send(
            client,
            method,
            reverse(f"v1:{route}", kwargs={"tenant_slug": "evil", param: ids[param]}),
            body,
        )
        unknown = send(
            client,
            method,
            reverse(f"v1:{route}", kwargs={"tenant_slug": "evil", param: _random_id(param)}),
            body,
        )
        error = assert_error(foreign, 404, "not_found")
        assert error["message"] == NOT_FOUND_MESSAGES[param], (method, error)
        assert foreign.content == unknown.content, method
    assert snapshot(acme) == before
    assert new_audit_events(audit_before) == []


def test_foreign_ids_do_not_leak_through_audit_filters(acme: Acme, evil: dict[str, Any]) -> None:
    client = evil_client(evil, "user")
    filters: list[dict[str, Any]] = [
        {"target_id": str(acme.key.id)},
        {"target_type": "api_key"},
        {"actor_user_id": acme.members[Role.OWNER].pk},
        {"actor_api_key_id": str(acme.admin_key.id)},
        {"action": "invitation."},
    ]
    for params in filters:
        response = client.get(url("evil", "/audit-events"), params)
        assert response.status_code == 200, response.content
        rows = response.json()["data"]
        assert all(r["target"]["id"] != str(acme.key.id) for r in rows), params
        assert all(r["actor"]["user_id"] != acme.members[Role.OWNER].pk for r in rows), params
    # And evil's own audit trail only has evil's events.
    response = client.get(url("evil", "/audit-events"), {"limit": 100})
    ids = {r["id"] for r in response.json()["data"]}
    with tenant_scope(evil["tenant"].id):
        assert ids == set(AuditEvent.objects.values_list("id", flat=True))


def test_a_member_of_both_tenants_sees_each_with_its_own_role(
    acme: Acme, evil: dict[str, Any]
) -> None:
    """Roles do not bleed across tenants: an acme viewer who owns another tenant stays a viewer
    in acme."""
    viewer = acme.members[Role.VIEWER]
    make_tenant(owner=viewer, name="Viewer's", slug="viewers-own")
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(url("viewers-own", "/audit-events")).status_code == 200
    assert_error(client.get(url("acme", "/audit-events")), 403, "permission_denied")
    assert client.get(url("acme")).json()["role"] == Role.VIEWER


# --------------------------------------------------------------------------- tenant listing


def walk(client: APIClient, path: str, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages = []
    cursor = None
    for _ in range(100):
        query = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        response = client.get(path, query)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"data", "next_cursor"}
        pages.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


@pytest.fixture
def busy_user(db: Any) -> tuple[Any, list[Tenant]]:
    user = UserFactory(email="busy@example.test")
    tenants = [make_tenant(owner=user, name=f"Busy {i}", slug=f"busy-{i:02d}") for i in range(45)]
    return user, tenants


@pytest.mark.parametrize("same_timestamp", [False, True], ids=["distinct", "tied"])
def test_tenant_list_pages_cover_everything_once(
    api: APIClient, busy_user: tuple[Any, list[Tenant]], other_tenant: Tenant, same_timestamp: bool
) -> None:
    user, tenants = busy_user
    if same_timestamp:  # the id tie-break must carry the walk
        Tenant.objects.filter(pk__in=[t.pk for t in tenants]).update(created_at=timezone.now())
    api.force_authenticate(user)
    pages = walk(api, url(None, "/tenants"), 20)
    assert [len(p) for p in pages] == [20, 20, 5]
    slugs = [t["slug"] for page in pages for t in page]
    assert len(slugs) == len(set(slugs)) == 45
    assert set(slugs) == {t.slug for t in tenants}
    assert all(t["role"] == Role.OWNER for page in pages for t in page)
    # Newest first.
    expected = list(
        Tenant.objects.filter(pk__in=[t.pk for t in tenants])
        .order_by("-created_at", "-id")
        .values_list("slug", flat=True)
    )
    assert slugs == expected


def test_tenant_list_exact_page_boundary(
    api: APIClient, busy_user: tuple[Any, list[Tenant]]
) -> None:
    user, _ = busy_user
    api.force_authenticate(user)
    assert [len(p) for p in walk(api, url(None, "/tenants"), 15)] == [15, 15, 15]
    assert [len(p) for p in walk(api, url(None, "/tenants"), 45)] == [45]
    assert [len(p) for p in walk(api, url(None, "/tenants"), 100)] == [45]


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-5", ""])
def test_tenant_list_bad_limit(api: APIClient, owner: Any, tenant: Tenant, limit: str) -> None:
    api.force_authenticate(owner)
    response = api.get(url(None, "/tenants"), {"limit": limit})
    assert_error(response, 400, "validation_error")  # `limit=` (empty) too: not "absent"


def test_operator_all_sees_every_tenant(
    api: APIClient, operator: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    gone = make_tenant(name="Gone", slug="gone")
    services.tenant_delete(actor=Actor(user=operator), tenant=gone)
    api.force_authenticate(operator)
    every = {t["slug"] for p in walk(api, url(None, "/tenants"), 2, all="true") for t in p}
    assert every == set(Tenant.objects.values_list("slug", flat=True)) >= {"acme", "evil", "gone"}
    # Without all=true an operator lists only the tenants it belongs to (none).
    assert api.get(url(None, "/tenants")).json()["data"] == []


@pytest.mark.parametrize("flag", ["true", "1"])
def test_normal_user_all_sees_only_their_tenants(
    api: APIClient, owner: Any, tenant: Tenant, other_tenant: Tenant, flag: str
) -> None:
    make_tenant(owner=owner, name="Second", slug="second")
    api.force_authenticate(owner)
    mine = {t["slug"] for t in api.get(url(None, "/tenants"), {"all": flag}).json()["data"]}
    assert mine == {"acme", "second"}


def test_tenant_list_excludes_deleted_and_left_tenants(
    api: APIClient, owner: Any, tenant: Tenant, members: dict[str, Any]
) -> None:
    second = make_tenant(owner=owner, name="Second", slug="second")
    services.tenant_delete(actor=Actor(user=owner), tenant=second)
    api.force_authenticate(owner)
    assert [t["slug"] for t in api.get(url(None, "/tenants")).json()["data"]] == ["acme"]
    viewer = members[Role.VIEWER]
    api.force_authenticate(viewer)
    assert [t["role"] for t in api.get(url(None, "/tenants")).json()["data"]] == [Role.VIEWER]
    api.delete(url("acme", f"/members/{viewer.pk}"))
    assert api.get(url(None, "/tenants")).json()["data"] == []


def test_key_lists_only_its_own_tenant(
    api: APIClient, tenant: Tenant, other_tenant: Tenant, admin_key: str
) -> None:
    api.credentials(**bearer(admin_key))
    for flag in ("false", "true"):
        data = api.get(url(None, "/tenants"), {"all": flag}).json()["data"]
        assert [(t["slug"], t["role"]) for t in data] == [("acme", Role.ADMIN)]
    # A key cannot create tenants.
    response = api.post(url(None, "/tenants"), {"name": "By key"}, format="json")
    assert_error(response, 403, "permission_denied")


def test_tenant_list_cursor_is_not_a_way_around_membership(
    api: APIClient, owner: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A cursor only positions the walk; it never widens the set."""
    make_tenant(owner=owner, name="Second", slug="second")
    api.force_authenticate(owner)
    first = api.get(url(None, "/tenants"), {"limit": 1}).json()
    rest = api.get(url(None, "/tenants"), {"limit": 100, "cursor": first["next_cursor"]}).json()
    slugs = {t["slug"] for t in first["data"] + rest["data"]}
    assert slugs == {"acme", "second"}


def test_tenant_list_cursor_far_in_the_future_includes_everything_once(
    api: APIClient, owner: Any, tenant: Tenant
) -> None:
    import base64

    future = (timezone.now() + timedelta(days=1)).isoformat()
    cursor = (
        base64.urlsafe_b64encode(json.dumps([future, str(uuid.uuid4())]).encode())
        .decode()
        .rstrip("=")
    )
    api.force_authenticate(owner)
    data = api.get(url(None, "/tenants"), {"cursor": cursor}).json()["data"]
    assert [t["slug"] for t in data] == ["acme"]
