"""Only "the database does not answer" is a 503 (retry); an error the request caused or a bug
is never one (issue 8: a tsvector too long was answered 503, so clients retried forever).

Each backend translates its own engine's errors (gateway/backends/): its outages become
BackendUnavailable (503), everything else propagates (a 500, logged)."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from aiohttp import web
from psycopg import errors
from psycopg_pool import PoolTimeout

from gateway.app import unavailable
from gateway.backends import BackendUnavailable
from gateway.backends.pgvector import _translated
from gateway.backends.qdrant import QdrantError, QdrantStore
from vectorplane import pgerrors
from vectorplane.contract.filters import EMPTY

DOWN: list[BaseException] = [
    psycopg.OperationalError("connection refused"),  # no SQLSTATE: connection failed or lost
    errors.AdminShutdown(),
    errors.CrashShutdown(),
    errors.CannotConnectNow(),
    errors.TooManyConnections(),
    errors.ConnectionFailure(),
    PoolTimeout("no connection in 30 s"),
    psycopg.InterfaceError("the connection is closed"),
]
NOT_DOWN: list[BaseException] = [
    errors.ProgramLimitExceeded("string is too long for tsvector"),
    errors.DataException("vector out of range"),
    errors.NumericValueOutOfRange(),
    errors.InvalidTextRepresentation(),
    errors.UntranslatableCharacter(),
    errors.QueryCanceled(),
    errors.UniqueViolation(),
    errors.InsufficientPrivilege(),
    errors.SyntaxError(),
    ValueError("a bug"),
]


def _raising(exc: BaseException) -> Any:
    @_translated
    async def operation() -> None:
        raise exc

    return operation


@pytest.mark.parametrize("exc", DOWN, ids=lambda e: type(e).__name__)
def test_pgvector_outages_are_backend_unavailable(exc: BaseException) -> None:
    assert pgerrors.unavailable(exc)
    with pytest.raises(BackendUnavailable):
        asyncio.run(_raising(exc)())


@pytest.mark.parametrize("exc", NOT_DOWN, ids=lambda e: type(e).__name__)
def test_request_errors_and_bugs_are_not_outages(exc: BaseException) -> None:
    assert not pgerrors.unavailable(exc)
    with pytest.raises(type(exc)):
        asyncio.run(_raising(exc)())


def test_the_503_names_the_tier() -> None:
    assert unavailable("docs", False).code == "data_plane_unavailable"
    dedicated = unavailable("docs", True)
    assert (dedicated.status, dedicated.code, dedicated.details) == (
        503, "cluster_unavailable", {"index": "docs"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def answering() -> Iterator[str]:
    """A real HTTP server answering `/status/{n}` with that status (a stand-in for a Qdrant
    behind a proxy that fails), on a thread of its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()

    async def collections(request: web.Request) -> web.Response:
        return web.json_response({"result": {"collections": []}})

    async def points(request: web.Request) -> web.Response:  # collection "s<status>"
        return web.json_response({"status": "x"}, status=int(request.match_info["name"][1:]))

    app = web.Application()
    app.router.add_get("/collections", collections)
    app.router.add_route("*", "/collections/{name}/points", points)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@dataclass(frozen=True)
class _Index:
    table_name: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    tenant_id: uuid.UUID = field(default_factory=uuid.uuid4)
    dimension: int = 2
    metric: str = "cosine"
    vector_type: str = "vector"
    text_field: bool = False
    schema_name: str = ""


async def _fetch(url: str, status: int) -> None:
    """A fetch from collection `s<status>`, which the server answers with that status."""
    store = QdrantStore(url, "k", timeout=5)
    await store.open()
    try:
        await store.fetch(_Index(f"s{status}"), "", ["a"], EMPTY)
    finally:
        await store.close()


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_qdrant_outages_are_backend_unavailable(answering: str, status: int) -> None:
    with pytest.raises(BackendUnavailable):
        asyncio.run(_fetch(answering, status))


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500])
def test_qdrant_refusals_are_not_outages(answering: str, status: int) -> None:
    with pytest.raises(QdrantError) as caught:
        asyncio.run(_fetch(answering, status))
    assert caught.value.status == status


def test_an_unreachable_qdrant_is_backend_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailable):
        asyncio.run(QdrantStore(f"http://127.0.0.1:{port}", "k", timeout=5).open())
