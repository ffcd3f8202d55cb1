from django.urls import path

from .apis import clusters, indexes, operator, usage

T = "tenants/<slug:tenant_slug>"

urlpatterns = [
    path(f"{T}/indexes", indexes.IndexListApi.as_view(), name="indexes"),
    path(f"{T}/indexes/<str:index_name>", indexes.IndexDetailApi.as_view(), name="index"),
    path(
        f"{T}/indexes/<str:index_name>/latency",
        indexes.IndexLatencyApi.as_view(),
        name="index-latency",
    ),
    path(
        f"{T}/indexes/<str:index_name>/playground-key",
        indexes.IndexPlaygroundKeyApi.as_view(),
        name="index-playground-key",
    ),
    path(
        f"{T}/indexes/<str:index_name>/evaluate",
        indexes.IndexEvaluateApi.as_view(),
        name="index-evaluate",
    ),
    path(
        f"{T}/indexes/<str:index_name>/evaluations",
        indexes.IndexEvaluationListApi.as_view(),
        name="index-evaluations",
    ),
    path(
        f"{T}/indexes/<str:index_name>/evaluations/<uuid:evaluation_id>",
        indexes.IndexEvaluationDetailApi.as_view(),
        name="index-evaluation",
    ),
    path(f"{T}/clusters", clusters.ClusterListApi.as_view(), name="clusters"),
    path(
        f"{T}/clusters/<str:cluster_name>", clusters.ClusterDetailApi.as_view(), name="cluster"
    ),
    path(
        f"{T}/clusters/<str:cluster_name>/events",
        clusters.ClusterEventListApi.as_view(),
        name="cluster-events",
    ),
    path(f"{T}/cluster-sizes", clusters.ClusterSizeListApi.as_view(), name="cluster-sizes"),
    path(f"{T}/usage", indexes.UsageApi.as_view(), name="usage"),
    path(f"{T}/usage/stored-vectors", indexes.StoredVectorsApi.as_view(), name="stored-vectors"),
    path(
        f"{T}/usage/stored-vectors/history",
        usage.StoredVectorsHistoryApi.as_view(),
        name="stored-vectors-history",
    ),
    path(f"{T}/usage/summary", usage.UsageSummaryApi.as_view(), name="usage-summary"),
    path(f"{T}/usage/errors", usage.ErrorListApi.as_view(), name="usage-errors"),
    # The platform operators' console (staff only; anyone else gets an unknown URL's 404).
    path("operator/tenants", operator.OperatorTenantListApi.as_view(), name="operator-tenants"),
    path("operator/clusters", operator.OperatorClusterListApi.as_view(), name="operator-clusters"),
    path("operator/health", operator.OperatorHealthApi.as_view(), name="operator-health"),
]
