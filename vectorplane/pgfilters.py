"""Pinecone's filter language (vectorplane.contract.filters) compiled to SQL over a `jsonb`
column, for every reader of pgvector tables: the gateway's backend, and the control plane's
recall evaluation (provisioning/evaluation.py), which must filter exactly as the gateway does.

Every field name and value is a bound parameter; only the column is an identifier. `k`/`v`
below are parameters:

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
array), so prepared statements are reused across values. A NULL column behaves like `{}`
(positive conditions are not TRUE, negations are TRUE), as the kernel's `evaluate` says.

`sql_of` caches what it compiled on the Filter (per column), so a key's row filter, parsed once
when the key is loaded, is compiled once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from psycopg import sql
from psycopg.types.json import Jsonb

from vectorplane.contract.filters import BoolOp, Eq, Exists, Filter, Node, Range

__all__ = ["TRUE", "Compiled", "compile_filter", "sql_of"]

TRUE: Final = sql.SQL("TRUE")
_P: Final = sql.Placeholder()


@dataclass(frozen=True)
class Compiled:
    """A WHERE fragment with positional `%s` placeholders, and its parameters in order.

    Use it with psycopg: `sql.SQL("SELECT id FROM t WHERE {} AND ns = %s").format(c.sql)` and
    `[*c.params, ns]` (placeholders and parameters must stay in the same order).
    """

    sql: sql.Composable
    params: tuple[object, ...] = ()

    @property
    def is_true(self) -> bool:
        """True for the empty filter (no condition)."""
        return self.sql is TRUE


_ALWAYS: Final = Compiled(TRUE)


class _Compiler:
    def __init__(self, column: sql.Identifier) -> None:
        self.column = column
        self.params: list[object] = []

    def param(self, value: object) -> sql.Composable:
        self.params.append(value)
        return _P

    def node(self, node: Node) -> sql.Composable:
        if isinstance(node, BoolOp):
            glue = sql.SQL(f" {node.op} ")  # node.op is our own constant
            return sql.SQL("({})").format(glue.join(self.node(child) for child in node.children))
        if isinstance(node, Eq):
            return self.eq(node)
        if isinstance(node, Exists):
            test = sql.SQL("{} ? {}::text").format(self.column, self.param(node.field))
            if node.present:
                return sql.SQL("({})").format(test)
            return sql.SQL("(({}) IS NOT TRUE)").format(test)
        return self.range(node)

    def eq(self, node: Eq) -> sql.Composable:
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

    def range(self, node: Range) -> sql.Composable:
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


def _compile(tree: Node, column: sql.Identifier) -> Compiled:
    compiler = _Compiler(column)
    fragment = compiler.node(tree)
    return Compiled(fragment, tuple(compiler.params))


def sql_of(where: Filter, column: tuple[str, ...] = ("metadata",)) -> Compiled:
    """`where` as a WHERE fragment over the jsonb `column` (a name, or a qualified name such as
    `("existing", "metadata")`); the empty filter is `TRUE`. A conjunction joins what was
    compiled of each part (a key's row filter is compiled once, for every request)."""
    if where.tree is None:
        return _ALWAYS
    cache_key = ("pgvector", column)
    found = where.compiled.get(cache_key)
    if isinstance(found, Compiled):
        return found
    if where.parts:
        compiled_parts = [sql_of(part, column) for part in where.parts]
        compiled = Compiled(
            sql.SQL("({})").format(sql.SQL(" AND ").join(c.sql for c in compiled_parts)),
            tuple(p for c in compiled_parts for p in c.params),
        )
    else:
        compiled = _compile(where.tree, sql.Identifier(*column))
    where.compiled[cache_key] = compiled
    return compiled


def compile_filter(filter: object, *, column: tuple[str, ...] = ("metadata",)) -> Compiled:
    """Parse (raising FilterError) and compile a JSON filter: `sql_of(Filter.of(filter))`."""
    return sql_of(Filter.of(filter), column)
