"""The platform operators' API (`/api/v1/operator/...`): every tenant, every dedicated cluster,
the health of the platform's parts. For staff users only, by session or personal access token.

Anyone else — anonymous, a tenant's owner, an API key (whatever its scopes), wrong
credentials — gets exactly what a URL that matches nothing gets (the project's `handler404`:
404 `not_found`, "No such endpoint."), for every method: the surface is not discoverable.

The reads across tenants are the named selectors of `provisioning.selectors` ("platform
operators") and `tenants.selectors.tenant_list_for_operators`; tenants/scoping.py lists them.
"""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane import health
from controlplane.api.errors import handler404
from controlplane.api.pagination import PAGINATION_PARAMETERS, paginate, paginated, query_filters
from controlplane.api.schema import errors
from controlplane.api.serializers import QueryInputSerializer
from controlplane.api.views import BaseAPIView
from controlplane.errors import ApplicationError
from tenants.models import Engine, TenantStatus

from .. import heartbeat, selectors
from ..models import ClusterStatus

# What a caller who is not an operator cannot tell from an unknown URL.
OPERATOR_ERRORS = errors(400, 404)


class _Hidden(Exception):
    """The caller is not a platform operator: answer as an unknown URL does."""


class OperatorAPIView(BaseAPIView):
    """A view for staff users (`is_staff`, active) authenticated by session or personal token.

    Authentication, permission and every other check of DRF's `initial` run first; whatever
    they conclude, a caller who is not an operator is answered by `handler404` itself (the
    status, body and content type of a URL no route matches; none of DRF's `Allow` or
    `WWW-Authenticate` headers, no hint of the role or the scope that is missing). Middleware
    headers may still differ (`Vary: Cookie` once the session was read)."""

    def _is_operator(self, request: Request) -> bool:
        try:
            user = request.user  # authenticates once; failed credentials leave it anonymous
        except exceptions.APIException:
            return False
        # An API key's principal is never staff; a token acts as its (staff) user.
        return self.actor().is_operator and bool(user and user.is_authenticated)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            super().initial(request, *args, **kwargs)
        except (exceptions.APIException, ApplicationError) as exc:
            if not self._is_operator(request):
                raise _Hidden from exc
            raise
        if not self._is_operator(request):
            raise _Hidden

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        if getattr(self, "_hidden", False):
            return handler404(request)
        return response

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Hidden):
            self._hidden = True
            return Response(status=404)  # replaced by handler404's answer in dispatch
        return super().handle_exception(exc)


# =========================================================================== tenants


class OperatorTenantPage(serializers.ListSerializer[Any]):
    """A page of tenants: their stored vectors are counted for the whole page at once
    (`selectors.stored_vectors_totals`), then each row reads its own."""

    def to_representation(self, data: Any) -> list[Any]:
        rows = list(data)
        # The root's context is every child's (DRF's Field.context).
        context = cast("dict[str, Any]", self.context)
        context["stored_vectors"] = selectors.stored_vectors_totals(
            tenant_ids=[row.id for row in rows]
        )
        result: list[Any] = super().to_representation(rows)
        return result


class OperatorTenantOutput(serializers.Serializer[Any]):
    class Meta:
        list_serializer_class = OperatorTenantPage

    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    plan = serializers.CharField(source="plan.slug")
    status = serializers.ChoiceField(TenantStatus.choices)
    status_reason = serializers.CharField()
    member_count = serializers.IntegerField()
    index_count = serializers.IntegerField(help_text="Live indexes (deleted ones not counted).")
    cluster_count = serializers.IntegerField(
        help_text="Live dedicated clusters (deleted ones not counted)."
    )
    stored_vectors = serializers.SerializerMethodField(
        help_text="Vectors stored now, every index (what the vector quota counts, as "
        "`usage_stored_vectors` reads it); null when the tenant's storage does not answer."
    )
    created_at = serializers.DateTimeField()

    def get_stored_vectors(self, tenant: Any) -> int | None:
        totals: dict[Any, int | None] = self.context.get("stored_vectors", {})
        return totals.get(tenant.id)


class OperatorTenantFilterInput(QueryInputSerializer):
    """Tenant filters (`cursor` and `limit` are the pagination's)."""

    status = serializers.ChoiceField(TenantStatus.choices, required=False)
    q = serializers.CharField(
        required=False, max_length=100, help_text="Part of the slug or the name (any case)."
    )


class OperatorTenantListApi(OperatorAPIView):
    @extend_schema(
        operation_id="operator_tenants_list",
        tags=["operator"],
        description="Platform operators (staff): every tenant, deleted ones included, newest "
        "first, with its plan, status, members, live indexes and clusters and the vectors it "
        "stores. Filter with `status` and `q` (part of the slug or the name). Anyone else gets "
        "404 `not_found`, as for a URL that does not exist.",
        parameters=[*PAGINATION_PARAMETERS, OperatorTenantFilterInput],
        responses={200: paginated(OperatorTenantOutput), **OPERATOR_ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters = OperatorTenantFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        tenants = selectors.operator_tenant_list(**filters.validated_data)
        return paginate(request, tenants, serializer_class=OperatorTenantOutput)


# =========================================================================== clusters


class OperatorClusterOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    tenant = serializers.CharField(source="tenant.slug", help_text="The tenant's slug.")
    name = serializers.CharField()
    engine = serializers.ChoiceField(Engine.choices)
    size = serializers.CharField()
    replicas = serializers.IntegerField()
    status = serializers.ChoiceField(ClusterStatus.choices)
    status_message = serializers.CharField()
    last_error = serializers.CharField(
        help_text="The message of the cluster's latest move to `failed` (empty if it never failed)."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OperatorClusterFilterInput(QueryInputSerializer):
    """Cluster filters (`cursor` and `limit` are the pagination's)."""

    status = serializers.ChoiceField(
        ClusterStatus.choices,
        required=False,
        help_text="Without it, every cluster that is not deleted.",
    )


class OperatorClusterListApi(OperatorAPIView):
    @extend_schema(
        operation_id="operator_clusters_list",
        tags=["operator"],
        description="Platform operators (staff): every tenant's dedicated clusters, newest "
        "first, with their tenant, spec, status and last error. Filter with `status` (deleted "
        "clusters only when asked for). Anyone else gets 404 `not_found`.",
        parameters=[*PAGINATION_PARAMETERS, OperatorClusterFilterInput],
        responses={200: paginated(OperatorClusterOutput), **OPERATOR_ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters = OperatorClusterFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        clusters = selectors.operator_cluster_list(**filters.validated_data)
        return paginate(request, clusters, serializer_class=OperatorClusterOutput)


# =========================================================================== health


class PartHealthOutput(serializers.Serializer[Any]):
    name = serializers.ChoiceField(health.PARTS)
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField(help_text="How long the probe took (a failure too).")
    error = serializers.CharField(help_text="Why the part is not healthy; empty when it is.")
    target = serializers.CharField(help_text="What was probed (never with credentials).")


class HealthOutput(serializers.Serializer[Any]):
    status = serializers.ChoiceField(health.STATUSES, help_text="`ok` when every part is.")
    parts = PartHealthOutput(many=True)


class OperatorHealthApi(OperatorAPIView):
    @extend_schema(
        operation_id="operator_health",
        tags=["operator"],
        description="Platform operators (staff): the control-plane database (`SELECT 1`), the "
        "Celery broker (a connection), the gateway (its `/readyz` at "
        "`VECTORPLANE_GATEWAY_URL`), the workers (a ping every live worker answers) and the "
        "reconcile (when the beat's last one finished, and any cluster transitional for more "
        "than 10 minutes), each with ok or its error and the probe's latency. A part "
        "that is down is reported here (status `degraded`), never as a 5xx. Anyone else gets "
        "404 `not_found`.",
        responses={200: HealthOutput, **errors(404)},
    )
    def get(self, request: Request) -> Response:
        parts = [*health.platform_health(), heartbeat.reconcile_health()]
        body = {
            "status": "ok" if all(part.ok for part in parts) else "degraded",
            "parts": parts,
        }
        return Response(HealthOutput(body).data)
