"""The tenant's usage over time beyond the per-index rows of `usage_list`: one summary for the
console's overview, the refused requests by error code, and the hourly samples of vectors
stored."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.pagination import PAGINATION_PARAMETERS, paginate, paginated, query_filters
from controlplane.api.views import TenantAPIView
from tenants.models import Role

from .. import selectors
from .indexes import INDEX_ERRORS, LatencyFilterInput, UsageFilterInput


class UsageSpanInput(LatencyFilterInput):
    """A range of hours: `since` (default 24 hours before `until`) to `until` (default now),
    at most 31 days."""


class UsageHourOutput(serializers.Serializer[Any]):
    hour = serializers.DateTimeField()
    requests = serializers.IntegerField(help_text="Requests the gateway answered.")
    read_units = serializers.IntegerField()
    write_units = serializers.IntegerField()
    queries = serializers.IntegerField()
    vectors_written = serializers.IntegerField()
    vectors_deleted = serializers.IntegerField()
    error_requests = serializers.IntegerField(
        help_text="Requests the gateway refused (4xx/5xx), by an authenticated key."
    )
    stored_vectors = serializers.IntegerField(
        allow_null=True, help_text="Vectors stored, from the hour's sample (null: not sampled)."
    )


class ErrorCodeTotalOutput(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="The error's stable code (docs/ERRORS.md).")
    status = serializers.IntegerField()
    requests = serializers.IntegerField()


class UsageSummaryOutput(serializers.Serializer[Any]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    indexes = serializers.IntegerField(help_text="Indexes now (what `max_indexes` counts).")
    clusters = serializers.IntegerField(help_text="Dedicated clusters now (`max_clusters`).")
    hours = UsageHourOutput(many=True)
    errors_by_code = ErrorCodeTotalOutput(many=True)


class ErrorFilterInput(UsageFilterInput):
    index = serializers.CharField(required=False, allow_blank=True, max_length=45,
                                  help_text='An index\'s name; "" for the requests that failed '
                                  "before reaching one.")  # fmt: skip
    code = serializers.CharField(required=False, max_length=64)


class ErrorRowOutput(serializers.Serializer[Any]):
    hour = serializers.DateTimeField()
    index_name = serializers.CharField(
        help_text='The index the request reached; "" when it failed before one was resolved.'
    )
    code = serializers.CharField()
    status = serializers.IntegerField()
    requests = serializers.IntegerField()


class StoredVectorsSampleOutput(serializers.Serializer[Any]):
    hour = serializers.DateTimeField()
    index_id = serializers.UUIDField()
    index_name = serializers.CharField()
    vectors = serializers.IntegerField()
    dimension = serializers.IntegerField()
    sampled_at = serializers.DateTimeField()


class UsageSummaryApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="usage_summary",
        tags=["indexes"],
        description="The tenant's usage summed over its indexes, per hour, newest first (hours "
        "with nothing left out): requests, read/write units, queries, vectors written and "
        "deleted, refused requests, vectors stored (the hour's sample); and the refused requests "
        "by error code over the range; and the indexes and dedicated clusters the tenant has "
        "now. One answer whatever the number of indexes; at most 31 "
        "days at a time (default: the last 24 hours).",
        parameters=[UsageSpanInput],
        responses={200: UsageSummaryOutput, **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        span = UsageSpanInput(data=query_filters(request))
        span.is_valid(raise_exception=True)
        return Response(UsageSummaryOutput(selectors.usage_summary(**span.validated_data)).data)


class ErrorListApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="usage_errors",
        tags=["indexes"],
        description="Requests the gateway refused, per hour, index, error code and status, "
        "newest first: counted for requests whose API key authenticated (a request without a "
        "valid key has no tenant to count it for) and flushed with the usage every few "
        "seconds. Filter with `since`/`until` (ISO 8601), `index` (\"\" for requests that "
        "failed before reaching one) and `code`.",
        parameters=[*PAGINATION_PARAMETERS, ErrorFilterInput],
        responses={200: paginated(ErrorRowOutput), **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        filters = ErrorFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        rows = selectors.error_list(**filters.validated_data)
        return paginate(request, rows, serializer_class=ErrorRowOutput, keys=("hour", "id"))


class StoredVectorsHistoryApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="usage_stored_vectors_history",
        tags=["indexes"],
        description="The vectors each index stored, sampled hourly by the workers (the latest "
        "sample of an hour is kept), newest first. Filter with `since`/`until` (ISO 8601) and "
        "`index`.",
        parameters=[*PAGINATION_PARAMETERS, UsageFilterInput],
        responses={200: paginated(StoredVectorsSampleOutput), **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        filters = UsageFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        rows = selectors.stored_vectors_history(**filters.validated_data)
        return paginate(
            request, rows, serializer_class=StoredVectorsSampleOutput, keys=("hour", "id")
        )
