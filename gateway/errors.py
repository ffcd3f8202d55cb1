"""Gateway errors: the same `{"error": {"code", "message", "details"}}` shape as the control
plane, with the same stable codes (docs/ERRORS.md)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return Response(
            orjson.dumps(body),
            status_code=self.status,
            media_type="application/json",
            headers=self.headers,
        )


def bad_request(code: str, message: str, **details: Any) -> GatewayError:
    return GatewayError(400, code, message, details)


def not_found_index(name: str) -> GatewayError:
    # The same answer whether the index exists for another tenant or not at all.
    return GatewayError(404, "not_found", "The index was not found.", {"index": name})
