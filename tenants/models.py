"""Tenants, members, invitations, API keys, personal access tokens, plans, quotas, audit.

Business rules live in `services.py`; these models carry data and constraints only.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from vectorplane.contract import limits

from .scoping import TenantScopedManager


class TenantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    DELETED = "deleted", "Deleted"


class PaymentState(models.TextChoices):
    """What the tenant's payments allow, set by the billing app (`services.
    tenant_set_payment_state`) and obeyed by the gateway: `past_due` is a grace period (a
    banner, notices; everything works), `payment_required` refuses writes with 402 (reads
    work); a tenant unpaid past the second period is suspended (`TenantStatus.SUSPENDED`)."""

    CURRENT = "current", "Current"
    PAST_DUE = "past_due", "Past due (grace period)"
    PAYMENT_REQUIRED = "payment_required", "Payment required (writes refused)"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}


class Scope(models.TextChoices):
    READ = "read", "Read vectors"
    WRITE = "write", "Write vectors"
    ADMIN = "admin", "Manage the tenant"


class Tier(models.TextChoices):
    SHARED = "shared", "Shared"
    DEDICATED = "dedicated", "Dedicated"


class Engine(models.TextChoices):
    PGVECTOR = "pgvector", "pgvector"
    QDRANT = "qdrant", "Qdrant"


LIMIT_FIELDS = limits.LIMIT_FIELDS  # the plan's numeric limits (vectorplane.contract.limits)


class Plan(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    max_indexes = models.PositiveIntegerField()
    max_vectors = models.PositiveBigIntegerField()
    max_storage_bytes = models.PositiveBigIntegerField()
    max_qps = models.PositiveIntegerField()
    max_dimension = models.PositiveIntegerField()
    max_upsert_batch = models.PositiveIntegerField()
    max_metadata_bytes = models.PositiveIntegerField()
    allowed_tiers = ArrayField(models.CharField(max_length=16, choices=Tier.choices), default=list)
    allowed_engines = ArrayField(
        models.CharField(max_length=16, choices=Engine.choices), default=list
    )
    max_clusters = models.PositiveIntegerField(
        default=0, help_text="Dedicated clusters a tenant may run at once (0: none)."
    )
    allowed_cluster_sizes = ArrayField(
        models.CharField(max_length=16),
        default=list,
        blank=True,
        help_text="Sizes from the catalogue (provisioning.models.CLUSTER_SIZES).",
    )
    max_cluster_replicas = models.PositiveSmallIntegerField(default=1)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    is_public = models.BooleanField(default=True, help_text="Offered to tenants (else by deal).")
    sort_order = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("sort_order", "slug")

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    status = models.CharField(
        max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE
    )
    status_reason = models.CharField(max_length=300, blank=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    payment_state = models.CharField(
        max_length=20, choices=PaymentState.choices, default=PaymentState.CURRENT
    )
    payment_state_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=["-created_at", "-id"], name="tenants_tenant_created")
        ]

    def __str__(self) -> str:
        return self.slug


class TenantLimitOverride(models.Model):
    """Per-tenant limits that replace the plan's; a null field means "use the plan's"."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="limit_override")
    max_indexes = models.PositiveIntegerField(null=True, blank=True)
    max_vectors = models.PositiveBigIntegerField(null=True, blank=True)
    max_storage_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_qps = models.PositiveIntegerField(null=True, blank=True)
    max_dimension = models.PositiveIntegerField(null=True, blank=True)
    max_upsert_batch = models.PositiveIntegerField(null=True, blank=True)
    max_metadata_bytes = models.PositiveIntegerField(null=True, blank=True)
    allowed_tiers = ArrayField(
        models.CharField(max_length=16, choices=Tier.choices), null=True, blank=True
    )
    allowed_engines = ArrayField(
        models.CharField(max_length=16, choices=Engine.choices), null=True, blank=True
    )
    reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager["TenantLimitOverride"]()

    def __str__(self) -> str:
        return f"limits override for {self.tenant_id}"


class Membership(models.Model):
    # Indexed by the (tenant, user) unique constraint.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager["Membership"]()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["tenant", "user"], name="tenants_membership_unique_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.tenant_id} ({self.role})"


class Invitation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedManager["Invitation"]()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints: ClassVar = [
            models.UniqueConstraint(
                "tenant",
                Lower("email"),
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="tenants_invitation_one_pending_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"invitation {self.email} to {self.tenant_id}"


class ApiKey(models.Model):
    """A key for the data plane (read/write) and, with the admin scope, the management API.

    The secret is `vpk_<prefix>_<secret>`; only `prefix` (public, unique) and
    `secret_hash` = HMAC-SHA-256(pepper, whole key) are stored.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by tenants_apikey_list (tenant, -created_at, -id).
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="api_keys", db_index=False
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=16, choices=Scope.choices))
    index_names = ArrayField(models.CharField(max_length=45), default=list, blank=True)
    namespaces = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    row_filter = models.JSONField(
        null=True,
        blank=True,
        help_text="Metadata filter the gateway ANDs into every read of this key and enforces "
        "on every write (Pinecone filter syntax).",
    )
    id_prefix = models.CharField(
        max_length=256,
        blank=True,
        default="",
        help_text="Every id this key writes (upsert, update, delete by id) starts with it. "
        "Required for a key with a row filter and the write scope: ids of different end users "
        "can then never collide, so a key cannot probe ids outside its rows.",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoke_after = models.DateTimeField(
        null=True, blank=True, help_text="End of the grace period of a rotated key."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotated_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_to"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager["ApiKey"]()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="tenants_apikey_list"),
            models.Index(
                fields=["revoke_after"],
                condition=Q(revoke_after__isnull=False, revoked_at__isnull=True),
                name="tenants_apikey_grace",
            ),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(condition=~Q(scopes=[]), name="tenants_apikey_has_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (vpk_{self.prefix})"


class PersonalAccessToken(models.Model):
    """A user's token for the management API; acts with the user's roles in every tenant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.name} (vpp_{self.prefix})"


class ActorType(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Indexed by the composite indexes below, which all lead with tenant.
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,
    )
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Who, as it was at the time.")
    via_token = models.BooleanField(default=False, help_text="User acted through a personal token.")
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=200, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager["AuditEvent"]()

    class Meta:
        # Listed newest first on (created_at, id). Ordering on the primary key alone let the
        # planner walk the whole table's pkey backwards for a tenant that had gone quiet while
        # others kept writing (44k rows discarded in the benchmark); these indexes give it a
        # per-tenant range that is already in order.
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="tenants_audit_tenant"),
            models.Index(
                fields=["tenant", "action", "-created_at", "-id"], name="tenants_audit_action"
            ),
            models.Index(
                fields=["tenant", "target_type", "target_id", "-created_at", "-id"],
                name="tenants_audit_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"
