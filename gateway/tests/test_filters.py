"""The metadata filter language (vectorplane/contract/filters.py) and its SQL compiler
(vectorplane/pgfilters.py) against real PostgreSQL (plain psycopg, no Django).

Every query runs in a scratch schema created for this module and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from vectorplane.contract.filters import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_IN_VALUES,
    Filter,
    FilterError,
    conjoin,
    matches,
    validate,
)
from vectorplane.pgfilters import Compiled, compile_filter, sql_of

INJECT = "x'); DROP TABLE t; --"
QUOTE = 'a"b'
PERCENT = "50%s"

# Mixed types on purpose: lists, numbers stored as int/float/-0.0, numeric strings, booleans
# next to 1/1.0, missing keys, hostile key names.
RECORDS: dict[str, dict[str, Any]] = {
    "a": {"genre": "drama", "year": 2020, "rating": 4.5, "draft": False, "tags": ["x", "y"]},
    "b": {"genre": "comedy", "year": 2021, "rating": 3, "draft": True, "tags": ["y"], "big": 2**62},
    "c": {"genre": "drama", "year": 2019.0, "rating": "high", "tags": []},
    "d": {"genre": ["drama", "comedy"], "year": "2020", "rating": 1, "draft": 1},
    "e": {},
    "f": {"genre": INJECT, "year": 2020.5, "draft": "false", "tags": "x"},
    "g": {"rating": -0.0, "year": 1e3, QUOTE: INJECT, INJECT: QUOTE},
    "h": {"ünï": "✓ café", "count": 0, "flag": True, "year": 2020.0},
    "i": {"count": 1, "flag": 1.0, "a.b": 1},
    "j": {"count": True, "genre": "Drama", PERCENT: "%(x)s"},
}
ALL = set(RECORDS)


def _others(*ids: str) -> set[str]:
    return ALL - set(ids)


# (filter, the ids it matches), worked out by hand.
CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, ALL),
    # $eq: scalars, list membership, case-sensitive strings
    ({"genre": "drama"}, {"a", "c", "d"}),
    ({"genre": {"$eq": "drama"}}, {"a", "c", "d"}),
    ({"genre": {"$eq": "Drama"}}, {"j"}),
    ({"tags": "y"}, {"a", "b"}),
    ({"tags": "x"}, {"a", "f"}),
    # numbers: 1 == 1.0, -0.0 == 0, a numeric string is not a number, big ints are exact
    ({"year": 2020}, {"a", "h"}),
    ({"year": 2020.0}, {"a", "h"}),
    ({"year": "2020"}, {"d"}),
    ({"rating": 0}, {"g"}),
    ({"big": 2**62}, {"b"}),
    ({"big": 2**62 + 1}, set()),
    # booleans are not numbers
    ({"draft": True}, {"b"}),
    ({"draft": False}, {"a"}),
    ({"draft": 1}, {"d"}),
    ({"flag": 1}, {"i"}),
    ({"flag": True}, {"h"}),
    ({"count": 0}, {"h"}),
    ({"count": False}, set()),
    ({"count": 1}, {"i"}),
    # $ne / $nin: negations, so records without the field match
    ({"genre": {"$ne": "drama"}}, _others("a", "c", "d")),
    ({"tags": {"$ne": "x"}}, _others("a", "f")),
    ({"draft": {"$ne": True}}, _others("b")),
    ({"missing": {"$ne": 1}}, ALL),
    ({"missing": {"$nin": ["a", 1]}}, ALL),
    ({"genre": {"$nin": ["comedy", "drama"]}}, _others("a", "b", "c", "d")),
    ({"year": {"$nin": [2020, 2021]}}, _others("a", "b", "h")),
    # $in
    ({"genre": {"$in": ["comedy", INJECT]}}, {"b", "d", "f"}),
    ({"tags": {"$in": ["x", "y"]}}, {"a", "b", "f"}),
    ({"year": {"$in": [2019, "2020"]}}, {"c", "d"}),
    ({"draft": {"$in": [True, 1]}}, {"b", "d"}),
    ({"missing": {"$in": ["a"]}}, set()),
    # ranges: numbers only (strings, booleans, lists and missing fields never match)
    ({"year": {"$gte": 2020}}, {"a", "b", "f", "h"}),
    ({"year": {"$gt": 2020}}, {"b", "f"}),
    ({"year": {"$lt": 2020}}, {"c", "g"}),
    ({"year": {"$lte": 2020, "$gt": 1000}}, {"a", "c", "h"}),
    ({"year": {"$gte": 1000, "$lte": 1e3}}, {"g"}),
    ({"year": {"$gt": 2020.25, "$lt": 2020.75}}, {"f"}),
    ({"rating": {"$gte": 0}}, {"a", "b", "d", "g"}),
    ({"rating": {"$lt": 0}}, set()),
    ({"rating": {"$gt": 4.4999, "$lt": 4.5001}}, {"a"}),
    ({"count": {"$gte": 0}}, {"h", "i"}),
    ({"count": {"$gt": 0}}, {"i"}),
    ({"tags": {"$gt": 0}}, set()),
    ({"genre": {"$lt": 10**18}}, set()),
    ({"big": {"$gt": 2**62 - 1}}, {"b"}),
    ({"big": {"$gt": 2**62}}, set()),
    # $exists
    ({"tags": {"$exists": True}}, {"a", "b", "c", "f"}),
    ({"tags": {"$exists": False}}, _others("a", "b", "c", "f")),
    ({"missing": {"$exists": False}}, ALL),
    ({"missing": {"$exists": True}}, set()),
    # hostile, unicode and dotted keys are plain keys
    ({"ünï": "✓ café"}, {"h"}),
    ({QUOTE: INJECT}, {"g"}),
    ({INJECT: QUOTE}, {"g"}),
    ({INJECT: {"$exists": True}}, {"g"}),
    ({PERCENT: "%(x)s"}, {"j"}),
    ({"a.b": 1}, {"i"}),
    ({"a": {"$exists": True}}, set()),
    # several operators / keys are ANDed
    ({"genre": {"$ne": "drama", "$exists": True}}, {"b", "f", "j"}),
    ({"genre": {"$eq": "drama", "$ne": "comedy"}}, {"a", "c"}),
    ({"genre": "drama", "tags": {"$exists": False}}, {"d"}),
    # $and / $or, nested
    ({"$or": [{"genre": "comedy"}, {"year": {"$lt": 2000}}]}, {"b", "d", "g"}),
    ({"$and": [{"genre": "drama"}, {"year": {"$gte": 2020}}]}, {"a"}),
    ({"$and": [{"genre": "drama"}]}, {"a", "c", "d"}),
    ({"$or": [{"draft": True}], "genre": "drama"}, set()),
    (
        {
            "$or": [
                {"$and": [{"genre": "drama"}, {"tags": "x"}]},
                {"draft": True},
                {"count": {"$exists": True}, "flag": {"$ne": True}},
            ]
        },
        {"a", "b", "i", "j"},
    ),
    (
        {
            "$and": [
                {"$or": [{"genre": "drama"}, {"genre": "comedy"}]},
                {"$or": [{"draft": {"$exists": False}}, {"draft": False}]},
            ]
        },
        {"a", "c"},
    ),
]


# -- database fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose search_path is a scratch schema, dropped at the end."""
    schema = f"gw_filters_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            yield connection
        finally:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def records_table(conn: psycopg.Connection[Any]) -> str:
    conn.execute("CREATE TABLE records (id text PRIMARY KEY, metadata jsonb NOT NULL)")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO records (id, metadata) VALUES (%s, %s)",
            [(key, Jsonb(metadata)) for key, metadata in RECORDS.items()],
        )
    return "records"


def select_ids(
    conn: psycopg.Connection[Any], table: str, compiled: Compiled, *extra: object
) -> set[str]:
    query = sql.SQL("SELECT id FROM {} WHERE {}").format(sql.Identifier(table), compiled.sql)
    return {row[0] for row in conn.execute(query, [*compiled.params, *extra])}


# -- (1) every operator against the fixture dataset -------------------------------------------


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_sql_matches_expected_ids(
    conn: psycopg.Connection[Any], records_table: str, filter_: dict[str, Any], expected: set[str]
) -> None:
    assert select_ids(conn, records_table, compile_filter(filter_)) == expected


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_python_matches_expected_ids(filter_: dict[str, Any], expected: set[str]) -> None:
    assert {key for key, meta in RECORDS.items() if matches(filter_, meta)} == expected


def test_null_column_behaves_like_empty_metadata(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE TABLE nullable (id text, metadata jsonb)")
        conn.execute("INSERT INTO nullable VALUES ('null', NULL), ('empty', '{}')")
        for filter_, _ in CASES:
            got = select_ids(conn, "nullable", compile_filter(filter_))
            assert got in (set(), {"null", "empty"}), filter_
            assert ("empty" in got) is matches(filter_, {}), filter_


def test_custom_column_is_a_quoted_identifier(conn: psycopg.Connection[Any]) -> None:
    compiled = compile_filter({"k": 1, "n": {"$gt": 0}}, column=('my "meta"',))
    assert '"my ""meta"""' in compiled.sql.as_string(conn)
    qualified = compile_filter({"k": 1}, column=("v", "metadata"))
    assert '"v"."metadata" @>' in qualified.sql.as_string(conn)
    with conn.transaction(force_rollback=True):
        conn.execute('CREATE TABLE custom (id text, "my ""meta""" jsonb)')
        conn.execute("""INSERT INTO custom VALUES ('1', '{"k": 1, "n": 2}'), ('2', '{"k": 1}')""")
        assert select_ids(conn, "custom", compiled) == {"1"}


def test_placeholders_compose_with_the_callers_parameters(
    conn: psycopg.Connection[Any], records_table: str
) -> None:
    compiled = compile_filter({"genre": "drama"})
    query = sql.SQL("SELECT id FROM records WHERE id <> %s AND {} AND id <> %s").format(
        compiled.sql
    )
    rows = conn.execute(query, ["a", *compiled.params, "d"]).fetchall()
    assert {row[0] for row in rows} == {"c"}


def test_conjoin_ands_filters(conn: psycopg.Connection[Any], records_table: str) -> None:
    bound = Filter.of({"genre": {"$in": ["drama", "comedy"]}})
    request = Filter.of({"$or": [{"year": {"$gte": 2021}}, {"tags": "x"}]})
    combined = conjoin(bound, request)
    assert select_ids(conn, records_table, sql_of(combined)) == {"a", "b"}
    assert sql_of(combined).params == (*sql_of(bound).params, *sql_of(request).params)
    assert {k for k, meta in RECORDS.items() if combined.test(meta)} == {"a", "b"}
    # the empty filter is the identity; nothing at all is TRUE
    assert conjoin(Filter.of({}), request) is request
    assert conjoin(request, Filter.of({})) is request
    assert sql_of(conjoin()).is_true
    assert sql_of(conjoin(Filter.of({}), Filter.of({}))).is_true
    assert select_ids(conn, records_table, sql_of(conjoin())) == ALL
    # more than two; each part is compiled once, and reused by every conjunction with it
    triple = conjoin(bound, request, Filter.of({"draft": True}))
    assert select_ids(conn, records_table, sql_of(triple)) == {"b"}
    first = sql_of(bound)
    sql_of(conjoin(bound, Filter.of({"x": 1})))
    assert sql_of(bound) is first


def test_empty_filter_compiles_to_true(conn: psycopg.Connection[Any]) -> None:
    compiled = compile_filter({})
    assert compiled.sql.as_string(conn) == "TRUE"
    assert compiled.params == ()
    assert compiled.is_true
    assert not compile_filter({"a": 1}).is_true


def test_matches_accepts_round_tripped_and_decimal_metadata(
    conn: psycopg.Connection[Any], records_table: str
) -> None:
    # What PostgreSQL gives back (1e3 comes back as 1000, -0.0 as -0.0) matches the same way.
    stored = dict(conn.execute("SELECT id, metadata FROM records").fetchall())
    for filter_, expected in CASES:
        assert {key for key, meta in stored.items() if matches(filter_, meta)} == expected
    assert matches({"n": 1.5}, {"n": Decimal("1.50")})
    assert matches({"n": {"$gt": 1}}, {"n": Decimal("1.5")})
    assert not matches({"n": {"$gt": 1}}, {"n": Decimal("NaN")})
    assert not matches({"n": {"$gt": 1}}, {"n": float("inf")})


# -- (2) property: SQL and matches() agree ----------------------------------------------------

# Mostly a small pool of values, so filters and records collide (a filter that matches nothing
# or everything proves little); some arbitrary text and numbers for the edge cases.
KEYS = ["a", "tags", "ünï", INJECT, QUOTE, PERCENT]


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from the strategies in proportion to their weights (st.one_of does not weight)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4)
_FEW_STRINGS = st.sampled_from(["x", "y", "Y", "", INJECT, "1"])
_FEW_NUMBERS = st.sampled_from([0, 1, 2, -1, 0.0, -0.0, 1.0, 0.5, 2.5, 1e23, 2**62, 2**62 + 1])
_ANY_NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63 - 1)
)
_NUMBERS = _weighted((4, _FEW_NUMBERS), (1, _ANY_NUMBER))
_LITERALS = _weighted(
    (2, _FEW_STRINGS), (2, _FEW_NUMBERS), (1, st.booleans()), (1, _TEXT), (1, _ANY_NUMBER)
)
_VALUES = _weighted(
    (6, _LITERALS),
    (2, st.lists(_weighted((3, _FEW_STRINGS), (1, _TEXT)), max_size=3)),
    # stored numbers may exceed what a filter literal allows (10**23 vs the float 1e23)
    (1, st.sampled_from([10**23, -(2**64), 2**63])),
)
_METADATA = st.dictionaries(st.sampled_from(KEYS), _VALUES, max_size=len(KEYS))
_FIELDS = st.sampled_from([*KEYS, "absent"])


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


def _filters(pairs: list[tuple[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Valid filters over KEYS (and a key no record has). Most conditions test a (field, value)
    pair some record holds, so that filters match some records and not others."""

    def condition(pair: tuple[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        field, value = pair
        literal = _weighted(
            (3, st.just(value)), (2, st.sampled_from(_lookalikes(value))), (1, _LITERALS)
        )
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        bound = _weighted((3, st.just(value)), (1, _NUMBERS)) if is_number else _NUMBERS
        operators = st.one_of(
            st.tuples(st.sampled_from(["$eq", "$ne"]), literal),
            st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(literal, min_size=1, max_size=4)),
            st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), bound),
            st.tuples(st.just("$exists"), st.booleans()),
        )
        operand = st.one_of(literal, st.lists(operators, min_size=1, max_size=2).map(dict))
        return operand.map(lambda operand: {field: operand})

    random_pair = st.tuples(_FIELDS, _LITERALS)
    pair = _weighted((4, st.sampled_from(pairs)), (1, random_pair)) if pairs else random_pair
    field_filters = st.lists(pair.flatmap(condition), min_size=1, max_size=2).map(_merge)

    def with_logic(
        children: st.SearchStrategy[dict[str, Any]],
    ) -> st.SearchStrategy[dict[str, Any]]:
        logical = st.builds(
            lambda op, items: {op: items},
            st.sampled_from(["$and", "$or"]),
            st.lists(children, min_size=1, max_size=3),
        )
        mixed = st.builds(lambda fields, logic: {**fields, **logic}, field_filters, logical)
        return st.one_of(logical, mixed)

    return st.recursive(field_filters, with_logic, max_leaves=4)


def _lookalikes(value: Any) -> list[Any]:
    """Values a sloppy comparison would confuse with `value` (True/1/1.0/"1", 0/-0.0, ...)."""
    near: list[Any]
    if isinstance(value, bool):
        near = [int(value), float(value), str(value).lower(), not value]
    elif isinstance(value, int | float):
        near = [json.dumps(value), -value, value + 1]
        if value == int(value) and abs(value) < 2**53:
            near += [int(value), float(value)]
        if value in (0, 1):
            near.append(bool(value))
    else:
        near = [value.upper(), value + " "]
        with contextlib.suppress(ValueError):
            near.append(json.loads(value))  # "1" -> 1
    return [item for item in near if _is_literal(item)]


def _is_literal(value: Any) -> bool:
    try:
        validate({"k": value})
    except FilterError:
        return False
    return True


def _pairs(records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The (field, literal) pairs stored in `records` (list items included)."""
    found: list[tuple[str, Any]] = []
    for meta in records:
        for key, value in meta.items():
            for item in value if isinstance(value, list) else [value]:
                if _is_literal(item):
                    found.append((key, item))
    return found


@pytest.fixture(scope="module")
def scratch_table(conn: psycopg.Connection[Any]) -> str:
    conn.execute("CREATE TABLE scratch (id text PRIMARY KEY, metadata jsonb)")
    return "scratch"


@settings(
    max_examples=300,
    deadline=None,
    # The only function-scoped fixture is the root conftest's autouse Django settings one.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_sql_and_python_agree(
    conn: psycopg.Connection[Any], scratch_table: str, data: st.DataObject
) -> None:
    # A NULL column (None) must behave like {}.
    records = data.draw(
        st.lists(_weighted((15, _METADATA), (1, st.none())), min_size=2, max_size=16),
        label="records",
    )
    filter_ = data.draw(_filters(_pairs([meta or {} for meta in records])), label="filter")
    compiled = compile_filter(filter_)
    expected = {str(index) for index, meta in enumerate(records) if matches(filter_, meta or {})}
    with conn.transaction(force_rollback=True):
        conn.execute(
            "INSERT INTO scratch (id, metadata) SELECT * FROM unnest(%s::text[], %s::jsonb[])",
            [
                [str(index) for index in range(len(records))],
                [None if meta is None else Jsonb(meta) for meta in records],
            ],
        )
        assert select_ids(conn, scratch_table, compiled) == expected
        # the stored (re-parsed) metadata evaluates the same as what was sent
        stored = conn.execute("SELECT id, metadata FROM scratch").fetchall()
        assert {key for key, meta in stored if matches(filter_, meta or {})} == expected


# -- (3) validation ---------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    filter_: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        filter_ = {"$and": [filter_]}
    return filter_


INVALID: list[tuple[object, str, list[str | int]]] = [
    ([], "a filter must be a JSON object, got list", []),
    ("genre", "a filter must be a JSON object, got string", []),
    (None, "a filter must be a JSON object, got null", []),
    (5, "a filter must be a JSON object, got number", []),
    ({1: "a"}, "keys must be strings", []),
    ({"$regex": "x"}, "unknown operator '$regex'", ["$regex"]),
    ({"a": {"$regex": "^x"}}, "unknown operator '$regex'", ["a", "$regex"]),
    ({"a": {"$foo": 1}}, "unknown operator '$foo'", ["a", "$foo"]),
    ({"$not": {"a": 1}}, "unknown operator '$not'", ["$not"]),
    ({"$eq": 1}, "operator $eq must be applied to a field", ["$eq"]),
    ({"a": {"$or": [{"b": 1}]}}, "$or is not valid inside a field's operators", ["a", "$or"]),
    ({"a": {"$gt": "a"}}, "$gt takes a number, got string", ["a", "$gt"]),
    ({"a": {"$lte": True}}, "$lte takes a number, got boolean", ["a", "$lte"]),
    ({"a": {"$lt": [1]}}, "$lt takes a number, got list", ["a", "$lt"]),
    ({"a": {"$in": 5}}, "$in takes a non-empty list, got number", ["a", "$in"]),
    ({"a": {"$nin": "x"}}, "$nin takes a non-empty list, got string", ["a", "$nin"]),
    ({"a": {"$in": []}}, "$in takes a non-empty list, got an empty list", ["a", "$in"]),
    ({"a": {"$nin": []}}, "$nin takes a non-empty list, got an empty list", ["a", "$nin"]),
    (
        {"a": {"$in": list(range(MAX_IN_VALUES + 1))}},
        f"$in takes at most {MAX_IN_VALUES} values",
        ["a", "$in"],
    ),
    ({"a": {"$exists": "yes"}}, "$exists takes a boolean, got string", ["a", "$exists"]),
    ({"a": {"$exists": 1}}, "$exists takes a boolean, got number", ["a", "$exists"]),
    ({"$and": {}}, "$and takes a non-empty list of filters, got object", ["$and"]),
    ({"$or": "a"}, "$or takes a non-empty list of filters, got string", ["$or"]),
    ({"$and": []}, "$and takes a non-empty list of filters, got an empty list", ["$and"]),
    ({"$or": [5]}, "a filter must be a JSON object, got number", ["$or", 0]),
    ({"$and": [{"a": 1}, {}]}, "a filter inside $and must not be empty", ["$and", 1]),
    ({"a": float("nan")}, "numbers must be finite", ["a"]),
    ({"a": {"$gt": float("inf")}}, "numbers must be finite", ["a", "$gt"]),
    ({"a": {"$in": [1, float("-inf")]}}, "numbers must be finite", ["a", "$in", 1]),
    ({"a": {"$ne": float("nan")}}, "numbers must be finite", ["a", "$ne"]),
    ({"a": 2**64}, "integer literal out of range", ["a"]),
    ({"a": {"b": 1}}, "nested objects are not valid literals", ["a"]),
    ({"a": {"$eq": {"b": 1}}}, "nested objects are not valid literals", ["a", "$eq"]),
    ({"a": {"$in": ["x", {"b": 1}]}}, "nested objects are not valid literals", ["a", "$in", 1]),
    ({"a": [1, 2]}, "lists are not valid literals", ["a"]),
    ({"a": {"$eq": ["x"]}}, "lists are not valid literals", ["a", "$eq"]),
    ({"a": {"$in": [["x"]]}}, "lists are not valid literals", ["a", "$in", 0]),
    ({"a": None}, "literal must be a string, number or boolean, got null", ["a"]),
    ({"a": b"x"}, "literal must be a string, number or boolean, got bytes", ["a"]),
    ({"a": {}}, "an operator object must not be empty", ["a"]),
    ({"a": "x\x00y"}, "string literal must not contain the NUL character", ["a"]),
    ({"a": "\ud800"}, "string literal is not valid Unicode", ["a"]),
    ({"a\x00": 1}, "field name must not contain the NUL character", ["a\x00"]),
    ({"": 1}, "field names must not be empty", [""]),
    ({"$or": [{"": 1}]}, "field names must not be empty", ["$or", 0, ""]),
    ({"x" * 513: 1}, "field name longer than 512 bytes", ["x" * 513]),
    ({"é" * 257: 1}, "field name longer than 512 bytes", ["é" * 257]),
    (_nested(MAX_DEPTH + 1), "filter nested too deeply (max depth 10)", ["$and", 0] * MAX_DEPTH),
    (
        {"$or": [{"f": index} for index in range(MAX_CONDITIONS + 1)]},
        "too many conditions (more than 1000)",
        ["$or", MAX_CONDITIONS, "f"],
    ),
    (
        {"a": {"$gt": 0, "$lt": 5}, "$or": [{"b": {"$in": [1] * 5}}] * 999},
        "too many conditions",
        ["$or", 998, "b", "$in"],
    ),
]


@pytest.mark.parametrize(
    ("filter_", "message", "path"), INVALID, ids=[repr(case[1])[:60] for case in INVALID]
)
def test_invalid_filters_are_rejected(filter_: object, message: str, path: list[str | int]) -> None:
    with pytest.raises(FilterError) as caught:
        validate(filter_)
    error = caught.value
    assert error.code == "invalid_filter"
    assert message in error.message
    assert str(error) == error.message
    assert error.details["path"] == path
    # compile_filter and matches validate too
    with pytest.raises(FilterError):
        compile_filter(filter_)
    with pytest.raises(FilterError):
        matches(filter_, {"a": 1})


def test_limits_are_inclusive() -> None:
    validate(_nested(MAX_DEPTH))
    validate({"$or": [{"f": index} for index in range(MAX_CONDITIONS)]})
    validate({"a": {"$in": list(range(MAX_IN_VALUES))}})
    validate({"é" * 256: 1})  # 512 bytes
    validate({"a": 2**63 - 1, "b": -(2**63)})
    validate({"a": 1.7976931348623157e308, "b": 5e-324})


def test_error_details_name_the_limit_and_operator() -> None:
    with pytest.raises(FilterError) as caught:
        validate({"a": {"$in": list(range(MAX_IN_VALUES + 1))}})
    assert caught.value.details == {"path": ["a", "$in"], "operator": "$in", "limit": 10_000}
    with pytest.raises(FilterError) as caught:
        validate({"a": {"$regex": "x"}})
    assert caught.value.details == {"path": ["a", "$regex"], "operator": "$regex"}
    assert "(at filter['a']['$regex'])" in caught.value.message


def test_long_user_text_is_truncated_in_messages() -> None:
    with pytest.raises(FilterError) as caught:
        validate({"a": {"$" + "z" * 1000: 1}})
    assert len(caught.value.message) < 250


# -- (4) no user text in the SQL --------------------------------------------------------------


def _every_operator(field: str, value: str) -> dict[str, Any]:
    return {
        "$and": [
            {field: value},
            {field: {"$eq": value, "$ne": value, "$in": [value, 1], "$nin": [value]}},
            {field: {"$gt": 1, "$gte": 1.5, "$lt": 2, "$lte": 3, "$exists": True}},
            {"$or": [{field: {"$exists": False}}, {field: value}]},
        ]
    }


HOSTILE = [INJECT, QUOTE, PERCENT, "%%", "{}", "?", "$1", "'", '"', "\\", "ünï ✓", "--", "/*"]


@pytest.mark.parametrize("text", HOSTILE)
def test_compiled_sql_never_contains_user_text(
    conn: psycopg.Connection[Any], records_table: str, text: str
) -> None:
    field = "key " + text
    compiled = compile_filter(_every_operator(field, text + " value"))
    rendered = compiled.sql.as_string(conn)
    assert field not in rendered
    assert text + " value" not in rendered
    # The text is the same whatever the field names and values: only the structure shapes it.
    assert rendered == compile_filter(_every_operator("k", "v")).sql.as_string(conn)
    # ... and the user text travels as parameters
    assert field in compiled.params
    assert {"field": field, "value": text + " value"} in [
        {"field": key, "value": value}
        for param in compiled.params
        if isinstance(param, Jsonb)
        for key, value in param.obj.items()
    ]
    # and the statement runs (the injection string is data)
    select_ids(conn, records_table, compiled)
    assert conn.execute("SELECT count(*) FROM records").fetchone() == (len(RECORDS),)


def test_rendered_sql_is_the_documented_shape(conn: psycopg.Connection[Any]) -> None:
    def render(filter_: dict[str, Any]) -> str:
        return compile_filter(filter_).sql.as_string(conn)

    col = '"metadata"'
    assert render({"k": 1}) == f"({col} @> %s::jsonb OR {col} @> %s::jsonb)"
    assert render({"k": {"$ne": 1}}) == f"(({col} @> %s::jsonb OR {col} @> %s::jsonb) IS NOT TRUE)"
    assert render({"k": {"$in": [1]}}) == f"({col} @> ANY(%s::jsonb[]))"
    assert render({"k": {"$nin": [1]}}) == f"(({col} @> ANY(%s::jsonb[])) IS NOT TRUE)"
    assert render({"k": {"$exists": True}}) == f"({col} ? %s::text)"
    assert render({"k": {"$exists": False}}) == f"(({col} ? %s::text) IS NOT TRUE)"
    assert render({"k": {"$gt": 1, "$lte": 2}}) == (
        f"(CASE WHEN jsonb_typeof({col} -> %s::text) = 'number' "
        f"THEN ({col} ->> %s::text)::numeric > %s::numeric "
        f"AND ({col} ->> %s::text)::numeric <= %s::numeric ELSE FALSE END)"
    )
    params = compile_filter({"k": "v", "n": {"$in": ["x", 2]}, "r": {"$gte": 0.1}}).params
    assert [_plain(param) for param in params] == [
        {"k": "v"},
        {"k": ["v"]},
        [{"n": "x"}, {"n": ["x"]}, {"n": 2}, {"n": [2]}],
        "r",
        "r",
        Decimal("0.1"),
    ]
    assert all(isinstance(param, Jsonb) for param in params[:2])
    assert all(isinstance(item, Jsonb) for item in params[2])  # type: ignore[attr-defined]


def _plain(value: object) -> object:
    if isinstance(value, Jsonb):
        return value.obj
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- (5) the GIN index serves $eq / $in -------------------------------------------------------


@pytest.fixture(scope="module")
def big_table(conn: psycopg.Connection[Any]) -> str:
    conn.execute("CREATE TABLE big (id text PRIMARY KEY, metadata jsonb NOT NULL)")
    conn.execute(
        """
        INSERT INTO big (id, metadata)
        SELECT i::text, jsonb_build_object(
            'n', CASE WHEN i % 2 = 0 THEN to_jsonb(i) ELSE to_jsonb(i::numeric + 0.0) END,
            'tag', 'tag' || (i % 1000),
            'tags', jsonb_build_array('t' || (i % 500), 'u' || (i % 7)),
            'zero', CASE WHEN i % 5000 = 0 THEN '-0.0'::jsonb ELSE to_jsonb(i) END,
            'flag', i % 2 = 0
        )
        FROM generate_series(1, 20000) AS i
        """
    )
    conn.execute("CREATE INDEX big_gin ON big USING gin (metadata jsonb_path_ops)")
    conn.execute("ANALYZE big")
    return "big"


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _index_names(conn: psycopg.Connection[Any], compiled: Compiled) -> set[str]:
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT id FROM big WHERE {}").format(compiled.sql)
    row = conn.execute(query, compiled.params).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return {node["Index Name"] for node in _plan_nodes(plan) if "Index Name" in node}


@pytest.mark.parametrize(
    "filter_",
    [
        {"tag": "tag5"},
        {"tags": "t7"},
        {"n": 10},
        {"tag": {"$in": ["tag1", "tag2", "tag3"]}},
        {"$or": [{"tag": "tag1"}, {"tags": {"$in": ["t3", "t4"]}}]},
        {"tag": "tag5", "n": {"$gt": 100}},
    ],
    ids=json.dumps,
)
def test_gin_index_serves_eq_and_in(
    conn: psycopg.Connection[Any], big_table: str, filter_: dict[str, Any]
) -> None:
    # No planner settings changed: the plain plan after ANALYZE uses the index.
    assert _index_names(conn, compile_filter(filter_)) == {"big_gin"}


def test_gin_index_serves_a_combined_key_filter(
    conn: psycopg.Connection[Any], big_table: str
) -> None:
    combined = sql_of(conjoin(Filter.of({"tag": "tag9"}), Filter.of({"n": {"$lt": 5000}})))
    assert _index_names(conn, combined) == {"big_gin"}
    assert select_ids(conn, big_table, combined) == {str(i) for i in range(9, 5000, 1000)}


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"n": 10}, {"10"}),
        ({"n": 10.0}, {"10"}),
        ({"n": 11}, {"11"}),  # stored as 11.0
        ({"zero": 0}, {"5000", "10000", "15000", "20000"}),  # stored as -0.0
        ({"n": {"$in": [1, 2.0, 3.5]}}, {"1", "2"}),
        ({"flag": True, "tag": "tag2"}, {str(i) for i in range(2, 20001, 1000)}),
        ({"flag": 1, "tag": "tag2"}, set()),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else "",
)
def test_index_and_sequential_scans_agree(
    conn: psycopg.Connection[Any], big_table: str, filter_: dict[str, Any], expected: set[str]
) -> None:
    """The index's hashing must treat 1 and 1.0 (and 0 and -0.0) as equal, like the recheck."""
    compiled = compile_filter(filter_)
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL enable_seqscan = off")
        assert _index_names(conn, compiled) == {"big_gin"}
        assert select_ids(conn, big_table, compiled) == expected
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL enable_bitmapscan = off")
        conn.execute("SET LOCAL enable_indexscan = off")
        assert _index_names(conn, compiled) == set()
        assert select_ids(conn, big_table, compiled) == expected


def test_exists_is_served_by_a_jsonb_ops_index_only(
    conn: psycopg.Connection[Any], big_table: str
) -> None:
    compiled = compile_filter({"zero": {"$exists": True}, "tag": "tag0"})
    exists_only = compile_filter({"rare": {"$exists": True}})
    assert _index_names(conn, exists_only) == set()  # jsonb_path_ops cannot answer `?`
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE INDEX big_gin_ops ON big USING gin (metadata)")
        conn.execute("ANALYZE big")
        assert _index_names(conn, exists_only) == {"big_gin_ops"}
        assert select_ids(conn, big_table, compiled) == {str(i) for i in range(1000, 20001, 1000)}
