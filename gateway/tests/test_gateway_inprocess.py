"""The gateway's ASGI app in this process, through `httpx.ASGITransport` (no server
subprocess): every class of bad request answers its documented 4xx code (docs/ERRORS.md)
before any engine sees it, and a good request round-trips — the same app `granian` serves,
on the test databases (the registry reads keys, tenants and indexes from the control
database; the shared tier's data lives in the scratch data database).

Part of `make test-fast`. The same classes are driven at the real servers, on every engine,
by test_gateway_validation.py, test_api_generated_inputs.py and test_gateway_limits.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.tests.conftest import Platform, cosine, ensure_plans, gateway_control_url, unique
from gateway.tests.conftest import _control_db_name as control_db_name
from tenants.tests.factories import UserFactory
from vectorplane import config


@dataclass
class World:
    index: str
    key: str
    foreign_index: str
    read_key: str


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """One tenant with a 3-dimensional cosine index and a read/write key, a read-only key, and
    another tenant's index (committed: the app's registry reads them on its own connection)."""
    with django_db_blocker.unblock():
        ensure_plans()
        platform = Platform(
            operator=UserFactory(email=f"{unique('ops')}@example.test", is_staff=True)
        )
        mine, theirs = platform.tenant(), platform.tenant()
        index = mine.index(dimension=3, metric="cosine")
        foreign = theirs.index(dimension=3)
        yield World(
            index=index.name,
            key=mine.key(),
            foreign_index=foreign.name,
            read_key=mine.key(scopes=["read"]),
        )


def make_app(**env: str) -> Starlette:
    """The app on the test databases with a per-process rate limit (no Redis needed) and
    `env` set while it reads its settings; the environment is put back at once, so server
    processes started later inherit nothing of it. Its usage journal goes to a folder of its
    own (the state folder's is a running platform's, whose dead journals are not ours)."""
    settings = {
        "VECTORPLANE_GATEWAY_RATE_LIMIT": "local",
        "VECTORPLANE_USAGE_JOURNAL_DIR": tempfile.mkdtemp(prefix="vp-test-journal-"),
        **env,
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        return create_app(
            control_url=gateway_control_url(control_db_name()),
            data_url=config.gateway_data_database_url(),
        )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def app(world: World) -> Starlette:
    return make_app()

class InProcess:
    """Requests to the app on one event loop, its lifespan (pools, LISTEN) open throughout."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self._lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        )

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def gw(app: Starlette) -> Iterator[InProcess]:
    client = InProcess(app)
    try:
        yield client
    finally:
        client.close()


def call(
    gw: InProcess, world: World, path: str, body: Any = None, *, key: str | None = None,
    raw: bytes | None = None, method: str = "POST", headers: dict[str, str] | None = None,
) -> httpx.Response:  # fmt: skip
    sent = {"Api-Key": world.key if key is None else key, **(headers or {})}
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    if raw is not None:
        sent.setdefault("Content-Type", "application/json")
    return gw.request(method, f"/v1/indexes/{world.index}/{path}", content=raw, headers=sent)


def code_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) >= {"error"} and isinstance(body["error"]["message"], str), body
    return response.status_code, body["error"]["code"]


def test_a_good_request_round_trips(gw: InProcess, world: World) -> None:
    written = call(gw, world, "vectors/upsert", {"vectors": [
        {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"genre": "jazz"}},
        {"id": "b", "values": [0.0, 1.0, 0.0], "metadata": {"genre": "rock"}},
    ]})  # fmt: skip
    assert written.status_code == 200, written.text
    assert written.json() == {"upsertedCount": 2}
    found = call(gw, world, "query", {"vector": [1.0, 0.1, 0.0], "topK": 2,
                                      "filter": {"genre": {"$eq": "jazz"}}})  # fmt: skip
    assert found.status_code == 200, found.text
    assert [m["id"] for m in found.json()["matches"]] == ["a"]
    fetched = call(gw, world, "vectors/fetch?ids=a", method="GET")
    assert fetched.json()["vectors"]["a"]["metadata"] == {"genre": "jazz"}


V = [1.0, 0.0, 0.0]

# (path, body or raw bytes, status, code): one row per class of bad request.
BAD: list[tuple[str, Any, int, str]] = [
    ("query", b"{not json", 400, "malformed_json"),
    ("query", b'{"vector": [NaN, 0, 0], "topK": 1}', 400, "malformed_json"),
    ("query", b'{"vector": [Infinity, 0, 0], "topK": 1}', 400, "malformed_json"),
    ("query", b'{"vector": [1e999, 0, 0], "topK": 1}', 400, "malformed_json"),
    ("query", b'{"vector": [1, 0, 0], "topK": 1, "id": "\\ud800"}', 400, "malformed_json"),
    ("query", b"[]", 400, "validation_error"),
    ("query", {"vector": V, "topK": "5"}, 400, "invalid_top_k"),
    ("query", {"vector": V, "topK": True}, 400, "invalid_top_k"),
    ("query", {"vector": "1,0,0", "topK": 1}, 400, "validation_error"),
    ("query", {"vector": V, "topK": 1, "includeValuez": True}, 400, "unknown_field"),
    ("query", {"vector": V, "topK": 0}, 400, "invalid_top_k"),
    ("query", {"vector": V, "topK": 10_001}, 400, "invalid_top_k"),
    ("query", {"vector": [1.0, 0.0], "topK": 1}, 400, "dimension_mismatch"),
    ("query", {"vector": [1e39, 0.0, 0.0], "topK": 1}, 400, "invalid_value"),
    ("query", {"vector": V, "topK": 1, "filter": {"a": {"$regex": "x"}}}, 400, "invalid_filter"),
    ("query", {"vector": V, "topK": 1, "filter": {"a": {"$in": "x"}}}, 400, "invalid_filter"),
    ("query", {"vector": V, "topK": 1, "filter": {"$and": {}}}, 400, "invalid_filter"),
    ("query", {"vector": V, "topK": 1, "namespace": "a\x00b"}, 400, "validation_error"),
    ("vectors/upsert", {"vectors": [{"id": "a\x00", "values": V}]}, 400, "id_too_long"),
    ("vectors/upsert", {"vectors": [{"id": "x" * 513, "values": V}]}, 400, "id_too_long"),
    ("vectors/upsert", {"vectors": [{"id": "a", "values": [0.0, 0.0, 0.0]}]}, 400,
     "invalid_value"),
    ("vectors/upsert", {"vectors": [{"id": "a", "values": V, "metadata": {"m": {"x": 1}}}]},
     400, "invalid_metadata"),
    ("vectors/upsert", {"vectors": [{"id": "a", "values": V, "metadata": {"m": "x" * 41_000}}]},
     400, "metadata_too_large"),
    ("vectors/upsert", {"vectors": [{"id": f"v{i}", "values": V} for i in range(1001)]}, 400,
     "batch_too_large"),
    ("vectors/upsert", {"vectors": [{"id": "a", "values": V,
                                     "sparseValues": {"indices": [1, 1], "values": [1, 2]}}]},
     400, "validation_error"),
    ("vectors/upsert", {"vectors": [{"id": "a", "values": V,
                                     "sparseValues": {"indices": list(range(16_001)),
                                                      "values": [1.0] * 16_001}}]},
     400, "sparse_too_large"),
    ("vectors/delete", {"ids": ["a"], "deleteAll": True}, 400, "validation_error"),
    ("vectors/update", {"id": "a", "values": [1e39, 0, 0]}, 400, "invalid_value"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "code"), BAD, ids=[
    f"{i}-{row[3]}" for i, row in enumerate(BAD)
])  # fmt: skip
def test_each_class_of_bad_request_is_its_documented_4xx(
    gw: InProcess, world: World, path: str, body: Any, status: int, code: str
) -> None:
    raw = body if isinstance(body, bytes) else None
    response = call(gw, world, path, None if raw is not None else body, raw=raw)
    assert code_of(response) == (status, code), response.text


def test_oversize_bodies_are_refused_before_parsing(gw: InProcess, world: World) -> None:
    huge = b'{"vectors": [' + b" " * (2 * 1024 * 1024) + b"]}"
    assert code_of(call(gw, world, "vectors/upsert", raw=huge)) == (400, "request_too_large")


def test_a_body_that_is_not_json_by_its_media_type(gw: InProcess, world: World) -> None:
    response = call(gw, world, "query", raw=b"topK=1", headers={"Content-Type": "text/plain"})
    assert response.status_code in (400, 415)
    assert response.json()["error"]["code"] in ("unsupported_media_type", "malformed_json")


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        ("", 401, "unauthenticated"),
        ("vp_nope_nope", 401, "invalid_credentials"),
        ("x\x7f", 401, "invalid_credentials"),
    ],
)
def test_credentials(gw: InProcess, world: World, key: str, status: int, code: str) -> None:
    headers = {} if key == "" else {"Api-Key": key}
    response = gw.request("POST", f"/v1/indexes/{world.index}/query",
                          json={"vector": V, "topK": 1}, headers=headers)  # fmt: skip
    assert code_of(response) == (status, code)


def test_a_read_key_cannot_write(gw: InProcess, world: World) -> None:
    response = call(gw, world, "vectors/upsert", {"vectors": [{"id": "r", "values": V}]},
                    key=world.read_key)  # fmt: skip
    assert code_of(response) == (403, "insufficient_scope")


def test_another_tenants_index_is_not_found(gw: InProcess, world: World) -> None:
    response = gw.request(
        "POST", f"/v1/indexes/{world.foreign_index}/query",
        json={"vector": V, "topK": 1}, headers={"Api-Key": world.key},
    )  # fmt: skip
    assert code_of(response) == (404, "not_found")
    missing = gw.request("POST", "/v1/indexes/no-such-index/query",
                         json={"vector": V, "topK": 1}, headers={"Api-Key": world.key})  # fmt: skip
    assert code_of(missing) == (404, "not_found")


def test_routes_and_methods(gw: InProcess, world: World) -> None:
    assert code_of(gw.request("GET", "/v2/nothing")) == (404, "not_found")
    assert code_of(call(gw, world, "query", method="DELETE")) == (405, "method_not_allowed")
    assert gw.request("GET", "/healthz").status_code == 200
    assert gw.request("GET", "/readyz").status_code == 200



CONSOLE = "http://console.test"


@pytest.fixture(scope="module")
def cors_gw(world: World) -> Iterator[InProcess]:
    """The app with the console's origin allowed (`VECTORPLANE_GATEWAY_CORS_ORIGINS`)."""
    app = make_app(VECTORPLANE_GATEWAY_CORS_ORIGINS=CONSOLE + "/")
    client = InProcess(app)
    try:
        yield client
    finally:
        client.close()


def test_the_consoles_origin_may_call_the_gateway_from_a_browser(
    cors_gw: InProcess, world: World
) -> None:
    path = f"/v1/indexes/{world.index}/query"
    preflight = cors_gw.request("OPTIONS", path, headers={
        "Origin": CONSOLE, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "api-key, content-type",
    })  # fmt: skip
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == CONSOLE
    assert "api-key" in preflight.headers["access-control-allow-headers"]
    assert "POST" in preflight.headers["access-control-allow-methods"]
    answer = cors_gw.request("POST", path, json={"vector": V, "topK": 1},
                             headers={"Origin": CONSOLE, "Api-Key": world.key})  # fmt: skip
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == CONSOLE
    refused = cors_gw.request("POST", path, json={"vector": V, "topK": 1},
                              headers={"Origin": CONSOLE, "Api-Key": "vpk_nope_nope"})  # fmt: skip
    assert refused.status_code == 401  # errors carry the header too, so the console shows them
    assert refused.headers["access-control-allow-origin"] == CONSOLE


def test_another_origin_gets_no_cors_answer(cors_gw: InProcess, world: World) -> None:
    path = f"/v1/indexes/{world.index}/query"
    preflight = cors_gw.request("OPTIONS", path, headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST",
    })  # fmt: skip
    assert code_of(preflight) == (403, "cors_origin_forbidden")
    evil = {"Origin": "http://evil.test", "Api-Key": world.key}
    answer = cors_gw.request("POST", path, json={"vector": V, "topK": 1}, headers=evil)
    assert answer.status_code == 200  # a server may call; a browser withholds the answer
    assert "access-control-allow-origin" not in answer.headers
    plain = cors_gw.request("POST", path, json={"vector": V, "topK": 1},
                            headers={"Api-Key": world.key})  # fmt: skip
    assert "access-control-allow-origin" not in plain.headers


def test_answered_requests_are_timed_per_index_and_flushed_with_the_usage(
    gw: InProcess, world: World, django_db_blocker: Any
) -> None:
    from provisioning.models import Index, LatencyRecord
    from tenants.scoping import tenant_scope

    gateway = gw.app.state.gateway

    def timed() -> int:
        gw.loop.run_until_complete(gateway.meter.flush())
        with django_db_blocker.unblock():
            index = Index.objects.unscoped().get(name=world.index)
            with tenant_scope(index.tenant_id):
                rows = LatencyRecord.objects.filter(index_id=index.id)
                return sum(rows.values_list("requests", flat=True))

    before = timed()  # what earlier tests left, flushed
    for _ in range(5):
        ok = call(gw, world, "query", {"vector": V, "topK": 1})
        assert ok.status_code == 200
    call(gw, world, "query", {"vector": V, "topK": 0})  # refused: not timed
    assert timed() - before == 5


def test_refused_requests_are_counted_by_code_for_the_keys_tenant(
    gw: InProcess, world: World, django_db_blocker: Any
) -> None:
    """Errors by code (the console's overview): a refused request of an authenticated key is
    counted for its tenant, with the index when one was resolved; an unauthenticated one, or a
    key's probe of another tenant's index, writes into nobody else's counts."""
    from provisioning.models import ErrorRecord, Index
    from tenants.scoping import tenant_scope

    gateway = gw.app.state.gateway

    def counts(index_name: str) -> dict[tuple[str, str, int], int]:
        gw.loop.run_until_complete(gateway.meter.flush())
        with django_db_blocker.unblock():
            tenant_id = Index.objects.unscoped().get(name=index_name).tenant_id
            with tenant_scope(tenant_id):
                rows = ErrorRecord.objects.values_list("index_name", "code", "status", "requests")
                return {(i, c, s): n for i, c, s, n in rows}

    mine, theirs = counts(world.index), counts(world.foreign_index)
    for _ in range(3):
        assert code_of(call(gw, world, "query", {"vector": V, "topK": 0}))[0] == 400
    assert call(gw, world, "query", {"vector": V, "topK": 1}).status_code == 200  # not an error
    read_only = call(gw, world, "vectors/upsert", {"vectors": [{"id": "x", "values": V}]},
                     key=world.read_key)  # fmt: skip
    assert read_only.status_code == 403
    probe = gw.request("POST", f"/v1/indexes/{world.foreign_index}/query",
                       json={"vector": V, "topK": 1}, headers={"Api-Key": world.key})  # fmt: skip
    assert code_of(probe) == (404, "not_found")
    unknown_key = call(gw, world, "query", {"vector": V, "topK": 1}, key="vpk_nope_nope")
    assert unknown_key.status_code == 401
    after, theirs_after = counts(world.index), counts(world.foreign_index)
    added = {k: n - mine.get(k, 0) for k, n in after.items() if n != mine.get(k, 0)}
    topk_code = code_of(call(gw, world, "query", {"vector": V, "topK": 0}))[1]
    scope_code = read_only.json()["error"]["code"]
    assert added == {
        (world.index, topk_code, 400): 3,
        ("", scope_code, 403): 1,  # the scope is checked before the index is resolved
        ("", "not_found", 404): 1,  # the other tenant's index: counted as the caller's miss
    }
    assert theirs_after == theirs  # nothing written into the other tenant's counts


def test_an_unpaid_tenant_writes_nothing_and_reads_everything(
    gw: InProcess, world: World, django_db_blocker: Any
) -> None:
    """`payment_required` (billing, past the grace period): writes answer 402
    `payment_required`, reads still answer; the gateway learns the state at commit (LISTEN)
    and writes resume as soon as it is `current` again."""
    import time

    from provisioning.models import Index
    from tenants import services as tenant_services
    from tenants.actors import Actor
    from tenants.models import PaymentState, Tenant

    def set_state(state: str) -> None:
        with django_db_blocker.unblock():
            tenant_id = Index.objects.unscoped().get(name=world.index).tenant_id
            tenant = Tenant.objects.get(pk=tenant_id)
            tenant_services.tenant_set_payment_state(actor=Actor.system(), tenant=tenant,
                                                     state=state, reason="test")  # fmt: skip

    def until(predicate: Any) -> httpx.Response:
        deadline = time.monotonic() + 5
        while True:
            answer = call(gw, world, "vectors/upsert", {"vectors": [{"id": "paid", "values": V}]})
            if predicate(answer) or time.monotonic() > deadline:
                return answer
            time.sleep(0.05)

    assert until(lambda r: r.status_code == 200).status_code == 200
    set_state(PaymentState.PAYMENT_REQUIRED)
    try:
        refused = until(lambda r: r.status_code == 402)
        assert code_of(refused) == (402, "payment_required")
        assert call(gw, world, "query", {"vector": V, "topK": 1}).status_code == 200
        # A read-only key's write is still its missing scope first.
        read_only = call(gw, world, "vectors/upsert", {"vectors": [{"id": "x", "values": V}]},
                         key=world.read_key)  # fmt: skip
        assert code_of(read_only) == (403, "insufficient_scope")
    finally:
        set_state(PaymentState.CURRENT)
    assert until(lambda r: r.status_code == 200).status_code == 200


def test_billing_end_to_end_failed_payment_grace_402_then_paid_within_a_second(
    gw: InProcess, world: World, django_db_blocker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment state machine as Stripe drives it: a signed `invoice.payment_failed` (the
    real webhook endpoint) puts the tenant past due and everything still works; past the grace
    period (the beat's step) writes answer 402 and reads 200; a signed `invoice.paid` lifts it
    and the gateway accepts writes again within one second (LISTEN/NOTIFY at commit)."""
    import time

    from django.test import Client

    from billing import payment
    from billing.models import BillingAccount
    from billing.tests.conftest import WEBHOOK_URL, signature_for, stripe_event
    from provisioning.models import Index
    from tenants.models import PaymentState, Tenant
    from tenants.scoping import tenant_scope

    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_vectorplane")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_e2e")
    customer = unique("cus")

    def webhook(event_type: str, invoice: str, status: str, created: int) -> dict[str, Any]:
        obj = {"id": invoice, "object": "invoice", "customer": customer, "status": status,
               "amount_due": 900, "currency": "usd"}  # fmt: skip
        payload = json.dumps(stripe_event(event_type, obj, created=created))
        with django_db_blocker.unblock():
            answer = Client().post(
                WEBHOOK_URL, payload, content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature_for(payload, secret="whsec_e2e"),
            )  # fmt: skip
        assert answer.status_code == 200, answer.content
        body: dict[str, Any] = answer.json()
        return body

    def write() -> httpx.Response:
        return call(gw, world, "vectors/upsert", {"vectors": [{"id": "bill", "values": V}]})

    def until(predicate: Any, seconds: float = 5) -> tuple[httpx.Response, float]:
        start = time.monotonic()
        while True:
            answer = write()
            if predicate(answer) or time.monotonic() - start > seconds:
                return answer, time.monotonic() - start
            time.sleep(0.02)

    with django_db_blocker.unblock():
        tenant = Tenant.objects.get(pk=Index.objects.unscoped().get(name=world.index).tenant_id)
        with tenant_scope(tenant.id):
            BillingAccount.objects.update_or_create(
                tenant=tenant, defaults={"stripe_customer_id": customer}
            )
    now = int(time.time())
    try:
        failed = webhook("invoice.payment_failed", "in_e2e", "open", now)
        assert failed["outcome"] == "invoice in_e2e failed: past_due"
        assert until(lambda r: r.status_code == 200)[0].status_code == 200  # grace: all works
        with django_db_blocker.unblock():
            since = Tenant.objects.get(pk=tenant.pk).payment_state_since
            assert since is not None
            after_grace = since + timedelta(days=7, minutes=1)
            step = payment.payment_states_advance(after_grace.isoformat())
        assert step[PaymentState.PAYMENT_REQUIRED] == 1
        refused, _ = until(lambda r: r.status_code == 402)
        assert code_of(refused) == (402, "payment_required")
        assert call(gw, world, "query", {"vector": V, "topK": 1}).status_code == 200
        paid = webhook("invoice.paid", "in_e2e", "paid", now + 1)
        assert "lifted payment_required" in paid["outcome"]
        accepted, seconds = until(lambda r: r.status_code == 200)
        assert accepted.status_code == 200 and seconds < 1.0, seconds
    finally:
        with django_db_blocker.unblock():
            from tenants import services as tenant_services
            from tenants.actors import Actor

            tenant_services.tenant_set_payment_state(
                actor=Actor.system(), tenant=Tenant.objects.get(pk=tenant.pk),
                state=PaymentState.CURRENT,
            )  # fmt: skip
            with tenant_scope(tenant.id):
                BillingAccount.objects.filter(tenant=tenant).delete()


@pytest.mark.parametrize("bound", [1, 10_000])
def test_the_filtered_query_planner_answers_the_same_on_both_branches(
    world: World, gw: InProcess, bound: int
) -> None:
    """`VECTORPLANE_EXACT_SCAN_ROWS` (the planner's bound): 1 sends every filtered query to the
    HNSW branch (iterative scan), 10,000 these to the exact branch. Both answer topK matching
    records, best first; the exact branch answers exactly the brute-force top k."""
    import random

    rng = random.Random(11)
    vectors = {f"pl{i:03d}": [rng.gauss(0, 1) for _ in range(3)] for i in range(600)}
    for start in (0, 300):
        batch = list(vectors.items())[start : start + 300]
        answer = call(gw, world, "vectors/upsert", {"namespace": "planner", "vectors": [
            {"id": i, "values": v, "metadata": {"bucket": int(i[2:]) % 50}} for i, v in batch
        ]})  # fmt: skip
        assert answer.status_code == 200, answer.text
    planned = InProcess(make_app(VECTORPLANE_EXACT_SCAN_ROWS=str(bound)))
    try:
        q = [0.3, -0.7, 0.2]
        matching = [i for i in vectors if int(i[2:]) % 50 == 7]
        exact = sorted(matching, key=lambda i: -cosine(q, vectors[i]))
        for flt in ({"bucket": 7}, {"bucket": {"$in": [7]}}, {"bucket": {"$gte": 7, "$lt": 8}}):
            answer = call(planned, world, "query", {"namespace": "planner", "vector": q,
                                                    "topK": 5, "filter": flt})  # fmt: skip
            assert answer.status_code == 200, answer.text
            ids = [m["id"] for m in answer.json()["matches"]]
            scores = [m["score"] for m in answer.json()["matches"]]
            assert len(ids) == 5 and set(ids) <= set(matching), (flt, ids)
            assert scores == sorted(scores, reverse=True)
            if bound > len(matching):
                assert ids == exact[:5], flt
            every = call(planned, world, "query", {"namespace": "planner", "vector": q,
                                                   "topK": 100, "filter": flt})  # fmt: skip
            assert sorted(m["id"] for m in every.json()["matches"]) == sorted(matching)
        # No match at all, and the unfiltered query, on the same app.
        none = call(planned, world, "query", {"namespace": "planner", "vector": q, "topK": 5,
                                              "filter": {"bucket": 999}})  # fmt: skip
        assert none.json()["matches"] == []
        plain = call(planned, world, "query", {"namespace": "planner", "vector": q, "topK": 3})
        assert len(plain.json()["matches"]) == 3
    finally:
        planned.close()


def test_concurrent_upserts_of_the_same_ids_in_other_orders_all_succeed(
    gw: InProcess, world: World
) -> None:
    """Batches sharing ids, each in its own order, at once: rows are written in id order, so
    they cannot deadlock (they did, as 500s, before)."""
    import random

    ids = [f"dl{i:03d}" for i in range(150)]

    def body(seed: int) -> bytes:
        order = ids[:]
        random.Random(seed).shuffle(order)
        return json.dumps({"namespace": "deadlock", "vectors": [
            {"id": i, "values": [1.0, float(seed), 0.5]} for i in order
        ]}).encode()  # fmt: skip

    async def all_at_once() -> list[httpx.Response]:
        return await asyncio.gather(*(
            gw.client.post(f"/v1/indexes/{world.index}/vectors/upsert", content=body(seed),
                           headers={"Api-Key": world.key, "Content-Type": "application/json"})
            for seed in range(8)
        ))  # fmt: skip

    answers = gw.loop.run_until_complete(all_at_once())
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    stats = call(gw, world, "describe_index_stats", {})
    assert stats.json()["namespaces"]["deadlock"]["vectorCount"] == 150
