"""Index management: `/api/v1/tenants/{slug}/indexes[/{name}]`."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.pagination import PAGINATION_PARAMETERS, paginate, paginated, query_filters
from controlplane.api.schema import ROW_FILTER_SCHEMA, errors
from controlplane.api.serializers import QueryInputSerializer, StrictInputSerializer
from controlplane.api.views import TenantAPIView
from tenants.models import Engine, Role, Tier
from vectorplane.contract import latency, locations, names

from .. import selectors, validation
from ..models import EvaluationStatus, Index, IndexEvaluation, Metric
from ..services import evaluations as evaluation_services
from ..services import indexes as index_services

INDEX_ERRORS = errors(400, 401, 403, 404)


class IndexOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    name = serializers.CharField()
    dimension = serializers.IntegerField()
    metric = serializers.ChoiceField(Metric.choices)
    engine = serializers.ChoiceField(Engine.choices)
    tier = serializers.ChoiceField(Tier.choices)
    vector_type = serializers.CharField(
        help_text="`vector` (float32, up to 2,000 dims) or `halfvec` (float16, up to 4,000)."
    )
    hnsw_m = serializers.IntegerField()
    hnsw_ef_construction = serializers.IntegerField()
    ef_search = serializers.IntegerField()
    target_recall = serializers.FloatField(
        allow_null=True,
        help_text="The recall each evaluation tunes ef_search to (null: no target).",
    )
    text_field = serializers.BooleanField()
    deletion_protection = serializers.BooleanField()
    tags = serializers.DictField(child=serializers.CharField())
    cloud = serializers.ChoiceField(
        locations.CLOUDS, help_text="Pinecone's `cloud` label (as created; not placement)."
    )
    region = serializers.CharField(help_text="Pinecone's `region` label (as created).")
    status = serializers.CharField()
    cluster = serializers.SerializerMethodField(
        help_text="The dedicated cluster holding the index (null: the shared tier)."
    )
    host = serializers.SerializerMethodField(help_text="Where the data-plane API answers.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_cluster(self, index: Index) -> str | None:
        return index.cluster.name if index.cluster_id and index.cluster else None

    def get_host(self, index: Index) -> str:
        return selectors.index_host(index, tenant_slug=self.context["tenant_slug"])


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": validation.MAX_TAGS,
        "propertyNames": {"type": "string", "pattern": validation.TAG_KEY_PATTERN,
                          "maxLength": validation.MAX_TAG_KEY_LENGTH},
        "additionalProperties": {"type": "string", "maxLength": validation.MAX_TAG_VALUE_LENGTH,
                                 "pattern": "^[^\\x00]*$"},
        "description": "Tags (Pinecone's rules): at most 20; keys 1-80 letters, digits, `_` and "
        "`-`; values at most 120 characters. On configure an empty value removes the tag.",
    }
)  # fmt: skip
class TagsField(serializers.DictField):
    """An index's tags: validated by `validation.check_tags`, for both APIs."""

    child = serializers.CharField(allow_blank=True, trim_whitespace=False)


class IndexCreateInput(StrictInputSerializer):
    name = serializers.RegexField(names.NAME_PATTERN, max_length=names.MAX_NAME_LENGTH)
    dimension = serializers.IntegerField(min_value=1, max_value=65536)
    metric = serializers.ChoiceField(Metric.choices, default=Metric.COSINE)
    engine = serializers.ChoiceField(Engine.choices, default=Engine.PGVECTOR)
    tier = serializers.ChoiceField(Tier.choices, default=Tier.SHARED)
    hnsw_m = serializers.IntegerField(min_value=2, max_value=100, default=16)
    hnsw_ef_construction = serializers.IntegerField(min_value=4, max_value=1000, default=64)
    ef_search = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    text_field = serializers.BooleanField(default=False)
    deletion_protection = serializers.BooleanField(default=False)
    tags = TagsField(default=dict)
    cluster = serializers.CharField(
        required=False,
        max_length=45,
        help_text="The dedicated cluster (its name) for `tier: dedicated`; the engine must match.",
    )
    cloud = serializers.ChoiceField(
        locations.CLOUDS,
        required=False,
        help_text="Pinecone's `cloud` label, answered back to Pinecone's clients (which accept "
        "only these); the server's VECTORPLANE_DEFAULT_CLOUD when absent.",
    )
    region = serializers.RegexField(
        locations.REGION_PATTERN,
        max_length=locations.REGION_MAX_LENGTH,
        required=False,
        help_text="Pinecone's `region` label (e.g. `us-east-1`); the server's "
        "VECTORPLANE_DEFAULT_REGION when absent.",
    )


class IndexConfigureInput(StrictInputSerializer):
    ef_search = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    target_recall = serializers.FloatField(
        min_value=index_services.TARGET_RECALL_RANGE[0],
        max_value=index_services.TARGET_RECALL_RANGE[1],
        required=False,
        allow_null=True,
        help_text="A recall@k to meet (0.5 to 0.999; null clears it): after each succeeded "
        "evaluation the index's ef_search becomes the smallest evaluated value meeting it "
        "(audited `index.ef_search_tuned`); unchanged when none does.",
    )
    deletion_protection = serializers.BooleanField(required=False)
    tags = TagsField(required=False)


class IndexListApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "POST": Role.MEMBER}

    @extend_schema(
        operation_id="indexes_list",
        tags=["indexes"],
        description="The tenant's indexes, newest first.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(IndexOutput), **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        return paginate(
            request,
            selectors.index_list(),
            serializer_class=IndexOutput,
            context={"tenant_slug": self.tenant.slug},
        )

    @extend_schema(
        operation_id="indexes_create",
        tags=["indexes"],
        description="Creates an index. Shared-tier pgvector indexes, and indexes on a ready "
        "dedicated cluster (`tier: dedicated`, `cluster: <name>`, `engine` = the cluster's), are "
        "ready when this answers. The pgvector vector type follows the dimension: `vector` up "
        "to 2,000, `halfvec` up to 4,000 (pgvector's HNSW limits). Plan limits apply (count, "
        "dimension, tier, engine).",
        request=IndexCreateInput,
        responses={201: IndexOutput, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, tenant_slug: str) -> Response:
        data = IndexCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        cluster_name = values.pop("cluster", None)
        cluster = selectors.cluster_get(name=cluster_name) if cluster_name else None
        index = index_services.index_create(
            actor=self.actor(), tenant=self.tenant, cluster=cluster, **values
        )
        body = IndexOutput(index, context={"tenant_slug": self.tenant.slug}).data
        return Response(body, status=status.HTTP_201_CREATED)


class IndexDetailApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER, "PATCH": Role.MEMBER, "DELETE": Role.MEMBER}

    @extend_schema(
        operation_id="indexes_retrieve",
        tags=["indexes"],
        description="One index, with its data-plane host.",
        responses={200: IndexOutput, **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        index = selectors.index_get(name=index_name)
        return Response(IndexOutput(index, context={"tenant_slug": self.tenant.slug}).data)

    @extend_schema(
        operation_id="indexes_configure",
        tags=["indexes"],
        description="Changes the default ef_search, the target recall, deletion protection or "
        "tags (an empty string removes a tag).",
        request=IndexConfigureInput,
        responses={200: IndexOutput, **INDEX_ERRORS},
    )
    def patch(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        data = IndexConfigureInput(data=request.data)
        data.is_valid(raise_exception=True)
        index = index_services.index_configure(
            actor=self.actor(),
            tenant=self.tenant,
            index=selectors.index_get(name=index_name),
            **data.validated_data,
        )
        return Response(IndexOutput(index, context={"tenant_slug": self.tenant.slug}).data)

    @extend_schema(
        operation_id="indexes_destroy",
        tags=["indexes"],
        description="Deletes the index and its vectors (refused with `deletion_protected` "
        "while deletion protection is on).",
        responses={204: None, **INDEX_ERRORS},
    )
    def delete(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        index_services.index_delete(
            actor=self.actor(), tenant=self.tenant, index=selectors.index_get(name=index_name)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlaygroundKeyOutput(serializers.Serializer[Any]):
    key = serializers.CharField(help_text="The key's secret (shown once): scope read, this index.")
    key_id = serializers.UUIDField()
    expires_at = serializers.DateTimeField()
    index = serializers.CharField()
    host = serializers.CharField(help_text="The index's data-plane URL, for `Api-Key` requests.")


class IndexPlaygroundKeyApi(TenantAPIView):
    minimum_role = {"POST": Role.MEMBER}

    @extend_schema(
        operation_id="indexes_playground_key",
        tags=["indexes"],
        description="A short-lived key for querying this index through the gateway (the "
        "console's query playground): scope `read`, restricted to the index, expiring in "
        f"{index_services.PLAYGROUND_KEY_MINUTES} minutes, audited as `api_key.created` by the "
        "caller, listed with the tenant's keys as `console:<index>`. Members and above "
        "(minting keys is theirs). 409 `index_not_ready` while the index is not ready.",
        request=None,
        responses={201: PlaygroundKeyOutput, **INDEX_ERRORS},
    )
    def post(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        index = selectors.index_get(name=index_name)
        key, secret = index_services.index_playground_key(
            actor=self.actor(), tenant=self.tenant, index=index
        )
        host = selectors.index_host(index, tenant_slug=self.tenant.slug)
        body = {"key": secret, "key_id": key.id, "expires_at": key.expires_at,
                "index": index.name, "host": host}  # fmt: skip
        return Response(PlaygroundKeyOutput(body).data, status=status.HTTP_201_CREATED)


class LatencyHourOutput(serializers.Serializer[Any]):
    hour = serializers.DateTimeField()
    requests = serializers.IntegerField(help_text="Requests the gateway answered (2xx/3xx).")
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)


class LatencyOutput(serializers.Serializer[Any]):
    index = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bounds_ms = serializers.ListField(
        child=serializers.FloatField(),
        help_text="The histogram's bucket bounds: a percentile is the bound of its bucket.",
    )
    hours = LatencyHourOutput(many=True)


MAX_LATENCY_RANGE = timedelta(days=31)


class LatencyFilterInput(QueryInputSerializer):
    since = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive; default: "
                                      "24 hours before `until`.")  # fmt: skip
    until = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive; default: "
                                      "now.")  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - timedelta(hours=24)
        if not since < until:
            raise serializers.ValidationError({"since": "must be before until."})
        if until - since > MAX_LATENCY_RANGE:
            raise serializers.ValidationError({"since": "the range is at most 31 days."})
        return {"since": since, "until": until}


class IndexLatencyApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="indexes_latency",
        tags=["indexes"],
        description="The index's latency as the gateway measured it (from the request's "
        "arrival to its answer, answered requests only), per hour, newest first: requests and "
        "p50/p95/p99 in ms, upper bounds at the histogram's resolution (`bounds_ms`). Flushed "
        "with the usage every few seconds. At most 31 days at a time.",
        parameters=[LatencyFilterInput],
        responses={200: LatencyOutput, **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        filters = LatencyFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        index = selectors.index_get(name=index_name)
        span = filters.validated_data
        body = {
            "index": index.name,
            **span,
            "bounds_ms": list(latency.BOUNDS_MS),
            "hours": selectors.index_latency(index=index, **span),
        }
        return Response(LatencyOutput(body).data)


class UsageRowOutput(serializers.Serializer[Any]):
    index_id = serializers.UUIDField()
    index_name = serializers.CharField()
    hour = serializers.DateTimeField()
    requests = serializers.IntegerField()
    read_units = serializers.IntegerField()
    write_units = serializers.IntegerField()
    queries = serializers.IntegerField()
    vectors_written = serializers.IntegerField()
    vectors_deleted = serializers.IntegerField()


class UsageFilterInput(QueryInputSerializer):
    """Usage filters (`cursor` and `limit` are the pagination's)."""

    since = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive.")
    index = serializers.CharField(required=False, max_length=45)


class StoredVectorsOutput(serializers.Serializer[Any]):
    index = serializers.CharField()
    vectors = serializers.IntegerField()


StoredVectorsListOutput = type(
    "StoredVectorsListOutput",
    (serializers.Serializer,),
    {
        "data": StoredVectorsOutput(many=True),
        "total": serializers.IntegerField(
            help_text="Vectors stored in all the tenant's indexes (whatever `index` selects)."
        ),
    },
)

MAX_STORED_VECTORS_NAMES = 100


class StoredVectorsFilterInput(QueryInputSerializer):
    index = serializers.ListField(
        child=serializers.RegexField(names.NAME_PATTERN, max_length=names.MAX_NAME_LENGTH),
        required=False,
        max_length=MAX_STORED_VECTORS_NAMES,
        help_text="Only these indexes (repeat the parameter, at most 100); default: every index.",
    )
    largest = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_STORED_VECTORS_NAMES,
        help_text="Only the N indexes storing the most vectors, largest first (ties by name).",
    )


class UsageApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="usage_list",
        tags=["indexes"],
        description="Hourly usage per index (requests, read and write units, queries, vectors "
        "written and deleted), newest first, as counted by the gateway and flushed every few "
        "seconds. Filter with `since`/`until` (ISO 8601) and `index`.",
        parameters=[*PAGINATION_PARAMETERS, UsageFilterInput],
        responses={200: paginated(UsageRowOutput), **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        filters = UsageFilterInput(data=query_filters(request))
        filters.is_valid(raise_exception=True)
        rows = selectors.usage_list(**filters.validated_data)
        return paginate(request, rows, serializer_class=UsageRowOutput, keys=("hour", "id"))


class StoredVectorsApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="usage_stored_vectors",
        tags=["indexes"],
        description="Vectors stored now, per index (what the vector quota counts), by name, and "
        "their total over every index. `index` (repeatable, at most 100) answers only those "
        "indexes (unknown names are left out), e.g. the rows of a page of the index list; "
        "`largest=N` only the N that store the most (the overview's table).",
        parameters=[StoredVectorsFilterInput],
        responses={200: StoredVectorsListOutput, **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str) -> Response:
        params = request.query_params  # `index` repeats; every other parameter is one value
        filters = StoredVectorsFilterInput(
            data={k: params.getlist(k) if k == "index" else v for k, v in params.items()}
        )
        filters.is_valid(raise_exception=True)
        counts = selectors.stored_vectors(tenant_id=self.tenant.id)
        indexes = selectors.index_list().order_by("name")
        wanted = filters.validated_data.get("index")
        if wanted is not None:
            indexes = indexes.filter(name__in=wanted)
        rows = [(index.name, counts.get(index.id, 0)) for index in indexes]
        largest = filters.validated_data.get("largest")
        if largest is not None:
            rows = sorted(rows, key=lambda row: (-row[1], row[0]))[:largest]
        data = [{"index": name, "vectors": vectors} for name, vectors in rows]
        live = set(selectors.index_list().values_list("id", flat=True))
        total = sum(n for index_id, n in counts.items() if index_id in live)
        return Response({"data": data, "total": total})


# ====================================================================== evaluations


@extend_schema_field({**ROW_FILTER_SCHEMA, "description": "A metadata filter (Pinecone "
                      "syntax): the sample is drawn from, and every query ranks, the matching "
                      "records only (HNSW with iterative scans, as the gateway's filtered "
                      "queries)."})  # fmt: skip
class EvaluationFilterField(serializers.JSONField):
    """An evaluation's filter (validated by the service with the filter language's rules)."""


class EvaluateInput(StrictInputSerializer):
    """What to measure: `sample` stored vectors, or the `queries` given."""

    sample = serializers.IntegerField(
        min_value=1, max_value=evaluation_services.MAX_SAMPLE, default=100,
        help_text="How many stored vectors to query with (drawn uniformly from the namespace, "
        "matching the filter); ignored when `queries` is given.",
    )  # fmt: skip
    top_k = serializers.IntegerField(min_value=1, max_value=evaluation_services.MAX_TOP_K,
                                     default=10)  # fmt: skip
    ef_search = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=evaluation_services.MAX_EF_SEARCH),
        min_length=1,
        max_length=evaluation_services.MAX_EF_VALUES,
        default=list(evaluation_services.DEFAULT_EF_SEARCH),
        help_text="The HNSW ef_search values to measure (each with max(ef_search, top_k), as "
        "the gateway queries).",
    )
    namespace = serializers.CharField(max_length=512, default="", allow_blank=True,
                                      trim_whitespace=False)  # fmt: skip
    filter = EvaluationFilterField(required=False, allow_null=True, default=None)
    queries = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=1,
                                    max_length=65536),
        required=False,
        min_length=1,
        max_length=evaluation_services.MAX_SAMPLE,
        help_text="Query vectors (the index's dimension each) instead of sampled ones.",
    )  # fmt: skip

    def validate_namespace(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("must not hold NUL.")
        return value


class EvaluationResultOutput(serializers.Serializer[Any]):
    ef_search = serializers.IntegerField()
    effective_ef_search = serializers.IntegerField(
        help_text="The hnsw.ef_search the queries ran with: max(ef_search, top_k, +1 when sampled)."
    )
    hnsw_used = serializers.BooleanField(
        allow_null=True,
        help_text="Whether the planner ranked with the HNSW index (false: it chose an exact "
        "scan, as it does when ef_search approaches the table's size — what the gateway's "
        "queries get too).",
    )
    recall = serializers.FloatField(allow_null=True, help_text="Mean recall@top_k.")
    queries = serializers.IntegerField(help_text="Queries the mean is over.")
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)


class EvaluationResultsOutput(serializers.Serializer[Any]):
    queries = serializers.IntegerField(required=False)
    exact_p50_ms = serializers.FloatField(
        allow_null=True, required=False, help_text="The exact scan's p50 (what recall 1 costs)."
    )
    exact_p95_ms = serializers.FloatField(allow_null=True, required=False)
    by_ef_search = EvaluationResultOutput(many=True, required=False)


class EvaluationParamsOutput(serializers.Serializer[Any]):
    mode = serializers.ChoiceField(["sample", "queries"])
    sample = serializers.IntegerField(required=False)
    top_k = serializers.IntegerField()
    ef_search = serializers.ListField(child=serializers.IntegerField())
    namespace = serializers.CharField()
    filter = EvaluationFilterField(allow_null=True)
    queries = serializers.SerializerMethodField(help_text="How many query vectors were given.")

    def get_queries(self, params: dict[str, Any]) -> int | None:
        given = params.get("queries")
        return len(given) if given else None


class EvaluationOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    index = serializers.SerializerMethodField()
    status = serializers.ChoiceField(EvaluationStatus.choices)
    progress = serializers.FloatField(help_text="0 to 1.")
    params = EvaluationParamsOutput()
    results = EvaluationResultsOutput(help_text="Empty until the evaluation succeeded.")
    target_recall = serializers.FloatField(allow_null=True)
    chosen_ef_search = serializers.IntegerField(
        allow_null=True,
        help_text="The ef_search set on the index (the smallest meeting the target), or null.",
    )
    error = serializers.CharField(help_text="Why it failed (empty otherwise).")
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_index(self, evaluation: IndexEvaluation) -> str:
        return str(self.context["index_name"])


class IndexEvaluateApi(TenantAPIView):
    minimum_role = {"POST": Role.MEMBER}

    @extend_schema(
        operation_id="indexes_evaluate",
        tags=["indexes"],
        description="Measures the index's recall@top_k and latency per ef_search value: "
        "`sample` stored vectors (or the `queries` given) are ranked exactly (a sequential "
        "scan) and by the HNSW index, in a background task; poll the evaluation for its "
        "`progress` and `results`. With a target recall on the index, a succeeded evaluation "
        "sets ef_search to the smallest value meeting it. Members and above. One evaluation "
        "per index at a time (409 `evaluation_in_progress`); pgvector indexes only (409 "
        "`evaluation_unsupported` for Qdrant).",
        request=EvaluateInput,
        responses={202: EvaluationOutput, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        data = EvaluateInput(data=request.data)
        data.is_valid(raise_exception=True)
        index = selectors.index_get(name=index_name)
        evaluation = evaluation_services.index_evaluation_start(
            actor=self.actor(), tenant=self.tenant, index=index, **data.validated_data
        )
        evaluation.refresh_from_db()  # eager task runs (tests, inline) have moved it on
        body = EvaluationOutput(evaluation, context={"index_name": index.name}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class IndexEvaluationListApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="indexes_evaluations_list",
        tags=["indexes"],
        description="The index's evaluations, newest first.",
        parameters=PAGINATION_PARAMETERS,
        responses={200: paginated(EvaluationOutput), **INDEX_ERRORS},
    )
    def get(self, request: Request, tenant_slug: str, index_name: str) -> Response:
        index = selectors.index_get(name=index_name)
        return paginate(
            request,
            selectors.index_evaluations(index=index),
            serializer_class=EvaluationOutput,
            context={"index_name": index.name},
        )


class IndexEvaluationDetailApi(TenantAPIView):
    minimum_role = {"GET": Role.VIEWER}

    @extend_schema(
        operation_id="indexes_evaluations_retrieve",
        tags=["indexes"],
        description="One evaluation: its status, progress (0 to 1) and, once succeeded, "
        "recall and p50/p95 latency per ef_search value.",
        responses={200: EvaluationOutput, **INDEX_ERRORS},
    )
    def get(
        self, request: Request, tenant_slug: str, index_name: str, evaluation_id: uuid.UUID
    ) -> Response:
        index = selectors.index_get(name=index_name)
        evaluation = selectors.index_evaluation_get(index=index, evaluation_id=evaluation_id)
        return Response(EvaluationOutput(evaluation, context={"index_name": index.name}).data)
