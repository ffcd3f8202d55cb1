"""Pinecone's filter language (vectorplane/contract/filters.py) on Qdrant, with exactly the same
semantics.

Qdrant matches payload values by their JSON type (`1` and `1.0` differ, a keyword match never
sees a number), compares ranges in f64, reads keys as JSON paths (`a.b` is a nested key; a
quoted key cannot hold `"` or `\\`), and its Python engine binding turns a boolean match into
an integer one. Rather than fight each of those, every point carries payload fields derived
from its metadata, built so that each Pinecone operator is one plain Qdrant condition:

    {
      "_ns":   namespace,                  keyword (tenant index)
      "_id":   the record's id,            keyword (prefix index, for list)
      "_keys": [metadata keys],            keyword: $exists
      "_eq":   ["<K>=<token>", ...],       keyword: $eq $ne $in $nin
      "m":     metadata, verbatim,         returned by fetch and query, never filtered on
      "r":     {"<K>": f64 image},         numbers only (absent if none): ranges
      "x":     {"<K>": residual},          numbers with |f64 image| >= 2**53 only: exact ranges
    }

`<K>` is the key encoded to `k` + [A-Za-z0-9_]* (each UTF-8 byte outside [A-Za-z0-9] becomes
`_XX`, hex), a valid unquoted JSON-path segment that can hold no `=`; the encoding is injective.
Tokens type the value: `s<string>`, `t` / `f` for booleans, `n<canonical decimal>` for numbers
(the decimal the JSON text denotes, normalised: `1`, `1.0` and `1e0` are all `n1`; `-0.0` is
`n0`). A list value contributes one token per item, so `_eq` holding the token is exactly
"equal, or a list containing" — Pinecone's `$eq`.

Translation (K, tokens and images from the filter's field and literals):

    $eq v / $in [..]     _eq match "K=tok(v)" / match any of them
    $ne v / $nin [..]    must_not of the above (true for records without the field)
    $exists true/false   _keys match "field" / must_not of it
    $gt $gte $lt $lte b  range on r.K (f64), when |f64(b)| < 2**53; otherwise, per bound,
                         should[r.K strictly beyond f64(b), must[r.K == f64(b), x.K vs res(b)]]
    $and / $or           must / should

Ranges are exact. A number V and a bound B are compared through f = f64 (round to nearest) and
the residual res = V - f(V) (exact decimal arithmetic, then stored as f64): rounding is monotone,
so f(V) < f(B) implies V < B. When f(V) == f(B) and |f(B)| < 2**53, V and B denote the same
decimal: an integer below 2**53 is exact in f64, and a float denotes the shortest repr of its
double, which for an integral double below 2**53 is that integer. At or above 2**53 a bucket
can hold several values (2**53 and 2**53 + 1; an int and the float whose repr differs from it),
all integers, whose residuals are small integers, exact in f64 (beyond 2**106 only identical
floats share a bucket): comparing (f, res) lexicographically is then exact. Ranges never match
a string, boolean, list or missing field: only scalar numbers are written to `r`.

Conditions are built as Qdrant REST JSON (`filter_json`), which the store sends as is (the
gateway imports no qdrant-client); what is translated of a filter is cached on it, so a key's
row filter is translated once.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeAlias

from vectorplane.contract.filters import (
    BoolOp,
    Eq,
    Exists,
    Filter,
    Node,
    Range,
    is_number,
    number,
)

from . import UnsupportedOnEngine

__all__ = [
    "BIG",
    "canonical",
    "conditions_of",
    "encode_key",
    "eq_token",
    "field",
    "filter_json",
    "payload_fields",
    "record_payload",
    "translate",
    "value_tokens",
]

BIG: Final = 2.0**53
"""f64 images at or beyond this (in magnitude) get a residual: several values share them."""

_SAFE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
# Enough digits for any float's exact binary expansion (up to ~767 significant digits) and any
# int the gateway can store, so that subtraction and normalisation are exact.
_EXACT: Final = decimal.Context(prec=2000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


# -- the payload layout ------------------------------------------------------------------------


def encode_key(key: str) -> str:
    """A metadata key as one unquoted JSON-path segment: `k` then [A-Za-z0-9_] (injective)."""
    out = ["k"]
    for byte in key.encode("utf-8"):
        out.append(chr(byte) if byte in _SAFE else f"_{byte:02X}")
    return "".join(out)


def canonical(number: Decimal) -> str:
    """The decimal's canonical text: equal values, and only they, give equal texts."""
    if number.is_zero():
        return "0"
    return str(number.normalize(_EXACT))


def _scalar_token(value: object) -> str | None:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return "s" + value
    if is_number(value):
        return "n" + canonical(number(value))
    return None  # null, objects, NaN: equal to no literal


def value_tokens(value: object) -> list[str]:
    """The typed tokens of a metadata value: one for a scalar, one per item for a list."""
    if isinstance(value, list | tuple):
        found = (_scalar_token(item) for item in value)
        return list(dict.fromkeys(token for token in found if token is not None))
    token = _scalar_token(value)
    return [] if token is None else [token]


def eq_token(field: str, value: object) -> str:
    token = _scalar_token(value)
    if token is None:  # pragma: no cover - filter literals are validated scalars
        raise TypeError(f"not a filter literal: {value!r}")
    return f"{encode_key(field)}={token}"


def image(number: Decimal) -> tuple[float, float | None]:
    """(f64 image, residual) of a number; the residual only when the image is >= 2**53 in
    magnitude (see the module docstring). Raises OverflowError beyond the f64 range."""
    approx = float(number)
    if math.isinf(approx):
        raise OverflowError(f"{number} is out of the f64 range")
    if abs(approx) < BIG:
        return approx, None
    return approx, float(_EXACT.subtract(number, Decimal(approx)))


def payload_fields(metadata: Mapping[str, object]) -> dict[str, Any]:
    """The filterable fields derived from a record's metadata (`_keys`, `_eq`, `r`, `x`).

    Raises UnsupportedOnEngine for a number beyond the f64 range (the gateway's JSON parser
    cannot produce one; only direct callers could)."""
    eq: list[str] = []
    numbers: dict[str, float] = {}
    residuals: dict[str, float] = {}
    for key, value in metadata.items():
        encoded = encode_key(key)
        eq.extend(f"{encoded}={token}" for token in value_tokens(value))
        if is_number(value):
            try:
                approx, residual = image(number(value))
            except OverflowError:
                raise UnsupportedOnEngine(
                    f"metadata {key!r} is a number beyond the double range.", {"key": key}
                ) from None
            numbers[encoded] = approx
            if residual is not None:
                residuals[encoded] = residual
    fields: dict[str, Any] = {"_keys": list(metadata), "_eq": eq}
    if numbers:
        fields["r"] = numbers
    if residuals:
        fields["x"] = residuals
    return fields


def record_payload(
    namespace: str,
    record_id: str,
    metadata: Mapping[str, object],
    *,
    norm: float | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A point's whole payload: the layout above, plus `_norm` (the original norm of a cosine
    index's vector, which Qdrant stores normalised) and `_text` (an index's text field)."""
    payload: dict[str, Any] = {
        "_ns": namespace,
        "_id": record_id,
        "m": metadata,
        **payload_fields(metadata),
    }
    if norm is not None:
        payload["_norm"] = norm
    if text is not None:
        payload["_text"] = text
    return payload


# -- translation -------------------------------------------------------------------------------
# Conditions are built as Qdrant's REST JSON (plain dicts): the store sends them as they are
# (building qdrant-client models costs more than the search on small indexes).

Condition: TypeAlias = dict[str, Any]

_OPS: Final = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_STRICT: Final = {">": "gt", ">=": "gt", "<": "lt", "<=": "lt"}


def field(key: str, **condition: Any) -> Condition:
    """A field condition: `field("_ns", match={"value": "x"})`."""
    return {"key": key, **condition}


def _range_bound(key: str, op: str, bound: Decimal) -> tuple[str, float] | Condition:
    """One bound: a (range op, f64) pair when exact in f64, else an exact condition."""
    approx, residual = image(bound)
    if residual is None:
        return _OPS[op], approx
    strictly = field(f"r.{key}", range={_STRICT[op]: approx})
    same = field(f"r.{key}", range={"gte": approx, "lte": approx})
    tie = field(f"x.{key}", range={_OPS[op]: residual})
    return {"should": [strictly, {"must": [same, tie]}]}


def _range(node: Range) -> Condition:
    key = encode_key(node.field)
    plain: dict[str, float] = {}
    exact: list[Condition] = []
    for op, bound in node.bounds:
        try:
            part = _range_bound(key, op, bound)
        except OverflowError:  # pragma: no cover - the kernel admits finite doubles only
            raise UnsupportedOnEngine(
                "range bound beyond the double range.", {"field": node.field}
            ) from None
        if isinstance(part, tuple):
            plain[part[0]] = part[1]
        else:
            exact.append(part)
    parts: list[Condition] = []
    if plain or not exact:
        parts.append(field(f"r.{key}", range=plain))
    parts += exact
    return parts[0] if len(parts) == 1 else {"must": parts}


def _eq(node: Eq) -> Condition:
    tokens = list(dict.fromkeys(eq_token(node.field, value) for value in node.values))
    match = {"value": tokens[0]} if len(tokens) == 1 else {"any": tokens}
    condition = field("_eq", match=match)
    return {"must_not": [condition]} if node.negate else condition


def _node(node: Node) -> Condition:
    if isinstance(node, BoolOp):
        children = [_node(child) for child in node.children]
        if node.op == "AND":
            return {"must": _flatten(children)}
        return {"should": children}
    if isinstance(node, Eq):
        return _eq(node)
    if isinstance(node, Exists):
        present = field("_keys", match={"value": node.field})
        return present if node.present else {"must_not": [present]}
    return _range(node)


def _flatten(conditions: Iterable[Condition]) -> list[Condition]:
    """ANDed conditions, with nested must-only filters spliced in."""
    out: list[Condition] = []
    for condition in conditions:
        if set(condition) == {"must"}:
            out.extend(condition["must"])
        else:
            out.append(condition)
    return out


def translate(tree: Node | None) -> list[Condition]:
    """The conditions (Qdrant REST JSON, to AND into a filter's `must`) of a parsed filter;
    [] for none."""
    if tree is None:
        return []
    return _flatten([_node(tree)])


def conditions_of(where: Filter) -> list[Condition]:
    """The conditions of a parsed filter, cached on it (a conjunction reuses its parts')."""
    if where.tree is None:
        return []
    found = where.compiled.get("qdrant")
    if isinstance(found, list):
        return found
    if where.parts:
        conditions = [c for part in where.parts for c in conditions_of(part)]
    else:
        conditions = translate(where.tree)
    where.compiled["qdrant"] = conditions
    return conditions


def filter_json(where: Filter | None, *extra: Condition) -> dict[str, Any] | None:
    """The Qdrant filter (REST JSON) of a parsed Pinecone filter (None: no condition), ANDed
    with `extra` conditions (such as the namespace's); None when there is no condition."""
    must = [*extra, *([] if where is None else conditions_of(where))]
    return {"must": must} if must else None
