"""Pinecone filters translated for Qdrant (gateway/qdrant_filters.py), run by a real Qdrant
engine: the `vectorplane.qdrant_host` process (Qdrant Edge behind Qdrant's REST API), reached
with the real `qdrant_client`. Whatever the engine answers must equal `Compiled.test`, the
filter language's semantics in Python (themselves checked against PostgreSQL in test_filters).

No database is used. The host runs once per module, on a free port, in a temporary directory.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from gateway.backends import UnsupportedOnEngine
from gateway.backends.qdrant_filters import (
    BIG,
    Condition,
    canonical,
    encode_key,
    filter_json,
    image,
    payload_fields,
    record_payload,
    translate,
)
from gateway.tests.test_filters import (
    _TEXT,
    _VALUES,
    CASES,
    INJECT,
    PERCENT,
    QUOTE,
    RECORDS,
    _filters,
    _pairs,
    _weighted,
)
from provisioning.storage.qdrant_tier import QdrantIndexSpec, create_collection
from vectorplane.contract.filters import Filter
from vectorplane.contract.storage import DENSE

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

# ============================================================================ the host process


@dataclass
class Host:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> QdrantClient:
        return connect(self.url, self.api_key)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def connect(url: str, api_key: str) -> QdrantClient:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
        return QdrantClient(
            url=url, api_key=api_key, prefer_grpc=False, check_compatibility=False, timeout=30
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_host() -> Host:
    """`python -m vectorplane.qdrant_host` on a free port, its data in a fresh temp dir."""
    root = Path(tempfile.mkdtemp(prefix="vp-qdrant-test-"))
    data = root / "data"
    data.mkdir()
    key_file = root / "api-key"
    api_key = secrets.token_urlsafe(24)
    key_file.write_text(api_key)
    key_file.chmod(0o600)
    log = root / "host.log"
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vectorplane.qdrant_host", "--data", str(data),
             "--host", "127.0.0.1", "--port", str(port), "--api-key-file", str(key_file)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    host = Host(f"http://127.0.0.1:{port}", api_key, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"the Qdrant host exited ({process.returncode}):\n{host.output()}")
        try:
            client = host.client()
            try:
                client.get_collections()
            finally:
                client.close()
            return host
        except Exception as exc:
            if time.monotonic() > deadline:
                stop_host(host)
                raise RuntimeError(f"the Qdrant host did not answer: {exc}") from exc
            time.sleep(0.1)


def stop_host(host: Host) -> None:
    if host.process.poll() is None:
        os.killpg(host.process.pid, signal.SIGTERM)
        try:
            host.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(host.process.pid, signal.SIGKILL)
            host.process.wait()
    shutil.rmtree(host.log.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def qdrant_host() -> Iterator[Host]:
    host = start_host()
    try:
        yield host
    finally:
        stop_host(host)


# ============================================================================ the engine


class Engine:
    """One collection (created by provisioning.storage.qdrant_tier); each data set in its own
    namespace."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self.index_id = uuid.uuid4()
        spec = QdrantIndexSpec(
            index_id=self.index_id,
            tenant_id=uuid.uuid4(),
            dimension=2,
            metric="dotproduct",
            hnsw_m=16,
            hnsw_ef_construction=100,
        )
        create_collection(client, spec)
        self.name = spec.name

    def load(self, records: dict[str, dict[str, Any]]) -> str:
        namespace = uuid.uuid4().hex
        points = [
            models.PointStruct(
                id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{namespace}/{key}")),
                vector={DENSE: [1.0, 0.0]},
                payload=record_payload(namespace, key, metadata),
            )
            for key, metadata in records.items()
        ]
        self.client.upsert(self.name, points, wait=True)
        return namespace

    def ids(self, namespace: str, filter_: dict[str, Any]) -> set[str]:
        """The ids matching the filter, sent as the store sends it (REST JSON)."""
        selection = filter_json(
            Filter.of(filter_), {"key": "_ns", "match": {"value": namespace}}
        )
        answer = self.client.http.client.request(
            type_=dict,
            method="POST",
            url=f"/collections/{self.name}/points/scroll",
            content=orjson.dumps({"filter": selection, "limit": 1000, "with_payload": ["_id"]}),
            headers={"Content-Type": "application/json"},
        )
        return {str(p["payload"]["_id"]) for p in answer["result"]["points"]}


@pytest.fixture(scope="module")
def engine(qdrant_host: Host) -> Iterator[Engine]:
    client = qdrant_host.client()
    try:
        yield Engine(client)
    finally:
        client.close()


def as_received(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata as the gateway hands it over: JSON parsed by orjson (integers beyond 64 bits
    become floats, as in a request body)."""
    parsed: dict[str, Any] = orjson.loads(json.dumps(metadata))
    return parsed


# ============================================================================ (1) fixed cases

# The filter tests' records, plus keys that are not plain JSON-path segments and numbers that
# f64 cannot tell apart.
HOSTILE_KEYS = ["a.b", "a[0]", "a[]", 'x"y', "back\\slash", "sp ace", "=", "k=v", "_eq", "é.ü",
                "1", "-", "m", '"quoted"', "a..b", "$x"]  # fmt: skip
P53 = 2**53
EXTRA: dict[str, dict[str, Any]] = {
    "k1": {"a.b": 1, "a[0]": "x", "sp ace": True, 'x"y': ["q", "r"], "k=v": "=", "_eq": "m"},
    "k2": {"a.b": "1", "a[]": [], "back\\slash": 2.5, "=": 0, "é.ü": "é", "1": 1, "-": False},
    "k3": {"m": {"nested": 1}, '"quoted"': "x", "a..b": None, "$x": -0.0, "a": {"b": 1}},
    "n1": {"n": P53},
    "n2": {"n": P53 + 1},
    "n3": {"n": P53 - 1},
    "n4": {"n": float(P53)},
    "n5": {"n": 2**62},
    "n6": {"n": 2**62 + 1},
    "n7": {"n": 4.611686018427388e18},  # the double nearest 2**62, printed shorter
    "n8": {"n": 2**64 - 1},
    "n9": {"n": -(2**63)},
    "n10": {"n": 1e23},
    "n11": {"n": 0.1},
    "n12": {"n": -(2**62) - 1},
}
EXTRA_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"a.b": 1}, {"k1"}),
    ({"a.b": "1"}, {"k2"}),
    ({"a.b": {"$exists": True}}, {"k1", "k2"}),
    ({"a": {"$exists": True}}, {"k3"}),
    ({"a[0]": "x"}, {"k1"}),
    ({"a[]": {"$exists": True}}, {"k2"}),  # an empty list is present
    ({"a[]": {"$ne": "x"}}, set(EXTRA)),
    ({"sp ace": True}, {"k1"}),
    ({"sp ace": 1}, set()),
    ({'x"y': "r"}, {"k1"}),
    ({'x"y': {"$nin": ["q"]}}, set(EXTRA) - {"k1"}),
    ({"k=v": "="}, {"k1"}),
    ({"=": 0}, {"k2"}),
    ({"=": -0.0}, {"k2"}),
    ({"=": False}, set()),
    ({"_eq": "m"}, {"k1"}),
    ({"back\\slash": {"$gt": 2, "$lt": 3}}, {"k2"}),
    ({"é.ü": "é"}, {"k2"}),
    ({"1": 1.0}, {"k2"}),
    ({"-": False}, {"k2"}),
    ({"-": 0}, set()),
    ({"m": {"$exists": True}}, {"k3"}),
    ({"m": 1}, set()),
    ({"a..b": {"$exists": True}}, {"k3"}),  # a null value is present (the gateway drops them)
    ({'"quoted"': "x"}, {"k3"}),
    # numbers beyond 2**53: equality is exact ...
    ({"n": P53}, {"n1", "n4"}),
    ({"n": P53 + 1}, {"n2"}),
    ({"n": float(P53 + 1)}, {"n1", "n4"}),  # the double 2**53
    ({"n": 2**62}, {"n5"}),
    ({"n": 2**62 + 1}, {"n6"}),
    ({"n": 4.611686018427388e18}, {"n7"}),
    ({"n": 4611686018427388000}, {"n7"}),
    ({"n": {"$in": [2**62, 1e23, 2**63 - 1]}}, {"n5", "n10"}),
    ({"n": {"$ne": 2**62}}, set(EXTRA) - {"n5"}),
    ({"n": -(2**63)}, {"n9"}),
    ({"n": 0.1}, {"n11"}),
    # ... and so are ranges
    ({"n": {"$gt": P53}}, {"n2", "n5", "n6", "n7", "n8", "n10"}),
    ({"n": {"$gte": P53}}, {"n1", "n2", "n4", "n5", "n6", "n7", "n8", "n10"}),
    ({"n": {"$lt": P53}}, {"n3", "n9", "n11", "n12"}),
    ({"n": {"$lte": P53}}, {"n1", "n3", "n4", "n9", "n11", "n12"}),
    ({"n": {"$gt": P53 - 1, "$lt": P53 + 1}}, {"n1", "n4"}),
    ({"n": {"$gt": 2**62}}, {"n6", "n7", "n8", "n10"}),
    ({"n": {"$gte": 2**62 + 1}}, {"n6", "n7", "n8", "n10"}),
    ({"n": {"$gt": 2**62 + 1}}, {"n7", "n8", "n10"}),
    (
        {"n": {"$lt": 4.611686018427388e18}},
        {"n1", "n2", "n3", "n4", "n5", "n6", "n9", "n11", "n12"},
    ),
    (
        {"n": {"$lte": 4611686018427387999}},
        {"n1", "n2", "n3", "n4", "n5", "n6", "n9", "n11", "n12"},
    ),
    ({"n": {"$gte": 4611686018427388000, "$lte": 4611686018427388000}}, {"n7"}),
    ({"n": {"$gt": 2**63 - 1}}, {"n8", "n10"}),
    ({"n": {"$gt": 1.8446744073709552e19}}, {"n10"}),  # 2**64 as printed: above 2**64 - 1
    ({"n": {"$lt": 1.8446744073709552e19}}, set(EXTRA) - {"n10"} - {"k1", "k2", "k3"}),
    ({"n": {"$lt": -(2**62)}}, {"n9", "n12"}),
    ({"n": {"$lt": -(2**62), "$gt": -(2**63)}}, {"n12"}),
    ({"n": {"$gte": -(2**63), "$lt": -(2**62) - 1}}, {"n9"}),
    ({"n": {"$gt": 0.1}}, {"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n10"}),
    ({"n": {"$gte": 0.1, "$lt": 0.10000000000000002}}, {"n11"}),
    ({"n": {"$gt": math.nextafter(1e23, 0)}}, {"n10"}),
    ({"n": {"$lt": math.nextafter(1e23, math.inf)}}, set(EXTRA) - {"k1", "k2", "k3"}),
]


def test_extra_cases_agree_with_python() -> None:
    for filter_, expected in EXTRA_CASES:
        got = {key for key, meta in EXTRA.items() if Filter.of(filter_).test(meta)}
        assert got == expected, filter_


@pytest.fixture(scope="module")
def records_namespace(engine: Engine) -> str:
    return engine.load({**RECORDS, **EXTRA})


# (filter, the ids it matches among `scope`, worked out by hand, scope)
ALL_CASES = [(f, e, set(RECORDS)) for f, e in CASES] + [(f, e, set(EXTRA)) for f, e in EXTRA_CASES]


@pytest.mark.parametrize(
    ("filter_", "expected", "scope"), ALL_CASES, ids=[repr(c[0]) for c in ALL_CASES]
)
def test_engine_matches_python(
    engine: Engine,
    records_namespace: str,
    filter_: dict[str, Any],
    expected: set[str],
    scope: set[str],
) -> None:
    everything = {**RECORDS, **EXTRA}
    python = {key for key, meta in everything.items() if Filter.of(filter_).test(meta)}
    assert engine.ids(records_namespace, filter_) == python
    assert python & scope == expected


# ============================================================================ (2) the layout


def test_key_encoding_is_a_plain_segment_and_injective() -> None:
    seen: dict[str, str] = {}
    keys = [*HOSTILE_KEYS, *RECORDS["g"], "a", "A", "_", "_5F", "k", "", "ß", "\U0001f600"]
    for key in keys:
        encoded = encode_key(key)
        assert re.fullmatch(r"k[A-Za-z0-9_]*", encoded), encoded
        assert seen.setdefault(encoded, key) == key
    assert encode_key("genre") == "kgenre"
    assert encode_key("a.b") == "ka_2Eb"
    assert encode_key("_") == "k_5F"


@given(st.text(max_size=8), st.text(max_size=8))
def test_key_encoding_is_injective(a: str, b: str) -> None:
    try:
        a.encode()
        b.encode()
    except UnicodeEncodeError:
        return
    assert (encode_key(a) == encode_key(b)) is (a == b)


def test_payload_fields() -> None:
    fields = payload_fields(
        {"g": "x", "t": ["a", "b", "a"], "f": True, "n": 1.0, "big": 2**53 + 1, "e": []}
    )
    assert fields["_keys"] == ["g", "t", "f", "n", "big", "e"]
    assert fields["_eq"] == ["kg=sx", "kt=sa", "kt=sb", "kf=t", "kn=n1", "kbig=n9007199254740993"]
    assert fields["r"] == {"kn": 1.0, "kbig": float(2**53)}
    assert fields["x"] == {"kbig": 1.0}
    assert payload_fields({"s": "x", "b": False}) == {"_keys": ["s", "b"], "_eq": ["ks=sx", "kb=f"]}
    assert payload_fields({}) == {"_keys": [], "_eq": []}
    assert record_payload("ns", "id", {"n": 2}, norm=3.0, text="t") == {
        "_ns": "ns", "_id": "id", "m": {"n": 2}, "_keys": ["n"], "_eq": ["kn=n2"],
        "r": {"kn": 2.0}, "_norm": 3.0, "_text": "t",
    }  # fmt: skip


def test_canonical_numbers() -> None:
    assert canonical(Decimal(1)) == canonical(Decimal("1.0")) == canonical(Decimal("1e0")) == "1"
    assert canonical(Decimal("-0.0")) == canonical(Decimal(0)) == "0"
    assert canonical(Decimal(1000)) == canonical(Decimal("1e3"))
    assert canonical(Decimal(2**64 - 1)) != canonical(Decimal(2**64))
    # a float is the decimal of its shortest repr, not of its binary value
    assert canonical(Decimal("0.1")) != canonical(Decimal.from_float(0.1))


def test_images_and_residuals() -> None:
    assert image(Decimal(P53 - 1)) == (float(P53 - 1), None)
    assert image(Decimal(P53)) == (float(P53), 0.0)
    assert image(Decimal(P53 + 1)) == (float(P53), 1.0)
    assert image(Decimal("1E+23")) == (1e23, 8388608.0)
    assert image(Decimal("-0.5")) == (-0.5, None)
    assert float(P53) == BIG
    with pytest.raises(OverflowError):
        image(Decimal("1e400"))


def test_numbers_beyond_doubles_are_refused() -> None:
    with pytest.raises(UnsupportedOnEngine) as caught:
        payload_fields({"huge": 10**400})
    assert caught.value.details == {"key": "huge"}  # the gateway answers 400 with it


def to_qdrant(where: Filter | None, *extra: Condition) -> models.Filter | None:
    """`filter_json` as a qdrant-client `models.Filter` (the typed form the control plane's
    client would use), to check that the store's REST JSON is a valid Qdrant filter."""
    found = filter_json(where, *extra)
    return None if found is None else models.Filter.model_validate(found)


def test_translation_shape() -> None:
    assert translate(None) == []
    assert filter_json(Filter.of({})) is None
    assert to_qdrant(Filter.of({})) is None
    [eq] = translate(Filter.of({"g": "x"}).tree)
    assert eq == {"key": "_eq", "match": {"value": "kg=sx"}}
    [many] = translate(Filter.of({"g": {"$in": ["x", 1, 1.0, True]}}).tree)
    assert many == {"key": "_eq", "match": {"any": ["kg=sx", "kg=n1", "kg=t"]}}
    [negated] = translate(Filter.of({"g": {"$nin": ["x", "x"]}}).tree)
    assert negated == {"must_not": [eq]}
    [exists] = translate(Filter.of({"g": {"$exists": False}}).tree)
    assert exists == {"must_not": [{"key": "_keys", "match": {"value": "g"}}]}
    [rng] = translate(Filter.of({"g": {"$gt": 1, "$lte": 2.5}}).tree)
    assert rng == {"key": "r.kg", "range": {"gt": 1.0, "lte": 2.5}}
    # ANDs are flattened; ORs nest
    flat = translate(Filter.of({"$and": [{"a": 1}, {"$and": [{"b": 2}, {"c": 3}]}]}).tree)
    assert len(flat) == 3
    [either] = translate(Filter.of({"$or": [{"a": 1}, {"b": 2}]}).tree)
    assert set(either) == {"should"} and len(either["should"]) == 2
    extra = {"key": "_ns", "match": {"value": "n"}}
    assert filter_json(Filter.of({"g": "x"}), extra) == {"must": [extra, eq]}


def test_big_range_bounds_compare_residuals() -> None:
    plain, exact = translate(Filter.of({"n": {"$gt": P53 + 1, "$lt": 10}}).tree)
    assert plain == {"key": "r.kn", "range": {"lt": 10.0}}
    assert exact == {
        "should": [
            {"key": "r.kn", "range": {"gt": float(P53)}},
            {
                "must": [
                    {"key": "r.kn", "range": {"gte": float(P53), "lte": float(P53)}},
                    {"key": "x.kn", "range": {"gt": 1.0}},
                ]
            },
        ]
    }


@pytest.mark.parametrize(("filter_", "expected"), CASES + EXTRA_CASES, ids=repr)
def test_typed_filter_is_the_same_filter(filter_: dict[str, Any], expected: set[str]) -> None:
    """`to_qdrant` (a qdrant-client model) and `filter_json` (what the store sends) agree."""
    where = Filter.of(filter_)
    typed = to_qdrant(where, {"key": "_ns", "match": {"value": "n"}})
    assert isinstance(typed, models.Filter)
    dumped = typed.model_dump(exclude_none=True, mode="json")
    assert dumped == filter_json(where, {"key": "_ns", "match": {"value": "n"}})


# ============================================================================ (3) property

_SHARED = {"x", "y", "Y", "", INJECT, "1"}
# Keys that JSON paths would misread, numbers f64 cannot tell apart, and the filter tests'
# value distribution (shared strings, lookalikes such as 1 / 1.0 / true / "1").
KEYS = ["a", "tags", "a.b", 'x"y', "sp ace", "k=v", INJECT, QUOTE, PERCENT]
_BIG_NUMBERS = st.sampled_from(
    [P53, P53 + 1, P53 - 1, float(P53), 2**62, 2**62 + 1, 4.611686018427388e18, 2**63 - 1,
     2**64 - 1, -(2**63), -(2**53) - 1, 1e23, 10**23, 1.8446744073709552e19, 0.1]
)  # fmt: skip
_STORED = _weighted((6, _VALUES), (2, _BIG_NUMBERS), (1, st.lists(_TEXT, max_size=2)))
_METADATA = st.dictionaries(st.sampled_from(KEYS), _STORED, max_size=len(KEYS))


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_engine_and_python_agree(engine: Engine, data: st.DataObject) -> None:
    records = data.draw(st.lists(_METADATA, min_size=2, max_size=12), label="records")
    records = [as_received(meta) for meta in records]
    filter_ = data.draw(_filters(_pairs(records)), label="filter")
    compiled = Filter.of(filter_)
    by_id = {str(i): meta for i, meta in enumerate(records)}
    expected = {key for key, meta in by_id.items() if compiled.test(meta)}
    namespace = engine.load(by_id)
    assert engine.ids(namespace, filter_) == expected


@pytest.mark.parametrize(
    "wanted",
    [
        lambda meta: any(isinstance(v, int) and P53 < abs(v) < 2**63 for v in meta.values()),
        lambda meta: any(isinstance(v, float) and abs(v) >= P53 for v in meta.values()),
        lambda meta: any(isinstance(v, list) and v for v in meta.values()),
        lambda meta: 'x"y' in meta and isinstance(meta['x"y'], str),
        lambda meta: any(v in _SHARED for v in meta.values() if isinstance(v, str)),
    ],
)
def test_strategy_reaches_the_tricky_values(wanted: Any) -> None:
    """The property test is only as good as its data: each kind of tricky value turns up."""
    find(_METADATA.map(as_received), wanted, settings=settings(database=None))
