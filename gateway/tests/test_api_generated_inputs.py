"""The rule of issue 8, tested once for all: generated hostile inputs over every operation of
both APIs — the management and Pinecone control-plane API (docs/openapi.yaml, served by the
control plane under granian) and the data plane (docs/gateway-openapi.yaml, served by the
gateway under granian, in the path and the host form).

Table-driven: every operation has a base request (apiworld.py) that must succeed, and is then
sent once per mutation of one of its values. Every string field, map key and path or query
parameter gets NUL, a lone surrogate (`"\\ud800"` in JSON, `%ED%A0%80` in URLs), 10x its
documented maxLength (10x 1,000 when it has none), exactly its maxLength, more UTF-8 bytes than
its `x-max-bytes`, and a number. Every number field gets `NaN`, `Infinity`, `-Infinity` (raw
tokens), 1e39, -0.0, 2^63 (as an integer and as a float token), a string and `true`; booleans
a string and a number; arrays [], all zeros, one item over maxItems; optional fields `null`;
each body an unknown field, `[1]` and `""`. One test id per (operation, field, mutation). The
data plane's host form runs the path form's handlers: it gets the mutations of its query
string and of the body's shape.

The oracle is the schema: the mutated request is validated against the operation's schema
(apifuzz.Oracle), NUL, lone surrogates and JSON's non-numbers being never valid. Then:

- never a 5xx (so never a 503 "retry" for a request that cannot succeed);
- every 4xx is `{"error": {"code", "message", "details"}}` with a code of docs/ERRORS.md;
- a request the schema refuses gets a 4xx (never silently accepted);
- a request the schema allows succeeds, or answers a code that is that value's documented
  meaning (a plan slug that does not exist is `unknown_plan`; a path naming nothing, 404).

These tests live beside the gateway's because they use its fixtures: the real gateway and
control-plane processes of gateway/tests/conftest.py, and resources made through the services.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gateway.tests import apifuzz
from gateway.tests.apifuzz import Mutation, Operation, Oracle, Sent
from gateway.tests.apiworld import (
    NO_BODY,
    Base,
    DryWorld,
    Req,
    World,
    bases,
)
from gateway.tests.conftest import Gateway, Platform, Server, ensure_plans, unique
from tenants.tests.factories import UserFactory

APIS = ("management", "gateway")
DIMENSION = 3  # of the data plane's index (apiworld.World.gindex)


@dataclass(frozen=True)
class Case:
    api: str
    base: str  # Base.label
    mutation: str  # Mutation.label, or "base"


def _oracle(api: str) -> Oracle:
    if api == "management":
        return Oracle(api)
    return Oracle(api, dimension=DIMENSION)  # the schema as it applies to the test's index


ORACLES = {api: _oracle(api) for api in APIS}
OPERATIONS = {api: apifuzz.operations(api) for api in APIS}


def body_schema(api: str, operation_id: str) -> dict[str, Any] | None:
    """The operation's request body schema."""
    op = OPERATIONS[api][operation_id]
    pointer = apifuzz.body_schema_pointer(op)
    if pointer is None:
        return None
    return ORACLES[api].ref(pointer)


def mutations(api: str, base: Base, req: Req, uniq: str) -> list[Mutation]:
    oracle = ORACLES[api]
    op = OPERATIONS[api][base.operation_id]
    found: list[Mutation] = []
    for param in op.parameters:
        name = param["name"]
        if param["in"] == "path" and name in req.path:
            found += apifuzz.param_mutations(param, oracle, req.path[name], uniq)
        elif param["in"] == "query":
            given = [v for k, v in req.query if k == name]
            if given:
                found += apifuzz.param_mutations(param, oracle, given[0], uniq)
    schema = body_schema(api, base.operation_id)
    if schema is not None and req.body is not NO_BODY:
        found += apifuzz.body_mutations(oracle, schema, req.body, uniq)
    if base.operation_id.endswith("_host"):
        # The host form runs the path form's handlers on the same bodies: its own cases are
        # what it parses itself (the query string) and the body's shape.
        found = [m for m in found
                 if m.where == "query" or m.target in ((), ("zz_unknown_field",))]  # fmt: skip
    return found


def _collect() -> list[Any]:
    dry = DryWorld()
    params = []
    for api in APIS:
        for base in bases(api):
            params.append(pytest.param(Case(api, base.label, "base"),
                                       id=f"{api}-{base.label}-base"))  # fmt: skip
            labels = [m.label for m in mutations(api, base, base.build(dry, "uniq"), "uniq")]
            assert len(labels) == len(set(labels)), (base.label, labels)
            params += [
                pytest.param(Case(api, base.label, label), id=f"{api}-{base.label}-{label}")
                for label in labels
            ]
    return params


CASES = _collect()
BASES = {(api, b.label): b for api in APIS for b in bases(api)}


# ============================================================================ fixtures


@pytest.fixture(scope="module")
def world(
    django_db_blocker: Any, gateway: Gateway, control_plane_server: Server
) -> Iterator[World]:
    """The resources of every base request, made once for the module (the database stays open
    for the module: fresh resources are made per case)."""
    with django_db_blocker.unblock():
        ensure_plans()
        operator = UserFactory(email=f"{unique('ops')}@example.test", is_staff=True)
        platform = Platform(operator=operator)
        made = World(platform, control_plane_server.url, gateway)
        try:
            yield made
        finally:
            made.close()
            platform.release()


@pytest.fixture(scope="module")
def clients(
    gateway_server: Server, control_plane_server: Server
) -> Iterator[dict[str, httpx.Client]]:
    with (
        httpx.Client(base_url=control_plane_server.url, timeout=60) as cp,
        httpx.Client(base_url=gateway_server.url, timeout=60) as gw,
    ):
        yield {"management": cp, "gateway": gw}


@pytest.fixture(scope="module")
def servers(gateway_server: Server, control_plane_server: Server) -> dict[str, Server]:
    return {"management": control_plane_server, "gateway": gateway_server}


# ============================================================================ sending


def render(
    op: Operation, req: Req, mutation: Mutation | None
) -> tuple[str, bytes | None, dict[str, str]]:
    """The URL (percent-encoded), body and headers of a base request with one mutation."""
    path = op.path
    for name, value in req.path.items():
        text = quote(value, safe="")
        if mutation is not None and mutation.where == "path" and mutation.target == (name,):
            text = mutation.token
        path = path.replace("{" + name + "}", text)
    query = [(k, quote(v, safe="")) for k, v in req.query]
    if mutation is not None and mutation.where == "query":
        name = str(mutation.target[0])
        first = next(i for i, (k, _v) in enumerate(query) if k == name)
        if mutation.name == "over_max_items":
            value = query[first][1]
            query = [(k, v) for k, v in query if k != name]
            query[first:first] = [(name, f"{value}-{i}") for i in range(mutation.grow)]
        else:
            query[first] = (name, mutation.token)
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    headers = dict(req.headers)
    body: bytes | None = None
    if req.body is not NO_BODY:
        sent = req.body
        if mutation is not None and mutation.where == "body":
            sent = apifuzz.apply_body(req.body, mutation)
        body = apifuzz.dumps(sent).encode()
        headers["Content-Type"] = "application/json"
    return url, body, headers


def send(
    world: World, clients: dict[str, httpx.Client], api: str, op: Operation, req: Req,
    mutation: Mutation | None,
) -> tuple[httpx.Response, Sent]:  # fmt: skip
    url, body, headers = render(op, req, mutation)
    client = clients[api]
    if req.session:
        client, csrf = world.session()
        headers["X-CSRFToken"] = csrf
    request = client.build_request(op.method, url, content=body, headers=headers)
    sent = Sent(op.method, str(request.url), body, headers)
    return client.send(request), sent


def invalid_because(api: str, base: Base, req: Req, mutation: Mutation | None) -> str | None:
    """Why the (mutated) request is invalid per the schema and the rule; None if it is valid."""
    oracle = ORACLES[api]
    op = OPERATIONS[api][base.operation_id]
    if mutation is not None and mutation.always_invalid:
        return f"{mutation.name} is never valid"
    if mutation is not None and mutation.where in ("path", "query"):
        param = next(p for p in op.parameters
                     if p["in"] == mutation.where and p["name"] == mutation.target[0])  # fmt: skip
        schema = apifuzz._as_json_schema(param.get("schema", {}), oas30=api == "management",
                                         urn=oracle.urn)  # fmt: skip
        if mutation.name == "over_max_items":
            return f"more than {schema.get('maxItems')} values"
        ok, value = apifuzz.param_value(param, mutation.token)
        if not ok and mutation.integral_float:
            return None  # `-0.0` for an integer: refusing and reading it as 0 are both right
        if not ok:
            return f"{mutation.token[:40]!r} is not a {schema.get('type')}"
        if schema.get("type") == "array":
            schema = schema["items"]
        errors = oracle.errors(schema, value)
        if errors:
            return errors[0]
    schema = body_schema(api, base.operation_id)
    if schema is not None and req.body is not NO_BODY:
        body = req.body
        if mutation is not None and mutation.where == "body":
            try:
                body = apifuzz.parsed_body(apifuzz.apply_body(req.body, mutation))
            except ValueError:
                return "not JSON"
        errors = oracle.errors(schema, body)
        if errors:
            return errors[0]
    return None


# ============================================================================ the tests


@pytest.mark.parametrize("case", CASES)
def test_generated_input(
    case: Case, world: World, clients: dict[str, httpx.Client], servers: dict[str, Server]
) -> None:
    base = BASES[(case.api, case.base)]
    op = OPERATIONS[case.api][base.operation_id]
    uniq = "f" + uuid.uuid4().hex[:11]
    req = base.build(world, uniq)
    server = servers[case.api]
    offset = server.log.stat().st_size

    def log() -> str:  # what the server logged while answering this case
        with server.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    if case.mutation == "base":
        response, sent = send(world, clients, case.api, op, req, None)
        apifuzz.check_answer(response, sent, invalid=False, meaning=base.absent, server_log=log)
        assert str(response.status_code) in op.spec["responses"], (
            f"undocumented status {response.status_code}: {sent.describe()}"
        )
        why = invalid_because(case.api, base, req, None)
        assert why is None, (
            f"schema error: a request that succeeds is not valid per the schema ({why}): "
            f"{sent.describe()}"
        )
        return
    found = {m.label: m for m in mutations(case.api, base, req, uniq)}
    mutation = found[case.mutation]
    why = invalid_because(case.api, base, req, mutation)
    response, sent = send(world, clients, case.api, op, req, mutation)
    meaning = base.meaning_of(apifuzz.field_name(mutation.target)) | base.absent
    if mutation.where == "path":
        meaning |= {"not_found"}  # a name that does not exist
    if mutation.target in (("cursor",), ("paginationToken",)):
        meaning |= {"invalid_cursor"}  # a string this API did not issue
    if mutation.integral_float:
        meaning |= apifuzz.documented_codes()  # refusing -0.0 as an integer is right too
    apifuzz.check_answer(response, sent, invalid=why is not None, meaning=meaning, why=why or "",
                         server_log=log)  # fmt: skip


def test_every_operation_has_a_base_request() -> None:
    """A new operation in either schema fails here until it has a base request (and so its
    generated inputs)."""
    for api in APIS:
        covered = {b.operation_id for b in bases(api)}
        assert covered == set(OPERATIONS[api]), (api, set(OPERATIONS[api]) ^ covered)


def test_every_field_is_in_a_base_request() -> None:
    """Every property of every request body, and every parameter, is in some base request of
    its operation (so that it is mutated)."""
    dry = DryWorld()
    missing: list[str] = []
    for api in APIS:
        oracle = ORACLES[api]
        for op_id, op in OPERATIONS[api].items():
            reqs = [b.build(dry, "uniq") for b in bases(api) if b.operation_id == op_id]
            given = {(where, name) for r in reqs
                     for where, names in (("path", r.path), ("query", dict(r.query)))
                     for name in names}  # fmt: skip
            missing += [f"{api} {op_id}: {p['in']} parameter {p['name']}"
                        for p in op.parameters if (p["in"], p["name"]) not in given]  # fmt: skip
            schema = body_schema(api, op_id)
            if schema is None:
                continue
            sent = {key for r in reqs if isinstance(r.body, dict) for key in r.body}
            declared = {key for node in oracle.applicable(schema, {})
                        for key in node.get("properties", {})}  # fmt: skip
            missing += [f"{api} {op_id}: body field {k}" for k in sorted(declared - sent)]
    assert not missing, "\n".join(missing)


def _body_bound(op: Operation) -> bool:
    """Whether the operation's request body states its size (`x-max-bytes`): a string in it is
    then bounded, if only by that."""
    body = op.spec.get("requestBody", {})
    if "$ref" in body:
        doc = apifuzz.load_schema(apifuzz.GATEWAY_SCHEMA if op.api == "gateway"
                                  else apifuzz.MANAGEMENT_SCHEMA)  # fmt: skip
        body = apifuzz._resolve(doc, body)
    return "x-max-bytes" in body


def _string_fields_without_max_length(api: str) -> list[str]:
    dry = DryWorld()
    oracle = ORACLES[api]
    found: set[str] = set()
    for base in bases(api):
        req = base.build(dry, "uniq")
        for m in mutations(api, base, req, "uniq"):
            if m.name != "long":
                continue
            op = OPERATIONS[api][base.operation_id]
            if m.where in ("path", "query"):
                param = next(p for p in op.parameters
                             if p["in"] == m.where and p["name"] == m.target[0])  # fmt: skip
                converted = apifuzz._as_json_schema(
                    param.get("schema", {}), oas30=api == "management", urn=oracle.urn
                )
                node = oracle.node(converted)
                if node.get("type") == "array":
                    node = oracle.node(node["items"])
                if "maxLength" not in node and not node.get("enum") and "format" not in node:
                    found.add(f"{base.operation_id}: {m.where} {m.target[0]}")
            elif not _body_bound(op):
                schema = body_schema(api, base.operation_id)
                assert schema is not None
                value, node_schema = req.body, schema
                bounded = False  # by the UTF-8 size of what holds it (metadata's 40 KB)
                for step in m.target:
                    bounded |= oracle.facts(node_schema, value).max_bytes is not None
                    node_schema = oracle.child(node_schema, value, step)
                    value = step.key if isinstance(step, apifuzz.KeyOf) else value[step]
                facts = oracle.facts(node_schema, value)
                if not bounded and facts.max_length is None and not facts.enum and (
                    facts.format is None
                ):
                    found.add(f"{base.operation_id}: body {apifuzz.field_name(m.target)}")
    return sorted(found)


@pytest.mark.parametrize("api", APIS)
def test_every_string_field_states_its_max_length(api: str) -> None:
    """A string field or parameter without a documented maxLength (or enum, or format) lets
    clients send anything; each one is a schema gap (the code may well have a limit)."""
    missing = _string_fields_without_max_length(api)
    assert not missing, "no maxLength:\n" + "\n".join(missing)


def test_pinecone_bodies_are_described() -> None:
    """docs/openapi.yaml describes the bodies of Pinecone's create and configure (today they
    are `type: object`, so no client or test learns their fields from it)."""
    untyped = []
    for op_id in ("pinecone_indexes_create", "pinecone_indexes_configure"):
        pointer = apifuzz.body_schema_pointer(OPERATIONS["management"][op_id])
        assert pointer is not None
        oracle = ORACLES["management"]
        if not oracle.node(oracle.ref(pointer)).get("properties"):
            untyped.append(op_id)
    assert not untyped, f"untyped request bodies: {untyped}"


# ============================================================================ over-long URLs


@pytest.mark.parametrize("size", [60_000, 70_000, 300_000, 1_000_000])
@pytest.mark.parametrize("api", APIS)
def test_an_over_long_url(
    api: str, size: int, world: World, gateway_server: Server, control_plane_server: Server
) -> None:
    """A query string of 60 KB to 1 MB (a GET fetch with thousands of ids). Within the HTTP
    server's URL limit (65,534 bytes, a constant of granian's HTTP library, hyper) the
    application answers in the error shape (`batch_too_large`, `invalid_cursor`). Past it the
    server answers by itself, before any application code: 414 (431 once the headers pass its
    408 KiB buffer) with an empty body — the one refusal that cannot be JSON (README, "URL
    length"); a POST fetch carries such id lists instead."""
    if api == "gateway":
        server = gateway_server
        query = "&".join(f"ids={i:08d}" for i in range(size // 13))
        target = f"/v1/indexes/{world.gindex_name}/vectors/fetch?{query}"
        headers = world.gateway_auth()
    else:
        server = control_plane_server
        target = f"/api/v1/tenants?cursor={'a' * size}"
        headers = world.operator_auth()
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)  # httpx caps URLs at 64 KB
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        status, body = response.status, response.read()
        kind = response.getheader("content-type") or ""
    finally:
        conn.close()
    shown = f"GET {target[:80]}... ({len(target)} chars) -> {status} {kind!r} {body[:200]!r}"
    if len(target) > 65_534:
        assert status in (414, 431) and body == b"", shown
        return
    assert 400 <= status < 500, shown
    assert kind.startswith("application/json"), shown
    error = httpx.Response(status, content=body).json()["error"]
    assert set(error) == {"code", "message", "details"}, shown
    assert error["code"] in {"batch_too_large", "invalid_cursor"}, shown
