"""Operator views of indexes and dedicated clusters. Changes go through the services (audited);
credentials are never shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from controlplane.errors import ApplicationError
from tenants.admin import UnscopedAdmin, admin_actor

from .models import Cluster, Index
from .services import clusters


@admin.register(Cluster)
class ClusterAdmin(UnscopedAdmin):
    list_display = (
        "name", "tenant", "engine", "driver", "size", "replicas", "status", "updated_at",
    )  # fmt: skip
    list_filter = ("status", "engine", "driver", "size")
    search_fields = ("name", "id", "tenant__slug", "stack_name")
    readonly_fields = (
        "id", "tenant", "name", "engine", "driver", "size", "replicas", "status",
        "status_message", "generation", "observed_generation", "endpoint", "stack_name",
        "attempts", "created_at", "updated_at", "ready_at", "deleted_at",
    )  # fmt: skip
    exclude = ("credentials_encrypted",)
    actions = ["retry", "delete_clusters"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # ordered by tenants through the API

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the delete action goes through the service (and a worker)

    @admin.action(description="Retry selected failed clusters")
    def retry(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        done = 0
        for cluster in queryset:
            if cluster.status == "failed":
                clusters.cluster_retry(actor=admin_actor(request), cluster=cluster)
                done += 1
        self.message_user(request, f"Retrying {done} cluster(s).")

    @admin.action(description="Delete selected clusters (and their indexes)")
    def delete_clusters(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        done = 0
        for cluster in queryset.select_related("tenant"):
            try:
                clusters.cluster_delete(
                    actor=admin_actor(request), tenant=cluster.tenant, cluster=cluster
                )
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{cluster.name}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Deleting {done} cluster(s).")


@admin.register(Index)
class IndexAdmin(UnscopedAdmin):
    list_display = ("name", "tenant", "engine", "tier", "cluster", "dimension", "status")
    list_filter = ("status", "engine", "tier", "metric")
    search_fields = ("name", "id", "tenant__slug")
    readonly_fields = tuple(f.name for f in Index._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
