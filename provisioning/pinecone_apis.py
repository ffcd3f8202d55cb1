"""Pinecone's control-plane API (`GET/POST /indexes`, `GET/PATCH/DELETE /indexes/{name}`), so
that the official `pinecone` client works unchanged but for the host:

    pc = Pinecone(api_key="vpk_...", host="http://127.0.0.1:8000")
    pc.create_index(name="docs", dimension=384, metric="cosine", spec=ServerlessSpec(...))
    index = pc.Index("docs")          # the data plane, at the `host` we answer

Shapes follow the client's 2026-07 models (docs/pinecone-compat.md): an index is `name`,
`host`, `status{ready,state}`, `schema.fields._values{type,dimension,metric}`,
`deployment{deployment_type,cloud,region}`, `deletion_protection`; the 2025-era top-level
`dimension`/`metric`/`spec`/`vector_type` are added for older clients (5.x-9.x read those).
`cloud` and `region` are the labels the index was created with (vectorplane/locations.py).
The tenant is the API key's. Reads need any scope; create, configure and delete need the key's
`admin` scope.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any
from uuid import UUID

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from controlplane.api.authentication import TokenAuthentication
from controlplane.api.schema import errors
from controlplane.api.views import BaseAPIView
from controlplane.errors import ApplicationError, NotFoundError
from tenants.models import ApiKey, Scope, TenantStatus
from tenants.scoping import enter_tenant_scope, exit_tenant_scope
from vectorplane import locations

from . import selectors, services
from .models import Index, IndexStatus


def pinecone_index(index: Index, *, tenant_slug: str) -> dict[str, Any]:
    ready = index.status == IndexStatus.READY
    state = {
        IndexStatus.READY: "Ready",
        IndexStatus.INITIALIZING: "Initializing",
        IndexStatus.DELETING: "Terminating",
        IndexStatus.FAILED: "InitializationFailed",
    }.get(IndexStatus(index.status), "Terminating")
    host = selectors.index_host(index, tenant_slug=tenant_slug)
    if index.cluster_id is not None and index.cluster is not None:
        environment = index.cluster.name
        deployment: dict[str, Any] = {"deployment_type": "byoc", "environment": environment}
        legacy: dict[str, Any] = {"byoc": {"environment": environment}}
    else:
        # The labels it was created with: clients 5.x-7.x accept only aws, gcp and azure here.
        deployment = {"deployment_type": "managed", "cloud": index.cloud, "region": index.region}
        legacy = {"serverless": {"cloud": index.cloud, "region": index.region}}
    return {
        "name": index.name,
        "host": host,
        "status": {"ready": ready, "state": state},
        "schema": {
            "fields": {
                "_values": {
                    "type": "dense_vector",
                    "dimension": index.dimension,
                    "metric": index.metric,
                }
            }
        },
        "deployment": deployment,
        "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
        "deletion_protection": "enabled" if index.deletion_protection else "disabled",
        "tags": index.tags or None,
        # For clients of earlier API versions:
        "dimension": index.dimension,
        "metric": index.metric,
        "vector_type": "dense",
        "spec": legacy,
    }


def _bad(message: str, **details: Any) -> ApplicationError:
    return ApplicationError("validation_error", message, details=details)


def _parse_create(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.")
    known = {"name", "schema", "deployment", "deletion_protection", "tags", "read_capacity",
             "dimension", "metric", "spec", "vector_type"}  # fmt: skip
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApplicationError("unknown_field", f"Unknown field {unknown[0]!r}.",
                               details={"fields": unknown})  # fmt: skip
    name = body.get("name")
    if not isinstance(name, str):
        raise _bad("name is required.", field="name")
    fields = (
        (body.get("schema") or {}).get("fields") if isinstance(body.get("schema"), dict) else None
    )
    dense = (fields or {}).get("_values") if isinstance(fields, dict) else None
    if isinstance(fields, dict) and set(fields) - {"_values", "_sparse_values"}:
        raise ApplicationError(
            "unsupported_combination",
            "Only vector indexes (schema fields `_values`, `_sparse_values`) are supported.",
            details={"fields": sorted(fields)},
        )
    if dense is None and body.get("dimension") is not None:  # a pre-2026 body
        dense = {"type": "dense_vector", "dimension": body.get("dimension"),
                 "metric": body.get("metric", "cosine")}  # fmt: skip
    if not isinstance(dense, dict) or dense.get("type", "dense_vector") != "dense_vector":
        raise ApplicationError(
            "unsupported_combination",
            "A dense vector field (`_values` with a dimension) is required; sparse-only "
            "indexes are not supported on the shared pgvector tier.",
        )
    dimension = dense.get("dimension")
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1:
        raise _bad("dimension must be a positive integer.", field="dimension")
    metric = str(dense.get("metric") or "cosine").lower()
    deployment = body.get("deployment")
    spec = body.get("spec")
    if deployment is not None and not isinstance(deployment, dict):
        raise _bad("deployment must be an object.", field="deployment")
    if spec is not None and not isinstance(spec, dict):
        raise _bad("spec must be an object.", field="spec")
    where = "deployment"
    if deployment is None and isinstance(spec, dict) and len(spec) == 1:  # a pre-2026 body
        kind, value = next(iter(spec.items()))
        if not isinstance(value, dict):
            raise _bad(f"spec.{kind} must be an object.", field=f"spec.{kind}")
        if kind in ("pod", "byoc"):
            deployment = {"deployment_type": kind, **value}
        elif kind == "serverless":
            deployment = {"deployment_type": "managed", **value}
            where = "spec.serverless"
    cloud, region = _parse_location(deployment, where)
    cluster_name = None
    if isinstance(deployment, dict) and deployment.get("deployment_type") not in (None, "managed"):
        # A dedicated cluster of the tenant, named by `environment` (BYOC: the tenant's own
        # cluster; a pod spec is taken the same way).
        if deployment.get("deployment_type") not in ("pod", "byoc"):
            raise ApplicationError(
                "unsupported_combination",
                "deployment_type is managed (the shared tier), or byoc/pod with `environment` "
                "naming one of your dedicated clusters.",
                details={"deployment_type": deployment.get("deployment_type")},
            )
        cluster_name = deployment.get("environment")
        if not isinstance(cluster_name, str) or not cluster_name:
            raise _bad(
                "A byoc or pod deployment names a dedicated cluster in `environment`.",
                field="deployment.environment",
            )
    protection = body.get("deletion_protection", "disabled")
    if protection not in ("enabled", "disabled"):
        raise _bad("deletion_protection is enabled or disabled.", field="deletion_protection")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise _bad("tags map strings to strings.", field="tags")
    return {
        "name": name,
        "dimension": dimension,
        "metric": metric,
        "deletion_protection": protection == "enabled",
        "tags": tags,
        "cluster_name": cluster_name,
        "cloud": cloud,
        "region": region,
    }


def _parse_location(deployment: dict[str, Any] | None, where: str) -> tuple[str | None, str | None]:
    """The cloud and region labels of a managed (serverless) deployment; None for those not
    given (the service then takes the server's defaults) and for pod/byoc deployments, which
    name a dedicated cluster instead."""
    if deployment is None or deployment.get("deployment_type") not in (None, "managed"):
        return None, None
    cloud, region = deployment.get("cloud"), deployment.get("region")
    if cloud is not None and (error := locations.cloud_error(cloud)):
        raise _bad(error, field=f"{where}.cloud")
    if region is not None and (error := locations.region_error(region)):
        raise _bad(error, field=f"{where}.region")
    return cloud, region


class _PineconeView(BaseAPIView):
    """Authenticated by an API key only; the tenant is the key's, in scope for the request."""

    authentication_classes = [TokenAuthentication]
    permission_classes: list[Any] = []
    _scope: Token[UUID | None] | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        key = request.auth
        if not isinstance(key, ApiKey):
            raise ApplicationError(
                "unauthenticated", "Send an API key in the Api-Key header.", status=401
            )
        if key.tenant.status == TenantStatus.SUSPENDED:
            raise ApplicationError("tenant_suspended", "This tenant is suspended.", status=403)
        if request.method not in ("GET", "HEAD") and Scope.ADMIN not in key.scopes:
            raise ApplicationError(
                "insufficient_scope", "Creating, configuring and deleting indexes needs the "
                "admin scope.", status=403, details={"required_scope": Scope.ADMIN},
            )  # fmt: skip
        self.key = key
        self.tenant = key.tenant
        self._scope = enter_tenant_scope(key.tenant_id)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        scope = getattr(self, "_scope", None)
        if scope is not None:
            exit_tenant_scope(scope)
            self._scope = None
        return super().finalize_response(request, response, *args, **kwargs)


PINECONE_ERRORS = errors(400, 401, 403, 404)


class PineconeIndexListApi(_PineconeView):
    @extend_schema(
        operation_id="pinecone_indexes_list",
        tags=["pinecone"],
        description="Pinecone-compatible: the key's tenant's indexes (`{\"indexes\": [...]}`).",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **PINECONE_ERRORS},
    )
    def get(self, request: Request) -> Response:
        indexes = selectors.index_list().order_by("name")
        return Response(
            {"indexes": [pinecone_index(i, tenant_slug=self.tenant.slug) for i in indexes]}
        )

    @extend_schema(
        operation_id="pinecone_indexes_create",
        tags=["pinecone"],
        description="Pinecone-compatible create_index (2026-07 `schema`/`deployment` body, or "
        "the older `dimension`/`metric`/`spec`). Ready when it answers.",
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiResponse(OpenApiTypes.OBJECT), **errors(400, 401, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        args = _parse_create(request.data)
        cluster_name = args.pop("cluster_name")
        if cluster_name is not None:
            cluster = selectors.cluster_get(name=cluster_name)
            args.update(tier="dedicated", engine=cluster.engine, cluster=cluster)
        index = services.index_create(actor=self.actor(), tenant=self.tenant, **args)
        return Response(
            pinecone_index(index, tenant_slug=self.tenant.slug), status=status.HTTP_201_CREATED
        )


class PineconeIndexDetailApi(_PineconeView):
    def _index(self, name: str) -> Index:
        try:
            return selectors.index_get(name=name)
        except NotFoundError:
            raise NotFoundError("index", details={"index": name}) from None

    @extend_schema(
        operation_id="pinecone_indexes_describe",
        tags=["pinecone"],
        description="Pinecone-compatible describe_index, with the data-plane `host`.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **PINECONE_ERRORS},
    )
    def get(self, request: Request, index_name: str) -> Response:
        return Response(pinecone_index(self._index(index_name), tenant_slug=self.tenant.slug))

    @extend_schema(
        operation_id="pinecone_indexes_configure",
        tags=["pinecone"],
        description="Pinecone-compatible configure_index: `deletion_protection` and `tags` "
        "(merged; an empty value removes a tag).",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **PINECONE_ERRORS},
    )
    def patch(self, request: Request, index_name: str) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise _bad("The body must be a JSON object.")
        unknown = sorted(set(body) - {"deletion_protection", "tags", "deployment", "read_capacity"})
        if unknown:
            raise ApplicationError("unknown_field", f"Unknown field {unknown[0]!r}.",
                                   details={"fields": unknown})  # fmt: skip
        if "deployment" in body:
            raise ApplicationError(
                "unsupported_combination", "Pod settings (replicas, pod_type) do not apply."
            )
        protection = body.get("deletion_protection")
        if protection not in (None, "enabled", "disabled"):
            raise _bad("deletion_protection is enabled or disabled.")
        tags = body.get("tags")
        if tags is not None and (
            not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
        ):
            raise _bad("tags map strings to strings.", field="tags")
        index = services.index_configure(
            actor=self.actor(),
            tenant=self.tenant,
            index=self._index(index_name),
            deletion_protection=None if protection is None else protection == "enabled",
            tags=tags,
        )
        return Response(pinecone_index(index, tenant_slug=self.tenant.slug))

    @extend_schema(
        operation_id="pinecone_indexes_delete",
        tags=["pinecone"],
        description="Pinecone-compatible delete_index; describe answers 404 right after.",
        responses={202: None, **PINECONE_ERRORS},
    )
    def delete(self, request: Request, index_name: str) -> Response:
        services.index_delete(actor=self.actor(), tenant=self.tenant, index=self._index(index_name))
        return Response(status=status.HTTP_202_ACCEPTED)
