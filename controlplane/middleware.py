"""Middleware of the control plane."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, JsonResponse

from controlplane.api.errors import error_body


class StrictQueryStringMiddleware:
    """A query string whose percent-escapes are not UTF-8 is `400 validation_error`.

    Django (like every WSGI server) decodes such bytes to U+FFFD replacement characters, so
    `?namespace=n%ED%A0%80s` would silently name something the client did not send. The
    gateway applies the same rule (gateway/validation.py, `query_params`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("QUERY_STRING", "")
        if raw and not _utf8(raw):
            return JsonResponse(
                error_body(
                    "validation_error",
                    "The query string is not valid UTF-8 (after percent-decoding).",
                    {"fields": {"query": [{"message": "Not valid UTF-8.", "code": "invalid"}]}},
                ),
                status=400,
            )
        return self.get_response(request)


def _utf8(query: str) -> bool:
    try:
        # WSGI gives the raw bytes as latin-1 text; '+' is a space and cannot break UTF-8.
        unquote_to_bytes(query.encode("latin-1", "replace")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
