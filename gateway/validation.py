"""Validation of the gateway's requests: the one place where a data-plane request is checked
before any engine sees it (docs/gateway-openapi.yaml states the same rules for clients).

Every check raises `GatewayError` with a stable code from docs/ERRORS.md; a value the engines
would refuse (pgvector's float4 range, sparsevec's non-zero limit, PostgreSQL's tsvector size)
is refused here first, the same way on every engine, so no engine error ever reaches a client
as a 500 or a "retry" 503.

Rules that hold for every operation:

- A body is one JSON object (`request_too_large` past MAX_BODY_BYTES, `malformed_json` when it
  does not parse, `validation_error` when it is not an object); unknown fields are refused
  (`unknown_field`).
- An optional field sent as `null` means the field is absent (`{"filter": null}` is no filter,
  `{"topK": null}` the default), at the top level and in each upserted record. Clients of other
  languages write absent options as null; Pinecone's Python client leaves them out.
- Strings never hold NUL (PostgreSQL's text cannot); lone surrogates cannot arrive (the JSON
  parser refuses them, and query strings are decoded as UTF-8 with replacement).
- Numbers are JSON numbers, never booleans; vector values are finite and within float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request

from vectorplane.contract.filters import EMPTY, Filter, FilterError
from vectorplane.contract.limits import (  # the data plane's limits live in the kernel
    FLOAT32_BOUND,
    INT64_MAX,
    INT64_MIN,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_EF_SEARCH,
    MAX_FETCH_IDS,
    MAX_ID_BYTES,
    MAX_LIST_LIMIT,
    MAX_METADATA_BYTES,
    MAX_NAMESPACE_BYTES,
    MAX_SPARSE_INDEX,
    MAX_SPARSE_NONZEROS,
    MAX_TEXT_BYTES,
    MAX_TOP_K,
)

from .errors import GatewayError, bad_request

__all__ = [
    "FLOAT32_BOUND",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "MAX_EF_SEARCH",
    "MAX_FETCH_IDS",
    "MAX_ID_BYTES",
    "MAX_LIST_LIMIT",
    "MAX_METADATA_BYTES",
    "MAX_NAMESPACE_BYTES",
    "MAX_SPARSE_INDEX",
    "MAX_SPARSE_NONZEROS",
    "MAX_TEXT_BYTES",
    "MAX_TOP_K",
]


# ---------------------------------------------------------------------------- bodies


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body (`{}` when empty), with null-valued fields dropped."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise bad_request(
            "request_too_large", "The request body is over 2 MB.", max_bytes=MAX_BODY_BYTES
        )
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise bad_request(
                "request_too_large", "The request body is over 2 MB.", max_bytes=MAX_BODY_BYTES
            )
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)  # refuses NaN, Infinity, 1e999 and lone surrogates
    except orjson.JSONDecodeError as exc:
        raise bad_request("malformed_json", f"The body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("validation_error", "The body must be a JSON object.")
    return present(data)


def query_params(request: Request) -> dict[str, list[str]]:
    """The query string's parameters, decoded strictly: percent-escapes that are not UTF-8
    (e.g. `%ED%A0%80`, a lone surrogate) are `400 validation_error`, not U+FFFD characters
    that would silently name something else."""
    raw = request.scope.get("query_string", b"")
    try:
        return parse_qs(raw.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise bad_request(
            "validation_error", "The query string is not valid UTF-8 (after percent-decoding).",
            field="query",
        ) from exc  # fmt: skip


def present(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without its null-valued fields (null means absent)."""
    if all(v is not None for v in data.values()):
        return data
    return {k: v for k, v in data.items() if v is not None}


def check_fields(body: Mapping[str, Any], allowed: Iterable[str], where: str = "") -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        prefix = f"{where}: " if where else ""
        raise bad_request(
            "unknown_field", f"{prefix}unknown field {unknown[0]!r}.", fields=unknown
        )


# ---------------------------------------------------------------------------- scalars


def text_bytes(value: str) -> int:
    """UTF-8 length of a string that came from JSON or a decoded query string."""
    return len(value.encode("utf-8", "surrogatepass"))


def boolean(body: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise bad_request("validation_error", f"{name} must be a boolean.", field=name)
    return value


def integer(body: Mapping[str, Any], name: str, default: int, low: int, high: int,
            code: str = "validation_error") -> int:  # fmt: skip
    """An integer field in [low, high]; a JSON float is refused even when integral."""
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(code, f"{name} must be an integer from {low} to {high}.",
                          field=name, min=low, max=high)  # fmt: skip
    return value


def query_integer(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high]: decimal digits only (`limit=` is refused)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not low <= int(raw) <= high:
        raise bad_request("validation_error", f"{name} must be an integer from {low} to {high}.",
                          field=name, min=low, max=high)  # fmt: skip
    return int(raw)


def record_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("validation_error", f"{field} must be a non-empty string.", field=field)
    if "\x00" in value or text_bytes(value) > MAX_ID_BYTES:
        raise bad_request(
            "id_too_long", f"{field} is over {MAX_ID_BYTES} bytes or invalid.", field=field
        )
    return value


def namespace(value: Any, allowed: frozenset[str]) -> str:
    """A namespace name (absent: the default namespace `""`); `allowed`, when not empty, is
    the API key's namespace restriction."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise bad_request("validation_error", "namespace must be a string.", field="namespace")
    if "\x00" in value or text_bytes(value) > MAX_NAMESPACE_BYTES:
        raise bad_request(
            "validation_error",
            f"namespace is over {MAX_NAMESPACE_BYTES} bytes or holds NUL.",
            field="namespace",
        )
    if allowed and value not in allowed:
        raise GatewayError(
            403,
            "namespace_forbidden",
            "This API key may not use that namespace.",
            {"namespace": value},
        )
    return value


def full_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise bad_request(
            "validation_error", f"{field} must be a string without NUL characters.", field=field
        )
    size = text_bytes(value)
    if size > MAX_TEXT_BYTES:
        raise bad_request(
            "text_too_large",
            f"{field} is {size} bytes; the limit is {MAX_TEXT_BYTES}.",
            field=field,
            bytes=size,
            max_bytes=MAX_TEXT_BYTES,
        )
    return value


# ---------------------------------------------------------------------------- vectors


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def _in_float32(floats: list[float]) -> bool:
    """All finite and within float32 (three C-level passes: this is the hot path)."""
    if not floats:
        return True
    return (
        min(floats) > -FLOAT32_BOUND
        and max(floats) < FLOAT32_BOUND
        and not math.isnan(sum(floats))
    )


def dense(value: Any, dimension: int, field: str, *, stored: bool) -> list[float]:
    """A dense vector of the index's dimension, finite and within float32. A stored vector
    (upsert, update) must have a non-zero value, on every metric (Pinecone's rule: a zero
    vector has no direction, and no cosine similarity); a query vector may be all zeros: the
    query then ranks nothing and answers the filter's matches with score 0."""
    if not _numbers(value):
        raise bad_request("validation_error", f"{field} must be a list of numbers.", field=field)
    if len(value) != dimension:
        raise bad_request(
            "dimension_mismatch",
            f"{field} has {len(value)} dimensions; the index has {dimension}.",
            field=field,
            expected=dimension,
            got=len(value),
        )
    try:
        floats = [float(v) for v in value]
    except OverflowError:  # an integer beyond the double range
        floats = [math.inf]
    if not _in_float32(floats):
        raise bad_request(
            "invalid_value",
            f"{field} holds a value that is not a finite float32 "
            "(NaN, Infinity, or beyond ±3.4028235e38).",
            field=field,
        )
    if stored and not any(floats):
        raise bad_request(
            "invalid_value", f"{field}: dense vectors must contain at least one non-zero value.",
            field=field,
        )  # fmt: skip
    return floats


def sparse(value: Any, field: str) -> tuple[list[int], list[float]] | None:
    """A sparse vector `{indices, values}` (absent: None), sorted by index."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"indices", "values"}:
        raise bad_request("validation_error", f"{field} must be {{indices, values}}.", field=field)
    indices, values = value.get("indices"), value.get("values")
    if not isinstance(indices, list) or not isinstance(values, list) or len(indices) != len(values):
        raise bad_request(
            "validation_error",
            f"{field}: indices and values must be lists of equal length.",
            field=field,
        )
    if len(indices) > MAX_SPARSE_NONZEROS:
        raise bad_request(
            "sparse_too_large",
            f"{field} has {len(indices)} non-zero values; the limit is {MAX_SPARSE_NONZEROS}.",
            field=field,
            got=len(indices),
            max=MAX_SPARSE_NONZEROS,
        )
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_SPARSE_INDEX
               for i in indices):  # fmt: skip
        raise bad_request(
            "validation_error",
            f"{field}.indices must be integers in [0, {MAX_SPARSE_INDEX}].",
            field=field,
        )
    if len(set(indices)) != len(indices):
        raise bad_request("validation_error", f"{field}.indices must be unique.", field=field)
    if not _numbers(values):
        raise bad_request("validation_error", f"{field}.values must be numbers.", field=field)
    try:
        floats = [float(v) for v in values]
    except OverflowError:
        floats = [math.inf]
    if not _in_float32(floats):
        raise bad_request(
            "invalid_value",
            f"{field}.values hold a value that is not a finite float32 "
            "(NaN, Infinity, or beyond ±3.4028235e38).",
            field=field,
        )
    pairs = sorted(zip(indices, floats, strict=True))
    return [p[0] for p in pairs], [p[1] for p in pairs]


# ---------------------------------------------------------------------------- metadata


def _metadata_value(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" not in v
    if isinstance(v, bool):
        return True
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(isinstance(x, str) and "\x00" not in x for x in v)
    return False


def metadata_and_json(
    value: Any, field: str, max_bytes: int = MAX_METADATA_BYTES
) -> tuple[dict[str, Any] | None, bytes | None]:
    """Record metadata (absent: None), and its JSON (serialised once, for its size and the
    engine): an object of strings, numbers, booleans and lists of
    strings, no NUL anywhere, at most `max_bytes` of JSON. Null values are dropped (Pinecone's
    behaviour). Integers within the signed 64-bit range are kept exact; larger ones are stored
    as the nearest double (Pinecone keeps every number as a double)."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise bad_request("validation_error", f"{field} must be an object.", field=field)
    value = present(value)
    if any(isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX for v in value.values()):
        # The JSON parser reads integers up to 2^64 - 1 exactly and larger ones as doubles:
        # every integer outside the signed 64-bit range is a double, whatever its size.
        value = {k: float(v) if isinstance(v, int) and not isinstance(v, bool)
                 and not INT64_MIN <= v <= INT64_MAX else v for k, v in value.items()}  # fmt: skip
    for k, v in value.items():
        if "\x00" in k:
            raise bad_request(
                "invalid_metadata", f"{field}: keys must not contain NUL characters.", field=field
            )
        if not _metadata_value(v):
            raise bad_request(
                "invalid_metadata",
                f"{field}.{k}: values are strings, numbers, booleans or lists of strings, "
                "without NUL characters.",
                field=field,
                key=k,
            )
    raw = orjson.dumps(value)
    size = len(raw)
    if size > max_bytes:
        raise bad_request(
            "metadata_too_large",
            f"{field} is {size} bytes; the limit is {max_bytes}.",
            field=field,
            bytes=size,
            max_bytes=max_bytes,
        )
    return value, raw


def metadata(value: Any, field: str, max_bytes: int = MAX_METADATA_BYTES) -> dict[str, Any] | None:
    """`metadata_and_json` without the JSON."""
    return metadata_and_json(value, field, max_bytes)[0]


def metadata_filter(value: Any) -> Filter:
    """A request's metadata filter (absent or null: no condition)."""
    if value is None:
        return EMPTY
    try:
        return Filter.of(value)
    except FilterError as exc:
        raise GatewayError(400, exc.code, exc.message, exc.details) from exc
