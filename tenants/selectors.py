"""Reads. Cross-tenant reads are named for what they are for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from controlplane.errors import NotFoundError

from .actors import Actor
from .models import (
    LIMIT_FIELDS,
    ROLE_RANK,
    ApiKey,
    AuditEvent,
    Membership,
    PersonalAccessToken,
    Plan,
    Role,
    Scope,
    Tenant,
    TenantLimitOverride,
    TenantStatus,
)
from .scoping import tenant_scope


def actor_role(*, actor: Actor, tenant: Tenant) -> str | None:
    """The actor's effective role in `tenant`, or None when it has no access at all.

    An admin-scoped API key acts as an admin of its own tenant only. Platform operators
    (staff users) act as admins in every tenant unless they hold a higher role there.
    """
    if actor.api_key is not None:
        key = actor.api_key
        if key.tenant_id == tenant.id and Scope.ADMIN in key.scopes:
            return Role.ADMIN
        return None
    user = actor.authenticated_user
    if user is None:
        return None
    with tenant_scope(tenant.id):
        role = Membership.objects.filter(user_id=user.pk).values_list("role", flat=True).first()
    if actor.is_operator and (role is None or ROLE_RANK[role] < ROLE_RANK[Role.ADMIN]):
        return Role.ADMIN
    return role


def tenant_get_for_actor(*, actor: Actor, slug: str) -> tuple[Tenant, str]:
    """The tenant named in a URL, with the actor's role; 404 when the actor has no access,
    whether or not the tenant exists (never reveal another tenant's existence)."""
    tenant = Tenant.objects.select_related("plan").filter(slug=slug).first()
    if tenant is None:
        raise NotFoundError("tenant")
    if tenant.status == TenantStatus.DELETED and not actor.is_operator:
        raise NotFoundError("tenant")
    role = actor_role(actor=actor, tenant=tenant)
    if role is None:
        raise NotFoundError("tenant")
    return tenant, role


def tenant_list_for_actor(*, actor: Actor, include_all: bool = False) -> QuerySet[Tenant]:
    """Tenants the actor belongs to; every tenant for an operator asking for `include_all`."""
    qs = Tenant.objects.select_related("plan")
    if actor.api_key is not None:
        return qs.filter(pk=actor.api_key.tenant_id).exclude(status=TenantStatus.DELETED)
    user = actor.authenticated_user
    if user is None:
        return qs.none()
    if include_all and actor.is_operator:
        return qs.all()
    return qs.filter(memberships__user_id=user.pk).exclude(status=TenantStatus.DELETED)


def tenant_list_for_operators(
    *, status: str | None = None, q: str | None = None
) -> QuerySet[Tenant]:
    """Every tenant, for the platform operators' console (a named cross-tenant read,
    tenants/scoping.py): deleted ones included, filtered by `status` and by `q` (a case-
    insensitive substring of the slug or the name), each annotated with `member_count` by a
    correlated subquery over every tenant's memberships (one query for the whole page)."""
    members = (
        Membership.objects.unscoped()
        .filter(tenant_id=OuterRef("pk"))
        .order_by()
        .values("tenant_id")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    qs = Tenant.objects.select_related("plan").annotate(
        member_count=Coalesce(Subquery(members, output_field=IntegerField()), 0)
    )
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(Q(slug__icontains=q) | Q(name__icontains=q))
    return qs


def plan_list(*, include_private: bool = False) -> QuerySet[Plan]:
    qs = Plan.objects.all()
    return qs if include_private else qs.filter(is_public=True)


@dataclass(frozen=True)
class EffectiveLimits:
    plan: str
    limits: dict[str, Any]
    overridden: list[str] = field(default_factory=list)


def tenant_effective_limits(*, tenant: Tenant) -> EffectiveLimits:
    """What tenant T may use: the plan's limits, replaced field by field by its override."""
    plan = tenant.plan
    limits: dict[str, Any] = {name: getattr(plan, name) for name in LIMIT_FIELDS}
    limits["allowed_tiers"] = list(plan.allowed_tiers)
    limits["allowed_engines"] = list(plan.allowed_engines)
    # The dedicated-cluster limits are the plan's alone (no per-tenant override).
    limits["max_clusters"] = plan.max_clusters
    limits["allowed_cluster_sizes"] = list(plan.allowed_cluster_sizes)
    limits["max_cluster_replicas"] = plan.max_cluster_replicas
    overridden: list[str] = []
    with tenant_scope(tenant.id):
        override = TenantLimitOverride.objects.first()
    if override is not None:
        for name in (*LIMIT_FIELDS, "allowed_tiers", "allowed_engines"):
            value = getattr(override, name)
            if value is not None:
                limits[name] = list(value) if isinstance(value, list) else value
                overridden.append(name)
    return EffectiveLimits(plan=plan.slug, limits=limits, overridden=overridden)


def membership_list() -> QuerySet[Membership]:
    return Membership.objects.select_related("user")


def membership_get(*, user_id: int) -> Membership:
    membership = membership_list().filter(user_id=user_id).first()
    if membership is None:
        raise NotFoundError("member")
    return membership


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.all()


def api_key_get(*, key_id: Any) -> ApiKey:
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None:
        raise NotFoundError("API key")
    return key


def api_key_is_usable(key: ApiKey, *, now: datetime | None = None) -> tuple[bool, str]:
    """(usable, reason) where reason is `revoked` or `expired` when not usable."""
    now = now or timezone.now()
    if key.revoked_at is not None or (key.revoke_after is not None and key.revoke_after <= now):
        return False, "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return False, "expired"
    return True, ""


def api_key_get_for_authentication(*, prefix: str) -> ApiKey | None:
    """Cross-tenant by necessity: the tenant is known only once the key is."""
    return ApiKey.objects.unscoped().select_related("tenant").filter(prefix=prefix).first()


def personal_token_get_for_authentication(*, prefix: str) -> PersonalAccessToken | None:
    return PersonalAccessToken.objects.select_related("user").filter(prefix=prefix).first()


def personal_token_list(*, user_id: int) -> QuerySet[PersonalAccessToken]:
    return PersonalAccessToken.objects.filter(user_id=user_id)


def audit_event_list(
    *,
    action: str | None = None,
    actor_user_id: int | None = None,
    actor_api_key_id: Any = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if action:
        # `api_key.` matches every api_key action; `api_key.created` exactly.
        qs = (
            qs.filter(action__startswith=action)
            if action.endswith(".")
            else qs.filter(action=action)
        )
    if actor_user_id is not None:
        qs = qs.filter(actor_user_id=actor_user_id)
    if actor_api_key_id is not None:
        qs = qs.filter(actor_api_key_id=actor_api_key_id)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if target_id:
        qs = qs.filter(target_id=target_id)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return qs
