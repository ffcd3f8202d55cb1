"""OpenAPI schema checks and shared response declarations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse

from vectorplane.contract import names

from .serializers import ErrorSerializer


def require_operation_docs(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Fail schema generation when an operation lacks a tag, an operation id or a description
    (Sentry's rule: every public endpoint is documented)."""
    missing: list[str] = []
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method.startswith("x-") or method == "parameters":
                continue
            for field in ("tags", "operationId", "description"):
                if not operation.get(field):
                    missing.append(f"{method.upper()} {path}: {field}")
    if missing:
        raise RuntimeError("undocumented operations:\n  " + "\n  ".join(missing))
    return result


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input (`validation_error`, `unknown_field`, `malformed_json`, ...).",
        401: "Missing or invalid credentials.",
        403: "Authenticated but not allowed (`permission_denied`, `insufficient_scope`, ...).",
        404: "Not found, or not visible to the caller.",
        409: "Conflicts with the current state (`slug_taken`, `last_owner`, ...).",
    }
    return {
        s: OpenApiResponse(ErrorSerializer, description=text.get(s, "Error.")) for s in statuses
    }


STANDARD_ERRORS = errors(400, 401, 403, 404)


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "controlplane.api.authentication.TokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key with the admin scope (`vpk_...`) or a personal access "
            "token (`vpp_...`). An API key may also be sent as the `Api-Key` header.",
        }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "controlplane.api.authentication.CsrfSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


class StrictInputExtension(OpenApiSerializerExtension):
    """Request bodies of StrictInputSerializer say what the serializer enforces: no field
    beyond those listed (`additionalProperties: false`; an unknown one is `unknown_field`)."""

    target_class = "controlplane.api.serializers.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


# Path parameters by name: what a value that can name something looks like (anything else is a
# 404, like a name that does not exist).
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "tenant_slug": {"type": "string", "pattern": names.SLUG_PATTERN,
                    "maxLength": names.MAX_SLUG_LENGTH},
    "index_name": {"type": "string", "pattern": names.NAME_PATTERN,
                   "maxLength": names.MAX_NAME_LENGTH},
    "cluster_name": {"type": "string", "pattern": names.NAME_PATTERN,
                     "maxLength": names.MAX_NAME_LENGTH},
    "user_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
}  # fmt: skip


def describe_path_parameters(
    result: dict[str, Any], generator: Any, **kwargs: Any
) -> dict[str, Any]:
    """Give the path parameters their rules (PATH_PARAMETERS), which URL converters cannot."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                rule = PATH_PARAMETERS.get(parameter.get("name", ""))
                if parameter.get("in") == "path" and rule is not None:
                    parameter["schema"] = dict(rule)
    return result


# The filter language has one description, the gateway's (docs/gateway-openapi.yaml); the
# management API's row filters are the same language, so its schema takes those components.
FILTER_COMPONENTS = (
    "Filter", "NonEmptyFilter", "FilterList", "FilterNumber", "FilterValue", "FilterValues",
    "FilterOperators",
)  # fmt: skip
ROW_FILTER_SCHEMA: dict[str, Any] = {
    "$ref": "#/components/schemas/Filter",
    "description": "A metadata filter (Pinecone syntax) bound to the key: the gateway ANDs it "
    "into every read and refuses writes whose metadata does not satisfy it, e.g. "
    '`{"user_id": {"$eq": "u42"}}` for a per-end-user key (needs `id_prefix` with the write '
    "scope).",
}


def include_filter_schema(
    result: dict[str, Any], generator: Any, **kwargs: Any
) -> dict[str, Any]:
    """Copy the filter language's components from the gateway's schema."""
    path = Path(settings.BASE_DIR) / "docs" / "gateway-openapi.yaml"
    gateway = yaml.safe_load(path.read_text(encoding="utf-8"))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name in FILTER_COMPONENTS:
        schemas[name] = gateway["components"]["schemas"][name]
    return result
