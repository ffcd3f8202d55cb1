from django.urls import path

from . import apis

T = "tenants/<slug:tenant_slug>"

urlpatterns = [
    path(f"{T}/indexes", apis.IndexListApi.as_view(), name="indexes"),
    path(f"{T}/indexes/<str:index_name>", apis.IndexDetailApi.as_view(), name="index"),
    path(f"{T}/usage", apis.UsageApi.as_view(), name="usage"),
    path(f"{T}/usage/stored-vectors", apis.StoredVectorsApi.as_view(), name="stored-vectors"),
]
