"""The base requests of the generated-input tests: for every operation of both APIs, a valid
request (it must answer 2xx), built against real resources of the platform under test.

`World` makes what the requests need, through the services, once per test module (tenants,
keys, tokens, indexes, a member, a cluster row); operations that destroy or change what they act
on (delete a tenant, revoke a key, suspend, rotate...) get a fresh resource for every case, so
each case stands alone. `DryWorld` answers the same questions with placeholders, without a
database, so that the cases can be enumerated when pytest collects them (the shape of a base
request never depends on the values).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import httpx
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from gateway.tests.conftest import GATEWAY_DOMAIN, Gateway, Platform, TenantCtx, unique
from provisioning import steps
from provisioning.models import Cluster, ClusterStatus, EvaluationStatus, IndexEvaluation
from provisioning.services import clusters as cluster_services
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import Role, Scope
from tenants.scoping import tenant_scope
from tenants.tests.factories import UserFactory, add_member

NO_BODY = object()
PASSWORD = "correct horse battery staple 42"
FUTURE = "2099-01-01T00:00:00Z"


@dataclass
class Req:
    """A base request: path parameters, query parameters (in order), body, credentials."""

    path: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    body: Any = NO_BODY
    headers: dict[str, str] = field(default_factory=dict)
    session: bool = False  # sent with the world's signed-in session (cookie + CSRF header)


@dataclass(frozen=True)
class Base:
    """How to make a valid request of one operation. `meaning`: for a schema-valid value of a
    field (by dotted name, list positions as `[]`; a prefix covers what is under it), the error
    codes that are its documented meaning here (an unknown plan slug is `unknown_plan`)."""

    operation_id: str
    build: Callable[[World, str], Req]
    variant: str = ""
    meaning: dict[str, frozenset[str]] = field(default_factory=dict)
    # Codes every valid request of the operation answers in this world because a part it needs
    # is absent (no Stripe: `billing_disabled`), documented refusals rather than successes.
    absent: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return self.operation_id + (f"[{self.variant}]" if self.variant else "")

    def meaning_of(self, name: str) -> frozenset[str]:
        codes: set[str] = set()
        for prefix, found in self.meaning.items():
            if name == prefix or name.startswith(prefix + ".") or name.startswith(prefix + "["):
                codes |= found
        return frozenset(codes)


def _low_cost_password(password: str) -> str:
    """A PBKDF2 hash the control plane (default hashers) verifies, with few iterations."""
    return PBKDF2PasswordHasher().encode(password, uuid.uuid4().hex[:12], iterations=1000)


# ============================================================================ worlds


class World:
    """Resources of the platform under test, made through the services."""

    def __init__(self, platform: Platform, control_plane: str, gateway: Gateway) -> None:
        self.platform = platform
        self.control_plane = control_plane
        self.gateway = gateway
        self.operator = platform.operator
        self.operator.set_password(PASSWORD)
        self.operator.password = _low_cost_password(PASSWORD)
        self.operator.save()
        self.actor = Actor(user=self.operator)
        _token, self.pat = tenant_services.personal_token_create(actor=self.actor, name="fuzz")
        tenant_services.personal_token_create(actor=self.actor, name="fuzz-2")
        self.t = platform.tenant()
        self.t.limits(max_indexes=100_000)
        self.key = self.t.key(scopes=[Scope.READ, Scope.WRITE, Scope.ADMIN], name="admin")
        self.t.key(name="second")
        self.key_id = str(next(iter(self.t.keys.values())).id)
        self.member = add_member(self.t.tenant, UserFactory(email=f"{unique('m')}@example.test"))
        self.index = self.t.index(unique("ix"))
        self.t.index(unique("ix"))
        # An index with two (finished) evaluations: one to get, and a list with a cursor.
        evaluated = self.t.index(unique("ev"))
        self.evaluated_index = evaluated.name
        with tenant_scope(self.t.tenant.id):
            made = [IndexEvaluation.objects.create(
                tenant=self.t.tenant, index=evaluated, status=EvaluationStatus.FAILED,
                params={"mode": "sample", "sample": 10, "top_k": 10, "ef_search": [40],
                        "namespace": "", "filter": None},
                error="no stored vector to sample",
            ) for _ in range(2)]  # fmt: skip
        self.evaluation_id = str(made[0].id)
        self.cluster = self._cluster(self.t)
        with tenant_scope(self.t.tenant.id):  # a second event, so its history has a cursor
            assert steps.transition(self.cluster.id, ClusterStatus.PROVISIONING)
        self._cluster(self.t)
        for _ in range(2):
            tenant_services.invitation_create(
                actor=self.actor, tenant=self.t.tenant,
                email=f"{unique('inv')}@example.test", role=Role.MEMBER,
            )  # fmt: skip
        # Tenants that operations change in place, each its own (an operation that only
        # replaces what it sets, so every case of it answers the same).
        self.side = {name: platform.tenant().slug for name in ("limits", "plan", "suspend")}
        self._cursors: dict[str, str] = {}
        self._session: httpx.Client | None = None
        self._csrf = ""
        self._dedicated: str | None = None
        # The data plane: a dotproduct index with a text field (sparse and full-text queries
        # apply), seeded in two namespaces.
        self.g = platform.tenant()
        self.gindex = self.g.index(unique("gx"), metric="dotproduct", text_field=True)
        self.gindex_name = self.gindex.name
        # A cosine index, where a query vector of zeros must still be answered.
        self.gcosine_name = self.g.index(unique("gc"), metric="cosine").name
        self.gkey = self.g.key(scopes=[Scope.READ, Scope.WRITE])
        for namespace in ("", "ns"):
            self.seeded(namespace)
        self.seeded("ns", self.gcosine_name)

    def seeded(self, namespace: str, index: str | None = None) -> str:
        """`namespace`, holding the two records `a` and `b` of the data plane's index."""
        seed = [{"id": i, "values": [0.5, 1, 2],
                 "metadata": {"genre": "drama", "year": 2021, "tags": ["a", "b"]}}
                for i in ("a", "b")]  # fmt: skip
        if index is None:
            index = self.gindex_name
            for record in seed:
                record["text"] = "hello world"
        self.gateway.upsert(index, self.gkey, seed, namespace=namespace)
        return namespace

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    # -- credentials --------------------------------------------------------------------

    def bearer(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def operator_auth(self) -> dict[str, str]:
        return self.bearer(self.pat)

    def key_auth(self) -> dict[str, str]:
        return {"Api-Key": self.key}

    def gateway_auth(self) -> dict[str, str]:
        return {"Api-Key": self.gkey}

    def gateway_host(self, index: str | None = None) -> str:
        return f"{index or self.gindex_name}-{self.g.slug}.{GATEWAY_DOMAIN}"

    def session(self) -> tuple[httpx.Client, str]:
        """A signed-in session of the operator, and its CSRF token."""
        if self._session is None:
            client = httpx.Client(base_url=self.control_plane, timeout=30)
            response = client.post(
                "/api/v1/auth/login", json={"email": self.operator.email, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self._csrf = client.get("/api/v1/auth/csrf").json()["csrf_token"]
            self._session = client
        return self._session, self._csrf

    # -- names of what exists -----------------------------------------------------------

    @property
    def slug(self) -> str:
        return self.t.slug

    @property
    def index_name(self) -> str:
        return self.index.name

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    @property
    def member_id(self) -> str:
        return str(self.member.pk)

    @property
    def operator_id(self) -> str:
        return str(self.operator.pk)

    @property
    def login_email(self) -> str:
        return str(self.operator.email)

    def cursor(self, path: str) -> str:
        """A cursor the list at `path` issued (its first page of one)."""
        if path not in self._cursors:
            with httpx.Client(base_url=self.control_plane, timeout=30) as client:
                page = client.get(path, params={"limit": 1}, headers=self.operator_auth())
            assert page.status_code == 200, page.text
            cursor = page.json()["next_cursor"]
            assert cursor, f"{path} has a single row: no cursor to mutate"
            self._cursors[path] = cursor
        return self._cursors[path]

    def usage_cursor(self) -> str:
        from controlplane.api.pagination import encode_cursor

        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        return encode_cursor([hour, 1])

    def dedicated_cluster(self) -> str:
        """A ready dedicated Qdrant cluster of the tenant (the session's pool)."""
        if self._dedicated is None:
            self.t.target = "qdrant"
            try:
                self._dedicated = self.t.dedicated().name
            finally:
                self.t.target = "shared"
        return self._dedicated

    # -- fresh resources (one per case) -------------------------------------------------

    def fresh_tenant(self, plan: str = "enterprise") -> TenantCtx:
        return self.platform.tenant(plan)

    def fresh_slug(self) -> str:
        return self.fresh_tenant().slug

    def fresh_suspended_slug(self) -> str:
        t = self.fresh_tenant()
        tenant_services.tenant_suspend(actor=self.actor, tenant=t.tenant, reason="fuzz")
        return t.slug

    def fresh_key_id(self) -> str:
        secret = self.t.key(name="fresh")
        return str(self.t.keys[secret].id)

    def fresh_token_id(self) -> str:
        token, _secret = tenant_services.personal_token_create(actor=self.actor, name="fresh")
        return str(token.id)

    def fresh_index_name(self) -> str:
        return self.t.index(unique("ix")).name

    def fresh_member_id(self) -> str:
        user = add_member(self.t.tenant, UserFactory(email=f"{unique('m')}@example.test"))
        return str(user.pk)

    def fresh_invitation_id(self) -> str:
        invitation, _token = tenant_services.invitation_create(
            actor=self.actor, tenant=self.t.tenant,
            email=f"{unique('inv')}@example.test", role=Role.MEMBER,
        )  # fmt: skip
        return str(invitation.id)

    def fresh_invitation(self) -> tuple[str, dict[str, str]]:
        """An invitation's token, and the credentials of the invited user."""
        user: Any = UserFactory(email=f"{unique('invited')}@example.test")
        _pat, secret = tenant_services.personal_token_create(actor=Actor(user=user), name="x")
        _invitation, token = tenant_services.invitation_create(
            actor=self.actor, tenant=self.t.tenant, email=user.email, role=Role.MEMBER
        )
        return token, self.bearer(secret)

    def fresh_cluster(self) -> tuple[str, str]:
        """A new tenant's cluster (a tenant has at most 20): its tenant slug and name."""
        t = self.fresh_tenant()
        return t.slug, self._cluster(t).name

    def _cluster(self, t: TenantCtx) -> Cluster:
        """A cluster as just ordered (`pending`): made by the service with no task queued, so
        no server is started."""
        with mock.patch.object(cluster_services, "_enqueue"):
            return cluster_services.cluster_create(
                actor=self.actor, tenant=t.tenant, name=unique("c"), engine="qdrant", size="xs"
            )


class DryWorld(World):
    """The same questions answered with placeholders, without a database (collection time)."""

    def __init__(self) -> None:
        self.pat = self.key = self.gkey = "vpk_placeholder_placeholder"
        self._csrf = "csrf"
        self.gindex_name = self.gcosine_name = "placeholder"

    def gateway_host(self, index: str | None = None) -> str:
        return "host.example.test"

    def session(self) -> tuple[httpx.Client, str]:
        raise AssertionError("no session at collection time")

    slug = index_name = cluster_name = evaluated_index = "placeholder"
    member_id = operator_id = "1"
    evaluation_id = "00000000-0000-0000-0000-000000000000"
    login_email = "placeholder@example.test"

    def cursor(self, path: str) -> str:
        return "cursor"

    def usage_cursor(self) -> str:
        return "cursor"

    def dedicated_cluster(self) -> str:
        return "placeholder"

    def fresh_slug(self) -> str:
        return "placeholder"

    side = {"limits": "placeholder", "plan": "placeholder", "suspend": "placeholder"}

    fresh_suspended_slug = fresh_index_name = fresh_slug

    def fresh_cluster(self) -> tuple[str, str]:
        return "placeholder", "placeholder"

    def fresh_key_id(self) -> str:
        return str(uuid.UUID(int=1))

    fresh_token_id = fresh_invitation_id = fresh_key_id

    def fresh_member_id(self) -> str:
        return "1"

    def seeded(self, namespace: str, index: str | None = None) -> str:
        return namespace

    def fresh_invitation(self) -> tuple[str, dict[str, str]]:
        return "vpi_placeholder", {}

    @property
    def key_id(self) -> str:  # type: ignore[override]
        return str(uuid.UUID(int=1))


# ============================================================================ management API


T = "/api/v1/tenants/{}"
TOKENS = "/api/v1/personal-access-tokens"
_NOT_FOUND = frozenset({"not_found"})


def _ago(delta: timedelta) -> str:
    """An ISO 8601 instant `delta` before now (UTC)."""
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _m(operation_id: str, build: Callable[[World, str], Req], variant: str = "",
       **meaning: set[str]) -> Base:  # fmt: skip
    return Base(operation_id, build, variant, {k: frozenset(v) for k, v in meaning.items()})


def _absent(base: Base, *codes: str) -> Base:
    """`base`, answering `codes` in this world (Base.absent)."""
    return replace(base, absent=frozenset(codes))


def _list(path: Callable[[World], str]) -> Callable[[World, str], Req]:
    def build(w: World, uniq: str) -> Req:
        return Req(
            path={"tenant_slug": w.slug},
            query=[("limit", "5"), ("cursor", w.cursor(path(w)))],
            headers=w.operator_auth(),
        )

    return build


def _accept(w: World, uniq: str) -> Req:
    token, auth = w.fresh_invitation()
    return Req(body={"token": token}, headers=auth)


def _tenant_get(w: World, uniq: str) -> Req:
    return Req(path={"tenant_slug": w.slug}, headers=w.operator_auth())


MANAGEMENT: list[Base] = [
    _m("auth_csrf", lambda w, u: Req()),
    _m("auth_login",
       lambda w, u: Req(body={"email": w.login_email, "password": PASSWORD}),
       email={"invalid_credentials"}, password={"invalid_credentials"}),
    _m("auth_logout", lambda w, u: Req(headers=w.operator_auth())),
    _m("auth_me", lambda w, u: Req(headers=w.operator_auth())),
    _m("auth_signup",
       lambda w, u: Req(body={"email": f"{u}@example.test", "password": PASSWORD,
                              "name": "Fuzz"}),
       password={"validation_error"}),  # a weak password (Django's validators)
    _m("invitations_accept", _accept, token={"invitation_invalid"}),
    _m("personal_tokens_list",
       lambda w, u: Req(query=[("limit", "1"), ("cursor", w.cursor(TOKENS))],
                        headers=w.operator_auth())),
    _m("personal_tokens_list",
       lambda w, u: Req(query=[("limit", "1"), ("cursor", w.cursor(TOKENS))],
                        headers=w.key_auth()),
       variant="api-key"),
    _m("personal_tokens_create",
       lambda w, u: Req(body={"name": "fuzz", "expires_at": FUTURE}, session=True)),
    _m("personal_tokens_revoke",
       lambda w, u: Req(path={"token_id": w.fresh_token_id()}, headers=w.operator_auth())),
    _m("plans_list", lambda w, u: Req(headers=w.operator_auth())),
    _m("tenants_list",
       lambda w, u: Req(query=[("all", "true"), ("limit", "5"),
                               ("cursor", w.cursor("/api/v1/tenants"))],
                        headers=w.operator_auth())),
    _m("tenants_create",
       lambda w, u: Req(body={"name": "Fuzz", "slug": u, "plan": "free"},
                        headers=w.operator_auth()),
       slug={"invalid_slug", "slug_taken"}, plan={"unknown_plan"}),
    _m("tenants_retrieve", _tenant_get),
    _m("tenants_update",
       lambda w, u: Req(path={"tenant_slug": w.slug}, body={"name": "Fuzz renamed"},
                        headers=w.operator_auth())),
    _m("tenants_destroy",
       lambda w, u: Req(path={"tenant_slug": w.fresh_slug()}, headers=w.operator_auth())),
    _m("api_keys_list", _list(lambda w: T.format(w.slug) + "/api-keys")),
    _m("api_keys_create",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        body={"name": "fuzz", "scopes": ["read", "write"],
                              "index_names": [w.index_name], "namespaces": ["ns"],
                              "row_filter": {"user": {"$eq": "u1"}, "level": {"$gte": 2}},
                              "id_prefix": "u1#", "expires_at": FUTURE},
                        headers=w.operator_auth()),
       # Without an id_prefix a row-bound write key is refused (README, "Keys bound to rows").
       row_filter={"invalid_filter"}, id_prefix={"validation_error"}),
    _m("api_keys_retrieve",
       lambda w, u: Req(path={"tenant_slug": w.slug, "key_id": w.key_id},
                        headers=w.operator_auth())),
    _m("api_keys_revoke",
       lambda w, u: Req(path={"tenant_slug": w.slug, "key_id": w.fresh_key_id()},
                        headers=w.operator_auth())),
    _m("api_keys_rotate",
       lambda w, u: Req(path={"tenant_slug": w.slug, "key_id": w.fresh_key_id()},
                        body={"grace_seconds": 60}, headers=w.operator_auth())),
    _m("audit_events_list",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        query=[("limit", "5"),
                               ("cursor", w.cursor(T.format(w.slug) + "/audit-events")),
                               ("action", "api_key."), ("actor_user_id", w.operator_id),
                               ("actor_api_key_id", w.key_id), ("target_type", "api_key"),
                               ("target_id", w.key_id), ("since", "2020-01-01T00:00:00Z"),
                               ("until", FUTURE)],
                        headers=w.operator_auth())),
    _m("cluster_sizes_list", _tenant_get),
    _m("clusters_list", _list(lambda w: T.format(w.slug) + "/clusters")),
    _m("clusters_create",
       lambda w, u: Req(path={"tenant_slug": w.fresh_slug()},
                        body={"name": u, "engine": "qdrant", "size": "xs", "replicas": 1},
                        headers=w.operator_auth()),
       replicas={"plan_limit"}),
    _m("clusters_retrieve",
       lambda w, u: Req(path={"tenant_slug": w.slug, "cluster_name": w.cluster_name},
                        headers=w.operator_auth())),
    _m("cluster_events_list",
       lambda w, u: Req(path={"tenant_slug": w.slug, "cluster_name": w.cluster_name},
                        query=[("limit", "5"), ("cursor", w.cursor(
                            f"/api/v1/tenants/{w.slug}/clusters/{w.cluster_name}/events"))],
                        headers=w.operator_auth())),
    _m("clusters_resize",
       lambda w, u: Req(path=dict(zip(("tenant_slug", "cluster_name"), w.fresh_cluster(),
                                      strict=True)),
                        body={"size": "s", "replicas": 2}, headers=w.operator_auth()),
       replicas={"plan_limit"}),
    _m("clusters_destroy",
       lambda w, u: Req(path=dict(zip(("tenant_slug", "cluster_name"), w.fresh_cluster(),
                                      strict=True)),
                        headers=w.operator_auth())),
    _m("indexes_list", _list(lambda w: T.format(w.slug) + "/indexes")),
    _m("indexes_create",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        body={"name": u, "dimension": 3, "metric": "cosine", "engine": "pgvector",
                              "tier": "shared", "hnsw_m": 16, "hnsw_ef_construction": 64,
                              "ef_search": 100, "text_field": False,
                              "deletion_protection": False, "tags": {"team": "search"},
                              "cloud": "aws", "region": "us-east-1"},
                        headers=w.operator_auth()),
       dimension={"dimension_too_large"}),
    _m("indexes_create",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        body={"name": u, "dimension": 3, "tier": "dedicated", "engine": "qdrant",
                              "cluster": w.dedicated_cluster()},
                        headers=w.operator_auth()),
       variant="dedicated", cluster={"not_found"}),
    _m("indexes_retrieve",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.index_name},
                        headers=w.operator_auth())),
    _m("indexes_configure",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.index_name},
                        body={"ef_search": 50, "deletion_protection": False,
                              "tags": {"team": "fuzz"}, "target_recall": 0.95},
                        headers=w.operator_auth())),
    _m("indexes_latency",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.index_name},
                        query=[("since", _ago(timedelta(days=1))), ("until", _ago(timedelta(0)))],
                        headers=w.operator_auth())),
    _m("indexes_playground_key",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.index_name},
                        headers=w.operator_auth())),
    # Each on a fresh index (one evaluation at a time per index); queued, never run here.
    _m("indexes_evaluate",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.fresh_index_name()},
                        body={"sample": 10, "top_k": 5, "ef_search": [10, 40],
                              "namespace": "ns", "filter": {"genre": {"$eq": "drama"}}},
                        headers=w.operator_auth()),
       filter={"invalid_filter"}),
    _m("indexes_evaluate",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.fresh_index_name()},
                        body={"queries": [[0.5, 1, 2]], "ef_search": [40]},
                        headers=w.operator_auth()),
       "queries", queries={"dimension_mismatch", "invalid_value"}),
    _m("indexes_evaluations_list",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.evaluated_index},
                        query=[("limit", "5"), ("cursor", w.cursor(
                            f"/api/v1/tenants/{w.slug}/indexes/{w.evaluated_index}/evaluations"))],
                        headers=w.operator_auth())),
    _m("indexes_evaluations_retrieve",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.evaluated_index,
                              "evaluation_id": w.evaluation_id},
                        headers=w.operator_auth())),
    _m("indexes_destroy",
       lambda w, u: Req(path={"tenant_slug": w.slug, "index_name": w.fresh_index_name()},
                        headers=w.operator_auth())),
    _m("invitations_list", _list(lambda w: T.format(w.slug) + "/invitations")),
    _m("invitations_create",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        body={"email": f"{u}@example.test", "role": "member"},
                        headers=w.operator_auth())),
    _m("invitations_revoke",
       lambda w, u: Req(path={"tenant_slug": w.slug, "invitation_id": w.fresh_invitation_id()},
                        headers=w.operator_auth())),
    _m("tenants_limits_retrieve", _tenant_get),
    _m("tenants_limits_override",
       lambda w, u: Req(path={"tenant_slug": w.side["limits"]},
                        body={"max_indexes": 10, "max_vectors": 1000, "max_storage_bytes": 10**9,
                              "max_qps": 100, "max_dimension": 1000, "max_upsert_batch": 100,
                              "max_metadata_bytes": 1024, "allowed_tiers": ["shared"],
                              "allowed_engines": ["pgvector"], "reason": "fuzz"},
                        headers=w.operator_auth())),
    _m("members_list", _list(lambda w: T.format(w.slug) + "/members")),
    _m("members_retrieve",
       lambda w, u: Req(path={"tenant_slug": w.slug, "user_id": w.member_id},
                        headers=w.operator_auth())),
    _m("members_update",
       lambda w, u: Req(path={"tenant_slug": w.slug, "user_id": w.member_id},
                        body={"role": "member"}, headers=w.operator_auth())),
    _m("members_destroy",
       lambda w, u: Req(path={"tenant_slug": w.slug, "user_id": w.fresh_member_id()},
                        headers=w.operator_auth())),
    _m("tenants_plan_change",
       lambda w, u: Req(path={"tenant_slug": w.side["plan"]}, body={"plan": "pro"},
                        headers=w.operator_auth()),
       plan={"unknown_plan"}),
    _m("tenants_reactivate",
       lambda w, u: Req(path={"tenant_slug": w.fresh_suspended_slug()},
                        headers=w.operator_auth())),
    _m("tenants_suspend",
       lambda w, u: Req(path={"tenant_slug": w.side["suspend"]}, body={"reason": "fuzz"},
                        headers=w.operator_auth())),
    _m("usage_list",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        query=[("limit", "5"), ("cursor", w.usage_cursor()),
                               ("since", "2020-01-01T00:00:00Z"), ("until", FUTURE),
                               ("index", w.index_name)],
                        headers=w.operator_auth()),
       cursor={"invalid_cursor"}),
    _m("usage_stored_vectors",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        query=[("index", w.index_name), ("largest", "5")],
                        headers=w.operator_auth())),
    _m("usage_stored_vectors_history",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        query=[("limit", "5"), ("cursor", w.usage_cursor()),
                               ("since", "2020-01-01T00:00:00Z"), ("until", FUTURE),
                               ("index", w.index_name)],
                        headers=w.operator_auth()),
       cursor={"invalid_cursor"}),
    _m("usage_errors",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        query=[("limit", "5"), ("cursor", w.usage_cursor()),
                               ("since", "2020-01-01T00:00:00Z"), ("until", FUTURE),
                               ("index", w.index_name), ("code", "not_found")],
                        headers=w.operator_auth()),
       cursor={"invalid_cursor"}),
    _m("usage_summary",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        query=[("since", "2026-01-01T00:00:00Z"),
                               ("until", "2026-01-31T00:00:00Z")],
                        headers=w.operator_auth())),
    _m("operator_tenants_list",
       lambda w, u: Req(query=[("limit", "5"), ("cursor", w.cursor("/api/v1/operator/tenants")),
                               ("status", "active"), ("q", w.slug)],
                        headers=w.operator_auth())),
    _m("operator_clusters_list",
       lambda w, u: Req(query=[("limit", "5"), ("cursor", w.cursor("/api/v1/operator/clusters")),
                               ("status", "pending")],
                        headers=w.operator_auth())),
    _m("operator_health", lambda w, u: Req(headers=w.operator_auth())),
    _m("billing_retrieve", _tenant_get),
    _m("billing_update",
       lambda w, u: Req(path={"tenant_slug": w.slug},
                        body={"billing_email": f"{u}@example.test", "address_line1": "1 Main St",
                              "address_line2": "", "address_city": "Berlin",
                              "address_postal_code": "10115", "address_state": "",
                              "address_country": "DE", "spend_alert_cents": 5000},
                        headers=w.operator_auth())),
    # The world runs without Stripe: Checkout and the Portal answer the documented
    # `409 billing_disabled` (billing/tests drive them against localstripe and Stripe's
    # reference).
    _absent(_m("billing_checkout",
               lambda w, u: Req(path={"tenant_slug": w.slug}, body={"plan": "starter"},
                                headers=w.operator_auth())), "billing_disabled"),
    _absent(_m("billing_portal", _tenant_get), "billing_disabled"),
    # No STRIPE_WEBHOOK_SECRET either: the webhook is off (billing/tests sign real events).
    _absent(_m("billing_stripe_webhook",
               lambda w, u: Req(body={"id": f"evt_{u}", "object": "event", "type": "invoice.paid",
                                      "created": 1, "livemode": False,
                                      "data": {"object": {"id": "in_1"}}},
                                headers={"Stripe-Signature": "t=1,v1=00"})),
            "billing_disabled"),
    _m("billing_invoices", _tenant_get),
    _m("billing_usage", _tenant_get),
    _m("pinecone_indexes_list", lambda w, u: Req(headers=w.key_auth())),
    _m("pinecone_indexes_create",
       lambda w, u: Req(body={"name": u, "dimension": 3, "metric": "cosine",
                              "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
                              "deletion_protection": "disabled", "tags": {"team": "search"},
                              "vector_type": "dense"},
                        headers=w.key_auth()),
       dimension={"dimension_too_large"}),
    _m("pinecone_indexes_create",
       lambda w, u: Req(body={"name": u,
                              "schema": {"fields": {"_values": {"type": "dense_vector",
                                                                "dimension": 3,
                                                                "metric": "dotproduct"}}},
                              "deployment": {"deployment_type": "managed", "cloud": "aws",
                                             "region": "us-east-1"},
                              "read_capacity": {"mode": "OnDemand"},
                              "deletion_protection": "disabled", "tags": {"team": "search"}},
                        headers=w.key_auth()),
       variant="2026", **{"schema": {"dimension_too_large"}}),
    _m("pinecone_indexes_create",
       lambda w, u: Req(body={"name": u, "dimension": 3,
                              "spec": {"byoc": {"environment": w.dedicated_cluster()}}},
                        headers=w.key_auth()),
       variant="byoc", spec={"not_found"}),
    _m("pinecone_indexes_describe",
       lambda w, u: Req(path={"index_name": w.index_name}, headers=w.key_auth())),
    _m("pinecone_indexes_configure",
       lambda w, u: Req(path={"index_name": w.index_name},
                        body={"deletion_protection": "disabled", "tags": {"team": "fuzz"},
                              "read_capacity": {"mode": "OnDemand"}},
                        headers=w.key_auth())),
    _m("pinecone_indexes_delete",
       lambda w, u: Req(path={"index_name": w.fresh_index_name()}, headers=w.key_auth())),
]  # fmt: skip


# ============================================================================ data plane


def _gw(operation_id: str, build: Callable[[World, str], dict[str, Any] | list[tuple[str, str]]],
        variant: str = "", *, get: bool = False, cosine: bool = False,
        **meaning: set[str]) -> list[Base]:  # fmt: skip
    """The same base request in the path form and in the host form. Writes go to a namespace
    of their own (`w-{uniq}`), so that what one case wrote never changes another's answer."""

    def path_form(w: World, uniq: str) -> Req:
        made = build(w, uniq)
        index = w.gcosine_name if cosine else w.gindex_name
        if get:
            assert isinstance(made, list)
            return Req(path={"index": index}, query=made, headers=w.gateway_auth())
        return Req(path={"index": index}, body=made, headers=w.gateway_auth())

    def host_form(w: World, uniq: str) -> Req:
        req = path_form(w, uniq)
        req.path = {}
        host = w.gateway_host(w.gcosine_name if cosine else None)
        req.headers = {**req.headers, "Host": host}
        return req

    codes = {k: frozenset(v) for k, v in meaning.items()}
    return [Base(operation_id, path_form, variant, codes),
            Base(operation_id + "_host", host_form, variant, codes)]  # fmt: skip


def _stored(uniq: str) -> dict[str, Any]:
    return {"id": f"v-{uniq}", "values": [0.5, 1, 2],
            "sparseValues": {"indices": [1, 5], "values": [0.5, 0.25]},
            "metadata": {"genre": "drama", "year": 2021, "score": 0.5, "tags": ["a", "b"],
                         "draft": False},
            "text": "the quick brown fox"}  # fmt: skip


_FILTER = {"genre": {"$eq": "drama"}, "year": {"$gte": 2020}, "tags": {"$in": ["a", "b"]}}

GATEWAY: list[Base] = [
    *_gw("upsert", lambda w, u: {"vectors": [_stored(u)], "namespace": f"w-{u}"}),
    *_gw("query", lambda w, u: {"vector": [0.5, 1, 2], "topK": 5, "filter": _FILTER,
                                "namespace": "ns", "includeValues": True,
                                "includeMetadata": True,
                                "sparseVector": {"indices": [1, 5], "values": [0.5, 0.25]},
                                "text": "hello", "efSearch": 40}),
    *_gw("query", lambda w, u: {"vector": [0.5, 1, 2], "topK": 3, "filter": {"genre": "drama"},
                                "namespace": "ns"}, "cosine", cosine=True),
    *_gw("query", lambda w, u: {"id": "a", "topK": 3, "namespace": "ns"}, "by-id",
         id={"not_found"}, namespace={"not_found"}),
    *_gw("fetch", lambda w, u: [("ids", "a"), ("ids", "b"), ("namespace", "ns")], get=True),
    *_gw("fetch_post", lambda w, u: {"ids": ["a", "b"], "namespace": "ns"}),
    *_gw("update", lambda w, u: {"id": "a", "values": [0.5, 1, 2],
                                 "sparseValues": {"indices": [1, 5], "values": [0.5, 0.25]},
                                 "setMetadata": {"genre": "drama", "year": 2021, "note": "x",
                                                 "tags": ["a"], "draft": False},
                                 "namespace": w.seeded(f"w-{u}")},
         id={"not_found"}, namespace={"not_found"}),
    *_gw("delete", lambda w, u: {"ids": ["a"], "namespace": w.seeded(f"w-{u}")}, "ids"),
    *_gw("delete", lambda w, u: {"filter": _FILTER, "namespace": w.seeded(f"w-{u}")},
         "filter"),
    *_gw("delete", lambda w, u: {"deleteAll": True, "namespace": w.seeded(f"w-{u}")}, "all"),
    *_gw("list_vectors", lambda w, u: [("prefix", "a"), ("limit", "10"),
                                       ("paginationToken", "YQ"), ("namespace", "ns")],
         get=True, paginationToken={"invalid_cursor"}),
    *_gw("describe_index_stats", lambda w, u: {"filter": _FILTER}),
    *_gw("describe_index_stats_get", lambda w, u: [], get=True),
    Base("healthz", lambda w, u: Req()),
    Base("readyz", lambda w, u: Req()),
    Base("metrics", lambda w, u: Req()),
    Base("openapi_yaml", lambda w, u: Req()),
    Base("openapi_json", lambda w, u: Req()),
]  # fmt: skip


def bases(api: str) -> list[Base]:
    return MANAGEMENT if api == "management" else GATEWAY
