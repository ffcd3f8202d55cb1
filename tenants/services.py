"""Writes. Every mutating service is keyword-only, checks the actor's right to act, returns
early when the change is already done, writes its audit row in the same transaction, and
returns the changed object."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from controlplane.errors import (
    ApplicationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from vectorplane.contract import names
from vectorplane.contract.filters import FilterError
from vectorplane.contract.filters import validate as validate_filter

from . import credentials
from .actors import Actor
from .models import (
    LIMIT_FIELDS,
    ROLE_RANK,
    ActorType,
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    PaymentState,
    PersonalAccessToken,
    Plan,
    Role,
    Scope,
    Tenant,
    TenantLimitOverride,
    TenantStatus,
)
from .scoping import tenant_scope
from .selectors import actor_role, api_key_is_usable

User = get_user_model()

RESERVED_SLUGS = frozenset({"api", "admin", "www", "app", "static", "console", "gateway", "new"})
DEFAULT_PLAN = "free"


# --------------------------------------------------------------------------- audit


def audit_record(
    *,
    actor: Actor,
    action: str,
    tenant: Tenant | None,
    target_type: str,
    target_id: Any,
    target_label: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    if actor.api_key is not None:
        actor_type = ActorType.API_KEY
    elif actor.authenticated_user is not None:
        actor_type = ActorType.USER
    else:
        actor_type = ActorType.SYSTEM
    user = actor.authenticated_user
    event = AuditEvent(
        tenant=tenant,
        actor_type=actor_type,
        actor_user_id=user.pk if user is not None else None,
        actor_api_key=actor.api_key,
        actor_label=actor.label[:200],
        via_token=actor.via_token,
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:64],
        target_label=target_label[:200],
        source_ip=actor.ip,
        user_agent=actor.user_agent[:300],
        details=details or {},
    )
    # Saved directly (not through the scoped manager): platform events have no tenant.
    event.save()
    return event


# --------------------------------------------------------------------------- guards


def _require_role(*, actor: Actor, tenant: Tenant, minimum: str) -> str:
    role = actor_role(actor=actor, tenant=tenant)
    if role is None:
        raise NotFoundError("tenant")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise PermissionDeniedError(
            f"This needs the {minimum} role or higher in this tenant; you are {role}.",
            details={"required_role": minimum, "role": role},
        )
    return role


def _require_operator(actor: Actor) -> None:
    if not actor.is_operator:
        raise PermissionDeniedError("Only platform operators can do this.")


def _require_active(tenant: Tenant) -> None:
    if tenant.status == TenantStatus.SUSPENDED:
        raise ApplicationError(
            "tenant_suspended",
            "This tenant is suspended; only reads, revocations and removals are allowed.",
            status=403,
            details={"reason": tenant.status_reason},
        )
    if tenant.status == TenantStatus.DELETED:
        raise NotFoundError("tenant")


def _lock_tenant(tenant: Tenant) -> Tenant:
    return Tenant.objects.select_for_update().select_related("plan").get(pk=tenant.pk)


def tenant_guard(
    *,
    actor: Actor,
    tenant: Tenant,
    minimum_role: str,
    require_active: bool = True,
    lock: bool = False,
) -> Tenant:
    """What a service of another app checks before it changes a tenant's resources, in this
    order: the actor holds at least `minimum_role` in the tenant (404 `not_found` without
    access, 403 `permission_denied` below the role), the tenant is not suspended (403
    `tenant_suspended`) or deleted (404) when `require_active`, and, with `lock`, the tenant's
    row is locked FOR UPDATE until the transaction ends (call it inside `transaction.atomic()`;
    the fresh locked row, with its plan, is returned). Returns `tenant` itself otherwise."""
    _require_role(actor=actor, tenant=tenant, minimum=minimum_role)
    if require_active:
        _require_active(tenant)
    return _lock_tenant(tenant) if lock else tenant


def tenant_lock(tenant: Tenant) -> Tenant:
    """Lock the tenant's row FOR UPDATE until the transaction ends (inside
    `transaction.atomic()`), serialising the writes that check a tenant-wide quota; returns
    the fresh locked row with its plan. Hold it for database work only, never across a call
    to another server."""
    return _lock_tenant(tenant)


# --------------------------------------------------------------------------- users


def user_signup(*, actor: Actor, email: str, password: str, name: str = "") -> AbstractBaseUser:
    if not settings.VECTORPLANE_ALLOW_SIGNUP:
        raise PermissionDeniedError("Sign-up is disabled on this installation.")
    email = User.objects.normalize_email(email).lower()
    try:
        validate_password(password, user=User(username=email, email=email))
    except DjangoValidationError as exc:
        raise ApplicationError(
            "validation_error", "The password is too weak.", details={"password": exc.messages}
        ) from exc
    with transaction.atomic():
        if User.objects.filter(username__iexact=email).exists():
            raise ConflictError("email_taken", "An account with this email address exists.")
        first, _, last = name.partition(" ")
        user = User.objects.create_user(
            username=email,
            email=email,
            password=password,
            first_name=first[:150],
            last_name=last[:150],
        )
        audit_record(
            actor=Actor(user=user, ip=actor.ip, user_agent=actor.user_agent),
            action="user.signed_up",
            tenant=None,
            target_type="user",
            target_id=user.pk,
            target_label=email,
        )
    return user


# --------------------------------------------------------------------------- tenants


def _unique_slug(base: str) -> str:
    """`base`, or `base-N` with the smallest N above those taken, in one query (a loop of
    `exists()` per suffix made a much-reused name cost one query per earlier tenant)."""
    base = slugify(base)[:32].strip("-") or "tenant"
    if len(base) < 3:
        base = f"{base}-org"
    pattern = re.compile(rf"^{re.escape(base)}(?:-(\d+))?$")
    taken = [
        m
        for m in (
            pattern.match(s)
            for s in Tenant.objects.filter(slug__startswith=base).values_list("slug", flat=True)
        )
        if m
    ]
    if not taken and base not in RESERVED_SLUGS:
        return base
    highest = max((int(m.group(1)) if m.group(1) else 1 for m in taken), default=1)
    return f"{base}-{highest + 1}"


def tenant_create(
    *, actor: Actor, name: str, slug: str | None = None, plan_slug: str | None = None
) -> Tenant:
    user = actor.authenticated_user
    if user is None or actor.api_key is not None:
        raise PermissionDeniedError("Tenants are created by users, not API keys.")
    if plan_slug is not None and plan_slug != DEFAULT_PLAN:
        _require_operator(actor)
    plan = Plan.objects.filter(slug=plan_slug or DEFAULT_PLAN).first()
    if plan is None:
        raise ApplicationError(
            "unknown_plan", f"There is no plan {plan_slug!r}.", details={"plan": plan_slug}
        )
    if slug is not None and (not names.is_slug(slug) or slug in RESERVED_SLUGS):
        raise ApplicationError(
            "invalid_slug",
            "A slug is 3-40 lowercase letters, digits and inner hyphens, and not reserved.",
            details={"slug": slug},
        )
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(
                slug=slug or _unique_slug(name), name=name, plan=plan, status=TenantStatus.ACTIVE
            )
            with tenant_scope(tenant.id):
                Membership.objects.create(tenant=tenant, user_id=user.pk, role=Role.OWNER)
            audit_record(
                actor=actor,
                action="tenant.created",
                tenant=tenant,
                target_type="tenant",
                target_id=tenant.id,
                target_label=tenant.slug,
                details={"name": name, "plan": plan.slug},
            )
    except IntegrityError as exc:
        raise ConflictError(
            "slug_taken", "That slug is already taken.", details={"slug": slug}
        ) from exc
    return tenant


def tenant_update(*, actor: Actor, tenant: Tenant, name: str | None = None) -> Tenant:
    _require_role(actor=actor, tenant=tenant, minimum=Role.ADMIN)
    _require_active(tenant)
    if name is None or name == tenant.name:
        return tenant
    with transaction.atomic():
        tenant = _lock_tenant(tenant)
        old = tenant.name
        tenant.name = name
        tenant.save(update_fields=["name", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.updated",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
            details={"name": {"from": old, "to": name}},
        )
    return tenant


def tenant_suspend(*, actor: Actor, tenant: Tenant, reason: str = "") -> Tenant:
    """An operator's, or the system's (billing: unpaid past the second period)."""
    if not actor.is_system:
        _require_operator(actor)
    with transaction.atomic():
        tenant = _lock_tenant(tenant)
        if tenant.status == TenantStatus.DELETED:
            raise ConflictError("tenant_deleted", "A deleted tenant cannot be suspended.")
        if tenant.status == TenantStatus.SUSPENDED:
            return tenant
        tenant.status = TenantStatus.SUSPENDED
        tenant.status_reason = reason[:300]
        tenant.suspended_at = timezone.now()
        tenant.save(update_fields=["status", "status_reason", "suspended_at", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.suspended",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
            details={"reason": reason},
        )
    return tenant


def tenant_set_payment_state(
    *, actor: Actor, tenant: Tenant, state: str, reason: str = ""
) -> Tenant:
    """Move the tenant's payment state (the billing app's, as the system or an operator); the
    gateway learns it at commit (the tenants row trigger notifies). Idempotent: the same state
    again changes nothing (and `payment_state_since` keeps when it began)."""
    if not actor.is_system:
        _require_operator(actor)
    if state not in PaymentState.values:
        raise ApplicationError("validation_error", "Unknown payment state.",
                               details={"field": "state", "state": state})  # fmt: skip
    with transaction.atomic():
        tenant = _lock_tenant(tenant)
        if tenant.payment_state == state:
            return tenant
        before = tenant.payment_state
        tenant.payment_state = state
        tenant.payment_state_since = None if state == PaymentState.CURRENT else timezone.now()
        tenant.save(update_fields=["payment_state", "payment_state_since", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.payment_state_changed",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
            details={"from": before, "to": state, "reason": reason[:300]},
        )
    return tenant


def tenant_reactivate(*, actor: Actor, tenant: Tenant) -> Tenant:
    """An operator's, or the system's (billing: a suspended-for-payment tenant paid)."""
    if not actor.is_system:
        _require_operator(actor)
    with transaction.atomic():
        tenant = _lock_tenant(tenant)
        if tenant.status == TenantStatus.DELETED:
            raise ConflictError("tenant_deleted", "A deleted tenant cannot be reactivated.")
        if tenant.status == TenantStatus.ACTIVE:
            return tenant
        tenant.status = TenantStatus.ACTIVE
        tenant.status_reason = ""
        tenant.suspended_at = None
        tenant.save(update_fields=["status", "status_reason", "suspended_at", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.reactivated",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
        )
    return tenant


def tenant_delete(*, actor: Actor, tenant: Tenant) -> Tenant:
    """Soft delete by an owner (or operator): keys revoked, invitations withdrawn, slug kept."""
    if not actor.is_operator:
        _require_role(actor=actor, tenant=tenant, minimum=Role.OWNER)
    now = timezone.now()
    with transaction.atomic():
        tenant = _lock_tenant(tenant)
        if tenant.status == TenantStatus.DELETED:
            return tenant
        with tenant_scope(tenant.id):
            revoked = ApiKey.objects.filter(revoked_at__isnull=True).update(
                revoked_at=now, updated_at=now
            )
            Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True).update(
                revoked_at=now
            )
        tenant.status = TenantStatus.DELETED
        tenant.deleted_at = now
        tenant.save(update_fields=["status", "deleted_at", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.deleted",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
            details={"api_keys_revoked": revoked},
        )
    return tenant


def tenant_change_plan(*, actor: Actor, tenant: Tenant, plan_slug: str) -> Tenant:
    """An operator's, or the system's (billing: the plan Stripe's subscription says)."""
    if not actor.is_system:
        _require_operator(actor)
    plan = Plan.objects.filter(slug=plan_slug).first()
    if plan is None:
        raise ApplicationError(
            "unknown_plan", f"There is no plan {plan_slug!r}.", details={"plan": plan_slug}
        )
    with transaction.atomic():
        tenant = _lock_tenant(tenant)
        if tenant.plan_id == plan.pk:
            return tenant
        old = tenant.plan.slug
        tenant.plan = plan
        tenant.save(update_fields=["plan", "updated_at"])
        audit_record(
            actor=actor,
            action="tenant.plan_changed",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
            details={"plan": {"from": old, "to": plan.slug}},
        )
    return tenant


def tenant_limits_override_set(
    *, actor: Actor, tenant: Tenant, values: dict[str, Any], reason: str = ""
) -> TenantLimitOverride:
    """Replace the tenant's overrides; a field absent or null falls back to the plan."""
    _require_operator(actor)
    allowed = {*LIMIT_FIELDS, "allowed_tiers", "allowed_engines"}
    unknown = set(values) - allowed
    if unknown:
        raise ApplicationError(
            "unknown_field", "Unknown limit fields.", details={"fields": sorted(unknown)}
        )
    with transaction.atomic(), tenant_scope(tenant.id):
        _lock_tenant(tenant)
        override = TenantLimitOverride.objects.first() or TenantLimitOverride(tenant=tenant)
        before = {name: getattr(override, name) for name in allowed} if override.pk else {}
        for name in allowed:
            setattr(override, name, values.get(name))
        override.reason = reason[:300]
        override.save()
        audit_record(
            actor=actor,
            action="tenant.limits_overridden",
            tenant=tenant,
            target_type="tenant",
            target_id=tenant.id,
            target_label=tenant.slug,
            details={
                "before": before,
                "after": {k: values.get(k) for k in sorted(allowed)},
                "reason": reason,
            },
        )
    return override


# --------------------------------------------------------------------------- members


def _owner_count_locked(tenant: Tenant) -> int:
    return Membership.objects.filter(role=Role.OWNER).count()


def membership_change_role(
    *, actor: Actor, tenant: Tenant, membership: Membership, role: str
) -> Membership:
    my_role = _require_role(actor=actor, tenant=tenant, minimum=Role.ADMIN)
    _require_active(tenant)
    if role not in ROLE_RANK:
        raise ApplicationError("validation_error", "Unknown role.", details={"role": role})
    if my_role != Role.OWNER and Role.OWNER in (role, membership.role):
        raise PermissionDeniedError("Only an owner can grant or take away the owner role.")
    with transaction.atomic(), tenant_scope(tenant.id):
        _lock_tenant(tenant)
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == role:
            return membership
        if membership.role == Role.OWNER and _owner_count_locked(tenant) <= 1:
            raise ConflictError(
                "last_owner", "A tenant must keep at least one owner; promote another member first."
            )
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        audit_record(
            actor=actor,
            action="member.role_changed",
            tenant=tenant,
            target_type="user",
            target_id=membership.user_id,
            target_label=membership.user.get_username(),
            details={"role": {"from": old, "to": role}},
        )
    return membership


def membership_remove(*, actor: Actor, tenant: Tenant, membership: Membership) -> None:
    user = actor.authenticated_user
    leaving = user is not None and actor.api_key is None and membership.user_id == user.pk
    if leaving:
        _require_role(actor=actor, tenant=tenant, minimum=Role.VIEWER)
    else:
        my_role = _require_role(actor=actor, tenant=tenant, minimum=Role.ADMIN)
        if membership.role == Role.OWNER and my_role != Role.OWNER:
            raise PermissionDeniedError("Only an owner can remove an owner.")
    with transaction.atomic(), tenant_scope(tenant.id):
        _lock_tenant(tenant)
        locked = Membership.objects.select_for_update().filter(pk=membership.pk).first()
        if locked is None:
            return
        if locked.role == Role.OWNER and _owner_count_locked(tenant) <= 1:
            raise ConflictError(
                "last_owner", "The last owner cannot be removed; promote another member first."
            )
        label = locked.user.get_username()
        locked.delete()
        audit_record(
            actor=actor,
            action="member.left" if leaving else "member.removed",
            tenant=tenant,
            target_type="user",
            target_id=membership.user_id,
            target_label=label,
            details={"role": locked.role},
        )


# --------------------------------------------------------------------------- invitations


def invitation_create(
    *, actor: Actor, tenant: Tenant, email: str, role: str
) -> tuple[Invitation, str]:
    my_role = _require_role(actor=actor, tenant=tenant, minimum=Role.ADMIN)
    _require_active(tenant)
    if role == Role.OWNER and my_role != Role.OWNER:
        raise PermissionDeniedError("Only an owner can invite an owner.")
    email = User.objects.normalize_email(email).lower()
    new = credentials.generate(credentials.INVITE_KIND)
    now = timezone.now()
    with transaction.atomic(), tenant_scope(tenant.id):
        _lock_tenant(tenant)
        if Membership.objects.filter(user__email__iexact=email).exists():
            raise ConflictError(
                "already_member", "A user with this email address is already a member."
            )
        # A new invitation replaces a pending one for the same address.
        for replaced in Invitation.objects.select_for_update().filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ):
            replaced.revoked_at = now
            replaced.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor,
                action="invitation.revoked",
                tenant=tenant,
                target_type="invitation",
                target_id=replaced.id,
                target_label=replaced.email,
                details={"reason": "replaced by a new invitation"},
            )
        user = actor.authenticated_user
        invitation = Invitation.objects.create(
            tenant=tenant,
            email=email,
            role=role,
            token_prefix=new.prefix,
            token_hash=new.hash,
            invited_by_id=user.pk if user is not None else None,
            expires_at=now + timedelta(seconds=settings.VECTORPLANE_INVITATION_TTL_SECONDS),
        )
        audit_record(
            actor=actor,
            action="invitation.created",
            tenant=tenant,
            target_type="invitation",
            target_id=invitation.id,
            target_label=email,
            details={"email": email, "role": role},
        )
    return invitation, new.secret


def invitation_revoke(*, actor: Actor, tenant: Tenant, invitation: Invitation) -> Invitation:
    _require_role(actor=actor, tenant=tenant, minimum=Role.ADMIN)
    if invitation.revoked_at is not None or invitation.accepted_at is not None:
        return invitation
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="invitation.revoked",
            tenant=tenant,
            target_type="invitation",
            target_id=invitation.id,
            target_label=invitation.email,
        )
    return invitation


def invitation_accept(*, actor: Actor, token: str) -> Membership:
    user = actor.authenticated_user
    if user is None or actor.api_key is not None:
        raise PermissionDeniedError("Sign in as the invited user to accept an invitation.")
    invalid = ApplicationError(
        "invitation_invalid", "This invitation is unknown, used, revoked or expired.", status=404
    )
    parsed = credentials.parse(token)
    if parsed is None or parsed.kind != credentials.INVITE_KIND:
        raise invalid
    with transaction.atomic():
        invitation = (
            Invitation.objects.unscoped()
            .select_for_update()
            .select_related("tenant")
            .filter(token_prefix=parsed.prefix)
            .first()
        )
        if (
            invitation is None
            or not credentials.matches(parsed.whole, invitation.token_hash)
            or invitation.accepted_at is not None
            or invitation.revoked_at is not None
            or invitation.expires_at <= timezone.now()
            or invitation.tenant.status == TenantStatus.DELETED
        ):
            raise invalid
        _require_active(invitation.tenant)
        if (getattr(user, "email", "") or "").lower() != invitation.email.lower():
            raise ApplicationError(
                "invitation_email_mismatch",
                "This invitation was sent to another email address; sign in as that user.",
                status=403,
            )
        tenant = invitation.tenant
        with tenant_scope(tenant.id):
            membership = Membership.objects.filter(user_id=user.pk).first()
            if membership is None:
                membership = Membership.objects.create(
                    tenant=tenant, user_id=user.pk, role=invitation.role
                )
            invitation.accepted_at = timezone.now()
            invitation.accepted_by_id = user.pk
            invitation.save(update_fields=["accepted_at", "accepted_by"])
            audit_record(
                actor=actor,
                action="invitation.accepted",
                tenant=tenant,
                target_type="invitation",
                target_id=invitation.id,
                target_label=invitation.email,
                details={"role": membership.role},
            )
    return membership


# --------------------------------------------------------------------------- API keys


def _validate_scopes(scopes: list[str]) -> list[str]:
    cleaned = sorted(set(scopes))
    if not cleaned:
        raise ApplicationError(
            "validation_error", "A key needs at least one scope.", details={"scopes": scopes}
        )
    unknown = [s for s in cleaned if s not in Scope.values]
    if unknown:
        raise ApplicationError("validation_error", "Unknown scopes.", details={"scopes": unknown})
    return cleaned


def api_key_create(
    *,
    actor: Actor,
    tenant: Tenant,
    name: str,
    scopes: list[str],
    index_names: list[str] | None = None,
    namespaces: list[str] | None = None,
    row_filter: dict[str, Any] | None = None,
    id_prefix: str = "",
    expires_at: datetime | None = None,
    rotated_from: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """A new key. A key bound to rows (`row_filter`) that may write needs an `id_prefix`: its
    writes are confined to ids starting with it, so two end users' ids never meet and the key
    cannot tell whether an id exists outside its rows (README, "Keys bound to rows")."""
    role = _require_role(actor=actor, tenant=tenant, minimum=Role.MEMBER)
    _require_active(tenant)
    scopes = _validate_scopes(scopes)
    if Scope.ADMIN in scopes and ROLE_RANK[role] < ROLE_RANK[Role.ADMIN]:
        raise PermissionDeniedError("Only admins and owners can mint keys with the admin scope.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError(
            "validation_error",
            "expires_at must be in the future.",
            details={"expires_at": expires_at.isoformat()},
        )
    if row_filter is not None:
        try:
            validate_filter(row_filter)
        except FilterError as exc:
            raise ApplicationError(
                "invalid_filter", f"row_filter: {exc.message}", details=exc.details
            ) from exc
        if not row_filter:
            row_filter = None
    if "\x00" in id_prefix or len(id_prefix.encode("utf-8", "surrogatepass")) > 256:
        raise ApplicationError(
            "validation_error", "id_prefix is at most 256 bytes, without NUL.",
            details={"field": "id_prefix"},
        )  # fmt: skip
    if row_filter is not None and Scope.WRITE in scopes and not id_prefix:
        raise ApplicationError(
            "validation_error",
            "A key with a row_filter and the write scope needs an id_prefix: its writes are "
            "confined to ids that start with it (so it cannot probe ids outside its rows).",
            details={"field": "id_prefix"},
        )
    new = credentials.generate(credentials.KEY_KIND)
    user = actor.authenticated_user
    with transaction.atomic(), tenant_scope(tenant.id):
        key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=new.prefix,
            secret_hash=new.hash,
            scopes=scopes,
            index_names=sorted(set(index_names or [])),
            namespaces=sorted(set(namespaces or [])),
            row_filter=row_filter,
            id_prefix=id_prefix,
            expires_at=expires_at,
            rotated_from=rotated_from,
            created_by_id=user.pk if user is not None and actor.api_key is None else None,
        )
        audit_record(
            actor=actor,
            action="api_key.created",
            tenant=tenant,
            target_type="api_key",
            target_id=key.id,
            target_label=f"{name} (vpk_{key.prefix})",
            details={
                "scopes": key.scopes,
                "index_names": key.index_names,
                "namespaces": key.namespaces,
                "row_filter": key.row_filter,
                "id_prefix": key.id_prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "rotated_from": str(rotated_from.id) if rotated_from else None,
            },
        )
    return key, new.secret


def _require_key_manager(*, actor: Actor, tenant: Tenant, key: ApiKey) -> None:
    role = _require_role(actor=actor, tenant=tenant, minimum=Role.MEMBER)
    if ROLE_RANK[role] >= ROLE_RANK[Role.ADMIN]:
        return
    user = actor.authenticated_user
    if user is None or key.created_by_id != user.pk:
        raise PermissionDeniedError("Members can only manage the keys they created.")
    if Scope.ADMIN in key.scopes:
        raise PermissionDeniedError("Only admins and owners can manage admin-scoped keys.")


def api_key_revoke(*, actor: Actor, tenant: Tenant, api_key: ApiKey) -> ApiKey:
    _require_key_manager(actor=actor, tenant=tenant, key=api_key)
    with transaction.atomic(), tenant_scope(tenant.id):
        key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if key.revoked_at is not None:
            return key
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=actor,
            action="api_key.revoked",
            tenant=tenant,
            target_type="api_key",
            target_id=key.id,
            target_label=f"{key.name} (vpk_{key.prefix})",
        )
    return key


def api_key_rotate(
    *, actor: Actor, tenant: Tenant, api_key: ApiKey, grace_seconds: int | None = None
) -> tuple[ApiKey, str]:
    """A new key with the same name, scopes and restrictions; the old one keeps working for
    `grace_seconds` (default VECTORPLANE_KEY_ROTATION_GRACE_SECONDS), then is revoked."""
    _require_key_manager(actor=actor, tenant=tenant, key=api_key)
    _require_active(tenant)
    grace = (
        settings.VECTORPLANE_KEY_ROTATION_GRACE_SECONDS if grace_seconds is None else grace_seconds
    )
    with transaction.atomic(), tenant_scope(tenant.id):
        old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        usable, reason = api_key_is_usable(old)
        if not usable:
            raise ConflictError(
                "api_key_not_rotatable",
                f"A {reason} key cannot be rotated.",
                details={"reason": reason},
            )
        if hasattr(old, "rotated_to"):
            raise ConflictError("api_key_already_rotated", "This key was already rotated.")
        now = timezone.now()
        old.revoke_after = now + timedelta(seconds=grace)
        if grace == 0:
            old.revoked_at = now
        old.save(update_fields=["revoke_after", "revoked_at", "updated_at"])
        new_key, secret = api_key_create(
            actor=actor,
            tenant=tenant,
            name=old.name,
            scopes=list(old.scopes),
            index_names=list(old.index_names),
            namespaces=list(old.namespaces),
            row_filter=old.row_filter,
            id_prefix=old.id_prefix,
            expires_at=old.expires_at,
            rotated_from=old,
        )
        audit_record(
            actor=actor,
            action="api_key.rotated",
            tenant=tenant,
            target_type="api_key",
            target_id=old.id,
            target_label=f"{old.name} (vpk_{old.prefix})",
            details={"new_key_id": str(new_key.id), "revoke_after": old.revoke_after.isoformat()},
        )
    return new_key, secret


def api_keys_revoke_expired_grace(*, now: datetime | None = None) -> int:
    """Revoke rotated keys whose grace period ended (run by Celery beat). Idempotent."""
    now = now or timezone.now()
    count = 0
    due = (
        ApiKey.objects.unscoped()
        .filter(revoke_after__lte=now, revoked_at__isnull=True)
        .values_list("id", "tenant_id")
    )
    for key_id, tenant_id in list(due[:1000]):
        with transaction.atomic(), tenant_scope(tenant_id):
            key = (
                ApiKey.objects.select_for_update(skip_locked=True)
                .filter(pk=key_id, revoked_at__isnull=True)
                .select_related("tenant")
                .first()
            )
            if key is None:
                continue
            key.revoked_at = now
            key.save(update_fields=["revoked_at", "updated_at"])
            audit_record(
                actor=Actor.system(),
                action="api_key.revoked",
                tenant=key.tenant,
                target_type="api_key",
                target_id=key.id,
                target_label=f"{key.name} (vpk_{key.prefix})",
                details={"reason": "rotation grace period ended"},
            )
            count += 1
    return count


def api_key_touch(*, api_key: ApiKey, min_interval_seconds: int = 60) -> None:
    """Record use, at most once a minute per key (no write per request)."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < min_interval_seconds:
        return
    ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


# --------------------------------------------------------------------------- personal tokens


def personal_token_create(
    *, actor: Actor, name: str, expires_at: datetime | None = None
) -> tuple[PersonalAccessToken, str]:
    user = actor.authenticated_user
    if user is None or actor.api_key is not None or actor.via_token:
        raise PermissionDeniedError("Personal access tokens are created from a signed-in session.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("validation_error", "expires_at must be in the future.")
    new = credentials.generate(credentials.TOKEN_KIND)
    with transaction.atomic():
        token = PersonalAccessToken.objects.create(
            user_id=user.pk,
            name=name,
            prefix=new.prefix,
            secret_hash=new.hash,
            expires_at=expires_at,
        )
        audit_record(
            actor=actor,
            action="personal_token.created",
            tenant=None,
            target_type="personal_token",
            target_id=token.id,
            target_label=f"{name} (vpp_{token.prefix})",
        )
    return token, new.secret


def personal_token_revoke(*, actor: Actor, token: PersonalAccessToken) -> PersonalAccessToken:
    user = actor.authenticated_user
    if user is None or token.user_id != user.pk:
        raise NotFoundError("token")
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="personal_token.revoked",
            tenant=None,
            target_type="personal_token",
            target_id=token.id,
            target_label=f"{token.name} (vpp_{token.prefix})",
        )
    return token


def personal_token_touch(*, token: PersonalAccessToken, min_interval_seconds: int = 60) -> None:
    now = timezone.now()
    if token.last_used_at and (now - token.last_used_at).total_seconds() < min_interval_seconds:
        return
    PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
