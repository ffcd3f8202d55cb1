"""Pinecone's metadata filter language: parsed into a public tree, validated, evaluated in
Python — the one definition every engine compiles from (the gateway's pgvector backend to SQL,
its Qdrant backend to a payload filter) and the control plane validates row filters with.

A filter is a JSON object::

    {"genre": "drama", "year": {"$gte": 2020}, "$or": [{"lang": {"$in": ["en", "fr"]}}, ...]}

Top-level keys are field names (not starting with `$`) or `$and` / `$or` (a non-empty list of
non-empty filters); several keys are ANDed. A field maps to a literal (shorthand for `$eq`) or to
an object of operators, ANDed: `$eq $ne $gt $gte $lt $lte $in $nin $exists`. `{}` matches all.

Semantics (the same on every engine, and in `matches`):

* `$eq v` matches a field equal to `v`, or a list field containing `v`; `$in` is `$eq` on any
  of its values. `$ne` / `$nin` are their negations, so a record *without* the field matches.
* `$gt $gte $lt $lte` match numeric field values only: a string, boolean, list or missing field
  does not match (it is not an error).
* `$exists: true` matches when the key is present (whatever its value), `false` when absent.
* Numbers compare numerically as the decimal number their JSON text denotes (`1 == 1.0`; a float
  is taken as its shortest repr, which is what `json.dumps` writes and PostgreSQL's jsonb stores).
  Booleans are not numbers (`true != 1`), strings compare exactly (no normalisation, no case
  folding).

The tree (`Eq`, `Exists`, `Range`, `BoolOp`) is the filter's meaning and `evaluate` states it
in Python; every engine's compiler must agree with it (gateway/tests/test_filters.py and
test_qdrant_filters.py check them against the real engines). A missing key fails every
positive condition and satisfies every negation.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "EMPTY",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_FIELD_BYTES",
    "MAX_IN_VALUES",
    "MAX_LITERAL_BYTES",
    "BoolOp",
    "Eq",
    "Exists",
    "Filter",
    "FilterError",
    "Node",
    "Range",
    "Scalar",
    "conjoin",
    "evaluate",
    "is_number",
    "matches",
    "number",
    "parse",
    "validate",
]

MAX_DEPTH: Final = 10
"""A filter nested inside N `$and`/`$or` levels has depth N + 1 (the top level is 1)."""
MAX_CONDITIONS: Final = 1_000
"""Field operators in the whole filter (a literal shorthand counts as one `$eq`)."""
MAX_IN_VALUES: Final = 10_000
MAX_FIELD_BYTES: Final = 512
"""Longest field name, in UTF-8 bytes."""
MAX_LITERAL_BYTES: Final = 40 * 1024
"""Longest string literal, in UTF-8 bytes: a record's whole metadata is at most 40 KB, so a
longer string can never match."""
# Integer literals must fit a signed 64-bit integer (floats: any finite double).
_MAX_INT: Final = 2**63 - 1
_MIN_INT: Final = -(2**63)

Scalar: TypeAlias = str | int | float | bool
Path: TypeAlias = tuple[str | int, ...]

_LOGICAL = frozenset({"$and", "$or"})
_RANGE_OPS: Final[dict[str, str]] = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists", *_RANGE_OPS})


class FilterError(ValueError):
    """The filter is not valid. `message` names the problem and where it is; `details` has
    `path` (the JSON path to the offending part, as a list of keys and indexes) and, for some
    problems, more context (`operator`, `limit`)."""

    code = "invalid_filter"
    status = 400

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


# -- the parsed form --------------------------------------------------------------------------


@dataclass(frozen=True)
class Eq:
    """`$eq` (one value), `$in` (several); negated for `$ne` / `$nin`."""

    field: str
    values: tuple[Scalar, ...]
    negate: bool
    many: bool


@dataclass(frozen=True)
class Exists:
    field: str
    present: bool


@dataclass(frozen=True)
class Range:
    """The range operators of one operator object, ANDed: ((">", Decimal("3")), ...)."""

    field: str
    bounds: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True)
class BoolOp:
    op: Literal["AND", "OR"]
    children: tuple[Node, ...]


Node: TypeAlias = Eq | Exists | Range | BoolOp


# -- validation -------------------------------------------------------------------------------


def _where(path: Path) -> str:
    if not path:
        return "the filter"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f"[{_show(part)}]"
    return "filter" + out


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _fail(problem: str, path: Path, **extra: Any) -> FilterError:
    return FilterError(f"{problem} (at {_where(path)})", {"path": list(path), **extra})


def _check_text(value: str, what: str, path: Path) -> None:
    if "\x00" in value:
        raise _fail(f"{what} must not contain the NUL character", path)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(f"{what} is not valid Unicode (lone surrogate)", path) from None


def _literal(value: object, path: Path) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _MIN_INT <= value <= _MAX_INT:
            raise _fail("integer literal out of range (must fit in 64 bits)", path)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail("numbers must be finite (NaN and Infinity are not allowed)", path)
        return value
    if isinstance(value, str):
        _check_text(value, "string literal", path)
        if len(value.encode("utf-8")) > MAX_LITERAL_BYTES:
            raise _fail(
                f"string literal longer than {MAX_LITERAL_BYTES} bytes", path,
                limit=MAX_LITERAL_BYTES,
            )  # fmt: skip
        return value
    if isinstance(value, Mapping):
        raise _fail("nested objects are not valid literals", path)
    if isinstance(value, list | tuple):
        raise _fail("lists are not valid literals (use $in for several values)", path)
    raise _fail(
        f"literal must be a string, number or boolean, got {_type_name(value)}",
        path,
    )


def number(value: object) -> Decimal:
    """The decimal a JSON number denotes (a float is its shortest repr, as json.dumps writes)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    assert isinstance(value, int)  # noqa: S101 - callers check
    return Decimal(value)


class _Parser:
    def __init__(self) -> None:
        self.conditions = 0

    def count(self, path: Path) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _fail(
                f"too many conditions (more than {MAX_CONDITIONS})", path, limit=MAX_CONDITIONS
            )

    def filter(self, value: object, path: Path, depth: int) -> Node:
        if not isinstance(value, Mapping):
            raise _fail(f"a filter must be a JSON object, got {_type_name(value)}", path)
        if depth > MAX_DEPTH:
            raise _fail(f"filter nested too deeply (max depth {MAX_DEPTH})", path, limit=MAX_DEPTH)
        parts: list[Node] = []
        for key, operand in value.items():
            if not isinstance(key, str):
                raise _fail(f"keys must be strings, got {_type_name(key)}", path)
            here = (*path, key)
            if key in _LOGICAL:
                parts.append(self.logical(key, operand, here, depth))
            elif key.startswith("$"):
                if key in _FIELD_OPS:
                    raise _fail(f"operator {key} must be applied to a field", here, operator=key)
                raise _fail(f"unknown operator {_show(key)}", here, operator=key)
            else:
                self.field_name(key, here)
                parts.extend(self.field(key, operand, here))
        return parts[0] if len(parts) == 1 else BoolOp("AND", tuple(parts))

    def logical(self, key: str, operand: object, path: Path, depth: int) -> Node:
        if not isinstance(operand, list | tuple):
            raise _fail(
                f"{key} takes a non-empty list of filters, got {_type_name(operand)}",
                path,
                operator=key,
            )
        if not operand:
            raise _fail(f"{key} takes a non-empty list of filters, got an empty list", path)
        children: list[Node] = []
        for index, child in enumerate(operand):
            if isinstance(child, Mapping) and not child:
                raise _fail(f"a filter inside {key} must not be empty", (*path, index))
            children.append(self.filter(child, (*path, index), depth + 1))
        if len(children) == 1:
            return children[0]
        return BoolOp("AND" if key == "$and" else "OR", tuple(children))

    def field_name(self, name: str, path: Path) -> None:
        if not name:
            raise _fail("field names must not be empty", path)
        _check_text(name, "field name", path)
        if len(name.encode("utf-8")) > MAX_FIELD_BYTES:
            raise _fail(
                f"field name longer than {MAX_FIELD_BYTES} bytes", path, limit=MAX_FIELD_BYTES
            )

    def field(self, name: str, operand: object, path: Path) -> list[Node]:
        if not isinstance(operand, Mapping):
            self.count(path)
            return [Eq(name, (_literal(operand, path),), negate=False, many=False)]
        if not operand:
            raise _fail("an operator object must not be empty", path)
        nodes: list[Node] = []
        bounds: list[tuple[str, Decimal]] = []
        for op, arg in operand.items():
            here = (*path, op)
            if not isinstance(op, str) or not op.startswith("$"):
                raise _fail(
                    "nested objects are not valid literals (an object value must hold "
                    "operators such as $eq)",
                    path,
                )
            if op not in _FIELD_OPS:
                if op in _LOGICAL:
                    raise _fail(f"{op} is not valid inside a field's operators", here, operator=op)
                raise _fail(f"unknown operator {_show(op)}", here, operator=op)
            self.count(here)
            if op in ("$eq", "$ne"):
                nodes.append(Eq(name, (_literal(arg, here),), negate=op == "$ne", many=False))
            elif op in ("$in", "$nin"):
                nodes.append(Eq(name, self.values(op, arg, here), negate=op == "$nin", many=True))
            elif op == "$exists":
                if not isinstance(arg, bool):
                    raise _fail(
                        f"$exists takes a boolean, got {_type_name(arg)}", here, operator=op
                    )
                nodes.append(Exists(name, arg))
            else:
                if isinstance(arg, bool) or not isinstance(arg, int | float):
                    raise _fail(f"{op} takes a number, got {_type_name(arg)}", here, operator=op)
                bounds.append((_RANGE_OPS[op], number(_literal(arg, here))))
        if bounds:
            nodes.append(Range(name, tuple(bounds)))
        return nodes

    def values(self, op: str, arg: object, path: Path) -> tuple[Scalar, ...]:
        if not isinstance(arg, list | tuple):
            raise _fail(f"{op} takes a non-empty list, got {_type_name(arg)}", path, operator=op)
        if not arg:
            raise _fail(f"{op} takes a non-empty list, got an empty list", path, operator=op)
        if len(arg) > MAX_IN_VALUES:
            raise _fail(
                f"{op} takes at most {MAX_IN_VALUES} values, got {len(arg)}",
                path,
                operator=op,
                limit=MAX_IN_VALUES,
            )
        return tuple(_literal(item, (*path, index)) for index, item in enumerate(arg))


def parse(filter: object) -> Node | None:
    """The filter's tree, or None for the empty filter (`{}`). Raises FilterError."""
    if isinstance(filter, Mapping) and not filter:
        return None
    return _Parser().filter(filter, (), 1)


@dataclass(frozen=True, eq=False)
class Filter:
    """A parsed filter (`tree` None: no condition). Engines compile it their own way (SQL on
    pgvector, a payload filter on Qdrant) and may keep what they compiled in `compiled`, so
    that a filter parsed once (a key's row filter) is compiled once per engine and shape. A
    conjunction (`conjoin`) keeps its `parts`, so an engine can reuse what it compiled of each."""

    tree: Node | None = None
    parts: tuple[Filter, ...] = ()
    compiled: dict[object, object] = field(default_factory=dict, repr=False)

    @property
    def is_empty(self) -> bool:
        return self.tree is None

    def test(self, metadata: Mapping[str, object]) -> bool:
        """Whether a record with this metadata passes (every engine's semantics, in Python)."""
        return self.tree is None or evaluate(self.tree, metadata)

    @classmethod
    def of(cls, filter: object) -> Filter:
        """Parse `filter` (a JSON object; `{}`: no condition). Raises FilterError."""
        return cls(parse(filter))


EMPTY: Final = Filter()
"""The filter with no condition (shared: it holds nothing to compile)."""


def conjoin(*filters: Filter) -> Filter:
    """The AND of filters (e.g. a key's row filter and the request's filter)."""
    kept = [f for f in filters if f.tree is not None]
    if not kept:
        return EMPTY
    if len(kept) == 1:
        return kept[0]
    trees = tuple(f.tree for f in kept if f.tree is not None)
    return Filter(BoolOp("AND", trees), parts=tuple(kept))


def validate(filter: object) -> None:
    """Raise FilterError unless `filter` is a valid filter (`{}` is valid: no condition)."""
    parse(filter)


# -- Python evaluation ------------------------------------------------------------------------


def is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return False


def _equal(stored: object, wanted: Scalar) -> bool:
    """jsonb equality of a stored value and a literal: same JSON type, numbers by value."""
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(wanted, str) or isinstance(stored, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    return is_number(stored) and number(stored) == number(wanted)


def _holds(stored: object, wanted: Scalar) -> bool:
    if _equal(stored, wanted):
        return True
    return isinstance(stored, list) and any(_equal(item, wanted) for item in stored)


def evaluate(node: Node, metadata: Mapping[str, object]) -> bool:
    if isinstance(node, BoolOp):
        results = (evaluate(child, metadata) for child in node.children)
        return all(results) if node.op == "AND" else any(results)
    if isinstance(node, Exists):
        return (node.field in metadata) is node.present
    if isinstance(node, Eq):
        found = node.field in metadata and any(
            _holds(metadata[node.field], value) for value in node.values
        )
        return found is not node.negate
    stored = metadata.get(node.field)
    if node.field not in metadata or not is_number(stored):
        return False
    value = number(stored)
    return all(_COMPARE[op](value, bound) for op, bound in node.bounds)


_COMPARE: Final[dict[str, Callable[[Decimal, Decimal], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def matches(filter: object, metadata: Mapping[str, object]) -> bool:
    """Whether a record with this metadata matches `filter`, with exactly the SQL's semantics.

    `metadata` is the record's metadata as parsed JSON (values str, int, float, bool, list of
    str; Decimal numbers are accepted too). Raises FilterError for an invalid filter."""
    tree = parse(filter)
    return tree is None or evaluate(tree, metadata)
