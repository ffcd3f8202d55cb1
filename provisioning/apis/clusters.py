"""Dedicated clusters: `/api/v1/tenants/{slug}/clusters[/{name}[/events]]` and the size
catalogue."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.pagination import PAGINATION_PARAMETERS, paginate, paginated
from controlplane.api.schema import errors
from controlplane.api.serializers import StrictInputSerializer
from controlplane.api.views import TenantAPIView
from tenants.models import Engine, Role
from vectorplane.contract import names

from .. import selectors
from ..models import CLUSTER_SIZES, Cluster, ClusterDriver, ClusterEvent, ClusterStatus
from ..services import clusters as cluster_services

CLUSTER_ERRORS = errors(400, 401, 403, 404)


class ClusterOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    engine = serializers.ChoiceField(Engine.choices)
    driver = serializers.ChoiceField(ClusterDriver.choices)
    size = serializers.CharField()
    replicas = serializers.IntegerField()
    status = serializers.ChoiceField(ClusterStatus.choices)
    status_message = serializers.CharField(
        help_text="The last error (failed), or what is being retried."
    )
    generation = serializers.IntegerField(help_text="Bumped by every change of the spec.")
    observed_generation = serializers.IntegerField(
        help_text="The generation the cluster runs (equal to `generation` once a resize landed)."
    )
    indexes = serializers.SerializerMethodField(help_text="Live indexes on the cluster.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    ready_at = serializers.DateTimeField(allow_null=True)

    def get_indexes(self, cluster: Cluster) -> list[str]:
        return [index.name for index in selectors.index_list().filter(cluster=cluster)]


class ClusterDetailOutput(ClusterOutput):
    last_error = serializers.SerializerMethodField(
        help_text="The message of the cluster's latest move to `failed` (empty if it never "
        "failed), kept after it recovered; `status_message` is the current one."
    )
    last_error_at = serializers.SerializerMethodField(
        help_text="When that failure happened (null if it never failed)."
    )
    failure: ClusterEvent | None = None

    def to_representation(self, instance: Cluster) -> dict[str, Any]:
        self.failure = selectors.cluster_last_error(cluster=instance)  # one query for both
        data: dict[str, Any] = super().to_representation(instance)
        return data

    def get_last_error(self, cluster: Cluster) -> str:
        return self.failure.message if self.failure is not None else ""

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_error_at(self, cluster: Cluster) -> str | None:
        if self.failure is None:
            return None
        at: str = serializers.DateTimeField().to_representation(self.failure.at)
        return at


class ClusterEventOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    from_status = serializers.CharField(
        help_text="The status before the move; empty for the first event (the order)."
    )
    to_status = serializers.ChoiceField(ClusterStatus.choices)
    generation = serializers.IntegerField(help_text="The spec's generation the move is about.")
    size = serializers.CharField(help_text="The size of that spec (for `ready`: what runs).")
    replicas = serializers.IntegerField()
    message = serializers.CharField(help_text="The error (`failed`) or reason; may be empty.")
    at = serializers.DateTimeField()


class ClusterCreateInput(StrictInputSerializer):
    name = serializers.RegexField(names.NAME_PATTERN, max_length=names.MAX_NAME_LENGTH)
    engine = serializers.ChoiceField(Engine.choices)
    size = serializers.ChoiceField(sorted(CLUSTER_SIZES))
    replicas = serializers.IntegerField(min_value=1, max_value=10, default=1)


class ClusterResizeInput(StrictInputSerializer):
    size = serializers.ChoiceField(sorted(CLUSTER_SIZES), required=False)
    replicas = serializers.IntegerField(min_value=1, max_value=10, required=False)


class ClusterSizeOutput(serializers.Serializer[Any]):
    slug = serializers.CharField()
    cpu = serializers.CharField()
    memory = serializers.CharField()
    storage = serializers.CharField()
    description = serializers.CharField()
    allowed = serializers.BooleanField(help_text="Whether the tenant's plan offers this size.")


ClusterSizeListOutput = type(
    "ClusterSizeListOutput", (serializers.Serializer,), {"data": ClusterSizeOutput(many=True)}
)


class ClusterListApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "POST": Role.ADMIN}

    @extend_schema(
        operation_id="clusters_list",
        tags=["clusters"],
        description="The tenant's dedicated clusters, newest first.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(ClusterOutput), **CLUSTER_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return paginate(request, selectors.cluster_list(), serializer_class=ClusterOutput)

    @extend_schema(
        operation_id="clusters_create",
        tags=["clusters"],
        description="Orders a dedicated pgvector or Qdrant cluster. Answers 202 at once with "
        "status `pending`; a worker provisions it (`provisioning`, then `ready` or `failed` "
        "with `status_message`). Poll GET until `ready`, then create indexes on it with "
        "`tier: dedicated, cluster: <name>`. The plan decides engines, sizes, replicas and "
        "how many clusters.",
        request=ClusterCreateInput,
        responses={202: ClusterOutput, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        data = ClusterCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        cluster = cluster_services.cluster_create(
            actor=self.actor(), tenant=self.tenant, **data.validated_data
        )
        return Response(ClusterOutput(cluster).data, status=status.HTTP_202_ACCEPTED)


class ClusterDetailApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "PATCH": Role.ADMIN, "DELETE": Role.ADMIN}

    @extend_schema(
        operation_id="clusters_retrieve",
        tags=["clusters"],
        description="One cluster: spec, status, last error, indexes.",
        responses={200: ClusterDetailOutput, **CLUSTER_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, cluster_name: str) -> Response:
        return Response(ClusterDetailOutput(selectors.cluster_get(name=cluster_name)).data)

    @extend_schema(
        operation_id="clusters_resize",
        tags=["clusters"],
        description="Changes the size and/or replicas. Answers 202 with status `updating`; "
        "`observed_generation` reaches `generation` when the change landed.",
        request=ClusterResizeInput,
        responses={202: ClusterOutput, **errors(400, 401, 403, 404, 409)},
    )
    def patch(self, request: Request, tenant_slug: str, cluster_name: str) -> Response:
        data = ClusterResizeInput(data=request.data)
        data.is_valid(raise_exception=True)
        cluster = cluster_services.cluster_resize(
            actor=self.actor(),
            tenant=self.tenant,
            cluster=selectors.cluster_get(name=cluster_name),
            size=data.validated_data.get("size"),
            replicas=data.validated_data.get("replicas"),
        )
        return Response(ClusterOutput(cluster).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="clusters_destroy",
        tags=["clusters"],
        description="Deletes the cluster with its indexes and data (refused with "
        "`deletion_protected` while an index on it is protected). Answers 202 with status "
        "`deleting`; the cluster disappears from the list once a worker removed it.",
        responses={202: ClusterOutput, **CLUSTER_ERRORS},
    )
    def delete(self, request: Request, tenant_slug: str, cluster_name: str) -> Response:
        cluster = cluster_services.cluster_delete(
            actor=self.actor(), tenant=self.tenant, cluster=selectors.cluster_get(name=cluster_name)
        )
        return Response(ClusterOutput(cluster).data, status=status.HTTP_202_ACCEPTED)


class ClusterEventListApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="cluster_events_list",
        tags=["clusters"],
        description="The cluster's state history, newest first: every status change (from, "
        "to), with the generation, size and replicas it concerns and its message (the error, "
        "for `failed`). Written in the same transaction as the change.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(ClusterEventOutput), **CLUSTER_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, cluster_name: str) -> Response:
        cluster = selectors.cluster_get(name=cluster_name)
        return paginate(
            request,
            selectors.cluster_events(cluster=cluster),
            serializer_class=ClusterEventOutput,
            keys=("at", "id"),
        )


class ClusterSizeListApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="cluster_sizes_list",
        tags=["clusters"],
        description="The size catalogue, with the sizes the tenant's plan offers marked.",
        responses={200: ClusterSizeListOutput, **CLUSTER_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        allowed = set(self.tenant.plan.allowed_cluster_sizes)
        data = [
            {**size.__dict__, "allowed": size.slug in allowed} for size in CLUSTER_SIZES.values()
        ]
        return Response({"data": data})
