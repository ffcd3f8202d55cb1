"""OpenAPI schema checks and shared response declarations."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

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
