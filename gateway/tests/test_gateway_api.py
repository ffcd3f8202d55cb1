"""Every data-plane operation over real HTTP against the gateway process (path form
`/v1/indexes/{index}/...`): upsert, query, fetch, update, delete, list, describe_index_stats,
the filter language, hybrid (sparse-dense and full-text) queries, and the operational endpoints
(/metrics, /healthz, /readyz)."""

from __future__ import annotations

import math
import random
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.tests.conftest import (
    TARGETS,
    Gateway,
    Platform,
    TenantCtx,
    assert_error,
    conformance,
    cosine,
    data_rows,
    dot,
    poll,
    unique,
)
from provisioning import steps, tasks
from provisioning.drivers.local import LocalDriver
from provisioning.models import Index
from provisioning.selectors import stored_vectors

approx = pytest.approx


# Part of the conformance suite: every test here runs on each target.
platform = pytest.fixture(params=TARGETS, name="platform")(conformance)


class World:
    def __init__(self, gateway: Gateway, tenant: TenantCtx, index: Index, key: str) -> None:
        self.gw = gateway
        self.tenant = tenant
        self.index = index
        self.name = index.name
        self.key = key

    def op(self, operation: str, body: Any = None, **kw: Any) -> Any:
        return self.gw.op(self.name, operation, self.key, body, **kw)

    def upsert(self, vectors: list[dict[str, Any]], **body: Any) -> Any:
        return self.gw.upsert(self.name, self.key, vectors, **body)

    def query(self, **body: Any) -> Any:
        return self.gw.query(self.name, self.key, **body)

    def query_ids(self, **body: Any) -> list[str]:
        return [m["id"] for m in self.query(**body)["matches"]]

    def fetch(self, ids: list[str], namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.gw.fetch(self.name, self.key, ids, namespace)["vectors"]
        return result

    def stats(self, **body: Any) -> Any:
        return self.gw.stats(self.name, self.key, **body)


def make_world(gateway: Gateway, platform: Platform, **index_kw: Any) -> World:
    tenant = platform.tenant()
    return World(gateway, tenant, tenant.index(**index_kw), tenant.key())


@pytest.fixture
def world(gateway: Gateway, platform: Platform) -> World:
    return make_world(gateway, platform)


# ============================================================================ upsert / fetch


def test_upsert_and_fetch_round_trip(world: World) -> None:
    answer = world.upsert(
        [
            {
                "id": "a",
                "values": [0.1, 0.2, 0.3],
                "metadata": {
                    "genre": "drama",
                    "year": 2020,
                    "rating": 4.5,
                    "draft": False,
                    "tags": ["x", "y"],
                },
            },
            {
                "id": "s",
                "values": [0.3, 0.2, 0.1],
                "sparseValues": {"indices": [70, 1, 5], "values": [0.25, 0.5, 1.5]},
            },
            # Duplicate ids in one batch: the last occurrence wins.
            {"id": "dup", "values": [1, 0, 0], "metadata": {"version": 1}},
            {"id": "dup", "values": [0, 1, 0], "metadata": {"version": 2}},
        ]
    )
    assert answer == {"upsertedCount": 3}
    assert world.upsert([{"id": "a", "values": [9, 9, 9]}], namespace="ns1") == {"upsertedCount": 1}

    body = world.gw.fetch(world.name, world.key, ["a", "s", "dup", "missing"])
    assert body["namespace"] == ""
    assert body["usage"] == {"readUnits": 1}
    vectors = body["vectors"]
    assert set(vectors) == {"a", "s", "dup"}
    assert vectors["a"]["id"] == "a"
    assert vectors["a"]["values"] == approx([0.1, 0.2, 0.3], rel=1e-6)
    assert vectors["a"]["metadata"] == {
        "genre": "drama",
        "year": 2020,
        "rating": 4.5,
        "draft": False,
        "tags": ["x", "y"],
    }
    assert "sparseValues" not in vectors["a"]
    # Sparse values come back sorted by index.
    assert vectors["s"]["sparseValues"] == {"indices": [1, 5, 70], "values": [0.5, 1.5, 0.25]}
    assert vectors["s"]["metadata"] == {}
    assert vectors["dup"]["values"] == [0.0, 1.0, 0.0]
    assert vectors["dup"]["metadata"] == {"version": 2}

    # Namespaces are separate: "a" in ns1 is another record.
    in_ns1 = world.fetch(["a", "s"], namespace="ns1")
    assert set(in_ns1) == {"a"}
    assert in_ns1["a"]["values"] == [9.0, 9.0, 9.0] and in_ns1["a"]["metadata"] == {}

    # An upsert replaces the whole record (metadata is not merged), and is not counted twice.
    world.upsert([{"id": "a", "values": [0.5, 0.5, 0.5], "metadata": {"genre": "comedy"}}])
    assert world.fetch(["a"])["a"]["metadata"] == {"genre": "comedy"}
    assert world.stats()["namespaces"] == {"": {"vectorCount": 3}, "ns1": {"vectorCount": 1}}
    assert data_rows(world.index).keys() == {("", "a"), ("", "s"), ("", "dup"), ("ns1", "a")}


def test_fetch_takes_repeated_ids_and_a_namespace(world: World) -> None:
    world.upsert([{"id": f"v{i}", "values": [i, 1, 1]} for i in range(5)], namespace="books")
    response = world.gw.get(
        f"/v1/indexes/{world.name}/vectors/fetch?ids=v1&ids=v3&ids=v3&ids=nope&namespace=books",
        world.key,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["vectors"]) == {"v1", "v3"}
    assert body["namespace"] == "books"
    assert world.fetch(["v1"]) == {}  # the default namespace holds nothing
    assert_error(
        world.gw.get(f"/v1/indexes/{world.name}/vectors/fetch", world.key), 400, "validation_error"
    )


# ============================================================================ query


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_query_by_vector_ranks_by_the_metric(
    gateway: Gateway, platform: Platform, metric: str
) -> None:
    w = make_world(gateway, platform, metric=metric, dimension=4)
    rng = random.Random(11)
    vectors = {f"r{i}": [rng.uniform(-1, 1) for _ in range(4)] for i in range(30)}
    w.upsert(
        [{"id": i, "values": v, "metadata": {"n": n}} for n, (i, v) in enumerate(vectors.items())]
    )
    q = [0.3, -0.2, 0.9, 0.1]
    if metric == "cosine":
        score = {i: cosine(q, v) for i, v in vectors.items()}
    elif metric == "dotproduct":
        score = {i: dot(q, v) for i, v in vectors.items()}
    else:  # a distance: lower is closer (its exact form is the next test's business)
        score = {i: -math.dist(q, v) for i, v in vectors.items()}
    expected = sorted(vectors, key=lambda i: -score[i])
    body = w.query(vector=q, topK=5)
    assert body["namespace"] == ""
    assert isinstance(body["usage"]["readUnits"], int)
    matches = body["matches"]
    assert [m["id"] for m in matches] == expected[:5]
    for m in matches:
        assert set(m) == {"id", "score"}  # neither values nor metadata unless asked
        if metric != "euclidean":
            assert m["score"] == approx(score[m["id"]], rel=1e-4, abs=1e-5)
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=metric != "euclidean")


def test_euclidean_score_is_the_squared_distance(gateway: Gateway, platform: Platform) -> None:
    w = make_world(gateway, platform, metric="euclidean")
    w.upsert([{"id": "a", "values": [1, 2, 3]}])
    (match,) = w.query(vector=[1, 0, 0], topK=1)["matches"]
    assert match["score"] == approx(4.0 + 9.0)


def test_query_includes_values_and_metadata_on_request(world: World) -> None:
    world.upsert(
        [
            {"id": "a", "values": [1, 0, 0], "metadata": {"k": "a"}},
            {
                "id": "b",
                "values": [0, 1, 0],
                "metadata": {"k": "b"},
                "sparseValues": {"indices": [3], "values": [0.5]},
            },
        ]
    )
    matches = world.query(vector=[0, 1, 0], topK=2, includeValues=True, includeMetadata=True)[
        "matches"
    ]
    assert [m["id"] for m in matches] == ["b", "a"]
    assert matches[0] == {
        "id": "b",
        "score": approx(1.0),
        "values": [0.0, 1.0, 0.0],
        "sparseValues": {"indices": [3], "values": [0.5]},
        "metadata": {"k": "b"},
    }
    assert matches[1]["values"] == [1.0, 0.0, 0.0] and matches[1]["metadata"] == {"k": "a"}
    only_meta = world.query(vector=[0, 1, 0], topK=1, includeMetadata=True)["matches"][0]
    assert set(only_meta) == {"id", "score", "metadata"}
    only_values = world.query(vector=[0, 1, 0], topK=1, includeValues=True)["matches"][0]
    assert set(only_values) == {"id", "score", "values", "sparseValues"}


def test_query_by_id(world: World) -> None:
    world.upsert(
        [
            {"id": "a", "values": [1, 0, 0]},
            {"id": "b", "values": [0.9, 0.1, 0]},
            {"id": "c", "values": [0, 0, 1]},
        ]
    )
    world.upsert(
        [{"id": "a", "values": [0, 0, 1]}, {"id": "z", "values": [0, 0.1, 1]}], namespace="other"
    )
    matches = world.query(id="a", topK=3)["matches"]
    assert [m["id"] for m in matches] == ["a", "b", "c"]
    assert matches[0]["score"] == approx(1.0)
    # In another namespace, "a" is another vector and only that namespace is searched.
    assert world.query_ids(id="a", topK=5, namespace="other") == ["a", "z"]
    assert_error(
        world.gw.post(f"/v1/indexes/{world.name}/query", world.key, {"id": "nope", "topK": 1}),
        404,
        "not_found",
    )
    assert_error(
        world.gw.post(
            f"/v1/indexes/{world.name}/query",
            world.key,
            {"id": "a", "vector": [1, 0, 0], "topK": 1},
        ),
        400,
        "validation_error",
    )


def test_zero_query_vector_on_cosine_index(world: World) -> None:
    """Ranks nothing (test_gateway_validation.py has the whole rule)."""
    world.upsert([{"id": "a", "values": [1, 2, 3]}])
    matches = world.query(vector=[0, 0, 0], topK=1)["matches"]
    assert matches == [{"id": "a", "score": 0.0}]


# ============================================================================ filters

RECORDS: dict[str, dict[str, Any]] = {
    "a": {"genre": "drama", "year": 2020, "rating": 4.5, "draft": False, "tags": ["x", "y"]},
    "b": {"genre": "comedy", "year": 2021, "rating": 3, "draft": True, "tags": ["y"]},
    "c": {"genre": "drama", "year": 2019, "tags": ["z"]},
    "d": {"genre": ["drama", "comedy"], "year": 2022, "rating": 5},
    "e": {},
    "f": {"genre": "horror", "year": 2020.0, "rating": "high", "draft": "false"},
}

FILTER_CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "abcdef"),
    ({"genre": "drama"}, "acd"),  # implicit $eq; d holds a list containing "drama"
    ({"genre": {"$eq": "drama"}}, "acd"),
    ({"genre": {"$ne": "drama"}}, "bef"),  # a missing field is "not equal" (filters.py)
    ({"year": {"$gt": 2020}}, "bd"),
    ({"year": {"$gte": 2020}}, "abdf"),  # 2020.0 == 2020
    ({"year": {"$lt": 2020}}, "c"),
    ({"year": {"$lte": 2020}}, "acf"),
    ({"year": {"$gte": 2020, "$lt": 2022}}, "abf"),
    ({"rating": {"$gt": 3}}, "ad"),  # the string "high" is not a number
    ({"genre": {"$in": ["comedy", "horror"]}}, "bdf"),
    ({"genre": {"$nin": ["comedy", "horror"]}}, "ace"),
    ({"tags": "y"}, "ab"),
    ({"tags": {"$in": ["z", "x"]}}, "ac"),
    ({"tags": {"$nin": ["y"]}}, "cdef"),
    ({"draft": True}, "b"),
    ({"draft": False}, "a"),  # not the string "false"
    ({"rating": {"$exists": True}}, "abdf"),
    ({"rating": {"$exists": False}}, "ce"),
    ({"year": 2020}, "af"),
    ({"genre": "drama", "year": 2020}, "a"),  # several keys: AND
    ({"$and": [{"genre": "drama"}, {"year": {"$gte": 2020}}]}, "ad"),
    ({"$or": [{"genre": "comedy"}, {"year": {"$lt": 2020}}]}, "bcd"),
    (
        {
            "$or": [
                {"$and": [{"genre": "drama"}, {"tags": "x"}]},
                {"rating": {"$exists": False}, "genre": {"$exists": False}},
            ]
        },
        "ae",
    ),
    ({"genre": "Drama"}, ""),  # case-sensitive
]


def test_every_filter_operator(world: World) -> None:
    rng = random.Random(3)
    world.upsert(
        [
            {"id": i, "values": [rng.random() + 0.01 for _ in range(3)], "metadata": m}
            for i, m in RECORDS.items()
        ]
    )
    wrong = []
    for flt, expected in FILTER_CASES:
        got = "".join(sorted(world.query_ids(vector=[1, 1, 1], topK=100, filter=flt)))
        counted = world.stats(filter=flt)["totalVectorCount"] if flt else len(RECORDS)
        if got != expected or counted != len(expected):
            wrong.append((flt, expected, got, counted))
    assert wrong == []


def test_filtered_query_returns_top_k_at_low_selectivity(world: World) -> None:
    """2,000 vectors, 1% match: a filtered query still answers topK matching records."""
    w = world
    rng = random.Random(2024)
    dim = 3
    vectors = {f"v{i:04d}": [rng.gauss(0, 1) for _ in range(dim)] for i in range(2000)}
    items = list(vectors.items())
    for start in (0, 1000):
        w.upsert(
            [
                {"id": i, "values": v, "metadata": {"bucket": n % 100}}
                for n, (i, v) in enumerate(items[start : start + 1000], start)
            ]
        )
    matching = {i for n, (i, _) in enumerate(items) if n % 100 == 7}
    assert len(matching) == 20
    q = [0.5, -1.0, 0.25]
    exact = sorted(matching, key=lambda i: -cosine(q, vectors[i]))

    matches = w.query(vector=q, topK=10, filter={"bucket": 7}, includeMetadata=True)["matches"]
    assert len(matches) == 10
    assert all(m["id"] in matching and m["metadata"] == {"bucket": 7} for m in matches)
    scores = [m["score"] for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert len({m["id"] for m in matches} & set(exact[:10])) >= 8  # HNSW is approximate

    # A range filter cannot use the metadata GIN index: the same answer.
    ranged = w.query_ids(vector=q, topK=10, filter={"bucket": {"$gte": 7, "$lt": 8}})
    assert len(ranged) == 10 and set(ranged) <= matching
    assert len(set(ranged) & set(exact[:10])) >= 8

    assert len(w.query_ids(vector=q, topK=20, filter={"bucket": 7})) == 20
    assert sorted(w.query_ids(vector=q, topK=100, filter={"bucket": 7})) == sorted(matching)
    assert w.query_ids(vector=q, topK=10, filter={"bucket": 1000}) == []


# ============================================================================ update


def test_update_values_sparse_values_and_merged_metadata(world: World) -> None:
    world.upsert(
        [
            {"id": "a", "values": [1, 0, 0], "metadata": {"genre": "drama", "year": 2020}},
            {"id": "b", "values": [0, 1, 0], "metadata": {"genre": "comedy"}},
        ]
    )
    assert world.op("update", {"id": "a", "values": [0, 0, 1]}) == {}
    assert world.fetch(["a"])["a"]["values"] == [0.0, 0.0, 1.0]
    assert world.query_ids(vector=[0, 0, 1], topK=1) == ["a"]

    world.op("update", {"id": "a", "sparseValues": {"indices": [9, 2], "values": [1, 2]}})
    assert world.fetch(["a"])["a"]["sparseValues"] == {"indices": [2, 9], "values": [2.0, 1.0]}

    world.op("update", {"id": "a", "setMetadata": {"year": 2021, "tags": ["new"]}})
    fetched = world.fetch(["a", "b"])
    assert fetched["a"]["metadata"] == {"genre": "drama", "year": 2021, "tags": ["new"]}
    assert fetched["a"]["values"] == [0.0, 0.0, 1.0]  # untouched by a metadata update
    assert fetched["b"]["metadata"] == {"genre": "comedy"}  # other records untouched

    # Several at once, in a namespace; an unknown id is a 404.
    world.upsert([{"id": "a", "values": [1, 1, 1]}], namespace="ns")
    world.op(
        "update", {"id": "a", "namespace": "ns", "values": [2, 2, 2], "setMetadata": {"k": "v"}}
    )
    assert world.fetch(["a"], namespace="ns")["a"]["metadata"] == {"k": "v"}
    assert world.fetch(["a"])["a"]["metadata"]["genre"] == "drama"
    assert_error(
        world.gw.post(
            f"/v1/indexes/{world.name}/vectors/update",
            world.key,
            {"id": "nope", "values": [1, 1, 1]},
        ),
        404,
        "not_found",
    )


# ============================================================================ delete


def test_delete_by_ids_filter_and_delete_all(world: World) -> None:
    world.upsert(
        [{"id": f"d{i}", "values": [1, i, 0], "metadata": {"even": i % 2 == 0}} for i in range(10)]
    )
    world.upsert([{"id": f"d{i}", "values": [1, i, 0]} for i in range(4)], namespace="keep")

    assert world.op("delete", {"ids": ["d0", "d1", "unknown"]}) == {}
    assert world.gw.ids(world.name, world.key) == [f"d{i}" for i in range(2, 10)]

    world.op("delete", {"filter": {"even": True}})
    assert world.gw.ids(world.name, world.key) == ["d3", "d5", "d7", "d9"]
    assert world.stats()["namespaces"] == {"": {"vectorCount": 4}, "keep": {"vectorCount": 4}}

    world.op("delete", {"deleteAll": True})
    assert world.gw.ids(world.name, world.key) == []
    assert world.gw.ids(world.name, world.key, "keep") == ["d0", "d1", "d2", "d3"]
    stats = world.stats()
    assert stats["namespaces"] == {"keep": {"vectorCount": 4}}
    assert stats["totalVectorCount"] == 4

    world.op("delete", {"deleteAll": True, "namespace": "keep"})
    assert world.stats()["totalVectorCount"] == 0
    assert data_rows(world.index) == {}
    invalid: list[dict[str, Any]] = [
        {},
        {"ids": ["x"], "deleteAll": True},
        {"ids": []},
        {"deleteAll": "yes"},
    ]
    for body in invalid:
        response = world.gw.post(f"/v1/indexes/{world.name}/vectors/delete", world.key, body)
        assert_error(response, 400, "validation_error")


# ============================================================================ list


def test_list_with_prefix_limit_and_pagination(world: World) -> None:
    doc_ids = [f"doc#{i:02d}" for i in range(23)]
    world.upsert([{"id": i, "values": [1, 2, 3]} for i in [*doc_ids, "img#1", "img#2", "do"]])
    world.upsert([{"id": "doc#99", "values": [1, 2, 3]}], namespace="ns")

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"prefix": "doc#", "limit": 5}
        if token:
            params["paginationToken"] = token
        page = world.gw.list_ids(world.name, world.key, **params)
        assert page["namespace"] == ""
        assert 1 <= len(page["vectors"]) <= 5
        seen += [v["id"] for v in page["vectors"]]
        pages += 1
        token = (page.get("pagination") or {}).get("next")
        if token is None:
            assert "pagination" not in page
            break
    assert pages == 5
    # Each once; in id order on pgvector, in point order on Qdrant (docs/qdrant-engine.md:
    # Pinecone's API promises no order).
    ordered = world.index.engine == "pgvector"
    assert (seen if ordered else sorted(seen)) == doc_ids

    everything = [v["id"] for v in world.gw.list_ids(world.name, world.key)["vectors"]]
    assert (everything if ordered else sorted(everything)) == sorted(
        [*doc_ids, "img#1", "img#2", "do"]
    )
    page = world.gw.list_ids(world.name, world.key, prefix="img", limit=1)
    first = [v["id"] for v in page["vectors"]]
    assert first == ["img#1"] if ordered else first in (["img#1"], ["img#2"])
    assert page["pagination"]["next"]
    in_ns = world.gw.list_ids(world.name, world.key, namespace="ns", prefix="doc")
    assert in_ns["vectors"] == [{"id": "doc#99"}] and in_ns["namespace"] == "ns"
    assert world.gw.list_ids(world.name, world.key, prefix="zzz")["vectors"] == []
    for params in ({"limit": "0"}, {"limit": "abc"}, {"limit": "1001"}):
        response = world.gw.get(f"/v1/indexes/{world.name}/vectors/list", world.key, params=params)
        assert_error(response, 400, "validation_error")
    response = world.gw.get(
        f"/v1/indexes/{world.name}/vectors/list",
        world.key,
        params={"paginationToken": "%%%not-a-token"},
    )
    assert_error(response, 400, "invalid_cursor")


# ============================================================================ stats


def test_describe_index_stats(world: World) -> None:
    world.upsert([{"id": f"a{i}", "values": [1, 0, i], "metadata": {"i": i}} for i in range(5)])
    world.upsert(
        [{"id": f"b{i}", "values": [0, 1, i], "metadata": {"i": i}} for i in range(3)],
        namespace="ns1",
    )
    stats = world.stats()
    assert stats == {
        "namespaces": {"": {"vectorCount": 5}, "ns1": {"vectorCount": 3}},
        "dimension": 3,
        "indexFullness": 0.0,
        "totalVectorCount": 8,
        "metric": "cosine",
        "vectorType": "dense",
    }
    get = world.gw.get(f"/v1/indexes/{world.name}/describe_index_stats", world.key)
    assert get.status_code == 200 and get.json() == stats
    filtered = world.stats(filter={"i": {"$gte": 2}})
    assert filtered["namespaces"] == {"": {"vectorCount": 3}, "ns1": {"vectorCount": 1}}
    assert filtered["totalVectorCount"] == 4
    none = world.stats(filter={"i": 99})
    assert none["namespaces"] == {} and none["totalVectorCount"] == 0
    # What the usage API (`/usage/stored-vectors`) reports, wherever the index lives.
    assert stored_vectors(tenant_id=world.tenant.id)[world.index.id] == 8


# ============================================================================ hybrid


def test_sparse_dense_query_on_a_dotproduct_index(gateway: Gateway, platform: Platform) -> None:
    w = make_world(gateway, platform, metric="dotproduct")
    Sparse = dict[str, list[Any]]
    records: dict[str, tuple[list[float], Sparse | None]] = {
        "dense-best": ([1.0, 0.9, 0.0], {"indices": [1], "values": [0.1]}),
        "sparse-best": ([0.5, 0.5, 0.0], {"indices": [7, 42], "values": [3.0, 1.0]}),
        "no-sparse": ([0.6, 0.6, 0.1], None),
        "far": ([-1.0, -1.0, 0.0], {"indices": [42], "values": [0.5]}),
    }
    w.upsert(
        [
            {"id": i, "values": v, **({"sparseValues": s} if s else {})}
            for i, (v, s) in records.items()
        ]
    )
    q = [1.0, 1.0, 0.0]
    sq: Sparse = {"indices": [7, 42, 100], "values": [1.0, 2.0, 5.0]}

    def expected(rid: str) -> float:
        values, sparse = records[rid]
        weights = dict(zip(sq["indices"], sq["values"], strict=True))
        sparse_dot = (
            sum(
                weights.get(i, 0.0) * x
                for i, x in zip(sparse["indices"], sparse["values"], strict=True)
            )
            if sparse
            else 0.0
        )
        return dot(q, values) + sparse_dot

    matches = w.query(vector=q, sparseVector=sq, topK=4)["matches"]
    assert [m["id"] for m in matches] == sorted(records, key=lambda i: -expected(i))
    assert matches[0]["id"] == "sparse-best"  # 1.0 + 5.0 beats 1.9 + 0
    for m in matches:
        assert m["score"] == approx(expected(m["id"]), rel=1e-5)
    dense_only = w.query_ids(vector=q, topK=4)
    assert dense_only[0] == "dense-best"


def test_sparse_query_on_a_cosine_index_is_refused(world: World) -> None:
    world.upsert([{"id": "a", "values": [1, 2, 3]}])
    response = world.gw.post(
        f"/v1/indexes/{world.name}/query",
        world.key,
        {"vector": [1, 2, 3], "sparseVector": {"indices": [1], "values": [1.0]}, "topK": 1},
    )
    details = assert_error(response, 400, "unsupported_combination")
    assert details == {"metric": "cosine"}


def test_text_query_fuses_dense_and_full_text_ranks(gateway: Gateway, platform: Platform) -> None:
    w = make_world(gateway, platform, text_field=True)
    if w.index.engine == "qdrant":
        # Not the same ranking on Qdrant (no ts_rank_cd): refused, never a different answer.
        w.upsert([{"id": "a", "values": [1.0, 0.0, 0.0], "text": "zebra"}])
        response = w.gw.post(f"/v1/indexes/{w.name}/query", w.key,
                             {"vector": [1, 0, 0], "topK": 1, "text": "zebra"})  # fmt: skip
        assert assert_error(response, 400, "unsupported_on_engine")["engine"] == "qdrant"
        return
    near = [
        {"id": f"n{i:03d}", "values": [1.0, 0.01 * i, 0.0], "text": "plain filler words"}
        for i in range(150)
    ]
    far = {"id": "zebra", "values": [-1.0, 0.0, 0.1], "text": "The quick zebras jumped"}
    w.upsert([*near, far])
    q = [1.0, 0.0, 0.0]
    # The far record is outside the dense candidates; it is found by its text only.
    assert "zebra" not in w.query_ids(vector=q, topK=3)
    matches = w.query(vector=q, topK=3, text="zebra", includeMetadata=True)["matches"]
    ids = [m["id"] for m in matches]
    assert "zebra" in ids
    by_id = {m["id"]: m["score"] for m in matches}
    assert by_id["zebra"] == approx(1 / 61)  # RRF: first in the text ranking only
    assert by_id["n000"] == approx(1 / 61)  # first in the dense ranking only
    assert [m["score"] for m in matches] == sorted(by_id.values(), reverse=True)
    # A record in both rankings outranks both.
    w.upsert([{"id": "n005", "values": [1.0, 0.05, 0.0], "text": "a zebra too"}])
    fused = w.query(vector=q, topK=3, text="zebra")["matches"]
    assert fused[0]["id"] == "n005"
    assert fused[0]["score"] == approx(1 / 66 + 1 / 61) or fused[0]["score"] == approx(
        1 / 66 + 1 / 62
    )
    response = w.gw.post(f"/v1/indexes/{w.name}/query", w.key, {"vector": q, "topK": 1, "text": 5})
    assert_error(response, 400, "validation_error")  # a type error, whatever the index


def test_text_query_needs_a_text_index(world: World) -> None:
    response = world.gw.post(
        f"/v1/indexes/{world.name}/query", world.key, {"vector": [1, 2, 3], "topK": 1, "text": "x"}
    )
    assert_error(response, 400, "unsupported_combination")
    response = world.gw.post(
        f"/v1/indexes/{world.name}/vectors/upsert",
        world.key,
        {"vectors": [{"id": "a", "values": [1, 2, 3], "text": "x"}]},
    )
    assert_error(response, 400, "unknown_field")


# ============================================================================ routing errors


def test_unknown_routes_and_methods_answer_the_error_shape(world: World) -> None:
    assert_error(world.gw.get("/v1/indexes/x/nothing", world.key), 404, "not_found")
    assert_error(world.gw.get("/nothing", None), 404, "not_found")
    assert_error(
        world.gw.get(f"/v1/indexes/{world.name}/query", world.key), 405, "method_not_allowed"
    )
    # The bare routes need host routing: a host outside the gateway domain is not an index.
    assert_error(world.gw.post("/query", world.key, {"vector": [1, 2, 3]}), 404, "not_found")


# ============================================================================ operations


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(gateway: Gateway) -> Samples:
    """Every sample of /metrics: {(name, sorted labels): value}."""
    response = gateway.get("/metrics", None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_health_endpoints(gateway: Gateway) -> None:
    healthz = gateway.get("/healthz", None)
    assert healthz.status_code == 200 and healthz.json() == {"status": "ok"}
    readyz = gateway.get("/readyz", None)
    assert readyz.status_code == 200 and readyz.json() == {"status": "ok"}


def test_metrics_count_requests_by_operation_and_status(world: World) -> None:
    world.upsert([{"id": "a", "values": [1, 2, 3]}])
    before = _samples(world.gw)
    for _ in range(3):
        world.query(vector=[1, 2, 3], topK=1)
    missing = world.gw.post(f"/v1/indexes/{unique('nope')}/query", world.key, {"vector": [1]})
    assert missing.status_code == 404
    world.gw.fetch(world.name, world.key, ["a"])
    after = _samples(world.gw)

    def delta(name: str, **labels: str) -> float:
        """Growth of the samples of `name` whose labels include `labels` (summed)."""

        def total(samples: Samples) -> float:
            return sum(
                value
                for (sample, found), value in samples.items()
                if sample == name and labels.items() <= dict(found).items()
            )

        return total(after) - total(before)

    requests = "vectorplane_gateway_requests_total"
    assert delta(requests, operation="query", status="200") == 3
    assert delta(requests, operation="query", status="404") == 1
    assert delta(requests, operation="fetch", status="200") == 1
    latency = "vectorplane_gateway_request_seconds"
    assert delta(f"{latency}_count", operation="query") == 4
    assert delta(f"{latency}_bucket", operation="query", le="+Inf") == 4
    assert delta(f"{latency}_sum", operation="query") > 0
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for (name, labels), value in after.items():
        found = dict(labels)
        if name == f"{latency}_bucket" and found["operation"] == "query":
            le = float(found.pop("le"))
            series.setdefault(tuple(sorted(found.items())), []).append((le, value))
    assert series
    for buckets in series.values():  # cumulative buckets
        counts = [count for _, count in sorted(buckets)]
        assert len(counts) > 5 and counts == sorted(counts)
    # Registry cache: the 5 requests used one key (cached), so hits grew; gauges exist.
    cache = "vectorplane_gateway_cache_lookups"
    assert delta(cache, result="hit") >= 5
    assert (cache, (("result", "miss"),)) in after
    pool = "vectorplane_gateway_pool_connections"
    size = after[(pool, (("state", "size"),))]
    available = after[(pool, (("state", "available"),))]
    assert size >= 2 and 0 <= available <= size


def test_latency_histogram_is_labelled_by_status(world: World) -> None:
    world.upsert([{"id": "a", "values": [1, 2, 3]}])
    samples = _samples(world.gw)
    labels = [
        dict(labels)
        for (name, labels), _ in samples.items()
        if name == "vectorplane_gateway_request_seconds_count"
    ]
    assert {"operation": "upsert", "status": "200"} in labels


# ============================================================================ cluster down


def test_a_stopped_cluster_answers_503_then_recovers(world: World) -> None:
    """A dedicated cluster whose server is down answers 503 `cluster_unavailable` (retry),
    never a 500; once it is back (what the reconcile task does) requests succeed again."""
    if world.tenant.target == "shared":
        pytest.skip("the shared tier is the gateway's own database (its outage: /readyz)")
    world.upsert([{"id": "a", "values": [1, 2, 3]}])
    cluster = world.tenant.dedicated()
    spec = steps.spec_for(cluster)
    driver = LocalDriver()
    driver.stop(spec)
    try:
        response = world.gw.post(f"/v1/indexes/{world.name}/query", world.key,
                                 {"vector": [1, 2, 3], "topK": 1})  # fmt: skip
        assert assert_error(response, 503, "cluster_unavailable") == {"index": world.name}
    finally:
        # The reconcile task sees the drift and starts the cluster again (inline here).
        assert tasks.clusters_reconcile(inline=True)["drifted"] >= 1
    assert driver.observe(spec).state == "ready"

    def query() -> httpx.Response:
        return world.gw.post(f"/v1/indexes/{world.name}/query", world.key,
                             {"vector": [1, 2, 3], "topK": 1})  # fmt: skip

    # Connections broken by the restart are dropped as they fail: a few 503s at most.
    response, _elapsed = poll(query, lambda r: r.status_code == 200, timeout=30)
    assert [m["id"] for m in response.json()["matches"]] == ["a"]
