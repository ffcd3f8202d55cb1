"""Metadata filters: Pinecone's filter language, validated, compiled to SQL, evaluated in Python.

A filter is a JSON object::

    {"genre": "drama", "year": {"$gte": 2020}, "$or": [{"lang": {"$in": ["en", "fr"]}}, ...]}

Top-level keys are field names (not starting with `$`) or `$and` / `$or` (a non-empty list of
non-empty filters); several keys are ANDed. A field maps to a literal (shorthand for `$eq`) or to
an object of operators, ANDed: `$eq $ne $gt $gte $lt $lte $in $nin $exists`. `{}` matches all.

Semantics (the same in `compile_filter`'s SQL and in `matches`):

* `$eq v` matches a field equal to `v`, or a list field containing `v`; `$in` is `$eq` on any
  of its values. `$ne` / `$nin` are their negations, so a record *without* the field matches.
* `$gt $gte $lt $lte` match numeric field values only: a string, boolean, list or missing field
  does not match (it is not an error).
* `$exists: true` matches when the key is present (whatever its value), `false` when absent.
* Numbers compare numerically as the decimal number their JSON text denotes (`1 == 1.0`; a float
  is taken as its shortest repr, which is what `json.dumps` writes and PostgreSQL's jsonb stores).
  Booleans are not numbers (`true != 1`), strings compare exactly (no normalisation, no case
  folding).

SQL (over a `jsonb` column, `metadata` by default; every field name and value is a bound
parameter, only the column is an identifier). `k`/`v` below are parameters:

* `$eq`:      `(metadata @> {"k": v} OR metadata @> {"k": [v]})`
* `$in`:      `metadata @> ANY(ARRAY[{"k": v1}, {"k": [v1]}, ...]::jsonb[])`
* `$ne`/`$nin`: the above `IS NOT TRUE`
* `$exists`:  `metadata ? k` (`true`), `(metadata ? k) IS NOT TRUE` (`false`)
* ranges:     `CASE WHEN jsonb_typeof(metadata -> k) = 'number'
               THEN (metadata ->> k)::numeric > b [AND ...] ELSE FALSE END`

Indexes: a GIN `jsonb_path_ops` index on the column serves `$eq` and `$in` (containment, as a
bitmap index scan). `$exists: true` (`?`) is served only by a GIN index with the default
`jsonb_ops` operator class, never by `jsonb_path_ops`. Negations and ranges are not indexable
(a btree expression index on `((metadata ->> 'k')::numeric)` would not match the CASE guard).
The SQL's shape depends only on the filter's structure, not on its values (`$in` binds one
array), so prepared statements are reused across values.

A NULL column behaves like `{}` (positive conditions are not TRUE, negations are TRUE).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

from psycopg import sql
from psycopg.types.json import Jsonb

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_FIELD_BYTES",
    "MAX_IN_VALUES",
    "MAX_LITERAL_BYTES",
    "Compiled",
    "FilterError",
    "combine",
    "compile_filter",
    "matches",
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


@dataclass(frozen=True)
class Compiled:
    """A WHERE fragment with positional `%s` placeholders, and its parameters in order.

    Use it with psycopg: `sql.SQL("SELECT id FROM t WHERE {} AND ns = %s").format(c.sql)` and
    `[*c.params, ns]` (placeholders and parameters must stay in the same order).
    """

    sql: sql.Composable
    params: tuple[object, ...] = ()
    # The parsed filter (None: no condition), for engines that do not speak SQL (Qdrant) and
    # for checks in Python (`test`).
    tree: _Node | None = None

    @property
    def is_true(self) -> bool:
        """True for the empty filter (no condition)."""
        return self.tree is None and self.sql == _TRUE and not self.params

    def test(self, metadata: Mapping[str, object]) -> bool:
        """Whether a record with this metadata passes (the SQL's semantics, in Python)."""
        return self.tree is None or _evaluate(self.tree, metadata)


# -- the parsed form --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Eq:
    """`$eq` (one value), `$in` (several); negated for `$ne` / `$nin`."""

    field: str
    values: tuple[Scalar, ...]
    negate: bool
    many: bool


@dataclass(frozen=True)
class _Exists:
    field: str
    present: bool


@dataclass(frozen=True)
class _Range:
    """The range operators of one operator object, ANDed: ((">", Decimal("3")), ...)."""

    field: str
    bounds: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True)
class _Bool:
    op: Literal["AND", "OR"]
    children: tuple[_Node, ...]


_Node: TypeAlias = _Eq | _Exists | _Range | _Bool


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


def _number(value: object) -> Decimal:
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

    def filter(self, value: object, path: Path, depth: int) -> _Node:
        if not isinstance(value, Mapping):
            raise _fail(f"a filter must be a JSON object, got {_type_name(value)}", path)
        if depth > MAX_DEPTH:
            raise _fail(f"filter nested too deeply (max depth {MAX_DEPTH})", path, limit=MAX_DEPTH)
        parts: list[_Node] = []
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
        return parts[0] if len(parts) == 1 else _Bool("AND", tuple(parts))

    def logical(self, key: str, operand: object, path: Path, depth: int) -> _Node:
        if not isinstance(operand, list | tuple):
            raise _fail(
                f"{key} takes a non-empty list of filters, got {_type_name(operand)}",
                path,
                operator=key,
            )
        if not operand:
            raise _fail(f"{key} takes a non-empty list of filters, got an empty list", path)
        children: list[_Node] = []
        for index, child in enumerate(operand):
            if isinstance(child, Mapping) and not child:
                raise _fail(f"a filter inside {key} must not be empty", (*path, index))
            children.append(self.filter(child, (*path, index), depth + 1))
        if len(children) == 1:
            return children[0]
        return _Bool("AND" if key == "$and" else "OR", tuple(children))

    def field_name(self, name: str, path: Path) -> None:
        if not name:
            raise _fail("field names must not be empty", path)
        _check_text(name, "field name", path)
        if len(name.encode("utf-8")) > MAX_FIELD_BYTES:
            raise _fail(
                f"field name longer than {MAX_FIELD_BYTES} bytes", path, limit=MAX_FIELD_BYTES
            )

    def field(self, name: str, operand: object, path: Path) -> list[_Node]:
        if not isinstance(operand, Mapping):
            self.count(path)
            return [_Eq(name, (_literal(operand, path),), negate=False, many=False)]
        if not operand:
            raise _fail("an operator object must not be empty", path)
        nodes: list[_Node] = []
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
                nodes.append(_Eq(name, (_literal(arg, here),), negate=op == "$ne", many=False))
            elif op in ("$in", "$nin"):
                nodes.append(_Eq(name, self.values(op, arg, here), negate=op == "$nin", many=True))
            elif op == "$exists":
                if not isinstance(arg, bool):
                    raise _fail(
                        f"$exists takes a boolean, got {_type_name(arg)}", here, operator=op
                    )
                nodes.append(_Exists(name, arg))
            else:
                if isinstance(arg, bool) or not isinstance(arg, int | float):
                    raise _fail(f"{op} takes a number, got {_type_name(arg)}", here, operator=op)
                bounds.append((_RANGE_OPS[op], _number(_literal(arg, here))))
        if bounds:
            nodes.append(_Range(name, tuple(bounds)))
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


def _parse(filter: object) -> _Node | None:
    """The filter's tree, or None for the empty filter. Raises FilterError."""
    if isinstance(filter, Mapping) and not filter:
        return None
    return _Parser().filter(filter, (), 1)


def validate(filter: object) -> None:
    """Raise FilterError unless `filter` is a valid filter (`{}` is valid: no condition)."""
    _parse(filter)


# -- SQL --------------------------------------------------------------------------------------

_TRUE: Final = sql.SQL("TRUE")
_P: Final = sql.Placeholder()


class _Compiler:
    def __init__(self, column: sql.Identifier) -> None:
        self.column = column
        self.params: list[object] = []

    def param(self, value: object) -> sql.Composable:
        self.params.append(value)
        return _P

    def node(self, node: _Node) -> sql.Composable:
        if isinstance(node, _Bool):
            glue = sql.SQL(f" {node.op} ")  # node.op is our own constant
            return sql.SQL("({})").format(glue.join(self.node(child) for child in node.children))
        if isinstance(node, _Eq):
            return self.eq(node)
        if isinstance(node, _Exists):
            test = sql.SQL("{} ? {}::text").format(self.column, self.param(node.field))
            if node.present:
                return sql.SQL("({})").format(test)
            return sql.SQL("(({}) IS NOT TRUE)").format(test)
        return self.range(node)

    def eq(self, node: _Eq) -> sql.Composable:
        docs: list[Jsonb] = []
        for value in node.values:
            docs += [Jsonb({node.field: value}), Jsonb({node.field: [value]})]
        if node.many:
            test: sql.Composable = sql.SQL("{} @> ANY({}::jsonb[])").format(
                self.column, self.param(docs)
            )
        else:
            scalar, listed = docs
            test = sql.SQL("{} @> {}::jsonb OR {} @> {}::jsonb").format(
                self.column, self.param(scalar), self.column, self.param(listed)
            )
        if node.negate:
            return sql.SQL("(({}) IS NOT TRUE)").format(test)
        return sql.SQL("({})").format(test)

    def range(self, node: _Range) -> sql.Composable:
        # CASE, not AND: SQL does not promise to evaluate the type guard before the cast.
        guard = sql.SQL("jsonb_typeof({} -> {}::text) = 'number'").format(
            self.column, self.param(node.field)
        )
        tests = [
            sql.SQL("({} ->> {}::text)::numeric {} {}::numeric").format(
                self.column, self.param(node.field), sql.SQL(op), self.param(bound)
            )
            for op, bound in node.bounds
        ]
        return sql.SQL("(CASE WHEN {} THEN {} ELSE FALSE END)").format(
            guard, sql.SQL(" AND ").join(tests)
        )


def compile_filter(filter: object, *, column: str | sql.Identifier = "metadata") -> Compiled:
    """Validate `filter` and compile it to a WHERE fragment over the jsonb `column` (a name, or
    an `sql.Identifier` such as `sql.Identifier("v", "metadata")`). `{}` compiles to `TRUE`."""
    tree = _parse(filter)
    if tree is None:
        return Compiled(_TRUE)
    identifier = column if isinstance(column, sql.Identifier) else sql.Identifier(column)
    compiler = _Compiler(identifier)
    fragment = compiler.node(tree)
    return Compiled(fragment, tuple(compiler.params), tree)


def combine(*parts: Compiled) -> Compiled:
    """The AND of compiled filters (e.g. a key's row filter and the request's filter)."""
    kept = [part for part in parts if not part.is_true]
    if not kept:
        return Compiled(_TRUE)
    if len(kept) == 1:
        return kept[0]
    fragment = sql.SQL("({})").format(sql.SQL(" AND ").join(part.sql for part in kept))
    trees = tuple(part.tree for part in kept if part.tree is not None)
    tree: _Node | None = trees[0] if len(trees) == 1 else (_Bool("AND", trees) if trees else None)
    return Compiled(fragment, tuple(param for part in kept for param in part.params), tree)


# -- Python evaluation ------------------------------------------------------------------------


def _is_number(value: object) -> bool:
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
    return _is_number(stored) and _number(stored) == _number(wanted)


def _holds(stored: object, wanted: Scalar) -> bool:
    if _equal(stored, wanted):
        return True
    return isinstance(stored, list) and any(_equal(item, wanted) for item in stored)


def _evaluate(node: _Node, metadata: Mapping[str, object]) -> bool:
    if isinstance(node, _Bool):
        results = (_evaluate(child, metadata) for child in node.children)
        return all(results) if node.op == "AND" else any(results)
    if isinstance(node, _Exists):
        return (node.field in metadata) is node.present
    if isinstance(node, _Eq):
        found = node.field in metadata and any(
            _holds(metadata[node.field], value) for value in node.values
        )
        return found is not node.negate
    stored = metadata.get(node.field)
    if node.field not in metadata or not _is_number(stored):
        return False
    number = _number(stored)
    return all(_COMPARE[op](number, bound) for op, bound in node.bounds)


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
    tree = _parse(filter)
    return tree is None or _evaluate(tree, metadata)
