"""Django admin for platform operators. Tenant-scoped models are listed through `unscoped()`
(operators see every tenant); state changes go through the services, so they are audited."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from controlplane.api.views import client_ip
from controlplane.errors import ApplicationError

from . import services
from .actors import Actor
from .models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    PersonalAccessToken,
    Plan,
    Tenant,
    TenantLimitOverride,
)

admin.site.site_header = "Vectorplane operators"
admin.site.site_title = "Vectorplane"
admin.site.index_title = "Platform administration"


def admin_actor(request: HttpRequest) -> Actor:
    """The operator acting through the Django admin, for the services' audit rows (any app's
    admin actions)."""
    return Actor(
        user=request.user,
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )


# django-stubs makes ModelAdmin generic; Django's class is not subscriptable at run time.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


class UnscopedAdmin(ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs: QuerySet[Any] = self.model.objects.unscoped()
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs


@admin.register(Tenant)
class TenantAdmin(ModelAdmin):
    list_display = ("slug", "name", "status", "plan", "created_at")
    list_filter = ("status", "plan")
    search_fields = ("slug", "name", "id")
    # Read-only: every change goes through a service (audited) via the actions or the API.
    readonly_fields = (
        "id",
        "slug",
        "name",
        "status",
        "status_reason",
        "plan",
        "created_at",
        "updated_at",
        "suspended_at",
        "deleted_at",
    )

    @admin.display(description="Members")
    def members(self, tenant: Tenant) -> str:
        # Not an inline: inline formsets query through the default (scoped) manager.
        rows = Membership.objects.unscoped().filter(tenant=tenant).select_related("user")
        return format_html_join(
            mark_safe("<br>"), "{} ({})", ((m.user.get_username(), m.role) for m in rows)
        )

    actions = ["suspend", "reactivate"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tenants are created through the API (the creator becomes owner)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # soft delete through the API / service only

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        done = 0
        for tenant in queryset:
            try:
                services.tenant_suspend(
                    actor=admin_actor(request), tenant=tenant, reason="suspended in admin"
                )
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{tenant.slug}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Suspended {done} tenant(s).")

    @admin.action(description="Reactivate selected tenants")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        done = 0
        for tenant in queryset:
            try:
                services.tenant_reactivate(actor=admin_actor(request), tenant=tenant)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{tenant.slug}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Reactivated {done} tenant(s).")


@admin.register(Membership)
class MembershipAdmin(UnscopedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "user__username", "tenant__slug")
    list_select_related = ("user", "tenant")
    readonly_fields = ("tenant", "user", "role", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(UnscopedAdmin):
    list_display = (
        "email",
        "tenant",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = ("role",)
    search_fields = ("email", "tenant__slug")
    list_select_related = ("tenant",)
    exclude = ("token_hash",)
    readonly_fields = (
        "tenant",
        "email",
        "role",
        "token_prefix",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(UnscopedAdmin):
    list_display = (
        "name",
        "prefix",
        "tenant",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (KeyStatusFilter,)
    search_fields = ("name", "prefix", "tenant__slug")
    list_select_related = ("tenant",)
    exclude = ("secret_hash",)
    readonly_fields = (
        "id",
        "tenant",
        "name",
        "prefix",
        "scopes",
        "index_names",
        "namespaces",
        "expires_at",
        "revoke_after",
        "revoked_at",
        "last_used_at",
        "rotated_from",
        "created_by",
        "created_at",
        "updated_at",
    )
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        done = 0
        for key in queryset.select_related("tenant"):
            try:
                services.api_key_revoke(actor=admin_actor(request), tenant=key.tenant, api_key=key)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{key}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Revoked {done} key(s).")


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    search_fields = ("name", "prefix", "user__email")
    exclude = ("secret_hash",)
    readonly_fields = (
        "id",
        "user",
        "name",
        "prefix",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(ModelAdmin):
    list_display = (
        "slug",
        "name",
        "max_indexes",
        "max_vectors",
        "max_qps",
        "max_dimension",
        "monthly_price_cents",
        "is_public",
    )
    list_filter = ("is_public",)
    search_fields = ("slug", "name")


@admin.register(TenantLimitOverride)
class TenantLimitOverrideAdmin(UnscopedAdmin):
    list_display = ("tenant", "max_indexes", "max_vectors", "max_qps", "reason", "updated_at")
    search_fields = ("tenant__slug",)
    list_select_related = ("tenant",)
    readonly_fields = ("tenant", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set through the API (PUT /tenants/{slug}/limits), which audits it

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(UnscopedAdmin):
    list_display = (
        "created_at",
        "action",
        "actor_label",
        "tenant",
        "target_type",
        "target_label",
        "source_ip",
    )
    list_filter = ("action", "actor_type", "target_type")
    search_fields = ("action", "actor_label", "target_label", "target_id", "tenant__slug")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
