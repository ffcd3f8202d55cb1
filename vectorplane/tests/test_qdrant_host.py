"""The local Qdrant host (`python -m vectorplane.qdrant_host`) as a real process, driven by the
real `qdrant_client.QdrantClient` / `AsyncQdrantClient` over REST: auth, collections, payload
indexes, points, payloads, vectors, queries (checked against brute force computed here),
filters (checked against a Python evaluation of Qdrant's semantics), facets, and durability
across a clean restart and a SIGKILL right after an acknowledged upsert."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient
from qdrant_client import models as m
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.http.exceptions import UnexpectedResponse

REPO = Path(__file__).resolve().parents[2]
API_KEY = f"test-{uuid.uuid4().hex}"
START_TIMEOUT = 30.0
INSECURE = "Api key is used with an insecure connection"
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise


# ============================================================================ the process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Host:
    """A host process we started on `data`; restartable on the same folder."""

    data: Path
    key_file: Path
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Host:
        self.port = _free_port()
        argv = [
            sys.executable, "-m", "vectorplane.qdrant_host",
            "--data", str(self.data),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--api-key-file", str(self.key_file),
            "--optimize-idle", "0.2",
        ]  # fmt: skip
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if client.get(self.url + "/readyz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the host never became ready:\n{self.log.read_text()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                return proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(timeout=10)


def _new_host(root: Path) -> Host:
    key_file = root / "api-key"
    key_file.write_text(API_KEY + "\n")
    return Host(data=root / "data", key_file=key_file, log=root / "host.log")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vp-qdrant-host-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def host(workdir: Path) -> Iterator[Host]:
    (workdir / "shared").mkdir()
    server = _new_host(workdir / "shared").start()
    try:
        yield server
    finally:
        assert server.stop() == 0


def make_client(
    url: str, key: str = API_KEY, *, check_compatibility: bool = False, **kwargs: Any
) -> QdrantClient:
    """A client of `url`. Its background version check (GET / from a thread) is off unless
    asked for: against a host a test is about to stop, it would fail after the test, as a
    warning; `client` (the module's long-lived host) has it on."""
    # qdrant-client warns about an API key over plain HTTP (the host binds to 127.0.0.1).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", INSECURE, UserWarning)
        return QdrantClient(
            url=url,
            api_key=key,
            prefer_grpc=False,
            timeout=30,
            check_compatibility=check_compatibility,
            **kwargs,
        )


@pytest.fixture(scope="module")
def client(host: Host) -> Iterator[QdrantClient]:
    qc = make_client(host.url, check_compatibility=True)
    try:
        yield qc
    finally:
        qc.close()


@pytest.fixture(scope="module")
def http(host: Host) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host.url, headers={"api-key": API_KEY}, timeout=30) as hc:
        yield hc


def unique(prefix: str = "c") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"status", "time"} and isinstance(body["time"], float)
    message = body["status"]["error"]
    assert isinstance(message, str)
    return message


def wait_green(client: QdrantClient, name: str, timeout: float = 20.0) -> m.CollectionInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_collection(name)
        if info.status == m.CollectionStatus.GREEN:
            return info
        assert time.monotonic() < deadline, f"{name} never became green"
        time.sleep(0.05)


def point(pid: int | str, vector: Any, payload: dict[str, Any] | None = None) -> m.PointStruct:
    return m.PointStruct(id=pid, vector=vector, payload=payload)


def dot(size: int) -> m.VectorParams:
    return m.VectorParams(size=size, distance=m.Distance.DOT)


KEYWORD_TENANT = m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True)


# ============================================================================ auth, service


def test_health_probes_need_no_key(host: Host) -> None:
    with httpx.Client(base_url=host.url) as hc:
        for path in ("/healthz", "/livez", "/readyz"):
            assert hc.get(path).status_code == 200


def test_requests_without_the_key_are_refused(host: Host, http: httpx.Client) -> None:
    with httpx.Client(base_url=host.url) as anonymous:
        missing = anonymous.get("/collections")
        assert missing.status_code == 401
        assert "API key" in error_of(missing)
        wrong = anonymous.get("/collections", headers={"api-key": API_KEY + "x"})
        assert wrong.status_code == 401
        assert error_of(wrong) == "Invalid API key or JWT"
        assert anonymous.get("/", headers={"api-key": "nope"}).status_code == 401
        bearer = anonymous.get("/collections", headers={"authorization": f"Bearer {API_KEY}"})
        assert bearer.status_code == 200
    assert http.get("/collections").json()["status"] == "ok"

    intruder = make_client(host.url, key="wrong-key")
    try:
        with pytest.raises(UnexpectedResponse) as excinfo:
            intruder.get_collections()
        assert excinfo.value.status_code == 401
    finally:
        intruder.close()


def test_root_reports_a_version_the_client_accepts(host: Host, http: httpx.Client) -> None:
    root = http.get("/").json()
    assert root["title"] == "qdrant - vector search engine"
    assert is_compatible(importlib.metadata.version("qdrant-client"), root["version"])
    # What the client's background compatibility check does, here synchronously: no warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert get_server_version(host.url, {"api-key": API_KEY}, None, 5) == root["version"]
    assert not caught


def test_unknown_routes_and_bad_bodies(http: httpx.Client, client: QdrantClient) -> None:
    assert http.get("/nope").status_code == 404
    missing = http.post("/collections/absent/points/count", json={})
    assert missing.status_code == 404
    assert error_of(missing) == "Not found: Collection `absent` doesn't exist!"
    name = unique()
    client.create_collection(name, vectors_config=dot(3))
    points = f"/collections/{name}/points"

    assert http.post(f"{points}/count", content=b"{nope").status_code == 400
    unknown = http.post(f"{points}/query", json={"query": [1, 2, 3], "bogus": 1})
    assert unknown.status_code == 400 and "bogus" in error_of(unknown)
    conditions = [{"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"weird": 1}}]
    bad_match = http.post(f"{points}/scroll", json={"filter": {"must": conditions}})
    assert bad_match.status_code == 400
    assert "filter.must[1].match" in error_of(bad_match)
    empty = http.post(f"{points}/count", json={"filter": {"must": [{"key": "a"}]}})
    assert empty.status_code == 400 and "filter.must[0]" in error_of(empty)
    by_id = http.post(f"{points}/query", json={"query": 1})
    assert by_id.status_code == 400 and "not supported" in error_of(by_id)
    sharded = http.post(f"{points}/count", json={"shard_key": "a"})
    assert sharded.status_code == 400 and "shard_key" in error_of(sharded)
    assert http.delete(f"/collections/{name}").json()["result"] is True


# ============================================================================ collections


def test_collection_lifecycle(client: QdrantClient, http: httpx.Client) -> None:
    name = unique()
    assert not client.collection_exists(name)
    assert client.create_collection(
        name,
        vectors_config={
            "dense": m.VectorParams(
                size=8, distance=m.Distance.COSINE, hnsw_config=m.HnswConfigDiff(m=8)
            ),
            "other": m.VectorParams(size=2, distance=m.Distance.EUCLID, on_disk=True),
        },
        sparse_vectors_config={"text": m.SparseVectorParams(modifier=m.Modifier.IDF)},
        hnsw_config=m.HnswConfigDiff(ef_construct=64),
        optimizers_config=m.OptimizersConfigDiff(indexing_threshold=5000),
        wal_config=m.WalConfigDiff(wal_capacity_mb=16),
        metadata={"tenant": "t1"},
    )
    assert client.collection_exists(name)
    assert name in {c.name for c in client.get_collections().collections}
    info = client.get_collection(name)
    assert info.points_count == 0
    params = info.config.params
    assert isinstance(params.vectors, dict)
    assert params.vectors["dense"].size == 8
    assert params.vectors["dense"].distance == m.Distance.COSINE
    assert params.vectors["dense"].hnsw_config == m.HnswConfigDiff(m=8)
    assert params.vectors["other"].on_disk is True
    assert params.sparse_vectors is not None
    assert params.sparse_vectors["text"].modifier == m.Modifier.IDF
    assert info.config.hnsw_config.ef_construct == 64
    assert info.config.hnsw_config.m == 16
    assert info.config.optimizer_config.indexing_threshold == 5000
    assert info.config.metadata == {"tenant": "t1"}

    with pytest.raises(UnexpectedResponse) as conflict:
        client.create_collection(name, vectors_config=dot(2))
    assert conflict.value.status_code == 409
    assert b"already exists" in conflict.value.content

    assert client.delete_collection(name) is True
    assert not client.collection_exists(name)
    assert client.delete_collection(name) is False  # idempotent, as Qdrant
    with pytest.raises(UnexpectedResponse) as gone:
        client.get_collection(name)
    assert gone.value.status_code == 404
    message = error_of(http.get(f"/collections/{name}"))
    assert message == f"Not found: Collection `{name}` doesn't exist!"

    unnamed = unique()
    client.create_collection(unnamed, vectors_config=dot(3))
    vectors = client.get_collection(unnamed).config.params.vectors
    assert isinstance(vectors, m.VectorParams) and vectors.size == 3
    client.delete_collection(unnamed)


@pytest.mark.parametrize(
    "body",
    [
        {"vectors": {"size": 2, "distance": "Nope"}},
        {"vectors": {"size": 2, "distance": "Dot"}, "replication_factor": 2},
        {"vectors": {"size": 2, "distance": "Dot"}, "surprise": True},
        {},  # no vectors at all
    ],
)
def test_invalid_collection_requests(http: httpx.Client, body: dict[str, Any]) -> None:
    assert http.put(f"/collections/{unique()}", json=body).status_code == 400


def test_reserved_collection_names(http: httpx.Client) -> None:
    body = {"vectors": {"size": 2, "distance": "Dot"}}
    assert http.put("/collections/.hidden", json=body).status_code == 400


def test_payload_indexes(client: QdrantClient) -> None:
    name = unique()
    client.create_collection(name, vectors_config=dot(2))
    payloads = [
        {"ns": f"n{i % 2}", "i": i, "f": i / 2, "b": i % 2 == 0, "t": "hello world",
         "d": "2024-01-01T00:00:00Z"}
        for i in range(6)
    ]  # fmt: skip
    client.upsert(name, [point(i, [1.0, float(i)], payloads[i]) for i in range(6)])
    text = m.TextIndexParams(
        type=m.TextIndexType.TEXT, tokenizer=m.TokenizerType.WORD, lowercase=True
    )
    client.create_payload_index(name, "ns", KEYWORD_TENANT)
    client.create_payload_index(name, "i", m.PayloadSchemaType.INTEGER)
    client.create_payload_index(name, "f", m.PayloadSchemaType.FLOAT)
    client.create_payload_index(name, "b", m.PayloadSchemaType.BOOL)
    client.create_payload_index(name, "t", text)
    client.create_payload_index(name, "d", m.PayloadSchemaType.DATETIME)
    schema = client.get_collection(name).payload_schema
    assert {k: v.data_type for k, v in schema.items()} == {
        "ns": m.PayloadSchemaType.KEYWORD,
        "i": m.PayloadSchemaType.INTEGER,
        "f": m.PayloadSchemaType.FLOAT,
        "b": m.PayloadSchemaType.BOOL,
        "t": m.PayloadSchemaType.TEXT,
        "d": m.PayloadSchemaType.DATETIME,
    }
    assert schema["ns"].points == 6
    assert isinstance(schema["ns"].params, m.KeywordIndexParams) and schema["ns"].params.is_tenant
    client.delete_payload_index(name, "f")
    assert "f" not in client.get_collection(name).payload_schema
    client.delete_collection(name)


# ============================================================================ points


def test_upsert_retrieve_scroll_count_delete(client: QdrantClient, http: httpx.Client) -> None:
    name = unique()
    client.create_collection(name, vectors_config={"a": dot(3), "b": dot(2)})
    listed = client.upsert(
        name,
        [
            point(
                i, {"a": [float(i), 0.0, 1.0], "b": [1.0, float(i)]}, {"i": i, "even": i % 2 == 0}
            )
            for i in range(40)
        ],
    )
    assert listed.status == m.UpdateStatus.COMPLETED
    uid = str(uuid.uuid4())
    batch = m.Batch(
        ids=[100, uid],
        vectors={"a": [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], "b": [[0.0, 1.0], [1.0, 0.0]]},
        payloads=[{"i": 100}, {"i": -1}],
    )
    client.upsert(name, batch)
    assert client.count(name).count == 42

    got = client.retrieve(name, [3, uid, 999], with_payload=["i"], with_vectors=["b"])
    by_id = {str(p.id): p for p in got}
    assert set(by_id) == {"3", uid}
    assert by_id["3"].payload == {"i": 3} and by_id["3"].vector == {"b": [1.0, 3.0]}
    assert by_id[uid].payload == {"i": -1}
    single = http.get(f"/collections/{name}/points/{uid}").json()["result"]
    assert single["id"] == uid and single["vector"]["a"] == [2.0, 2.0, 2.0]
    assert http.get(f"/collections/{name}/points/12345").status_code == 404

    seen: list[Any] = []
    offset: Any = None
    while True:
        page, offset = client.scroll(name, limit=7, offset=offset, with_payload=False)
        seen.extend(p.id for p in page)
        assert all(p.payload is None for p in page)
        if offset is None:
            break
    assert len(seen) == 42 and len(set(map(str, seen))) == 42

    even = m.Filter(must=[m.FieldCondition(key="even", match=m.MatchValue(value=True))])
    assert client.count(name, count_filter=even, exact=True).count == 20
    client.delete(name, points_selector=m.PointIdsList(points=[0, 1, uid]))
    assert client.count(name).count == 39
    client.delete(name, points_selector=m.FilterSelector(filter=even))
    assert client.count(name).count == 20  # the 19 odd ones left and point 100 (no "even")
    not_waited = http.put(
        f"/collections/{name}/points?wait=false",
        json={"points": [{"id": 7, "vector": {"a": [0, 0, 1]}}]},
    )
    assert not_waited.json()["result"]["status"] == "acknowledged"
    client.delete_collection(name)


def test_payload_and_vector_updates(client: QdrantClient) -> None:
    name = unique()
    client.create_collection(
        name, vectors_config={"a": dot(2)}, sparse_vectors_config={"s": m.SparseVectorParams()}
    )
    client.upsert(
        name,
        [
            point(i, {"a": [1.0, float(i)]}, {"i": i, "keep": True, "obj": {"x": 1}})
            for i in range(5)
        ],
    )

    client.set_payload(name, {"tag": "new"}, points=[0, 1])
    client.set_payload(name, {"y": 2}, points=[2], key="obj")
    third = m.Filter(must=[m.HasIdCondition(has_id=[3])])
    client.set_payload(name, {"flagged": True}, points=third)
    client.overwrite_payload(name, {"only": 1}, points=[4])
    client.delete_payload(name, ["keep"], points=[1])
    payloads = {p.id: p.payload for p in client.retrieve(name, [0, 1, 2, 3, 4])}
    assert payloads[0] == {"i": 0, "keep": True, "obj": {"x": 1}, "tag": "new"}
    assert payloads[1] == {"i": 1, "obj": {"x": 1}, "tag": "new"}
    assert payloads[2] == {"i": 2, "keep": True, "obj": {"x": 1, "y": 2}}
    assert payloads[3] == {"i": 3, "keep": True, "obj": {"x": 1}, "flagged": True}
    assert payloads[4] == {"only": 1}
    client.clear_payload(name, points_selector=[0])
    assert client.retrieve(name, [0])[0].payload == {}

    sparse = m.SparseVector(indices=[3, 1], values=[0.5, 2.0])
    client.update_vectors(name, [m.PointVectors(id=1, vector={"a": [5.0, 5.0], "s": sparse})])
    vector = client.retrieve(name, [1], with_vectors=True)[0].vector
    assert isinstance(vector, dict) and vector["a"] == [5.0, 5.0]
    stored = vector["s"]
    assert isinstance(stored, m.SparseVector)
    assert dict(zip(stored.indices, stored.values, strict=True)) == {1: 2.0, 3: 0.5}
    client.delete_vectors(name, vectors=["s"], points=[1])
    vector = client.retrieve(name, [1], with_vectors=True)[0].vector
    assert isinstance(vector, dict) and set(vector) == {"a"}
    with pytest.raises(UnexpectedResponse) as missing:
        client.set_payload(name, {"a": 1}, points=[12345])
    assert missing.value.status_code == 404

    result = client.batch_update_points(
        name,
        [
            m.UpsertOperation(upsert=m.PointsList(points=[point(9, {"a": [0.0, 1.0]})])),
            m.SetPayloadOperation(set_payload=m.SetPayload(payload={"z": 1}, points=[9])),
            m.DeleteOperation(delete=m.PointIdsList(points=[4])),
        ],
    )
    assert len(result) == 3
    assert client.retrieve(name, [9])[0].payload == {"z": 1}
    assert client.retrieve(name, [4]) == []
    client.delete_collection(name)


def test_malformed_vectors_are_refused_and_leave_the_collection_usable(
    http: httpx.Client,
) -> None:
    name = unique()
    http.put(
        f"/collections/{name}",
        json={"vectors": {"d": {"size": 3, "distance": "Dot"}}, "sparse_vectors": {"s": {}}},
    )
    url = f"/collections/{name}/points?wait=true"

    def upsert(pid: Any, vector: dict[str, Any]) -> httpx.Response:
        return http.put(url, json={"points": [{"id": pid, "vector": vector}]})

    wrong_dim = upsert(1, {"d": [1, 2]})
    assert wrong_dim.status_code == 400 and "dimension" in error_of(wrong_dim)
    # A sparse vector whose indices and values disagree makes the engine panic mid-write.
    assert upsert(1, {"s": {"indices": [1, 2], "values": [1.0]}}).status_code == 400
    assert upsert(1, {"s": {"indices": [1, 1], "values": [1.0, 2.0]}}).status_code == 400
    assert upsert(1, {"d": [[1, 2, 3], [1, 2]]}).status_code == 400  # a ragged multivector
    bad_id = upsert(-1, {"d": [1, 2, 3]})
    assert bad_id.status_code == 400 and "point id" in error_of(bad_id)
    assert upsert("not-a-uuid", {"d": [1, 2, 3]}).status_code == 400
    ok = upsert(1, {"d": [1, 2, 3], "s": {"indices": [4], "values": [1.0]}})
    assert ok.status_code == 200
    assert http.post(f"/collections/{name}/points/count", json={}).json()["result"] == {"count": 1}
    http.delete(f"/collections/{name}")


# ============================================================================ search

Vectors = npt.NDArray[np.float32]


def brute_force(
    distance: m.Distance, data: Vectors, query: Vectors
) -> tuple[list[int], npt.NDArray[np.float64]]:
    """Point indices best first, and every point's score, as Qdrant scores them."""
    if distance == m.Distance.COSINE:
        normed = data / np.linalg.norm(data, axis=1, keepdims=True)
        scores = normed @ (query / np.linalg.norm(query))
    elif distance == m.Distance.DOT:
        scores = data @ query
    elif distance == m.Distance.EUCLID:
        scores = np.linalg.norm(data - query, axis=1)
    else:
        scores = np.abs(data - query).sum(axis=1)
    ascending = distance in (m.Distance.EUCLID, m.Distance.MANHATTAN)
    order = np.argsort(scores if ascending else -scores)
    return [int(i) for i in order], scores.astype(np.float64)


@pytest.mark.parametrize(
    "distance", [m.Distance.COSINE, m.Distance.DOT, m.Distance.EUCLID, m.Distance.MANHATTAN]
)
def test_exact_search_matches_brute_force(client: QdrantClient, distance: m.Distance) -> None:
    rng = np.random.default_rng(42)
    data = rng.standard_normal((300, 16)).astype(np.float32)
    name = unique()
    client.create_collection(name, vectors_config=m.VectorParams(size=16, distance=distance))
    client.upsert(name, m.Batch(ids=list(range(300)), vectors=data.tolist()))
    exact = m.SearchParams(exact=True)
    for query in rng.standard_normal((5, 16)).astype(np.float32):
        expected, scores = brute_force(distance, data, query)
        hits = client.query_points(name, query=query.tolist(), limit=10, search_params=exact)
        assert [h.id for h in hits.points] == expected[:10]
        assert [h.score for h in hits.points] == pytest.approx(
            [scores[i] for i in expected[:10]], rel=1e-4, abs=1e-4
        )
    # Between the 5th and 6th scores: a bound equal to a score is at the mercy of f32 rounding.
    threshold = float(scores[expected[4]] + scores[expected[5]]) / 2
    kept = client.query_points(
        name, query=query.tolist(), limit=10, score_threshold=threshold, search_params=exact
    )
    assert [h.id for h in kept.points] == expected[:5]
    page = client.query_points(name, query=query.tolist(), limit=3, offset=2, search_params=exact)
    assert [h.id for h in page.points] == expected[2:5]
    client.delete_collection(name)


def test_hnsw_recall(client: QdrantClient) -> None:
    rng = np.random.default_rng(7)
    n, dim = 3000, 32
    data = rng.standard_normal((n, dim)).astype(np.float32)
    name = unique()
    client.create_collection(
        name,
        vectors_config=m.VectorParams(size=dim, distance=m.Distance.COSINE),
        # Small thresholds (KB) so that 3000 x 32 floats get an HNSW graph, and that queries
        # use it rather than a full scan.
        hnsw_config=m.HnswConfigDiff(m=16, ef_construct=100, full_scan_threshold=10),
        optimizers_config=m.OptimizersConfigDiff(indexing_threshold=10),
    )
    for start in range(0, n, 1000):
        ids: list[int | str | uuid.UUID] = list(range(start, start + 1000))
        client.upsert(name, m.Batch(ids=ids, vectors=data[start : start + 1000].tolist()))
    info = wait_green(client, name)
    assert info.indexed_vectors_count == n
    queries = rng.standard_normal((40, dim)).astype(np.float32)
    found = 0
    for query in queries:
        expected, _ = brute_force(m.Distance.COSINE, data, query)
        hits = client.query_points(
            name, query=query.tolist(), limit=10, search_params=m.SearchParams(hnsw_ef=64)
        )
        found += len({h.id for h in hits.points} & set(expected[:10]))
    assert found / (10 * len(queries)) >= 0.9
    client.delete_collection(name)


def random_sparse(rng: np.random.Generator, width: int = 60, nnz: int = 6) -> m.SparseVector:
    indices = sorted(int(i) for i in rng.choice(width, size=nnz, replace=False))
    return m.SparseVector(indices=indices, values=[float(v) for v in rng.uniform(0.1, 1.0, nnz)])


def sparse_dot(a: m.SparseVector, b: m.SparseVector) -> float:
    weights = dict(zip(a.indices, a.values, strict=True))
    return sum(weights.get(i, 0.0) * v for i, v in zip(b.indices, b.values, strict=True))


def test_sparse_vectors_fusion_and_formulas(client: QdrantClient) -> None:
    rng = np.random.default_rng(3)
    n = 120
    dense = rng.standard_normal((n, 8)).astype(np.float32)
    sparse = [random_sparse(rng) for _ in range(n)]
    name = unique()
    client.create_collection(
        name,
        vectors_config={"dense": dot(8)},
        sparse_vectors_config={"text": m.SparseVectorParams()},
    )
    client.upsert(
        name,
        [point(i, {"dense": dense[i].tolist(), "text": sparse[i]}, {"i": i}) for i in range(n)],
    )

    q_sparse = random_sparse(rng, nnz=10)
    scores = {i: sparse_dot(q_sparse, sparse[i]) for i in range(n)}
    by_sparse = sorted((i for i in scores if scores[i] > 0), key=lambda i: -scores[i])
    hits = client.query_points(name, query=q_sparse, using="text", limit=10).points
    assert [h.id for h in hits] == by_sparse[:10]
    assert [h.score for h in hits] == pytest.approx([scores[i] for i in by_sparse[:10]], rel=1e-4)

    q_dense = rng.standard_normal(8).astype(np.float32)
    dense_scores = dense @ q_dense
    by_dense = [int(i) for i in np.argsort(-dense_scores)]
    both = [
        m.Prefetch(query=q_dense.tolist(), using="dense", limit=20),
        m.Prefetch(query=q_sparse, using="text", limit=20),
    ]
    fused = client.query_points(
        name, prefetch=both, query=m.FusionQuery(fusion=m.Fusion.RRF), limit=10
    ).points
    # Reciprocal rank fusion as qdrant-client's local mode computes it (k = 2).
    rrf: dict[int, float] = defaultdict(float)
    for ranking in (by_dense[:20], by_sparse[:20]):
        for position, pid in enumerate(ranking):
            rrf[pid] += 1.0 / (position + 2)
    assert len(fused) == 10
    for hit in fused:
        assert hit.score == pytest.approx(rrf[int(hit.id)], rel=1e-5)
    best = sorted(rrf.values(), reverse=True)[:10]
    assert [h.score for h in fused] == pytest.approx(best, rel=1e-5)

    below_60 = m.Filter(must=[m.FieldCondition(key="i", range=m.Range(lt=60))])
    dbsf = client.query_points(
        name,
        prefetch=[both[0], m.Prefetch(query=q_sparse, using="text", limit=20, filter=below_60)],
        query=m.FusionQuery(fusion=m.Fusion.DBSF),
        limit=5,
    ).points
    assert len(dbsf) == 5 and {h.id for h in dbsf} <= set(by_dense[:20]) | set(by_sparse[:20])

    inner = m.Prefetch(
        prefetch=[m.Prefetch(query=q_dense.tolist(), using="dense", limit=30)],
        query=q_sparse,
        using="text",
        limit=10,
    )
    nested = client.query_points(
        name, prefetch=inner, query=q_dense.tolist(), using="dense", limit=3
    )
    assert 0 < len(nested.points) <= 3

    batch = client.query_batch_points(
        name,
        [
            m.QueryRequest(query=q_dense.tolist(), using="dense", limit=4),
            m.QueryRequest(query=q_sparse, using="text", limit=2),
        ],
    )
    assert [len(r.points) for r in batch] == [4, 2]
    assert [p.id for p in batch[0].points] == by_dense[:4]

    diverse = client.query_points(
        name,
        query=m.NearestQuery(nearest=q_dense.tolist(), mmr=m.Mmr(diversity=0.5)),
        using="dense",
        limit=5,
    ).points
    assert len({h.id for h in diverse}) == 5 and all(h.vector is None for h in diverse)
    assert diverse[0].id == by_dense[0]

    boosted = m.FormulaQuery(
        formula=m.SumExpression(sum=["$score", m.MultExpression(mult=[0.01, "i"])])
    )
    formula = client.query_points(name, prefetch=both[0], query=boosted, limit=20).points
    assert {h.id: h.score for h in formula} == pytest.approx(
        {i: float(dense_scores[i]) + 0.01 * i for i in by_dense[:20]}, rel=1e-4
    )
    client.delete_collection(name)


def test_order_by(client: QdrantClient) -> None:
    name = unique()
    client.create_collection(name, vectors_config=dot(2))
    client.upsert(name, [point(i, [1.0, 0.0], {"rank": (i * 7) % 20}) for i in range(20)])
    client.create_payload_index(name, "rank", m.PayloadSchemaType.INTEGER)
    descending = m.OrderBy(key="rank", direction=m.Direction.DESC)
    points, next_offset = client.scroll(name, limit=5, order_by=descending)
    assert [p.payload["rank"] for p in points if p.payload] == [19, 18, 17, 16, 15]
    assert next_offset is None
    ordered = client.query_points(name, query=m.OrderByQuery(order_by="rank"), limit=3).points
    assert [p.payload["rank"] for p in ordered if p.payload] == [0, 1, 2]
    client.delete_collection(name)


# ============================================================================ filters

BASE = datetime(2024, 1, 1, tzinfo=UTC)
FC = m.FieldCondition
N_FILTERED = 150


def payload_of(i: int) -> dict[str, Any]:
    p: dict[str, Any] = {
        "kw": ["red", "green", "blue"][i % 3],
        "n": i,
        "f": i / 7,
        "flag": i % 4 == 0,
        "text": f"alpha {'beta' if i % 5 == 0 else 'gamma'} delta{i % 3}",
        "ts": (BASE + timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
        "tags": ["x"] * (i % 4),
        "items": [{"k": i % 6, "c": "p"}, {"k": (i + 1) % 6, "c": "q"}],
        "loc": {"lon": (i % 10) * 1.0, "lat": (i % 7) * 1.0},
    }
    if i % 7 == 0:
        del p["kw"]
    if i % 11 == 0:
        p["maybe"] = None
    elif i % 11 == 1:
        p["maybe"] = i
    if i % 13 == 0:
        p["tags"] = []
    return p


def match(key: str, value: Any) -> m.FieldCondition:
    return FC(key=key, match=m.MatchValue(value=value))


def _nested(p: dict[str, Any], i: int) -> bool:
    return any(e["k"] == 2 and e["c"] == "p" for e in p["items"])


def _in_box(p: dict[str, Any], i: int) -> bool:
    return bool(1.5 <= p["loc"]["lon"] <= 6.5 and 1.5 <= p["loc"]["lat"] <= 4.5)


def _min_should(p: dict[str, Any], i: int) -> bool:
    return bool(sum([p.get("kw") == "green", p["flag"], i < 30]) >= 2)


def _combined(p: dict[str, Any], i: int) -> bool:
    return p["f"] >= 2 and (p.get("kw") == "blue" or p["flag"]) and i != 20


Predicate = Callable[[dict[str, Any], int], bool]
FILTER_CASES: list[tuple[str, m.Filter, Predicate]] = [
    (
        "match keyword",
        m.Filter(must=[match("kw", "red")]),
        lambda p, i: p.get("kw") == "red",
    ),
    ("match integer", m.Filter(must=[match("n", 42)]), lambda p, i: i == 42),
    ("match true", m.Filter(must=[match("flag", True)]), lambda p, i: p["flag"] is True),
    ("match false", m.Filter(must=[match("flag", False)]), lambda p, i: p["flag"] is False),
    (
        "match any",
        m.Filter(must=[FC(key="kw", match=m.MatchAny(any=["red", "blue"]))]),
        lambda p, i: p.get("kw") in ("red", "blue"),
    ),
    (
        "match any integer",
        m.Filter(must=[FC(key="n", match=m.MatchAny(any=[1, 2, 3, 500]))]),
        lambda p, i: i in (1, 2, 3),
    ),
    (
        "match except",  # a point without the key does not match
        m.Filter(must=[FC(key="kw", match=m.MatchExcept(**{"except": ["red", "blue"]}))]),
        lambda p, i: "kw" in p and p["kw"] not in ("red", "blue"),
    ),
    (
        "match text",
        m.Filter(must=[FC(key="text", match=m.MatchText(text="beta"))]),
        lambda p, i: "beta" in p["text"].split(),
    ),
    (
        "match phrase",
        m.Filter(must=[FC(key="text", match=m.MatchPhrase(phrase="beta delta1"))]),
        lambda p, i: "beta delta1" in p["text"],
    ),
    (
        "match prefix",
        m.Filter(must=[FC(key="kw", match=m.MatchPrefix(prefix="gr"))]),
        lambda p, i: p.get("kw", "").startswith("gr"),
    ),
    (
        "range gte lt",
        m.Filter(must=[FC(key="f", range=m.Range(gte=3, lt=9.5))]),
        lambda p, i: 3 <= p["f"] < 9.5,
    ),
    (
        "range gt lte",
        m.Filter(must=[FC(key="n", range=m.Range(gt=10, lte=20))]),
        lambda p, i: 10 < i <= 20,
    ),
    (
        "datetime range",
        m.Filter(
            must=[
                FC(
                    key="ts",
                    range=m.DatetimeRange(
                        gte=BASE + timedelta(hours=5), lt=BASE + timedelta(hours=30)
                    ),
                )
            ]
        ),
        lambda p, i: 5 <= i < 30,
    ),
    (
        "values count",
        m.Filter(must=[FC(key="tags", values_count=m.ValuesCount(gte=2))]),
        lambda p, i: len(p["tags"]) >= 2,
    ),
    (
        "is empty (missing key)",
        m.Filter(must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="kw"))]),
        lambda p, i: "kw" not in p,
    ),
    (
        "is empty (empty array)",
        m.Filter(must=[m.IsEmptyCondition(is_empty=m.PayloadField(key="tags"))]),
        lambda p, i: p["tags"] == [],
    ),
    (
        "is null",
        m.Filter(must=[m.IsNullCondition(is_null=m.PayloadField(key="maybe"))]),
        lambda p, i: "maybe" in p and p["maybe"] is None,
    ),
    (
        "has id",
        m.Filter(must=[m.HasIdCondition(has_id=[1, 5, 9, 1000])]),
        lambda p, i: i in (1, 5, 9),
    ),
    (
        "nested",
        m.Filter(
            must=[
                m.NestedCondition(
                    nested=m.Nested(
                        key="items", filter=m.Filter(must=[match("k", 2), match("c", "p")])
                    )
                )
            ]
        ),
        _nested,
    ),
    (
        "array projection",
        m.Filter(must=[match("items[].k", 2)]),
        lambda p, i: any(e["k"] == 2 for e in p["items"]),
    ),
    (
        "geo bounding box",
        m.Filter(
            must=[
                FC(
                    key="loc",
                    geo_bounding_box=m.GeoBoundingBox(
                        top_left=m.GeoPoint(lon=1.5, lat=4.5),
                        bottom_right=m.GeoPoint(lon=6.5, lat=1.5),
                    ),
                )
            ]
        ),
        _in_box,
    ),
    ("must not", m.Filter(must_not=[match("kw", "red")]), lambda p, i: p.get("kw") != "red"),
    ("should", m.Filter(should=[match("n", 1), match("n", 2)]), lambda p, i: i in (1, 2)),
    (
        "min should",
        m.Filter(
            min_should=m.MinShould(
                conditions=[
                    match("kw", "green"),
                    match("flag", True),
                    FC(key="n", range=m.Range(lt=30)),
                ],
                min_count=2,
            )
        ),
        _min_should,
    ),
    (
        "combined",
        m.Filter(
            must=[FC(key="f", range=m.Range(gte=2))],
            should=[match("kw", "blue"), m.Filter(must=[match("flag", True)])],
            must_not=[m.HasIdCondition(has_id=[20])],
        ),
        _combined,
    ),
]


@pytest.fixture(scope="module")
def filtered(client: QdrantClient) -> Iterator[str]:
    """A collection of 150 points with varied payloads; `kw`, `n`, `flag`, `ts` and `text` are
    indexed, conditions on the other keys are evaluated on the payloads."""
    name = unique("filters")
    client.create_collection(
        name, vectors_config=m.VectorParams(size=4, distance=m.Distance.COSINE)
    )
    vectors = np.random.default_rng(5).standard_normal((N_FILTERED, 4)).astype(np.float32)
    client.upsert(name, [point(i, vectors[i].tolist(), payload_of(i)) for i in range(N_FILTERED)])
    keyword = m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True, prefix=True)
    text = m.TextIndexParams(
        type=m.TextIndexType.TEXT, tokenizer=m.TokenizerType.WORD, phrase_matching=True
    )
    client.create_payload_index(name, "kw", keyword)
    client.create_payload_index(name, "n", m.PayloadSchemaType.INTEGER)
    client.create_payload_index(name, "flag", m.PayloadSchemaType.BOOL)
    client.create_payload_index(name, "ts", m.PayloadSchemaType.DATETIME)
    client.create_payload_index(name, "text", text)
    yield name
    client.delete_collection(name)


@pytest.mark.parametrize(
    ("label", "condition", "predicate"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES]
)
def test_filters_match_a_python_evaluation(
    client: QdrantClient, filtered: str, label: str, condition: m.Filter, predicate: Predicate
) -> None:
    expected = {i for i in range(N_FILTERED) if predicate(payload_of(i), i)}
    assert expected, f"{label}: the case selects nothing"
    points, _ = client.scroll(filtered, scroll_filter=condition, limit=1000, with_payload=False)
    assert {int(p.id) for p in points} == expected
    assert client.count(filtered, count_filter=condition, exact=True).count == len(expected)
    hits = client.query_points(
        filtered, query=[1.0, 0.5, 0.0, -0.5], query_filter=condition, limit=200
    )
    assert {int(h.id) for h in hits.points} == expected


def test_facet_counts(client: QdrantClient, filtered: str) -> None:
    payloads = [payload_of(i) for i in range(N_FILTERED)]
    expected = Counter(p["kw"] for p in payloads if "kw" in p)
    hits = client.facet(filtered, "kw", exact=True).hits
    assert {h.value: h.count for h in hits} == dict(expected)
    flagged = Counter(p["kw"] for p in payloads if "kw" in p and p["flag"])
    only_flagged = m.Filter(must=[match("flag", True)])
    hits = client.facet(filtered, "kw", facet_filter=only_flagged, exact=True, limit=2).hits
    assert [(h.value, h.count) for h in hits] == flagged.most_common(2)
    bools = client.facet(filtered, "flag", exact=True).hits
    assert {h.value: h.count for h in bools} == dict(Counter(p["flag"] for p in payloads))


# ============================================================================ async client


def test_async_client(host: Host) -> None:
    async def scenario() -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", INSECURE, UserWarning)
            ac = AsyncQdrantClient(url=host.url, api_key=API_KEY, prefer_grpc=False, timeout=30)
        name = unique("async")
        try:
            euclid = m.VectorParams(size=3, distance=m.Distance.EUCLID)
            await ac.create_collection(name, vectors_config=euclid)
            await ac.create_payload_index(name, "ns", KEYWORD_TENANT)
            await ac.upsert(
                name, [point(i, [float(i), 0.0, 0.0], {"ns": f"ns{i % 3}"}) for i in range(30)]
            )
            results = await asyncio.gather(
                *(ac.query_points(name, query=[float(i), 0.0, 0.0], limit=1) for i in range(10))
            )
            assert [r.points[0].id for r in results] == list(range(10))
            in_ns = m.Filter(must=[match("ns", "ns1")])
            assert (await ac.count(name, count_filter=in_ns)).count == 10
            facets = await ac.facet(name, "ns", exact=True)
            assert {h.value: h.count for h in facets.hits} == {"ns0": 10, "ns1": 10, "ns2": 10}
            assert await ac.collection_exists(name)
        finally:
            await ac.delete_collection(name)
            await ac.close()

    asyncio.run(scenario())


# ============================================================================ durability


def test_data_survives_a_restart(workdir: Path) -> None:
    root = workdir / "restart"
    root.mkdir()
    server = _new_host(root).start()
    qc = make_client(server.url)
    try:
        qc.create_collection("kept", vectors_config={"v": dot(2)})
        qc.create_payload_index("kept", "ns", KEYWORD_TENANT)
        qc.upsert(
            "kept", [point(i, {"v": [1.0, float(i)]}, {"ns": "a", "i": i}) for i in range(50)]
        )
        qc.create_collection("dropped", vectors_config=dot(2))
        qc.delete_collection("dropped")
    finally:
        qc.close()
    assert server.stop(signal.SIGTERM) == 0
    assert "flushed and closed 1 collection(s)" in server.log.read_text()

    server.start()
    qc = make_client(server.url)
    try:
        assert [c.name for c in qc.get_collections().collections] == ["kept"]
        info = qc.get_collection("kept")
        assert info.points_count == 50
        assert set(info.payload_schema) == {"ns"}
        assert qc.retrieve("kept", [7])[0].payload == {"ns": "a", "i": 7}
        assert qc.query_points("kept", query=[0.0, 1.0], using="v", limit=1).points[0].id == 49
    finally:
        qc.close()
        assert server.stop() == 0


def test_acknowledged_upsert_survives_kill_9(workdir: Path) -> None:
    root = workdir / "kill9"
    root.mkdir()
    server = _new_host(root).start()
    qc = make_client(server.url)
    try:
        qc.create_collection("c", vectors_config=m.VectorParams(size=3, distance=m.Distance.COSINE))
        qc.upsert("c", [point(i, [1.0, 0.0, float(i)], {"i": i}) for i in range(100)])
        last = point(1000, [0.0, 1.0, 0.0], {"last": True})
        assert qc.upsert("c", [last], wait=True).status == m.UpdateStatus.COMPLETED
        qc.set_payload("c", {"patched": 1}, points=[5], wait=True)
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)  # no flush, no close
    finally:
        qc.close()
    assert server.stop() == -signal.SIGKILL

    server.start()  # the WAL locks died with the process
    qc = make_client(server.url)
    try:
        assert qc.count("c").count == 101
        assert qc.retrieve("c", [1000])[0].payload == {"last": True}
        assert qc.retrieve("c", [5])[0].payload == {"i": 5, "patched": 1}
        qc.upsert("c", [point(1001, [1.0, 1.0, 1.0])])
        assert qc.count("c").count == 102
    finally:
        qc.close()
        assert server.stop() == 0


def test_one_process_per_data_folder(host: Host, workdir: Path) -> None:
    second = Host(data=host.data, key_file=host.key_file, log=workdir / "second.log")
    with pytest.raises(RuntimeError, match="never became ready"):
        second.start()
    assert "in use by another process" in second.log.read_text()
