"""One error shape for every response: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from controlplane.errors import ApplicationError
from tenants.scoping import TenantScopeRequired

logger = logging.getLogger("vectorplane.api")

# DRF exception class -> our stable code.
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.AuthenticationFailed: "invalid_credentials",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_details(detail: Any) -> dict[str, Any]:
    """DRF's nested ErrorDetail structure -> plain {field: [{"message", "code"}]}."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, exceptions.ErrorDetail):
            return {"message": str(value), "code": value.code}
        return {"message": str(value), "code": "invalid"}

    converted = convert(detail)
    if isinstance(converted, dict):
        return {"fields": converted}
    return {
        "fields": {"non_field_errors": converted if isinstance(converted, list) else [converted]}
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, exceptions.ValidationError):
        details = _validation_details(exc.detail)
        fields = details["fields"]
        code = "validation_error"
        if isinstance(fields, dict) and set(fields) == {"non_field_errors"}:
            items = fields["non_field_errors"]
            if items and all(
                isinstance(i, dict) and i.get("code") == "unknown_field" for i in items
            ):
                code = "unknown_field"
        return Response(
            error_body(code, "The request is not valid; see details.", details),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.APIException):
        mapped = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
        code = mapped or (exc.default_code if isinstance(exc.default_code, str) else "error")
        detail = exc.detail
        message = str(detail) if not isinstance(detail, (list, dict)) else str(exc.default_detail)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(int(wait) + 1)
        # Our authentication classes attach a precise code (api_key_revoked, ...).
        code = getattr(exc, "vectorplane_code", code)
        return Response(error_body(code, message), status=exc.status_code, headers=headers)
    if isinstance(exc, TenantScopeRequired):
        logger.error("tenant scope missing", exc_info=exc)
    else:
        logger.exception("unhandled error in %s", context.get("view"))
    return Response(
        error_body("internal_error", "An internal error occurred; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


# Django-level handlers (URLs no view matched, CSRF, crashes outside DRF).
def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404, "not_found", "No such endpoint.")


def handler500(request: HttpRequest) -> JsonResponse:
    return _json_error(500, "internal_error", "An internal error occurred; it has been logged.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(400, "bad_request", "The request could not be understood.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "permission_denied", "Forbidden.")


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return JsonResponse(
        error_body(
            "csrf_failed", "CSRF check failed; send the X-CSRFToken header.", {"reason": reason}
        ),
        status=403,
    )
