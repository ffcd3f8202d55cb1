"""Errors of the local Qdrant host, carried to the client in Qdrant's error envelope:
`{"status": {"error": "<message>"}, "time": <seconds>}` with the HTTP status Qdrant uses."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    """A request Qdrant would reject while parsing or validating it (400)."""
    return ApiError(400, f"Format error in JSON body: {message}")


def unsupported(what: str) -> ApiError:
    """Valid Qdrant input that this single-process Edge host cannot serve (400)."""
    return ApiError(400, f"Bad request: {what} is not supported by the local Qdrant host")


def collection_not_found(name: str) -> ApiError:
    return ApiError(404, f"Not found: Collection `{name}` doesn't exist!")


def collection_exists(name: str) -> ApiError:
    return ApiError(409, f"Wrong input: Collection `{name}` already exists!")


# Edge raises plain `Exception`s carrying the engine's own messages; these prefixes mark the ones
# that are the server's fault rather than the request's.
_INTERNAL_PREFIXES = ("Service internal error", "Service runtime error", "Service error")
_INTERNAL_MARKERS = ("I/O error", "IO error", "Can't init WAL", "No space left", "Os {")


def from_edge(exc: BaseException) -> ApiError:
    """Map an exception raised by a qdrant_edge call to the status Qdrant would answer with."""
    message = str(exc).strip() or type(exc).__name__
    if type(exc).__name__ == "PanicException":
        return ApiError(500, f"Service internal error: the engine panicked: {message}")
    if message.startswith("No point with id"):
        return ApiError(404, f"Not found: {message}")
    if message.startswith(_INTERNAL_PREFIXES) or any(m in message for m in _INTERNAL_MARKERS):
        return ApiError(500, message)
    if isinstance(exc, TypeError | ValueError | OverflowError):
        first_line = message.splitlines()[0]
        return ApiError(400, f"Wrong input: {first_line}")
    if message.startswith(("Wrong input", "Bad request", "Bad input")):
        return ApiError(400, message)
    return ApiError(400, f"Wrong input: {message}")
