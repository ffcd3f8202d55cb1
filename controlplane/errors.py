"""The one application error type that services raise.

Views never build error responses by hand: they let `ApplicationError` (or DRF's own
exceptions) propagate, and `controlplane.api.errors.exception_handler` renders every error as
`{"error": {"code": ..., "message": ..., "details": {...}}}`. Codes are stable and documented in
docs/ERRORS.md; add new ones there when you add them here.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status_code = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        if status is not None:
            self.status_code = status


class NotFoundError(ApplicationError):
    """A resource that does not exist *for this caller* (never reveals another tenant's)."""

    def __init__(self, what: str = "resource", details: dict[str, Any] | None = None) -> None:
        super().__init__("not_found", f"The {what} was not found.", status=404, details=details)


class PermissionDeniedError(ApplicationError):
    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__("permission_denied", message, status=403, details=details)


class ConflictError(ApplicationError):
    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(code, message, status=409, details=details)
