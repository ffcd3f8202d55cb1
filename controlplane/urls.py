from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from controlplane import console
from provisioning.apis import pinecone


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means not ready
        return JsonResponse({"status": "unavailable", "error": type(exc).__name__}, status=503)
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("admin/", admin.site.urls),
    # The web console (frontend/): its entry for every client-side route.
    path("console", console.console_root),
    path("console/", console.console, name="console"),
    path("console/<path:path>", console.console),
    path("api/v1/", include(("tenants.urls", "tenants"), namespace="v1")),
    path("api/v1/", include(("provisioning.urls", "provisioning"), namespace="v1-indexes")),
    path("api/v1/", include(("billing.urls", "billing"), namespace="v1-billing")),
    # Pinecone's control-plane paths, for the official client (`Pinecone(host=...)`).
    path("indexes", pinecone.PineconeIndexListApi.as_view(), name="pinecone-indexes"),
    path(
        "indexes/<str:index_name>",
        pinecone.PineconeIndexDetailApi.as_view(),
        name="pinecone-index",
    ),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

handler400 = "controlplane.api.errors.handler400"
handler403 = "controlplane.api.errors.handler403"
handler404 = "controlplane.api.errors.handler404"
handler500 = "controlplane.api.errors.handler500"
