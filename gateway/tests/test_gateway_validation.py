"""Issue 8 §1-2 on the data plane, on every engine: values an engine would refuse (beyond
float32, too many sparse non-zeros, a text past the tsvector limit, integers past 64 bits) are
a documented 400 before any engine sees them; null means absent; a zero query vector ranks
nothing on every metric while a stored zero vector is refused on every metric."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.tests.conftest import (
    TARGETS,
    Gateway,
    Platform,
    TenantCtx,
    assert_error,
    conformance,
    data_rows,
)
from gateway.tests.test_text_limit import crafted_text
from provisioning.models import Index
from vectorplane.contract.limits import MAX_SPARSE_NONZEROS, MAX_TEXT_BYTES

# Part of the conformance suite: every test here runs on each target.
platform = pytest.fixture(params=TARGETS, name="platform")(conformance)

FLOAT32_MAX = 3.4028234663852886e38


class Ix:
    def __init__(self, gateway: Gateway, tenant: TenantCtx, index: Index, key: str) -> None:
        self.gw, self.tenant, self.index, self.key = gateway, tenant, index, key
        self.base = f"/v1/indexes/{index.name}"

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.gw.post(f"{self.base}/{path}", self.key, body)

    def ok(self, path: str, body: Any) -> Any:
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        return response.json()


def make(gateway: Gateway, platform: Platform, **index: Any) -> Ix:
    tenant = platform.tenant()
    return Ix(gateway, tenant, tenant.index(**index), tenant.key())


@pytest.fixture
def ix(gateway: Gateway, platform: Platform) -> Ix:
    return make(gateway, platform)


# ============================================================================ float32


@pytest.mark.parametrize("bad", [1e39, -1e39, 3.5e38, FLOAT32_MAX * 1.0000001, 2.0**128])
def test_values_beyond_float32_are_invalid_value_everywhere(
    gateway: Gateway, platform: Platform, bad: float
) -> None:
    ix = make(gateway, platform, metric="dotproduct")
    ix.ok("vectors/upsert", {"vectors": [{"id": "a", "values": [1, 2, 3]}]})
    sparse = {"indices": [1, 2], "values": [0.5, bad]}
    for path, body in (
        ("vectors/upsert", {"vectors": [{"id": "b", "values": [bad, 1, 2]}]}),
        ("vectors/upsert", {"vectors": [{"id": "b", "values": [1, 1, 2], "sparseValues": sparse}]}),
        ("vectors/update", {"id": "a", "values": [1, bad, 2]}),
        ("vectors/update", {"id": "a", "sparseValues": sparse}),
        ("query", {"vector": [1, 2, bad], "topK": 1}),
        ("query", {"vector": [1, 2, 3], "sparseVector": sparse, "topK": 1}),
    ):
        details = assert_error(ix.post(path, body), 400, "invalid_value")
        assert "field" in details, details
    # Nothing reached the engine: the stored record is unchanged, nothing else was written.
    assert data_rows(ix.index).keys() == {("", "a")}
    fetched = ix.gw.fetch(ix.index.name, ix.key, ["a"])["vectors"]["a"]
    assert fetched["values"] == pytest.approx([1, 2, 3])


def test_the_largest_float32_is_accepted_and_read_back(ix: Ix) -> None:
    ix.ok("vectors/upsert", {"vectors": [{"id": "m", "values": [FLOAT32_MAX, -FLOAT32_MAX, 1]}]})
    fetched = ix.gw.fetch(ix.index.name, ix.key, ["m"])["vectors"]["m"]
    assert fetched["values"] == pytest.approx([FLOAT32_MAX, -FLOAT32_MAX, 1], rel=1e-6)


# ============================================================================ zero vectors


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_a_stored_zero_vector_is_refused_on_every_metric(
    gateway: Gateway, platform: Platform, metric: str
) -> None:
    ix = make(gateway, platform, metric=metric)
    details = assert_error(
        ix.post("vectors/upsert", {"vectors": [{"id": "z", "values": [0, 0.0, -0.0]}]}),
        400,
        "invalid_value",
    )
    assert details["field"] == "vectors[0].values"
    ix.ok("vectors/upsert", {"vectors": [{"id": "a", "values": [1, 2, 3]}]})
    assert_error(ix.post("vectors/update", {"id": "a", "values": [0, 0, 0]}), 400, "invalid_value")
    assert data_rows(ix.index).keys() == {("", "a")}


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_a_zero_query_vector_answers_the_filters_matches_with_score_0(
    gateway: Gateway, platform: Platform, metric: str
) -> None:
    """LlamaIndex's Pinecone store lists nodes by filter this way (`get_nodes(filters=...)`)."""
    ix = make(gateway, platform, metric=metric)
    records = [
        {"id": f"r{i}", "values": [1 + i, 2, 3], "metadata": {"doc": "d1" if i < 4 else "d2"}}
        for i in range(7)
    ]
    ix.ok("vectors/upsert", {"vectors": records})
    body = ix.ok(
        "query",
        {"vector": [0, 0, 0], "topK": 10, "filter": {"doc": "d1"}, "includeMetadata": True,
         "includeValues": True},
    )  # fmt: skip
    matches = body["matches"]
    assert sorted(m["id"] for m in matches) == ["r0", "r1", "r2", "r3"]
    assert all(m["score"] == 0 for m in matches)
    assert all(m["metadata"] == {"doc": "d1"} for m in matches)
    assert {m["id"]: m["values"] for m in matches}["r2"] == pytest.approx([3, 2, 3])
    # topK bounds it; without a filter, every record is a match.
    assert len(ix.ok("query", {"vector": [0, 0, 0], "topK": 3})["matches"]) == 3
    assert len(ix.ok("query", {"vector": [0.0, -0.0, 0], "topK": 100})["matches"]) == 7


def test_a_zero_dense_part_ranks_by_the_sparse_vector_alone(
    gateway: Gateway, platform: Platform
) -> None:
    ix = make(gateway, platform, metric="dotproduct")
    ix.ok(
        "vectors/upsert",
        {"vectors": [
            {"id": "a", "values": [1, 0, 0], "sparseValues": {"indices": [5], "values": [1.0]}},
            {"id": "b", "values": [0, 1, 0], "sparseValues": {"indices": [5], "values": [3.0]}},
            {"id": "c", "values": [0, 0, 1], "sparseValues": {"indices": [9], "values": [2.0]}},
        ]},
    )  # fmt: skip
    matches = ix.ok(
        "query",
        {"vector": [0, 0, 0], "sparseVector": {"indices": [5], "values": [2.0]}, "topK": 3},
    )["matches"]
    assert [m["id"] for m in matches] == ["b", "a", "c"]
    assert [m["score"] for m in matches] == pytest.approx([6.0, 2.0, 0.0])


# ============================================================================ sparse limit


def test_sparse_non_zeros_limit(gateway: Gateway, platform: Platform) -> None:
    ix = make(gateway, platform, metric="dotproduct")
    at = {"indices": list(range(MAX_SPARSE_NONZEROS)), "values": [0.5] * MAX_SPARSE_NONZEROS}
    over = {
        "indices": list(range(MAX_SPARSE_NONZEROS + 1)),
        "values": [0.5] * (MAX_SPARSE_NONZEROS + 1),
    }
    for path, body in (
        ("vectors/upsert", {"vectors": [{"id": "s", "values": [1, 2, 3], "sparseValues": over}]}),
        ("vectors/update", {"id": "s", "sparseValues": over}),
        ("query", {"vector": [1, 2, 3], "sparseVector": over, "topK": 1}),
    ):
        details = assert_error(ix.post(path, body), 400, "sparse_too_large")
        assert details["max"] == MAX_SPARSE_NONZEROS
        assert details["got"] == MAX_SPARSE_NONZEROS + 1
    assert data_rows(ix.index) == {}
    ix.ok("vectors/upsert", {"vectors": [{"id": "s", "values": [1, 2, 3], "sparseValues": at}]})
    fetched = ix.gw.fetch(ix.index.name, ix.key, ["s"])["vectors"]["s"]
    assert len(fetched["sparseValues"]["indices"]) == MAX_SPARSE_NONZEROS
    matches = ix.ok("query", {"vector": [1, 0, 0], "sparseVector": at, "topK": 1})["matches"]
    assert matches[0]["score"] == pytest.approx(1 + 0.25 * MAX_SPARSE_NONZEROS)


# ============================================================================ full text


def test_text_limit(gateway: Gateway, platform: Platform) -> None:
    ix = make(gateway, platform, text_field=True)
    longest = crafted_text(MAX_TEXT_BYTES)
    assert MAX_TEXT_BYTES - 16 < len(longest.encode()) <= MAX_TEXT_BYTES
    ix.ok("vectors/upsert", {"vectors": [{"id": "t", "values": [1, 2, 3], "text": longest}]})
    too_long = "é" * (MAX_TEXT_BYTES // 2) + "x"  # one byte over, in two-byte letters
    details = assert_error(
        ix.post("vectors/upsert",
                {"vectors": [{"id": "u", "values": [1, 2, 3], "text": too_long}]}),
        400,
        "text_too_large",
    )  # fmt: skip
    assert details == {
        "field": "vectors[0].text", "bytes": MAX_TEXT_BYTES + 1, "max_bytes": MAX_TEXT_BYTES,
    }  # fmt: skip
    if ix.index.engine != "qdrant":  # text queries are refused on Qdrant (unsupported_on_engine)
        assert_error(
            ix.post("query", {"vector": [1, 2, 3], "text": too_long, "topK": 1}),
            400,
            "text_too_large",
        )
    assert data_rows(ix.index).keys() == {("", "t")}


# ============================================================================ metadata numbers


def test_metadata_integers_beyond_64_bits_are_doubles(ix: Ix) -> None:
    edge = {"hi": 2**63 - 1, "lo": -(2**63), "over": 2**63, "under": -(2**63) - 1,
            "huge": 2**64, "neg_zero": -0.0, "big": 1e39}  # fmt: skip
    ix.ok("vectors/upsert", {"vectors": [{"id": "a", "values": [1, 2, 3], "metadata": edge}]})
    stored = ix.gw.fetch(ix.index.name, ix.key, ["a"])["vectors"]["a"]["metadata"]
    assert stored["hi"] == 2**63 - 1 and stored["lo"] == -(2**63)  # exact
    # The nearest double (written back as its shortest decimal, 9223372036854776000).
    assert float(stored["over"]) == float(2**63)
    assert float(stored["under"]) == float(-(2**63) - 1)
    assert float(stored["huge"]) == float(2**64)
    assert stored["neg_zero"] == 0 and stored["big"] == 1e39
    hit = ix.ok("query", {"vector": [1, 2, 3], "topK": 1, "filter": {"hi": 2**63 - 1}})
    assert [m["id"] for m in hit["matches"]] == ["a"]
    assert_error(
        ix.post("query", {"vector": [1, 2, 3], "topK": 1, "filter": {"over": 2**63}}),
        400,
        "invalid_filter",
    )


# ============================================================================ null means absent


def test_null_means_absent(ix: Ix) -> None:
    ix.ok(
        "vectors/upsert",
        {"namespace": None, "vectors": [
            {"id": "a", "values": [1, 2, 3], "metadata": None, "sparseValues": None},
            {"id": "b", "values": [3, 2, 1], "metadata": {"k": "v", "gone": None}},
        ]},
    )  # fmt: skip
    body = ix.ok(
        "query",
        {"vector": [1, 2, 3], "topK": None, "filter": None, "namespace": None,
         "includeMetadata": None, "includeValues": None, "efSearch": None, "sparseVector": None},
    )  # fmt: skip
    assert sorted(m["id"] for m in body["matches"]) == ["a", "b"]  # topK: the default, 10
    assert all("metadata" not in m and "values" not in m for m in body["matches"])
    assert body["namespace"] == ""
    stored = ix.gw.fetch(ix.index.name, ix.key, ["a", "b"])["vectors"]
    assert stored["a"]["metadata"] in (None, {})
    assert stored["b"]["metadata"] == {"k": "v"}
    ix.ok("vectors/update", {"id": "a", "setMetadata": None, "values": None, "namespace": None})
    assert ix.ok("describe_index_stats", {"filter": None})["totalVectorCount"] == 2
    ix.ok("vectors/delete", {"ids": ["a"], "filter": None, "deleteAll": None})
    assert data_rows(ix.index).keys() == {("", "b")}


def test_list_limit_must_be_an_integer(ix: Ix) -> None:
    for limit in ("", " 5", "5.0", "-1", "0", "1001", "1e2", "٣"):
        assert_error(
            ix.gw.get(f"{ix.base}/vectors/list", ix.key, params={"limit": limit}),
            400,
            "validation_error",
        )
    ok = ix.gw.get(f"{ix.base}/vectors/list", ix.key, params={"limit": "1000"})
    assert ok.status_code == 200, ok.text


# ============================================================================ fetch and URLs


def test_fetch_by_post_takes_what_a_url_cannot(ix: Ix) -> None:
    """1,000 ids of 512 bytes are ~520 KB: past the HTTP server's URL limit (65,534 bytes,
    fixed in granian's HTTP library), so the same fetch is also a POST with a body."""
    ids = [f"{i:04d}" + "x" * 508 for i in range(1000)]
    ix.ok("vectors/upsert", {"vectors": [{"id": i, "values": [1, 2, 3]} for i in ids[:5]]})
    body = ix.ok("vectors/fetch", {"ids": ids, "namespace": ""})
    assert sorted(body["vectors"]) == ids[:5] and body["namespace"] == ""
    assert_error(ix.post("vectors/fetch", {"ids": [*ids, "one-more"]}), 400, "batch_too_large")
    assert_error(ix.post("vectors/fetch", {"ids": []}), 400, "validation_error")
    assert_error(ix.post("vectors/fetch", {"ids": "a"}), 400, "validation_error")
    assert_error(ix.post("vectors/fetch", {"ids": ["a"], "x": 1}), 400, "unknown_field")


def test_get_fetch_of_1000_ids_within_the_url_limit(ix: Ix) -> None:
    ids = [f"doc-{i:05d}-" + "y" * 40 for i in range(1000)]  # 50-byte ids: a ~55 KB URL
    ix.ok("vectors/upsert", {"vectors": [{"id": i, "values": [1, 2, 3]} for i in ids[-3:]]})
    response = ix.gw.get(f"{ix.base}/vectors/fetch", ix.key, params=[("ids", i) for i in ids])
    assert response.status_code == 200, response.text
    assert sorted(response.json()["vectors"]) == ids[-3:]


def test_a_url_past_the_servers_limit_is_refused_before_the_application(ix: Ix) -> None:
    """What the HTTP server answers itself (no application code runs): 414, with an empty
    body — hyper's fixed limit, see README "URL length"."""
    query = "&".join(f"ids={i:04d}" + "z" * 200 for i in range(400))  # ~85 KB
    host = urlsplit(ix.gw.url)
    conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=30)
    try:  # httpx refuses to send such a URL itself
        conn.request("GET", f"{ix.base}/vectors/fetch?{query}", headers={"Api-Key": ix.key})
        response = conn.getresponse()
        assert response.status == 414
        response.read()
    finally:
        conn.close()
