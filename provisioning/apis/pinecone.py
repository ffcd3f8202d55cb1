"""Pinecone's control-plane API (`GET/POST /indexes`, `GET/PATCH/DELETE /indexes/{name}`), so
that the official `pinecone` client works unchanged but for the host:

    pc = Pinecone(api_key="vpk_...", host="http://127.0.0.1:8000")
    pc.create_index(name="docs", dimension=384, metric="cosine", spec=ServerlessSpec(...))
    index = pc.Index("docs")          # the data plane, at the `host` we answer

Shapes follow the client's 2026-07 models (docs/pinecone-compat.md): an index is `name`,
`host`, `status{ready,state}`, `schema.fields._values{type,dimension,metric}`,
`deployment{deployment_type,cloud,region}`, `deletion_protection`; the 2025-era top-level
`dimension`/`metric`/`spec`/`vector_type` are added for older clients (5.x-9.x read those).
`cloud` and `region` are the labels the index was created with (vectorplane/contract/locations.py).
The tenant is the API key's. Reads need any scope; create, configure and delete need the key's
`admin` scope.
"""

from __future__ import annotations

import re
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
from vectorplane.contract import locations, names

from .. import selectors, validation
from ..models import Index, IndexStatus, Metric
from ..services import indexes as index_services

MAX_DIMENSION = 65_536  # our API's bound too (IndexCreateInput); the plan decides below it


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


def _bad(message: str, field: str | None = None, **details: Any) -> ApplicationError:
    if field is not None:
        details = {"field": field, **details}
    return ApplicationError("validation_error", message, details=details)


# The request bodies, as the parsers below enforce them (and as docs/openapi.yaml shows them).
# Pinecone's rule for its API as for the gateway's: an optional field sent as null is absent.
_NAME_SCHEMA = {"type": "string", "pattern": names.NAME_PATTERN,
                "maxLength": names.MAX_NAME_LENGTH}
_DIMENSION_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION}
_METRIC_SCHEMA = {"type": ["string", "null"], "enum": [*Metric.values, None]}
_CLOUD_SCHEMA = {"type": ["string", "null"], "enum": [*locations.CLOUDS, None]}
_REGION_SCHEMA = {"type": ["string", "null"], "pattern": locations.REGION_PATTERN,
                  "maxLength": locations.REGION_MAX_LENGTH}
_PROTECTION_SCHEMA = {"type": ["string", "null"], "enum": ["enabled", "disabled", None]}
_TAGS_SCHEMA = {
    "type": ["object", "null"],
    "maxProperties": validation.MAX_TAGS,
    "propertyNames": {"type": "string", "pattern": validation.TAG_KEY_PATTERN,
                      "maxLength": validation.MAX_TAG_KEY_LENGTH},
    "additionalProperties": {"type": "string", "maxLength": validation.MAX_TAG_VALUE_LENGTH,
                             "pattern": "^[^\\x00]*$"},
    "description": "At most 20; keys 1-80 letters, digits, `_` and `-`; values at most 120 "
    "characters (on configure, an empty value removes the tag).",
}
_READ_CAPACITY_SCHEMA = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {"mode": {"type": ["string", "null"], "enum": ["OnDemand", None]}},
    "description": "Only `OnDemand` (dedicated read nodes do not apply).",
}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (),
            nullable: bool = True) -> dict[str, Any]:  # fmt: skip
    schema: dict[str, Any] = {"type": ["object", "null"] if nullable else "object",
                              "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema  # fmt: skip


_ENVIRONMENT_SCHEMA = {**_NAME_SCHEMA, "description": "One of your dedicated clusters (its name)."}
_POD_FIELDS = {
    "environment": _ENVIRONMENT_SCHEMA,
    "pod_type": {"type": ["string", "null"], "maxLength": 32, "pattern": "^[a-z0-9.]*$",
                 "description": "Accepted and ignored (the cluster's size decides)."},
    "replicas": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
    "shards": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
    "pods": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000},
}  # fmt: skip
PINECONE_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "anyOf": [  # a dimension, the 2026 way or the 2025 way
        {"required": ["schema"], "properties": {"schema": {
            "type": "object", "required": ["fields"], "properties": {"fields": {
                "type": "object", "required": ["_values"],
                "properties": {"_values": {"type": "object"}}}}}}},
        {"required": ["dimension"], "properties": {"dimension": {"type": "integer"}}},
    ],
    "description": "The 2026-07 body (`schema`, `deployment`) or the 2025 one (`dimension`, "
    "`metric`, `spec`); one of `schema._values.dimension` and `dimension` is required. A "
    "`byoc` or `pod` deployment puts the index on the dedicated cluster its `environment` "
    "names.",
    "properties": {
        "name": _NAME_SCHEMA,
        "schema": _object({"fields": _object({
            "_values": _object({
                "type": {"type": ["string", "null"], "enum": ["dense_vector", None]},
                "dimension": _DIMENSION_SCHEMA,
                "metric": _METRIC_SCHEMA,
            }, ("dimension",)),
            "_sparse_values": {"type": ["object", "null"],
                               "description": "Refused: sparse-only indexes are not supported "
                               "(`unsupported_combination`)."},
        })}),
        "deployment": _object({
            "deployment_type": {"type": ["string", "null"],
                                "enum": ["managed", "pod", "byoc", None]},
            "cloud": _CLOUD_SCHEMA,
            "region": _REGION_SCHEMA,
            **_POD_FIELDS,
        }),
        "dimension": {**_DIMENSION_SCHEMA, "type": ["integer", "null"]},
        "metric": _METRIC_SCHEMA,
        "vector_type": {"type": ["string", "null"], "enum": ["dense", None]},
        "spec": {
            "type": ["object", "null"], "minProperties": 1, "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "serverless": _object({"cloud": _CLOUD_SCHEMA, "region": _REGION_SCHEMA,
                                       "read_capacity": _READ_CAPACITY_SCHEMA},
                                      nullable=False),
                "pod": _object(_POD_FIELDS, ("environment",), nullable=False),
                "byoc": _object({"environment": _ENVIRONMENT_SCHEMA,
                                 "read_capacity": _READ_CAPACITY_SCHEMA},
                                ("environment",), nullable=False),
            },
        },
        "read_capacity": _READ_CAPACITY_SCHEMA,
        "deletion_protection": _PROTECTION_SCHEMA,
        "tags": _TAGS_SCHEMA,
    },
}  # fmt: skip
PINECONE_CONFIGURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "deletion_protection": _PROTECTION_SCHEMA,
        "tags": _TAGS_SCHEMA,
        "read_capacity": _READ_CAPACITY_SCHEMA,
    },
    "description": "A `deployment` (pod settings) is refused with `unsupported_combination`.",
}  # fmt: skip


def _present(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _mapping(value: Any, field: str, known: set[str]) -> dict[str, Any]:
    """An object with only `known` keys (null values dropped), or a 400 naming `field`."""
    if not isinstance(value, dict):
        raise _bad(f"{field} must be an object.", field)
    present = _present(value)
    unknown = sorted(set(present) - known)
    if unknown:
        raise ApplicationError(
            "unknown_field", f"{field}: unknown field {unknown[0]!r}.",
            details={"fields": [f"{field}.{u}" for u in unknown]},
        )  # fmt: skip
    return present


def _choice(value: Any, field: str, allowed: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise _bad(f"{field} is one of {', '.join(allowed)}.", field)
    return value


def _integer(value: Any, field: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"{field} must be an integer from {low} to {high}.", field)
    return value


def _read_capacity(value: Any, field: str) -> None:
    if value is None:
        return
    mode = _mapping(value, field, {"mode"}).get("mode")
    if mode is not None and mode != "OnDemand":
        raise ApplicationError(
            "unsupported_combination", "Only the OnDemand read capacity mode applies.",
            details={"field": f"{field}.mode"},
        )  # fmt: skip


def _pod_options(deployment: dict[str, Any], where: str) -> None:
    pod_type = deployment.get("pod_type")
    if pod_type is not None and (
        not isinstance(pod_type, str) or len(pod_type) > 32
        or not re.fullmatch(r"[a-z0-9.]*", pod_type)
    ):  # fmt: skip
        raise _bad("pod_type is a short name such as p1.x1.", f"{where}.pod_type")
    for name, high in (("replicas", 100), ("shards", 100), ("pods", 10_000)):
        if deployment.get(name) is not None:
            _integer(deployment[name], f"{where}.{name}", 1, high)


_DEPLOYMENT_FIELDS = {"deployment_type", "cloud", "region", *_POD_FIELDS}


def _parse_create(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.")
    body = _present(body)
    unknown = sorted(set(body) - set(PINECONE_CREATE_SCHEMA["properties"]))
    if unknown:
        raise ApplicationError("unknown_field", f"Unknown field {unknown[0]!r}.",
                               details={"fields": unknown})  # fmt: skip
    name = body.get("name")
    if not isinstance(name, str):
        raise _bad("name is required.", "name")
    dense: dict[str, Any] | None = None
    if "schema" in body:
        schema = _mapping(body["schema"], "schema", {"fields"})
        fields = schema.get("fields", {})
        if not isinstance(fields, dict):
            raise _bad("schema.fields must be an object.", "schema.fields")
        fields = _present(fields)
        if set(fields) - {"_values"}:
            raise ApplicationError(
                "unsupported_combination",
                "Only dense vector indexes (schema field `_values`) are supported; sparse "
                "values are stored per record on any index.",
                details={"fields": sorted(fields)},
            )
        if "_values" in fields:
            dense = _mapping(fields["_values"], "schema.fields._values",
                             {"type", "dimension", "metric"})  # fmt: skip
            _choice(dense.get("type"), "schema.fields._values.type", ("dense_vector",),
                    "dense_vector")  # fmt: skip
            where = "schema.fields._values"
    if dense is None and "dimension" in body:  # a pre-2026 body
        dense = {"dimension": body["dimension"], "metric": body.get("metric")}
        where = ""
    if dense is None:
        raise _bad(
            "A dimension is required (schema.fields._values.dimension, or dimension).",
            "dimension",
        )
    prefix = f"{where}." if where else ""
    if "dimension" not in dense:
        raise _bad("dimension is required.", f"{prefix}dimension")
    dimension = _integer(dense["dimension"], f"{prefix}dimension", 1, MAX_DIMENSION)
    metric = _choice(dense.get("metric"), f"{prefix}metric", tuple(Metric.values), "cosine")
    if body.get("vector_type") is not None:
        _choice(body["vector_type"], "vector_type", ("dense",), "dense")
    _read_capacity(body.get("read_capacity"), "read_capacity")
    deployment: dict[str, Any] | None = None
    where = "deployment"
    if "deployment" in body:
        deployment = _mapping(body["deployment"], "deployment", _DEPLOYMENT_FIELDS)
    elif "spec" in body:  # a pre-2026 body
        spec = body["spec"]
        if not isinstance(spec, dict):
            raise _bad("spec must be an object.", "spec")
        if len(spec) != 1 or next(iter(spec)) not in ("serverless", "pod", "byoc"):
            raise _bad("spec is one of {serverless}, {pod} and {byoc}.", "spec")
        kind, value = next(iter(spec.items()))
        where = f"spec.{kind}"
        if kind == "serverless":
            value = _mapping(value, where, {"cloud", "region", "read_capacity"})
            _read_capacity(value.pop("read_capacity", None), f"{where}.read_capacity")
            deployment = {"deployment_type": "managed", **value}
        elif kind == "byoc":
            value = _mapping(value, where, {"environment", "read_capacity"})
            _read_capacity(value.pop("read_capacity", None), f"{where}.read_capacity")
            deployment = {"deployment_type": "byoc", **value}
        else:
            deployment = {"deployment_type": "pod", **_mapping(value, where, set(_POD_FIELDS))}
    kind = (deployment or {}).get("deployment_type", "managed")
    if not isinstance(kind, str) or kind not in ("managed", "pod", "byoc"):
        raise ApplicationError(
            "unsupported_combination",
            "deployment_type is managed (the shared tier), or byoc/pod with `environment` "
            "naming one of your dedicated clusters.",
            details={"deployment_type": kind if isinstance(kind, str) else None},
        )
    cloud, region, cluster_name = None, None, None
    if kind == "managed":
        cloud, region = _parse_location(deployment, where)
    else:
        assert deployment is not None  # noqa: S101 - a non-managed kind came from it
        _pod_options(deployment, where)
        cluster_name = deployment.get("environment")
        if not names.is_name(cluster_name):
            raise _bad(
                "A byoc or pod deployment names one of your dedicated clusters in "
                "`environment`.",
                f"{where}.environment",
            )
    protection = _choice(body.get("deletion_protection"), "deletion_protection",
                         ("enabled", "disabled"), "disabled")  # fmt: skip
    return {
        "name": name,
        "dimension": dimension,
        "metric": metric,
        "deletion_protection": protection == "enabled",
        "tags": body.get("tags") or {},  # checked by validation.check_tags, as for our API
        "cluster_name": cluster_name,
        "cloud": cloud,
        "region": region,
    }


def _parse_location(deployment: dict[str, Any] | None, where: str) -> tuple[str | None, str | None]:
    """The cloud and region labels of a managed (serverless) deployment; None for those not
    given (the service then takes the server's defaults)."""
    if deployment is None:
        return None, None
    cloud, region = deployment.get("cloud"), deployment.get("region")
    if cloud is not None and (error := locations.cloud_error(cloud)):
        raise _bad(error, f"{where}.cloud")
    if region is not None and (error := locations.region_error(region)):
        raise _bad(error, f"{where}.region")
    for option in _POD_FIELDS:
        if option in deployment:
            raise _bad(f"{option} applies to pod and byoc deployments only.", f"{where}.{option}")
    return cloud, region


def _parse_configure(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.")
    body = _present(body)
    if "deployment" in body:
        raise ApplicationError(
            "unsupported_combination", "Pod settings (replicas, pod_type) do not apply."
        )
    unknown = sorted(set(body) - set(PINECONE_CONFIGURE_SCHEMA["properties"]))
    if unknown:
        raise ApplicationError("unknown_field", f"Unknown field {unknown[0]!r}.",
                               details={"fields": unknown})  # fmt: skip
    _read_capacity(body.get("read_capacity"), "read_capacity")
    protection = body.get("deletion_protection")
    if protection is not None:
        _choice(protection, "deletion_protection", ("enabled", "disabled"), "disabled")
    return {
        "deletion_protection": None if protection is None else protection == "enabled",
        "tags": body.get("tags"),  # checked by validation.check_tags
    }


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
        request={"application/json": PINECONE_CREATE_SCHEMA},
        responses={201: OpenApiResponse(OpenApiTypes.OBJECT), **errors(400, 401, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        args = _parse_create(request.data)
        cluster_name = args.pop("cluster_name")
        if cluster_name is not None:
            cluster = selectors.cluster_get(name=cluster_name)
            args.update(tier="dedicated", engine=cluster.engine, cluster=cluster)
        index = index_services.index_create(actor=self.actor(), tenant=self.tenant, **args)
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
        request={"application/json": PINECONE_CONFIGURE_SCHEMA},
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **PINECONE_ERRORS},
    )
    def patch(self, request: Request, index_name: str) -> Response:
        args = _parse_configure(request.data)
        index = index_services.index_configure(
            actor=self.actor(),
            tenant=self.tenant,
            index=self._index(index_name),
            **args,
        )
        return Response(pinecone_index(index, tenant_slug=self.tenant.slug))

    @extend_schema(
        operation_id="pinecone_indexes_delete",
        tags=["pinecone"],
        description="Pinecone-compatible delete_index; describe answers 404 right after.",
        responses={202: None, **PINECONE_ERRORS},
    )
    def delete(self, request: Request, index_name: str) -> Response:
        index_services.index_delete(
            actor=self.actor(), tenant=self.tenant, index=self._index(index_name)
        )
        return Response(status=status.HTTP_202_ACCEPTED)
