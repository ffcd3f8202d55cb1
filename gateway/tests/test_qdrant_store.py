"""The Qdrant engine backend (gateway/backends/qdrant.py, provisioning/storage/qdrant_tier.py)
against a real Qdrant engine: the `vectorplane.qdrant_host` process (Qdrant Edge behind Qdrant's
REST API), started once for the module on a free port, its data in a temporary directory.

Every method of the store, each of its errors, namespace isolation, row guards, the vector
quota, scores against a brute-force computation and sparse-dense scores against a Python one.
No database is used. The store is async: each test runs its coroutine with asyncio.run, on a
store opened for it (an aiohttp session belongs to one event loop).
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from gateway.backends import (
    BackendUnavailable,
    MetadataTooLarge,
    QuotaExceeded,
    Record,
    RowFilterViolation,
    UnsupportedOnEngine,
    decode_token,
)
from gateway.backends.qdrant import QdrantError, QdrantStore, point_id
from gateway.ratelimit import RedisLink, TenantLock
from gateway.registry import IndexInfo
from gateway.tests.conftest import RedisProcess
from gateway.tests.test_qdrant_filters import Host, connect, start_host, stop_host
from provisioning.storage.qdrant_tier import (
    PAYLOAD_INDEXES,
    QdrantIndexSpec,
    QdrantUnavailable,
    create_collection,
    drop_collection,
    spec_for,
)
from vectorplane.contract.filters import Filter
from vectorplane.contract.storage import DENSE, SPARSE, collection_name

T = TypeVar("T")
ANY = Filter.of({})
UNLIMITED = 10**9


@pytest.fixture(scope="module")
def qdrant_host() -> Iterator[Host]:
    host = start_host()
    try:
        yield host
    finally:
        stop_host(host)


class Cluster:
    """The host as a tenant's cluster: indexes on demand, and a store per coroutine."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.client = host.client()
        self.tenant_id = uuid.uuid4()

    def index(self, metric: str = "dotproduct", dimension: int = 3) -> IndexInfo:
        spec = QdrantIndexSpec(
            index_id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            dimension=dimension,
            metric=metric,
            hnsw_m=16,
            hnsw_ef_construction=100,
        )
        create_collection(self.client, spec)
        return IndexInfo(
            id=spec.index_id,
            tenant_id=self.tenant_id,
            name=f"ix-{spec.index_id.hex[:8]}",
            dimension=dimension,
            metric=metric,
            vector_type="vector",
            ef_search=40,
            text_field=False,
            schema_name="",
            table_name=collection_name(spec.index_id),
            status="ready",
            engine="qdrant",
        )

    def run(self, body: Callable[[QdrantStore], Awaitable[T]]) -> T:
        async def main() -> T:
            store = QdrantStore(self.host.url, self.host.api_key)
            await store.open()
            try:
                return await body(store)
            finally:
                await store.close()

        return asyncio.run(main())


@pytest.fixture(scope="module")
def cluster(qdrant_host: Host) -> Iterator[Cluster]:
    found = Cluster(qdrant_host)
    try:
        yield found
    finally:
        found.client.close()


def f32(value: float) -> float:
    """The value as Qdrant stores it (float32)."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def rec(
    record_id: str,
    values: list[float],
    metadata: dict[str, Any] | None = None,
    sparse: tuple[list[int], list[float]] | None = None,
) -> Record:
    return Record(id=record_id, values=values, sparse=sparse, metadata=metadata)


def ns() -> str:
    return uuid.uuid4().hex[:12]


# ============================================================================ provisioning


@pytest.mark.parametrize(
    ("metric", "distance"),
    [("cosine", "Cosine"), ("euclidean", "Euclid"), ("dotproduct", "Dot")],
)
def test_provisioning_is_idempotent_and_complete(
    cluster: Cluster, metric: str, distance: str
) -> None:
    spec = QdrantIndexSpec(
        index_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        dimension=7,
        metric=metric,
        hnsw_m=12,
        hnsw_ef_construction=64,
    )
    assert spec.name == f"i_{spec.index_id.hex}" == collection_name(spec.index_id)
    create_collection(cluster.client, spec)
    create_collection(cluster.client, spec)  # a retried task: nothing changes, nothing fails
    info = cluster.client.get_collection(spec.name)
    params = info.config.params
    assert isinstance(params.vectors, dict)
    assert set(params.vectors) == {DENSE}
    assert params.vectors[DENSE].size == 7
    assert params.vectors[DENSE].distance == models.Distance(distance)
    assert set(params.sparse_vectors or {}) == {SPARSE}
    assert info.config.hnsw_config.m == 12
    assert info.config.hnsw_config.ef_construct == 64
    schema = info.payload_schema
    assert set(schema) == {name for name, _ in PAYLOAD_INDEXES} == {"_ns", "_id", "_keys", "_eq"}
    assert all(entry.data_type == models.PayloadSchemaType.KEYWORD for entry in schema.values())
    ns_params, id_params = schema["_ns"].params, schema["_id"].params
    assert isinstance(ns_params, models.KeywordIndexParams) and ns_params.is_tenant is True
    assert isinstance(id_params, models.KeywordIndexParams) and id_params.prefix is True
    drop_collection(cluster.client, spec.index_id)
    drop_collection(cluster.client, spec.index_id)  # gone already: fine
    assert not cluster.client.collection_exists(spec.name)


def test_provisioning_adds_missing_payload_indexes(cluster: Cluster) -> None:
    spec = QdrantIndexSpec(uuid.uuid4(), uuid.uuid4(), 2, "cosine", 16, 100)
    create_collection(cluster.client, spec)
    cluster.client.delete_payload_index(spec.name, "_eq", wait=True)
    assert "_eq" not in (cluster.client.get_collection(spec.name).payload_schema or {})
    create_collection(cluster.client, spec)
    assert "_eq" in (cluster.client.get_collection(spec.name).payload_schema or {})
    drop_collection(cluster.client, spec.index_id)


def test_spec_for_an_index_row() -> None:
    row = SimpleNamespace(
        id=uuid.uuid4(), tenant_id=uuid.uuid4(), dimension=5, metric="euclidean", hnsw_m=8,
        hnsw_ef_construction=32, text_field=True, name="ignored",
    )  # fmt: skip
    assert spec_for(row) == QdrantIndexSpec(
        row.id, row.tenant_id, 5, "euclidean", 8, 32, text_field=True
    )


def test_provisioning_reports_an_unavailable_cluster(qdrant_host: Host) -> None:
    spec = QdrantIndexSpec(uuid.uuid4(), uuid.uuid4(), 2, "cosine", 16, 100)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = connect(f"http://127.0.0.1:{port}", "k")
    wrong_key = connect(qdrant_host.url, "not-the-key")
    try:
        for client in (nobody, wrong_key):
            with pytest.raises(QdrantUnavailable):
                create_collection(client, spec)
            with pytest.raises(QdrantUnavailable):
                drop_collection(client, spec.index_id)
    finally:
        nobody.close()
        wrong_key.close()


def test_provisioning_passes_other_refusals_on(cluster: Cluster) -> None:
    too_big = QdrantIndexSpec(uuid.uuid4(), uuid.uuid4(), 10**6, "cosine", 16, 100)
    with pytest.raises(UnexpectedResponse) as caught:
        create_collection(cluster.client, too_big)
    assert caught.value.status_code is not None and 400 <= caught.value.status_code < 500


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="metric"):
        QdrantIndexSpec(uuid.uuid4(), uuid.uuid4(), 3, "manhattan", 16, 100)
    with pytest.raises(ValueError, match="dimension"):
        QdrantIndexSpec(uuid.uuid4(), uuid.uuid4(), 0, "cosine", 16, 100)


# ============================================================================ open, ids


def test_open_checks_the_cluster_and_the_key(cluster: Cluster) -> None:
    qdrant_host = cluster.host
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def body() -> None:
        wrong_key = QdrantStore(qdrant_host.url, "not-the-key")
        with pytest.raises(QdrantError) as caught:
            await wrong_key.open()
        assert caught.value.status == 401
        nobody = QdrantStore(f"http://127.0.0.1:{port}", "k", timeout=2)
        with pytest.raises(BackendUnavailable):
            await nobody.open()
        index = cluster.index()
        for failed in (wrong_key, nobody):  # closed by the failed open
            with pytest.raises(RuntimeError, match="open"):
                await failed.fetch(index, "", ["a"], ANY)
            await failed.close()  # closing again is harmless
        store = QdrantStore(qdrant_host.url + "/", qdrant_host.api_key)
        await store.open()
        assert await store.fetch(index, "", ["a"], ANY) == []
        await store.close()
        await store.close()

    asyncio.run(body())


def test_point_ids_are_deterministic_and_namespaced() -> None:
    assert point_id("a", "x") == point_id("a", "x")
    assert uuid.UUID(point_id("a", "x")).version == 5
    assert len({point_id("a", "bc"), point_id("ab", "c"), point_id("", "abc")}) == 3


# ============================================================================ upsert / fetch

METADATA: dict[str, Any] = {
    "int": 7,
    "float": 7.0,
    "neg0": -0.0,
    "big": 2**64 - 1,
    "small": -(2**63),
    "bool": False,
    "list": ["a", "", "ünï"],
    "empty": [],
    "str": 'x"y\\z',
    "a.b": 1,
    "sp ace": "v",
    "ünï ✓": "café",
}


def test_upsert_and_fetch_round_trip(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 3)
    space = ns()

    async def body(store: QdrantStore) -> None:
        written = await store.upsert(
            index,
            space,
            [
                rec("a", [0.1, 0.2, 0.3], METADATA, ([9, 2], [0.5, -1.5])),
                rec("b", [1.0, 2.0, 3.0]),
                rec("a", [0.1, 0.2, 0.3], METADATA, ([9, 2], [0.5, -1.25])),  # last one wins
            ],
            max_vectors=UNLIMITED,
        )
        assert written == 2
        rows = await store.fetch(index, space, ["a", "b", "missing", "a"], ANY)
        by_id = {r["id"]: r for r in rows}
        assert len(rows) == 2 and set(by_id) == {"a", "b"}
        a = by_id["a"]
        assert a["metadata"] == METADATA
        # types survive: 7 stays an int, 7.0 a float, -0.0 negative
        assert type(a["metadata"]["int"]) is int and type(a["metadata"]["float"]) is float
        assert math.copysign(1.0, a["metadata"]["neg0"]) == -1.0
        # float32 values, read back as their shortest decimals (as pgvector prints them).
        assert a["values"] == [0.1, 0.2, 0.3]
        assert [f32(v) for v in a["values"]] == [f32(0.1), f32(0.2), f32(0.3)]
        assert a["sparse"] == {"indices": [2, 9], "values": [-1.25, 0.5]}
        assert by_id["b"] == {"id": "b", "values": [1.0, 2.0, 3.0], "sparse": None, "metadata": {}}
        assert await store.vector_of(index, space, "b", ANY) == [1.0, 2.0, 3.0]
        assert await store.vector_of(index, space, "nope", ANY) is None
        # the guard (a key's row filter) hides what it does not cover
        assert await store.fetch(index, space, ["a", "b"], Filter.of({"int": 7})) == [a]
        assert await store.vector_of(index, space, "b", Filter.of({"int": 7})) is None

    cluster.run(body)


def test_cosine_values_and_norm_are_restored(cluster: Cluster) -> None:
    index = cluster.index("cosine", 4)
    space = ns()
    values = [3.0, -4.0, 0.001, 12.5]

    async def body(store: QdrantStore) -> None:
        await store.upsert(index, space, [rec("v", values)], max_vectors=UNLIMITED)
        [row] = await store.fetch(index, space, ["v"], ANY)
        assert row["values"] == pytest.approx(values, rel=1e-6)
        # a metadata-only update keeps the vector (and its norm)
        await store.update(
            index, space, "v", values=None, sparse=None, set_metadata={"k": 1}, guard=ANY
        )
        assert await store.vector_of(index, space, "v", ANY) == pytest.approx(values, rel=1e-6)
        await store.update(
            index, space, "v", values=[0.0, 2.0, 0.0, 0.0], sparse=None, set_metadata=None,
            guard=ANY,
        )  # fmt: skip
        assert await store.vector_of(index, space, "v", ANY) == pytest.approx(
            [0.0, 2.0, 0.0, 0.0], abs=1e-6
        )

    cluster.run(body)


# ============================================================================ namespaces


def test_namespaces_are_isolated(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    one, other = ns(), ""  # the default namespace is a namespace like another

    async def body(store: QdrantStore) -> None:
        await store.upsert(
            index, one, [rec("x", [1.0, 0.0], {"in": "one"}), rec("y", [0.0, 1.0])],
            max_vectors=UNLIMITED,
        )  # fmt: skip
        await store.upsert(
            index, other, [rec("x", [2.0, 0.0], {"in": "other"})], max_vectors=UNLIMITED
        )
        [x] = await store.fetch(index, other, ["x", "y"], ANY)
        assert x["metadata"] == {"in": "other"} and x["values"] == [2.0, 0.0]
        hits = await store.query(
            index, other, [1.0, 1.0], 10, ANY, ef_search=40, include_values=False,
            include_metadata=True,
        )  # fmt: skip
        assert hits == [{"id": "x", "score": 2.0, "metadata": {"in": "other"}}]
        assert await store.list_ids(index, other, "", 10, None, ANY) == (["x"], None)
        assert await store.stats(index, ANY, frozenset()) == {one: 2, other: 1}
        assert await store.stats(index, ANY, frozenset({other})) == {other: 1}
        assert await store.stats(index, ANY, frozenset({"nobody"})) == {}
        assert not await store.update(
            index, other, "y", values=None, sparse=None, set_metadata={"a": 1}, guard=ANY
        )
        assert await store.delete(index, other, ids=["y"]) == 0
        assert await store.delete(index, other) == 1
        assert await store.stats(index, ANY, frozenset()) == {one: 2}
        [x] = await store.fetch(index, one, ["x"], ANY)
        assert x["metadata"] == {"in": "one"}

    cluster.run(body)


# ============================================================================ query


def _brute_force(
    metric: str, query: list[float], stored: dict[str, list[float]]
) -> list[tuple[str, float]]:
    """Pinecone's scores, computed in Python on the float32 values Qdrant holds, best first."""
    out = []
    for key, values in stored.items():
        v = [f32(x) for x in values]
        dot = math.fsum(a * b for a, b in zip(query, v, strict=True))
        if metric == "dotproduct":
            score = dot
        elif metric == "cosine":
            score = dot / math.sqrt(math.fsum(a * a for a in query) * math.fsum(b * b for b in v))
        else:
            score = math.fsum((a - b) ** 2 for a, b in zip(query, v, strict=True))
        out.append((key, score))
    out.sort(key=lambda pair: pair[1], reverse=metric != "euclidean")
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_query_scores_equal_brute_force(cluster: Cluster, metric: str) -> None:
    rng = random.Random(metric)
    index = cluster.index(metric, 8)
    space = ns()
    stored = {f"v{i}": [rng.gauss(0, 1) for _ in range(8)] for i in range(60)}
    meta = {key: {"even": int(key[1:]) % 2 == 0, "n": int(key[1:])} for key in stored}
    query = [rng.gauss(0, 1) for _ in range(8)]

    async def body(store: QdrantStore) -> None:
        await store.upsert(
            index, space, [rec(k, v, meta[k]) for k, v in stored.items()], max_vectors=UNLIMITED
        )
        hits = await store.query(
            index, space, query, 60, ANY, ef_search=100, include_values=False,
            include_metadata=False,
        )  # fmt: skip
        expected = _brute_force(metric, query, stored)
        assert [h["id"] for h in hits] == [k for k, _ in expected]
        for hit, (_, score) in zip(hits, expected, strict=True):
            assert set(hit) == {"id", "score"}
            assert hit["score"] == pytest.approx(score, rel=1e-5, abs=1e-5)
        # a filter and top_k
        where = Filter.of({"even": True, "n": {"$lt": 40}})
        top = await store.query(
            index, space, query, 5, where, ef_search=40, include_values=True,
            include_metadata=True,
        )  # fmt: skip
        subset = {k: v for k, v in stored.items() if where.test(meta[k])}
        expected = _brute_force(metric, query, subset)[:5]
        assert [h["id"] for h in top] == [k for k, _ in expected]
        for hit in top:
            assert set(hit) == {"id", "score", "values", "metadata"}  # no sparse values here
            assert hit["metadata"] == meta[hit["id"]]
            assert hit["values"] == pytest.approx(stored[hit["id"]], rel=1e-6, abs=1e-7)

    cluster.run(body)


def test_hybrid_scores_equal_python(cluster: Cluster) -> None:
    """Pinecone's sparse-dense score, as the shared tier computes it: over the dense top
    max(10 * top_k, 100) candidates, dense dot product + sparse dot product."""
    rng = random.Random(7)
    index = cluster.index("dotproduct", 6)
    space = ns()
    stored = {f"h{i}": [rng.gauss(0, 1) for _ in range(6)] for i in range(160)}
    sparse: dict[str, tuple[list[int], list[float]]] = {}
    for key in stored:
        if rng.random() < 0.8:  # some records have no sparse values
            indices = sorted(rng.sample(range(20), 4))
            sparse[key] = (indices, [rng.uniform(-2, 4) for _ in indices])
    query = [rng.gauss(0, 1) for _ in range(6)]
    query_sparse = ([1, 3, 5, 7, 11, 13], [1.5, -0.5, 2.0, 1.0, 0.25, 3.0])
    weights = dict(zip(*query_sparse, strict=True))

    def sparse_dot(key: str) -> float:
        if key not in sparse:
            return 0.0
        return math.fsum(weights.get(i, 0.0) * f32(v) for i, v in zip(*sparse[key], strict=True))

    async def body(store: QdrantStore) -> None:
        await store.upsert(
            index, space, [rec(k, v, {"k": k}, sparse.get(k)) for k, v in stored.items()],
            max_vectors=UNLIMITED,
        )  # fmt: skip
        for top_k in (3, 12):
            dense = _brute_force("dotproduct", query, stored)
            cut = max(10 * top_k, 100)
            assert dense[cut - 1][1] - dense[cut][1] > 1e-4  # a clear candidate boundary
            expected = sorted(
                ((k, s + sparse_dot(k)) for k, s in dense[:cut]), key=lambda p: -p[1]
            )[:top_k]
            hits = await store.query(
                index, space, query, top_k, ANY, ef_search=40, include_values=True,
                include_metadata=True, sparse=query_sparse,
            )  # fmt: skip
            assert [h["id"] for h in hits] == [k for k, _ in expected]
            for hit, (key, score) in zip(hits, expected, strict=True):
                assert hit["score"] == pytest.approx(score, rel=1e-5, abs=1e-5)
                assert hit["metadata"] == {"k": key}
                if key in sparse:
                    assert hit["sparseValues"]["indices"] == sparse[key][0]
                else:
                    assert "sparseValues" not in hit
        # a candidate outside the dense top 100 never comes back, whatever its sparse score
        best_sparse = max(sparse, key=sparse_dot)
        if best_sparse not in [k for k, _ in _brute_force("dotproduct", query, stored)[:100]]:
            hits = await store.query(
                index, space, query, 10, ANY, ef_search=40, include_values=False,
                include_metadata=False, sparse=query_sparse,
            )  # fmt: skip
            assert best_sparse not in [h["id"] for h in hits]

    cluster.run(body)


def test_text_queries_are_unsupported(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)

    async def body(store: QdrantStore) -> None:
        await store.query(
            index, "", [1.0, 0.0], 3, ANY, ef_search=40, include_values=False,
            include_metadata=False, text="hello",
        )  # fmt: skip

    with pytest.raises(UnsupportedOnEngine) as caught:
        cluster.run(body)
    error = caught.value  # the gateway answers 400 unsupported_on_engine with its details
    assert error.details == {"engine": "qdrant", "field": "text"}


def test_a_missing_collection_is_an_error(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    drop_collection(cluster.client, index.id)

    async def body(store: QdrantStore) -> None:
        await store.fetch(index, "", ["a"], ANY)

    with pytest.raises(QdrantError) as caught:
        cluster.run(body)
    assert caught.value.status == 404


# ============================================================================ list, stats


def test_list_ids_pages_through_everything_once(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    space = ns()
    ids = [f"doc{d}#{c}" for d in (1, 2, 10) for c in range(9)] + ["é#1", "é#2", "e#1"]

    def order(found: list[str]) -> list[str]:
        # the documented order: the point ids' (uuid5) order
        return sorted(found, key=lambda i: uuid.UUID(point_id(space, i)).int)

    async def walk(store: QdrantStore, prefix: str, limit: int, where: Any = ANY) -> list[str]:
        seen: list[str] = []
        after = None
        while True:
            page, token = await store.list_ids(index, space, prefix, limit, after, where)
            seen += page
            if token is None:
                assert len(page) <= limit
                return seen
            assert len(page) == limit
            after = decode_token(token)
            assert after == page[-1]

    async def body(store: QdrantStore) -> None:
        await store.upsert(
            index, space, [rec(i, [1.0, 0.0], {"c": i[-1]}) for i in ids], max_vectors=UNLIMITED
        )
        await store.upsert(index, ns(), [rec("doc1#0", [1.0, 0.0])], max_vectors=UNLIMITED)
        for limit in (1, 4, 30, 100):
            assert await walk(store, "", limit) == order(ids)
        assert await walk(store, "doc1#", 2) == order([i for i in ids if i.startswith("doc1#")])
        assert await walk(store, "doc1", 5) == order([i for i in ids if i.startswith("doc1")])
        assert await walk(store, "é", 1) == order(["é#1", "é#2"])
        assert await walk(store, "zzz", 10) == []
        assert await walk(store, "", 3, Filter.of({"c": "1"})) == order(
            [i for i in ids if i.endswith("1")]
        )
        # the token survives the deletion of the record it names
        first, token = await store.list_ids(index, space, "", 5, None, ANY)
        assert token is not None
        rest, _ = await store.list_ids(index, space, "", 100, decode_token(token), ANY)
        assert await store.delete(index, space, ids=[first[-1]]) == 1
        again, _ = await store.list_ids(index, space, "", 100, decode_token(token), ANY)
        assert again == rest
        # any string is a valid position
        tail, _ = await store.list_ids(index, space, "", 100, "not an id", ANY)
        assert set(tail) <= set(ids)

    cluster.run(body)


def test_stats_count_namespaces_within_the_filter(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    a, b = ns(), ns()

    async def body(store: QdrantStore) -> None:
        assert await store.stats(index, ANY, frozenset()) == {}
        await store.upsert(
            index, a, [rec(f"{i}", [1.0, 0.0], {"i": i}) for i in range(7)], max_vectors=UNLIMITED
        )
        await store.upsert(
            index, b, [rec(f"{i}", [1.0, 0.0], {"i": i}) for i in range(3)], max_vectors=UNLIMITED
        )
        assert await store.stats(index, ANY, frozenset()) == {a: 7, b: 3}
        assert await store.stats(index, Filter.of({"i": {"$gte": 2}}), frozenset()) == {
            a: 5,
            b: 1,
        }
        assert await store.stats(index, Filter.of({"i": {"$gte": 5}}), frozenset()) == {a: 2}
        assert await store.stats(index, Filter.of({"i": 1}), frozenset({b, "x"})) == {b: 1}

    cluster.run(body)


# ============================================================================ update, delete


def test_update(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    space = ns()
    guard = Filter.of({"team": "red"})

    def red(metadata: Mapping[str, object]) -> bool:
        return guard.test(metadata)

    async def body(store: QdrantStore) -> None:
        await store.upsert(
            index, space,
            [rec("r", [1.0, 2.0], {"team": "red", "n": 1}, ([4], [1.0])),
             rec("b", [3.0, 4.0], {"team": "blue"})],
            max_vectors=UNLIMITED,
        )  # fmt: skip

        async def one(record_id: str) -> dict[str, Any]:
            [row] = await store.fetch(index, space, [record_id], ANY)
            return row

        # merge metadata; values and sparse values kept
        assert await store.update(
            index, space, "r", values=None, sparse=None, set_metadata={"n": 2, "new": "x"},
            guard=guard, new_metadata_check=red,
        )  # fmt: skip
        row = await one("r")
        assert row["metadata"] == {"team": "red", "n": 2, "new": "x"}
        assert row["values"] == [1.0, 2.0] and row["sparse"] == {"indices": [4], "values": [1.0]}
        # values, then sparse values; metadata kept, and filterable as merged
        assert await store.update(
            index, space, "r", values=[5.0, 6.0], sparse=None, set_metadata=None, guard=ANY
        )
        assert await store.update(
            index, space, "r", values=None, sparse=([1, 2], [0.5, 0.25]), set_metadata=None,
            guard=ANY,
        )  # fmt: skip
        row = await one("r")
        assert row["values"] == [5.0, 6.0]
        assert row["sparse"] == {"indices": [1, 2], "values": [0.5, 0.25]}
        assert row["metadata"]["new"] == "x"
        assert await store.list_ids(index, space, "", 10, None, Filter.of({"n": 2})) == (
            ["r"],
            None,
        )
        # missing, or outside the guard: nothing updated
        for record_id in ("nope", "b"):
            assert not await store.update(
                index, space, record_id, values=[0.0, 1.0], sparse=None, set_metadata=None,
                guard=guard,
            )  # fmt: skip
        assert (await one("b"))["values"] == [3.0, 4.0]
        # the merged metadata must satisfy the key's row filter ...
        with pytest.raises(RowFilterViolation):
            await store.update(
                index, space, "r", values=[9.0, 9.0], sparse=None,
                set_metadata={"team": "blue"}, guard=guard, new_metadata_check=red,
            )  # fmt: skip
        # ... and fit the size limit; either failure changes nothing
        with pytest.raises(MetadataTooLarge) as caught:
            await store.update(
                index, space, "r", values=[9.0, 9.0], sparse=None,
                set_metadata={"blob": "z" * 100}, guard=guard, max_metadata_bytes=100,
            )  # fmt: skip
        assert caught.value.maximum == 100 and caught.value.size > 100
        row = await one("r")
        assert row["metadata"] == {"team": "red", "n": 2, "new": "x"}
        assert row["values"] == [5.0, 6.0]

    cluster.run(body)


def test_delete(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    space, other = ns(), ns()
    guard = Filter.of({"team": "red"})

    async def body(store: QdrantStore) -> None:
        records = [rec(f"{i}", [1.0, 0.0], {"team": "red" if i % 2 else "blue", "i": i})
                   for i in range(10)]  # fmt: skip
        await store.upsert(index, space, records, max_vectors=UNLIMITED)
        await store.upsert(index, other, records, max_vectors=UNLIMITED)

        async def left() -> set[str]:
            return set((await store.list_ids(index, space, "", 100, None, ANY))[0])

        # by ids, within the guard (blue 0 and 2 stay), missing and repeated ids ignored
        assert (
            await store.delete(index, space, ids=["0", "1", "2", "3", "3", "x"], where=guard) == 2
        )
        assert await left() == {"0", "2", *map(str, range(4, 10))}
        # by filter (the request's filter ANDed with the guard, as the app does)
        where = Filter.of({"$and": [{"team": "red"}, {"i": {"$gte": 7}}]})
        assert await store.delete(index, space, where=where) == 2
        assert await left() == {"0", "2", "4", "5", "6", "8"}
        # everything the guard covers
        assert await store.delete(index, space, where=guard) == 1
        assert await left() == {"0", "2", "4", "6", "8"}
        # by ids, no guard
        assert await store.delete(index, space, ids=["0", "1"]) == 1
        # everything
        assert await store.delete(index, space) == 4
        assert await left() == set()
        assert await store.delete(index, space) == 0
        assert await store.stats(index, ANY, frozenset()) == {other: 10}

    cluster.run(body)


# ============================================================================ guards, quota


def test_upsert_over_a_record_outside_the_guard_writes_nothing(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    space = ns()
    guard = Filter.of({"team": "red"})

    async def body(store: QdrantStore) -> None:
        await store.upsert(
            index, space, [rec("r", [1.0, 0.0], {"team": "red"}),
                           rec("b", [1.0, 0.0], {"team": "blue"})], max_vectors=UNLIMITED,
        )  # fmt: skip
        batch = [rec("new", [0.0, 1.0], {"team": "red"}), rec("b", [0.0, 1.0], {"team": "red"})]
        with pytest.raises(RowFilterViolation):
            await store.upsert(index, space, batch, max_vectors=UNLIMITED, guard=guard)
        assert [r["id"] for r in await store.fetch(index, space, ["new", "b"], ANY)] == ["b"]
        [b] = await store.fetch(index, space, ["b"], ANY)
        assert b["metadata"] == {"team": "blue"} and b["values"] == [1.0, 0.0]
        # over a record the guard covers, and new records: fine
        written = await store.upsert(
            index, space, [rec("new", [0.0, 1.0], {"team": "red"}),
                           rec("r", [0.0, 1.0], {"team": "red", "v": 2})],
            max_vectors=UNLIMITED, guard=guard,
        )  # fmt: skip
        assert written == 2
        [r] = await store.fetch(index, space, ["r"], ANY)
        assert r["metadata"] == {"team": "red", "v": 2}

    cluster.run(body)


def test_quota_is_exact_and_counts_every_index(cluster: Cluster) -> None:
    first, second = cluster.index("dotproduct", 2), cluster.index("cosine", 2)
    space = ns()

    async def body(store: QdrantStore) -> None:
        base = await store._tenant_total()  # every test's collections live on this cluster
        limit = base + 5
        assert await store.upsert(
            index=first, namespace=space, records=[rec(f"{i}", [1.0, 0.0]) for i in range(3)],
            max_vectors=limit,
        ) == 3  # fmt: skip
        await store.upsert(second, space, [rec("a", [1.0, 0.0])], max_vectors=limit)
        # 4 + 2 > 5: refused, nothing written (in either index)
        with pytest.raises(QuotaExceeded) as caught:
            await store.upsert(
                second, space, [rec("b", [1.0, 0.0]), rec("c", [1.0, 0.0])], max_vectors=limit
            )
        assert (caught.value.current, caught.value.maximum) == (base + 4, limit)
        assert await store.fetch(second, space, ["b", "c"], ANY) == []
        # exactly up to the limit
        await store.upsert(second, space, [rec("b", [1.0, 0.0])], max_vectors=limit)
        # overwriting costs nothing, even at the limit; a batch repeating an id counts it once
        assert await store.upsert(
            first, space, [rec("0", [0.0, 1.0]), rec("1", [0.0, 1.0]), rec("0", [1.0, 1.0])],
            max_vectors=limit,
        ) == 2  # fmt: skip
        with pytest.raises(QuotaExceeded):
            await store.upsert(first, ns(), [rec("0", [1.0, 0.0])], max_vectors=limit)
        # deleting makes room
        assert await store.delete(first, space, ids=["2"]) == 1
        await store.upsert(first, ns(), [rec("0", [1.0, 0.0])], max_vectors=limit)
        assert await store._tenant_total() == limit

    cluster.run(body)


def test_concurrent_upserts_never_overshoot(cluster: Cluster) -> None:
    index = cluster.index("dotproduct", 2)
    space = ns()

    async def body(store: QdrantStore) -> None:
        limit = await store._tenant_total() + 7

        async def one(i: int) -> bool:
            try:
                await store.upsert(
                    index, space, [rec(f"{i}a", [1.0, 0.0]), rec(f"{i}b", [0.0, 1.0])],
                    max_vectors=limit,
                )  # fmt: skip
            except QuotaExceeded:
                return False
            return True

        results = await asyncio.gather(*(one(i) for i in range(10)))
        assert sum(results) == 3  # 3 batches of 2; a 4th would make 8 > 7
        assert await store._tenant_total() == limit - 1

    cluster.run(body)


class Processes:
    """`count` stores of one cluster as `count` gateway processes hold them: each its own
    connections and process lock, all with the gateway's per-tenant quota lock in Redis."""

    def __init__(self, cluster: Cluster, redis_url: str, count: int) -> None:
        prefix = f"test:{uuid.uuid4().hex[:12]}:"
        self.links = [RedisLink(redis_url, timeout=1.0) for _ in range(count)]
        self.locks = [TenantLock(link, "qdrant-quota", prefix=prefix) for link in self.links]
        self.stores = [QdrantStore(cluster.host.url, cluster.host.api_key, quota_lock=lock.hold)
                       for lock in self.locks]  # fmt: skip

    async def __aenter__(self) -> list[QdrantStore]:
        for link in self.links:
            await link.open()
        for store in self.stores:
            await store.open()
        return self.stores

    async def __aexit__(self, *exc: object) -> None:
        for store in self.stores:
            await store.close()
        for link in self.links:
            await link.close()


def test_concurrent_upserts_from_several_processes_never_overshoot(
    cluster: Cluster, redis_server: RedisProcess
) -> None:
    """Each process's own lock alone would let every process pass the count before the others'
    writes land (up to a batch over per process); the tenant's Redis lock makes the count and
    the write one step across them."""
    index = cluster.index("dotproduct", 2)
    space = ns()
    processes = Processes(cluster, redis_server.url(), 4)

    async def body() -> None:
        async with processes as stores:
            limit = await stores[0]._tenant_total() + 7

            async def one(i: int) -> bool:
                try:
                    await stores[i % len(stores)].upsert(
                        index, space, [rec(f"{i}a", [1.0, 0.0]), rec(f"{i}b", [0.0, 1.0])],
                        max_vectors=limit,
                    )  # fmt: skip
                except QuotaExceeded:
                    return False
                return True

            results = await asyncio.gather(*(one(i) for i in range(16)))
            assert sum(results) == 3  # 3 batches of 2; a 4th would make 8 > 7
            assert await stores[0]._tenant_total() == limit - 1
            assert [lock.fallbacks for lock in processes.locks] == [0] * 4

    asyncio.run(body())


def test_an_upsert_waits_for_the_tenants_lock_held_by_another_process(
    cluster: Cluster, redis_server: RedisProcess
) -> None:
    index = cluster.index("dotproduct", 2)
    space = ns()
    processes = Processes(cluster, redis_server.url(), 2)

    async def body() -> None:
        async with processes as [store, _other]:
            other_lock = processes.locks[1]
            async with other_lock.hold(cluster.tenant_id) as held:
                assert held
                write = asyncio.create_task(
                    store.upsert(index, space, [rec("a", [1.0, 0.0])], max_vectors=UNLIMITED)
                )
                # Long enough for an unguarded write to land (a few ms); it must not.
                await asyncio.sleep(0.3)
                assert not write.done()
                assert await _other.fetch(index, space, ["a"], ANY) == []
            assert await write == 1  # released: it goes through
            [found] = await store.fetch(index, space, ["a"], ANY)
            assert found["id"] == "a"

    asyncio.run(body())


def test_upserts_go_on_when_redis_is_down(cluster: Cluster) -> None:
    """The quota lock is skipped (logged) when Redis does not answer: the write is not held
    up; each process's own lock still applies (overshoot of at most a batch per process)."""
    index = cluster.index("dotproduct", 2)
    server = RedisProcess()
    processes = Processes(cluster, server.url(), 1)
    server.stop()
    try:

        async def body() -> None:
            async with processes as [store]:
                limit = await store._tenant_total() + 1
                await store.upsert(index, ns(), [rec("a", [1.0, 0.0])], max_vectors=limit)
                with pytest.raises(QuotaExceeded):  # the count still applies
                    await store.upsert(index, ns(), [rec("b", [1.0, 0.0])], max_vectors=limit)
                assert processes.locks[0].fallbacks == 2

        asyncio.run(body())
    finally:
        server.close()

