"""Who may touch what, over real HTTP: tenant isolation on every operation (path and host
routing), hostile strings everywhere a request carries one, key scopes and restrictions (index,
namespace, row filter), and how fast revocation, suspension and index changes reach a running
gateway."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from django.utils import timezone

from controlplane.errors import ApplicationError
from gateway.tests.conftest import (
    OPERATION_ROUTES,
    TARGETS,
    Gateway,
    Platform,
    TenantCtx,
    assert_error,
    conformance,
    data_rows,
    poll,
    unique,
)
from provisioning.models import Index
from tenants import services as tenant_services
from tenants.models import ApiKey, Scope
from tenants.scoping import tenant_scope

# Part of the conformance suite: every test here runs on each target.
platform = pytest.fixture(params=TARGETS, name="platform")(conformance)


OPERATIONS = list(OPERATION_ROUTES)

# A request of each operation that would read or change something if it reached the index.
BODIES: dict[str, Any] = {
    "upsert": {"vectors": [{"id": "a1", "values": [9, 9, 9], "metadata": {"owner": "evil"}}]},
    "query": {"vector": [1, 1, 1], "topK": 10, "includeMetadata": True},
    "fetch": [("ids", "a1"), ("ids", "a2")],
    "update": {"id": "a1", "setMetadata": {"owner": "evil"}},
    "delete": {"deleteAll": True},
    "list": {"limit": "100"},
    "describe_index_stats": {},
}


def send(
    gw: Gateway,
    operation: str,
    key: str | None,
    *,
    index: str | None = None,
    host: str | None = None,
    body: Any = None,
    headers: dict[str, str | bytes] | None = None,
) -> httpx.Response:
    """`operation` on the path form (`index`) or on the bare route with a Host header."""
    method, path = OPERATION_ROUTES[operation]
    payload = BODIES[operation] if body is None else body
    url = f"/v1/indexes/{quote(index, safe='')}/{path}" if index is not None else f"/{path}"
    sent: dict[str, str | bytes] = dict(headers or {})
    if host:
        sent["Host"] = host.encode()
    if method == "GET":
        return gw.request("GET", url, key, params=payload, headers=sent)
    return gw.request("POST", url, key, payload, headers=sent)


@dataclass
class Pair:
    gw: Gateway
    a: TenantCtx
    b: TenantCtx
    a_key: str
    b_key: str
    shared: str  # an index name both tenants have
    a_shared: Index
    b_shared: Index
    a_only: Index  # an index only tenant A has


RECORDS = [
    {"id": "a1", "values": [1, 0, 0], "metadata": {"owner": "a", "team": "red"}},
    {"id": "a2", "values": [0, 1, 0], "metadata": {"owner": "a", "team": "blue"}},
]


@pytest.fixture
def pair(gateway: Gateway, platform: Platform) -> Pair:
    a, b = platform.tenant(), platform.tenant()
    shared = unique("shared")
    p = Pair(
        gw=gateway,
        a=a,
        b=b,
        a_key=a.key(),
        b_key=b.key(),
        shared=shared,
        a_shared=a.index(shared),
        b_shared=b.index(shared),
        a_only=a.index(),
    )
    for index in (p.a_shared, p.a_only):
        gateway.upsert(index.name, p.a_key, RECORDS)
        gateway.upsert(index.name, p.a_key, RECORDS, namespace="ns")
    gateway.upsert(shared, p.b_key, [{"id": "b1", "values": [1, 1, 0], "metadata": {"owner": "b"}}])
    return p


def _same_error_but_the_name(
    theirs: httpx.Response, ghost: httpx.Response, names: tuple[str, str]
) -> None:
    assert theirs.status_code == ghost.status_code == 404
    assert theirs.headers["content-type"] == ghost.headers["content-type"]
    assert theirs.text.replace(names[0], "NAME") == ghost.text.replace(names[1], "NAME")


# ============================================================================ tenants


def test_another_tenants_index_is_not_found_on_every_operation(pair: Pair) -> None:
    before = data_rows(pair.a_only)
    victim = pair.a_only.name
    ghost = unique("ix")
    attempts = {
        **dict.fromkeys(OPERATIONS),
        "delete-filter": {"filter": {"owner": "a"}},
        "delete-ids": {"ids": ["a1", "a2"], "namespace": "ns"},
        "query-id": {"id": "a1", "topK": 5},
    }
    for label, body in attempts.items():
        operation = label.split("-")[0]
        theirs = send(pair.gw, operation, pair.b_key, index=victim, body=body)
        missing = send(pair.gw, operation, pair.b_key, index=ghost, body=body)
        details = assert_error(theirs, 404, "not_found")
        assert details == {"index": victim}, label
        _same_error_but_the_name(theirs, missing, (victim, ghost))
    assert data_rows(pair.a_only) == before
    assert pair.gw.stats(victim, pair.a_key)["totalVectorCount"] == 4


def test_not_found_is_the_same_before_and_after_the_other_tenant_creates_the_index(
    pair: Pair,
) -> None:
    name = unique("later")
    before = {op: send(pair.gw, op, pair.b_key, index=name) for op in OPERATIONS}
    created = pair.a.index(name)
    pair.gw.upsert(name, pair.a_key, RECORDS)
    for op in OPERATIONS:
        after = send(pair.gw, op, pair.b_key, index=name)
        assert (after.status_code, after.text) == (before[op].status_code, before[op].text)
    assert set(data_rows(created)) == {("", "a1"), ("", "a2")}


def test_same_index_name_in_two_tenants_holds_separate_data(pair: Pair) -> None:
    gw, name = pair.gw, pair.shared
    a_rows, b_rows = data_rows(pair.a_shared), data_rows(pair.b_shared)
    matches = gw.query(name, pair.b_key, vector=[1, 1, 1], topK=10)["matches"]
    assert [m["id"] for m in matches] == ["b1"]
    assert gw.fetch(name, pair.b_key, ["a1", "a2", "b1"])["vectors"].keys() == {"b1"}
    assert gw.ids(name, pair.b_key) == ["b1"] and gw.ids(name, pair.b_key, "ns") == []
    assert gw.stats(name, pair.b_key)["namespaces"] == {"": {"vectorCount": 1}}
    assert_error(
        gw.post(
            f"/v1/indexes/{name}/vectors/update",
            pair.b_key,
            {"id": "a1", "setMetadata": {"owner": "b"}},
        ),
        404,
        "not_found",
    )
    assert_error(
        gw.post(f"/v1/indexes/{name}/query", pair.b_key, {"id": "a1", "topK": 1}), 404, "not_found"
    )

    # B's destructive attempts reach B's own rows only; A's rows are untouched (read
    # directly from the shared tier).
    gw.op(name, "delete", pair.b_key, {"filter": {"owner": "a"}})
    gw.op(name, "delete", pair.b_key, {"ids": ["a1", "a2"], "namespace": "ns"})
    gw.op(name, "delete", pair.b_key, {"deleteAll": True, "namespace": "ns"})
    assert data_rows(pair.a_shared) == a_rows
    gw.op(name, "delete", pair.b_key, {"deleteAll": True})
    assert data_rows(pair.a_shared) == a_rows
    assert data_rows(pair.b_shared) == {} != b_rows
    gw.upsert(name, pair.b_key, [{"id": "a1", "values": [5, 5, 5], "metadata": {"owner": "b"}}])
    assert data_rows(pair.a_shared) == a_rows
    assert gw.stats(name, pair.a_key)["namespaces"] == {
        "": {"vectorCount": 2},
        "ns": {"vectorCount": 2},
    }
    assert gw.fetch(name, pair.a_key, ["a1"])["vectors"]["a1"]["metadata"]["owner"] == "a"


# ============================================================================ host routing


def _host(pair: Pair, index: str, slug: str) -> str:
    return f"{index}-{slug}.{pair.gw.domain}"


def test_host_routing_serves_the_keys_own_tenant(pair: Pair) -> None:
    gw, name = pair.gw, pair.a_only.name
    host = _host(pair, name, pair.a.slug)
    for operation in OPERATIONS:
        if operation == "delete":
            continue
        response = send(gw, operation, pair.a_key, host=host)
        assert response.status_code == 200, (operation, response.text)
    # The same index as the path form sees; the port in Host is ignored; case-insensitive.
    up = send(
        gw,
        "upsert",
        pair.a_key,
        host=host.upper() + ":443",
        body={"vectors": [{"id": "h1", "values": [1, 2, 3]}]},
    )
    assert up.status_code == 200, up.text
    assert "h1" in gw.fetch(name, pair.a_key, ["h1"])["vectors"]
    query = send(gw, "query", pair.a_key, host=host, body={"id": "h1", "topK": 1})
    assert query.json()["matches"][0]["id"] == "h1"
    deleted = send(gw, "delete", pair.a_key, host=host, body={"ids": ["h1"]})
    assert deleted.status_code == 200
    assert gw.fetch(name, pair.a_key, ["h1"])["vectors"] == {}


def test_forged_host_header_is_not_found_on_every_operation(pair: Pair) -> None:
    gw = pair.gw
    a_shared, b_shared = data_rows(pair.a_shared), data_rows(pair.b_shared)
    a_only = data_rows(pair.a_only)
    for operation in OPERATIONS:
        # A's key, B's index host (the index name exists in both tenants).
        forged = _host(pair, pair.shared, pair.b.slug)
        details = assert_error(send(gw, operation, pair.a_key, host=forged), 404, "not_found")
        assert details == {"index": f"{pair.shared}-{pair.b.slug}"}
        # B's key, the host of an index that only A has.
        assert_error(
            send(gw, operation, pair.b_key, host=_host(pair, pair.a_only.name, pair.a.slug)),
            404,
            "not_found",
        )
        # B's key on its own slug, with A's index name: B has no such index.
        assert_error(
            send(gw, operation, pair.b_key, host=_host(pair, pair.a_only.name, pair.b.slug)),
            404,
            "not_found",
        )
        # Not under the gateway's domain at all.
        assert_error(
            send(gw, operation, pair.a_key, host=f"{pair.shared}-{pair.a.slug}.evil.test"),
            404,
            "not_found",
        )
    assert data_rows(pair.a_shared) == a_shared and data_rows(pair.b_shared) == b_shared
    assert data_rows(pair.a_only) == a_only


# ============================================================================ hostile strings

HOSTILE = [
    "x'); DROP TABLE namespace_stats; --",
    '" OR 1=1 --',
    "' OR ''='",
    "a'||(SELECT current_user)||'",
    "%s %(x)s {0} $1 ?",
    "\\'; \\\\",
    "ünïcødé ✓ 🙂 中文 \u202e",
    "a/b?c#d&e=f%00",
    "*",
    "_%",
    "   ",
]


def _token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def test_hostile_strings_are_plain_data(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    key, index = t.key(), t.index()
    name = index.name

    def ok(label: str, response: httpx.Response) -> Any:
        assert response.status_code == 200, (label, response.text)
        return response.json()

    base = f"/v1/indexes/{name}"
    for n, s in enumerate(HOSTILE):
        vec = [1, n + 1, 0]
        ok(
            "upsert",
            gateway.post(
                f"{base}/vectors/upsert",
                key,
                {
                    "vectors": [
                        {"id": s, "values": vec, "metadata": {s: s, "k": s, "n": n}},
                        {"id": f"other-{n}", "values": vec, "metadata": {"k": "other"}},
                    ],
                    "namespace": s,
                },
            ),
        )
        fetched = ok(
            "fetch",
            gateway.get(f"{base}/vectors/fetch", key, params={"ids": [s, "nope"], "namespace": s}),
        )
        assert list(fetched["vectors"]) == [s] and fetched["namespace"] == s
        assert fetched["vectors"][s]["metadata"] == {s: s, "k": s, "n": n}
        for flt in ({s: s}, {"k": {"$in": [s, "zzz"]}}, {"k": s, s: {"$exists": True}}):
            body = ok(
                "query",
                gateway.post(
                    f"{base}/query", key, {"vector": vec, "topK": 10, "namespace": s, "filter": flt}
                ),
            )
            assert [m["id"] for m in body["matches"]] == [s], flt
            stats = ok("stats", gateway.post(f"{base}/describe_index_stats", key, {"filter": flt}))
            assert stats["namespaces"] == {s: {"vectorCount": 1}}, flt
        body = ok(
            "query-ne",
            gateway.post(
                f"{base}/query",
                key,
                {"vector": vec, "topK": 10, "namespace": s, "filter": {"k": {"$ne": s}}},
            ),
        )
        assert [m["id"] for m in body["matches"]] == [f"other-{n}"]
        ok("query-id", gateway.post(f"{base}/query", key, {"id": s, "topK": 1, "namespace": s}))
        listed = ok(
            "list", gateway.get(f"{base}/vectors/list", key, params={"namespace": s, "prefix": s})
        )
        assert [v["id"] for v in listed["vectors"]] == [s]
        after = ok(
            "list-token",
            gateway.get(
                f"{base}/vectors/list", key, params={"namespace": s, "paginationToken": _token(s)}
            ),
        )
        after_ids = [v["id"] for v in after["vectors"]]
        if index.engine == "pgvector":
            assert after_ids == sorted(i for i in (s, f"other-{n}") if i > s)
        else:  # Qdrant lists in point order: the token is a position in it, never the data
            assert s not in after_ids and set(after_ids) <= {f"other-{n}"}
        ok(
            "update",
            gateway.post(
                f"{base}/vectors/update",
                key,
                {"id": s, "namespace": s, "setMetadata": {s: "changed"}},
            ),
        )
        assert gateway.fetch(name, key, [s], s)["vectors"][s]["metadata"][s] == "changed"
        ok(
            "delete-filter",
            gateway.post(f"{base}/vectors/delete", key, {"namespace": s, "filter": {s: "changed"}}),
        )
        assert gateway.ids(name, key, s) == [f"other-{n}"]
        ok(
            "delete-ids",
            gateway.post(f"{base}/vectors/delete", key, {"namespace": s, "ids": [s, f"other-{n}"]}),
        )
        assert gateway.ids(name, key, s) == []
        # As an index name in the path, and as a key and Host: not found / not valid.
        for operation in OPERATIONS:
            assert_error(send(gateway, operation, key, index=s), 404, "not_found")
        assert_error(send(gateway, "query", key, host=f"x{s}x.{gateway.domain}"), 404, "not_found")
        assert_error(
            gateway.post(f"{base}/query", f"vpk_{s}x", {"vector": vec}), 401, "invalid_credentials"
        )
        # As a raw paginationToken: a cursor that decodes to some id, or invalid_cursor.
        raw = gateway.get(f"{base}/vectors/list", key, params={"paginationToken": s})
        if raw.status_code != 200:
            assert_error(raw, 400, "invalid_cursor")

    # The table and the stats are intact and hold exactly what is left.
    assert data_rows(index) == {}
    gateway.upsert(name, key, [{"id": "last", "values": [1, 2, 3]}])
    assert gateway.stats(name, key)["totalVectorCount"] == 1
    assert set(data_rows(index)) == {("", "last")}


def test_nul_characters_are_refused_where_checked(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    key, name = t.key(), t.index().name
    base = f"/v1/indexes/{name}"
    nul = "a\x00b"
    assert_error(
        gateway.post(
            f"{base}/vectors/upsert", key, {"vectors": [{"id": nul, "values": [1, 2, 3]}]}
        ),
        400,
        "id_too_long",
    )
    assert_error(
        gateway.post(
            f"{base}/vectors/upsert",
            key,
            {"vectors": [{"id": "x", "values": [1, 2, 3]}], "namespace": nul},
        ),
        400,
        "validation_error",
    )
    assert_error(gateway.get(f"{base}/vectors/fetch", key, params={"ids": nul}), 400, "id_too_long")
    assert_error(
        gateway.get(f"{base}/vectors/fetch", key, params={"ids": "x", "namespace": nul}),
        400,
        "validation_error",
    )
    assert_error(
        gateway.get(f"{base}/vectors/list", key, params={"namespace": nul}), 400, "validation_error"
    )
    assert_error(gateway.post(f"{base}/query", key, {"id": nul, "topK": 1}), 400, "id_too_long")
    for flt in ({nul: "x"}, {"k": nul}, {"k": {"$in": [nul]}}):
        assert_error(
            gateway.post(f"{base}/query", key, {"vector": [1, 2, 3], "filter": flt}),
            400,
            "invalid_filter",
        )
        assert_error(
            gateway.post(f"{base}/vectors/delete", key, {"filter": flt}), 400, "invalid_filter"
        )
    assert_error(gateway.post(f"{base}/vectors/delete", key, {"ids": [nul]}), 400, "id_too_long")
    assert_error(
        gateway.post(f"{base}/vectors/update", key, {"id": nul, "values": [1, 2, 3]}),
        400,
        "id_too_long",
    )
    # A lone surrogate is not valid JSON text.
    raw = b'{"vectors": [{"id": "\\ud800", "values": [1, 2, 3]}]}'
    assert_error(
        gateway.request(
            "POST",
            f"{base}/vectors/upsert",
            key,
            content=raw,
            headers={"Content-Type": "application/json"},
        ),
        400,
        "malformed_json",
    )


@pytest.mark.parametrize(
    "record",
    [
        {"id": "m", "values": [1, 2, 3], "metadata": {"k": "a\x00b"}},
        {"id": "m", "values": [1, 2, 3], "metadata": {"a\x00b": "v"}},
        {"id": "m", "values": [1, 2, 3], "metadata": {"k": ["ok", "a\x00"]}},
        {"id": "m", "values": [1, 2, 3], "text": "a\x00b"},
    ],
    ids=["value", "key", "list-item", "text"],
)
def test_nul_in_record_content_is_a_400(
    gateway: Gateway, platform: Platform, record: dict[str, Any]
) -> None:
    t = platform.tenant()
    key, name = t.key(), t.index(text_field=True).name
    response = gateway.post(f"/v1/indexes/{name}/vectors/upsert", key, {"vectors": [record]})
    assert 400 <= response.status_code < 500, response.text
    update = gateway.post(
        f"/v1/indexes/{name}/vectors/update", key, {"id": "m", "setMetadata": {"k": "a\x00b"}}
    )
    assert 400 <= update.status_code < 500, update.text


@pytest.mark.parametrize("param", ["prefix", "paginationToken"])
def test_nul_in_list_parameters_is_a_400(gateway: Gateway, platform: Platform, param: str) -> None:
    t = platform.tenant()
    key, name = t.key(), t.index().name
    value = "a\x00" if param == "prefix" else _token("a\x00")
    response = gateway.get(f"/v1/indexes/{name}/vectors/list", key, params={param: value})
    assert 400 <= response.status_code < 500, response.text


def test_nul_in_index_name_is_not_found(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    key, name = t.key(), t.index().name
    for operation in OPERATIONS:
        assert_error(send(gateway, operation, key, index=name + "\x00"), 404, "not_found")


# ============================================================================ scopes


def test_scopes(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    index = t.index()
    full = t.key()
    gateway.upsert(index.name, full, RECORDS)
    read_only = t.key(scopes=[Scope.READ])
    write_only = t.key(scopes=[Scope.WRITE])
    admin_only = t.key(scopes=[Scope.ADMIN])
    bodies = {**BODIES, "delete": {"ids": ["a2"]}}
    reads = {"query", "fetch", "list", "describe_index_stats"}
    for operation in OPERATIONS:
        needed = "read" if operation in reads else "write"
        for key, scopes, allowed in (
            (read_only, ["read"], needed == "read"),
            (write_only, ["write"], needed == "write"),
            (admin_only, ["admin"], False),
        ):
            response = send(gateway, operation, key, index=index.name, body=bodies[operation])
            if allowed:
                assert response.status_code == 200, (operation, scopes, response.text)
            else:
                details = assert_error(response, 403, "insufficient_scope")
                assert details == {"required_scope": needed, "scopes": scopes}
    # What the write-only key did: upsert a1 (evil), update a1, delete a2.
    rows = data_rows(index)
    assert set(rows) == {("", "a1")} and rows[("", "a1")] == {"owner": "evil"}


def test_index_restriction(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    allowed, other = t.index(), t.index()
    full = t.key()
    gateway.upsert(other.name, full, RECORDS)
    key = t.key(index_names=[allowed.name])
    for operation in OPERATIONS:
        assert send(gateway, operation, key, index=allowed.name).status_code == 200, operation
        details = assert_error(
            send(gateway, operation, key, index=other.name), 403, "index_forbidden"
        )
        assert details == {"index": other.name}
    assert set(data_rows(other)) == {("", "a1"), ("", "a2")}
    # A name outside the restriction gets the same 403 whether it exists or not, so the key
    # cannot probe which index names its tenant has.
    missing = assert_error(
        send(gateway, "query", key, index=unique("nope")), 403, "index_forbidden"
    )
    assert set(missing) == {"index"}


def test_namespace_restriction(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    index = t.index()
    full = t.key()
    for ns in ("", "ns1", "ns2"):
        gateway.upsert(index.name, full, RECORDS, namespace=ns)
    key = t.key(namespaces=["ns1"])
    namespaced: dict[str, Any] = {
        "upsert": {"vectors": [{"id": "n", "values": [1, 2, 3]}], "namespace": "NS"},
        "query": {"vector": [1, 1, 1], "topK": 5, "namespace": "NS"},
        "fetch": {"ids": "a1", "namespace": "NS"},
        "update": {"id": "a1", "setMetadata": {"x": 1}, "namespace": "NS"},
        "delete": {"ids": ["a2"], "namespace": "NS"},
        "list": {"namespace": "NS"},
    }
    for operation, template in namespaced.items():
        for ns, status in (("ns1", 200), ("ns2", 403), ("", 403)):
            body = {k: (ns if v == "NS" else v) for k, v in template.items()}
            response = send(gateway, operation, key, index=index.name, body=body)
            if status == 200:
                assert response.status_code == 200, (operation, response.text)
            else:
                assert assert_error(response, 403, "namespace_forbidden") == {"namespace": ns}
        # Without a namespace: the default one, which this key may not use.
        body = {k: v for k, v in template.items() if k != "namespace"}
        response = send(gateway, operation, key, index=index.name, body=body)
        assert_error(response, 403, "namespace_forbidden")
    stats = gateway.stats(index.name, key)
    assert stats["namespaces"] == {"ns1": {"vectorCount": 2}}  # "n" added, "a2" deleted
    assert stats["totalVectorCount"] == 2
    assert gateway.stats(index.name, key, filter={"owner": "a"})["namespaces"] == {
        "ns1": {"vectorCount": 1}
    }
    assert gateway.stats(index.name, full)["namespaces"] == {
        "": {"vectorCount": 2},
        "ns1": {"vectorCount": 2},
        "ns2": {"vectorCount": 2},
    }


# ============================================================================ row filter


@pytest.fixture
def red(gateway: Gateway, platform: Platform) -> tuple[TenantCtx, Index, str, str]:
    """A tenant whose index holds red and blue records; a full key and a red-only key."""
    t = platform.tenant()
    index = t.index()
    full = t.key()
    gateway.upsert(
        index.name,
        full,
        [
            {"id": f"{team}{i}", "values": [1, i, 0], "metadata": {"team": team, "i": i}}
            for team in ("red", "blue")
            for i in range(3)
        ],
    )
    return t, index, full, t.key(row_filter={"team": "red"}, id_prefix="red")


def test_row_filter_limits_reads(gateway: Gateway, red: tuple[TenantCtx, Index, str, str]) -> None:
    _, index, _full, key = red
    name = index.name
    matches = gateway.query(name, key, vector=[1, 1, 0], topK=10, includeMetadata=True)["matches"]
    assert sorted(m["id"] for m in matches) == ["red0", "red1", "red2"]
    blue_filter = gateway.query(name, key, vector=[1, 1, 0], topK=10, filter={"team": "blue"})
    assert blue_filter["matches"] == []
    assert gateway.fetch(name, key, ["red0", "blue0"])["vectors"].keys() == {"red0"}
    assert gateway.ids(name, key) == ["red0", "red1", "red2"]
    assert gateway.stats(name, key)["totalVectorCount"] == 3
    assert gateway.stats(name, key, filter={"i": {"$gte": 1}})["totalVectorCount"] == 2
    assert_error(
        gateway.post(f"/v1/indexes/{name}/query", key, {"id": "blue0", "topK": 1}), 404, "not_found"
    )


def test_row_filter_limits_writes(gateway: Gateway, red: tuple[TenantCtx, Index, str, str]) -> None:
    _, index, full, key = red
    name = index.name
    base = f"/v1/indexes/{name}"
    details = assert_error(
        gateway.post(
            f"{base}/vectors/upsert",
            key,
            {
                "vectors": [
                    {"id": "red-new", "values": [1, 1, 1], "metadata": {"team": "red"}},
                    {"id": "red-blue", "values": [1, 1, 1], "metadata": {"team": "blue"}},
                ]
            },
        ),
        403,
        "row_filter_violation",
    )
    assert details == {"index": 1, "row_filter": {"team": "red"}}
    assert_error(
        gateway.post(
            f"{base}/vectors/upsert", key, {"vectors": [{"id": "red-bare", "values": [1, 1, 1]}]}
        ),
        403,
        "row_filter_violation",
    )
    # Ids outside the key's id_prefix are not the key's to write, whatever exists there.
    for ids in (["new-red"], ["blue0"], ["red-ok", "x"]):
        details = assert_error(
            gateway.post(f"{base}/vectors/upsert", key, {"vectors": [
                {"id": i, "values": [1, 1, 1], "metadata": {"team": "red"}} for i in ids
            ]}),
            403,
            "id_forbidden",
        )  # fmt: skip
        assert details["id_prefix"] == "red"
    gateway.upsert(name, key, [{"id": "red-new", "values": [1, 1, 1], "metadata": {"team": "red"}}])

    # An update that would take a record out of the filter is refused and changes nothing.
    assert_error(
        gateway.post(
            f"{base}/vectors/update",
            key,
            {"id": "red0", "setMetadata": {"team": "blue"}, "values": [9, 9, 9]},
        ),
        403,
        "row_filter_violation",
    )
    red0 = gateway.fetch(name, full, ["red0"])["vectors"]["red0"]
    assert red0["metadata"] == {"team": "red", "i": 0} and red0["values"] == [1.0, 0.0, 0.0]
    # A record outside the prefix cannot be updated (403 whether or not it exists).
    for record_id in ("blue0", "blue9"):
        assert_error(
            gateway.post(f"{base}/vectors/update", key, {"id": record_id, "setMetadata": {"x": 1}}),
            403,
            "id_forbidden",
        )
    gateway.op(name, "update", key, {"id": "red0", "setMetadata": {"x": 1}})
    assert gateway.fetch(name, full, ["red0"])["vectors"]["red0"]["metadata"]["x"] == 1

    # Deletes affect matching rows only.
    assert_error(
        gateway.post(f"{base}/vectors/delete", key, {"ids": ["red1", "blue1"]}), 403, "id_forbidden"
    )
    gateway.op(name, "delete", key, {"ids": ["red1", "red-missing"]})
    gateway.op(name, "delete", key, {"filter": {"team": "blue"}})
    assert sorted(gateway.ids(name, full)) == ["blue0", "blue1", "blue2", "red-new", "red0", "red2"]
    gateway.op(name, "delete", key, {"deleteAll": True})
    assert sorted(i for _, i in data_rows(index)) == ["blue0", "blue1", "blue2"]
    assert gateway.stats(name, full)["totalVectorCount"] == 3


def test_row_filter_key_cannot_overwrite_records_it_cannot_see(
    gateway: Gateway, red: tuple[TenantCtx, Index, str, str]
) -> None:
    _, index, full, key = red
    response = gateway.post(
        f"/v1/indexes/{index.name}/vectors/upsert",
        key,
        {"vectors": [{"id": "blue0", "values": [7, 7, 7], "metadata": {"team": "red"}}]},
    )
    blue0 = gateway.fetch(index.name, full, ["blue0"])["vectors"]["blue0"]
    assert blue0["metadata"] == {"team": "blue", "i": 0}, response.text
    assert response.status_code == 403


# ============================================================================ revocation


def _until(
    gw: Gateway,
    index: str,
    key: str | None,
    status: int,
    code: str | None = None,
    timeout: float = 5.0,
) -> float:
    def probe() -> httpx.Response:
        return gw.post(f"/v1/indexes/{index}/query", key, {"vector": [1, 2, 3], "topK": 1})

    def done(response: httpx.Response) -> bool:
        if response.status_code != status:
            return False
        return code is None or response.json()["error"]["code"] == code

    response, elapsed = poll(probe, done, timeout)
    if code is not None:
        assert_error(response, status, code)
    return elapsed


def _timed(
    change: Callable[[], object],
    gw: Gateway,
    index: str,
    key: str,
    status: int,
    code: str | None = None,
) -> float:
    """Seconds from the start of `change()` (a committed control-plane write) until the
    gateway answers `status`."""
    started = time.perf_counter()
    change()
    _until(gw, index, key, status, code)
    return time.perf_counter() - started


def test_revoked_key_is_refused_within_a_second(
    gateway: Gateway, platform: Platform, record_property: Callable[[str, object], None]
) -> None:
    t = platform.tenant()
    name = t.index().name
    key = t.key()
    other = t.key()
    assert _until(gateway, name, key, 200) < 1.0  # warm: the key is cached
    api_key = t.keys[key]
    latency = _timed(
        lambda: tenant_services.api_key_revoke(actor=t.actor, tenant=t.tenant, api_key=api_key),
        gateway,
        name,
        key,
        401,
        "api_key_revoked",
    )
    record_property("revocation_latency_s", round(latency, 4))
    print(f"\nrevocation latency: {latency * 1000:.1f} ms")
    assert latency < 1.0
    assert _until(gateway, name, other, 200) < 1.0  # the tenant's other keys still work


def test_suspension_and_reactivation_within_a_second(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    name = t.index().name
    key = t.key()
    _until(gateway, name, key, 200)
    suspended = _timed(
        lambda: tenant_services.tenant_suspend(actor=t.actor, tenant=t.tenant, reason="test"),
        gateway,
        name,
        key,
        403,
        "tenant_suspended",
    )
    assert suspended < 1.0
    for operation in OPERATIONS:
        assert_error(send(gateway, operation, key, index=name), 403, "tenant_suspended")
    t.tenant.refresh_from_db()
    restored = _timed(
        lambda: tenant_services.tenant_reactivate(actor=t.actor, tenant=t.tenant),
        gateway,
        name,
        key,
        200,
    )
    assert restored < 1.0


def test_deleted_tenant_keys_are_revoked(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    name = t.index().name
    key = t.key()
    _until(gateway, name, key, 200)
    assert (
        _timed(
            lambda: tenant_services.tenant_delete(actor=t.actor, tenant=t.tenant),
            gateway,
            name,
            key,
            401,
            "api_key_revoked",
        )
        < 1.0
    )


def test_rotated_key_works_for_its_grace_period_only(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    name = t.index().name
    old = t.key()
    _until(gateway, name, old, 200)
    _, new = tenant_services.api_key_rotate(
        actor=t.actor, tenant=t.tenant, api_key=t.keys[old], grace_seconds=1
    )
    assert gateway.post(f"/v1/indexes/{name}/query", old, {"vector": [1, 2, 3]}).status_code == 200
    assert _until(gateway, name, new, 200) < 1.0
    assert _until(gateway, name, old, 401, "api_key_revoked", timeout=3.0) < 3.0
    assert _until(gateway, name, new, 200) < 1.0


def test_index_deletion_and_creation_are_seen_within_a_second(
    gateway: Gateway, platform: Platform
) -> None:
    t = platform.tenant()
    key = t.key()
    index = t.index()
    gateway.upsert(index.name, key, RECORDS)
    assert _timed(lambda: t.delete_index(index), gateway, index.name, key, 404, "not_found") < 1.0
    # A name asked for before it exists (a cached miss) is served once created.
    name = unique("fresh")
    assert_error(send(gateway, "query", key, index=name), 404, "not_found")
    assert _timed(lambda: t.index(name), gateway, name, key, 200) < 1.0
    # Recreating a deleted name gives an empty index.
    again = t.index(index.name)
    assert _until(gateway, again.name, key, 200) < 1.0
    assert gateway.stats(again.name, key)["totalVectorCount"] == 0


def test_expired_keys(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    name = t.index().name
    key = t.key(expires_at=timezone.now() + timedelta(hours=1))
    _until(gateway, name, key, 200)
    with tenant_scope(t.id):
        ApiKey.objects.filter(pk=t.keys[key].pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    assert _until(gateway, name, key, 401, "api_key_expired") < 1.0
    # A cached key also stops at its expiry time, with no change to tell the gateway.
    soon = t.key(expires_at=timezone.now() + timedelta(seconds=1))
    assert _until(gateway, name, soon, 200) < 0.5
    assert _until(gateway, name, soon, 401, "api_key_expired", timeout=3.0) < 3.0


CREDENTIALS: list[tuple[dict[str, str], str]] = [
    ({}, "unauthenticated"),
    ({"Api-Key": ""}, "unauthenticated"),
    ({"Authorization": "Basic abc"}, "unauthenticated"),
    ({"Authorization": "Bearer"}, "unauthenticated"),
    ({"Api-Key": "garbage"}, "invalid_credentials"),
    ({"Api-Key": "vpk_short_secret"}, "invalid_credentials"),
    ({"Api-Key": "vpp_abcdefghijkl_" + "x" * 43}, "invalid_credentials"),
    ({"Api-Key": "vpk_abcdefghijkl_" + "x" * 43}, "invalid_credentials"),
    ({"Api-Key": "vpk_abcdefghijkl_" + "x" * 300}, "invalid_credentials"),
    ({"Authorization": "Bearer vpk_abcdefghijkl_nope"}, "invalid_credentials"),
]


def test_missing_and_garbage_keys(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    name = t.index().name
    for operation in OPERATIONS:
        for headers, code in CREDENTIALS:
            response = send(gateway, operation, None, index=name, headers=dict(headers))
            assert_error(response, 401, code)


def test_right_prefix_wrong_secret_and_bearer_form(gateway: Gateway, platform: Platform) -> None:
    t = platform.tenant()
    name = t.index().name
    key = t.key()
    prefix = key.split("_")[1]
    wrong = f"vpk_{prefix}_{'A' * 43}"
    assert_error(
        gateway.post(f"/v1/indexes/{name}/query", wrong, {"vector": [1, 2, 3]}),
        401,
        "invalid_credentials",
    )
    bearer = gateway.post(
        f"/v1/indexes/{name}/query",
        None,
        {"vector": [1, 2, 3]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert bearer.status_code == 200, bearer.text


# ============================================================================ existence oracle


def test_a_row_bound_key_cannot_tell_foreign_ids_from_free_ones(
    gateway: Gateway, platform: Platform
) -> None:
    """Issue 8 §3: a key bound to an end user's rows is handed to that end user. Whatever it
    sends, the answer for an id that exists outside its rows (another end user's) is the
    answer for an id that exists nowhere, on every operation; and nothing of the other end
    user's changes."""
    t = platform.tenant()
    index = t.index()
    admin = t.key()
    gateway.upsert(index.name, admin, [
        {"id": "u1#a", "values": [1, 0, 0], "metadata": {"user": "u1"}},
        {"id": "u2#secret", "values": [0, 1, 0], "metadata": {"user": "u2", "pin": 1234}},
        {"id": "u2#b", "values": [0, 0, 1], "metadata": {"user": "u2"}},
    ])  # fmt: skip
    u1 = t.key(row_filter={"user": "u1"}, id_prefix="u1#")
    before = data_rows(index)
    base = f"/v1/indexes/{index.name}"
    foreign, free = "u2#secret", "u2#nothing"

    def answer(method: str, path: str, record_id: str, body: Any = None, params: Any = None
               ) -> tuple[int, str]:  # fmt: skip
        response = gateway.request(method, f"{base}/{path}", u1, body, params=params)
        assert response.status_code < 500, response.text
        return response.status_code, response.text.replace(record_id, "<ID>")

    cases: list[tuple[str, str, Callable[[str], Any], Callable[[str], Any]]] = [
        ("POST", "vectors/upsert",
         lambda i: {"vectors": [{"id": i, "values": [1, 1, 1], "metadata": {"user": "u1"}}]},
         lambda i: None),
        ("POST", "vectors/update", lambda i: {"id": i, "setMetadata": {"user": "u1"}},
         lambda i: None),
        ("POST", "vectors/update", lambda i: {"id": i, "values": [5, 5, 5]}, lambda i: None),
        ("POST", "vectors/delete", lambda i: {"ids": [i]}, lambda i: None),
        ("GET", "vectors/fetch", lambda i: None, lambda i: {"ids": [i]}),
        ("POST", "query", lambda i: {"id": i, "topK": 5}, lambda i: None),
        ("GET", "vectors/list", lambda i: None, lambda i: {"prefix": i}),
        ("POST", "describe_index_stats", lambda i: {"filter": {"user": {"$in": ["u1", i]}}},
         lambda i: None),
        ("POST", "query", lambda i: {"vector": [0, 1, 0], "topK": 5, "filter": {"user": i}},
         lambda i: None),
    ]  # fmt: skip
    for method, path, body, params in cases:
        seen = answer(method, path, foreign, body(foreign), params(foreign))
        unseen = answer(method, path, free, body(free), params(free))
        assert seen == unseen, (path, seen, unseen)
    # Deleting by filter reaches only the key's rows.
    gateway.op(index.name, "delete", u1, {"filter": {"user": "u2"}})
    after = data_rows(index)
    assert {k: v for k, v in after.items() if k[1].startswith("u2#")} == {
        k: v for k, v in before.items() if k[1].startswith("u2#")
    }
    # The end user's own writes work, inside its prefix.
    gateway.upsert(index.name, u1, [{"id": "u1#mine", "values": [1, 2, 3],
                                     "metadata": {"user": "u1"}}])  # fmt: skip
    assert gateway.fetch(index.name, u1, ["u1#mine", foreign])["vectors"].keys() == {"u1#mine"}
    assert gateway.ids(index.name, u1) == ["u1#a", "u1#mine"]


def test_a_write_key_bound_to_rows_needs_an_id_prefix(platform: Platform) -> None:
    t = platform.tenant()
    with pytest.raises(ApplicationError) as raised:
        t.key(row_filter={"user": "u1"})
    assert raised.value.details == {"field": "id_prefix"}
    t.key(row_filter={"user": "u1"}, scopes=["read"])  # a read key needs none
    t.key(row_filter={"user": "u1"}, id_prefix="u1#")


def test_a_legacy_row_bound_key_without_prefix_may_not_write_by_id(
    gateway: Gateway, platform: Platform
) -> None:
    """A key minted before id prefixes existed fails closed: no write by id at all."""
    t = platform.tenant()
    index = t.index()
    key = t.key(row_filter={"user": "u1"}, scopes=["read"])
    ApiKey.objects.unscoped().filter(pk=t.keys[key].pk).update(scopes=["read", "write"])
    base = f"/v1/indexes/{index.name}"

    def write() -> httpx.Response:
        return gateway.post(f"{base}/vectors/upsert", key, {"vectors": [
            {"id": "any", "values": [1, 2, 3], "metadata": {"user": "u1"}}]})  # fmt: skip

    response, _ = poll(
        write, lambda r: r.status_code == 403 and "id_prefix" in r.text, timeout=10
    )
    assert assert_error(response, 403, "id_forbidden") == {"id_prefix": ""}
    assert data_rows(index) == {}
