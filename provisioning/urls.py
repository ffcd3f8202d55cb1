from django.urls import path

from . import apis, cluster_apis

T = "tenants/<slug:tenant_slug>"

urlpatterns = [
    path(f"{T}/indexes", apis.IndexListApi.as_view(), name="indexes"),
    path(f"{T}/indexes/<str:index_name>", apis.IndexDetailApi.as_view(), name="index"),
    path(f"{T}/clusters", cluster_apis.ClusterListApi.as_view(), name="clusters"),
    path(
        f"{T}/clusters/<str:cluster_name>", cluster_apis.ClusterDetailApi.as_view(), name="cluster"
    ),
    path(f"{T}/cluster-sizes", cluster_apis.ClusterSizeListApi.as_view(), name="cluster-sizes"),
    path(f"{T}/usage", apis.UsageApi.as_view(), name="usage"),
    path(f"{T}/usage/stored-vectors", apis.StoredVectorsApi.as_view(), name="stored-vectors"),
]
