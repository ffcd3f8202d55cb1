"""A lean ASGI application serving a subset of Qdrant's REST API over a `Store`.

No framework: the routes are few and fixed, and this sits on the hot path of every query the
gateway sends to a tenant's cluster. Bodies are decoded with orjson and converted to Edge objects
directly (`convert`); results are encoded with orjson.

Threads: reads (query, scroll, count, retrieve, facet, collection info) run on the event loop
itself by default (`read_threads=0`), or on a pool of `read_threads` threads. qdrant_edge 0.9
holds the GIL while it searches (a pure-Python thread next to a query loop halves the query rate
and gets half its own speed, and two querying threads are no faster than one); a query is
already spread over the segments by Edge's own Rust search pool, so a Python thread pool only
adds two thread hops per request (measured: 1470 q/s inline vs 800-920 q/s with 1-2 reader
threads, 50k x 128-d, 2 cores). Writes run on their collection's single writer thread, in
arrival order. Creating and deleting collections runs on asyncio's default executor.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import orjson
import qdrant_edge as qe

from . import convert
from .errors import ApiError, bad_request, collection_exists, collection_not_found
from .store import Collection, Store, call_edge, validate_name

logger = logging.getLogger("vectorplane.qdrant_host")

MAX_BODY_BYTES = 32 * 1024 * 1024  # Qdrant's default service.max_request_size_mb
HEALTH = {
    "/healthz": b"healthz check passed",
    "/livez": b"healthz check passed",
    "/readyz": b"all shards are ready",
}
JSON_HEADERS = [(b"content-type", b"application/json")]
TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
MISSING_KEY = "Must provide an API key or an Authorization bearer token"
WRONG_KEY = "Invalid API key or JWT"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Query = dict[str, str]
Handler = Callable[["QdrantHostApp", str, str, Query, Any], Awaitable[Any]]


def _update_result(operation_id: int, wait: bool) -> dict[str, Any]:
    # Every write is applied (WAL + segments) before we answer, whatever `wait` says; with
    # wait=false Qdrant would answer "acknowledged" as soon as the WAL has it, and so do we.
    return {"operation_id": operation_id, "status": "completed" if wait else "acknowledged"}


def _wait(query: Query) -> bool:
    return query.get("wait", "false").lower() == "true"


# ============================================================================ read operations
# Each runs on a reader thread (or the event loop) with the collection held open.


def _read_info(coll: Collection, body: Any) -> Any:
    return coll.info()


def _read_retrieve(coll: Collection, body: Any) -> Any:
    ids, payload, vector = convert.retrieve_request(body)
    return convert.records(call_edge(coll.shard.retrieve, ids, payload, vector))


def _read_point(coll: Collection, raw_id: str) -> Any:
    pid: convert.PointId = int(raw_id) if raw_id.isdigit() else raw_id
    pid = convert.point_id(pid, "id")
    found = call_edge(coll.shard.retrieve, [pid], True, True)
    if not found:
        raise ApiError(404, f"Not found: Point with id {pid} does not exists!")
    return convert.records(found)[0]


def _read_scroll(coll: Collection, body: Any) -> Any:
    request, ordered = convert.scroll_request(body)
    points, next_offset = call_edge(coll.shard.scroll, request)
    return {
        "points": convert.records(points),
        "next_page_offset": None if ordered else next_offset,
    }


def _read_count(coll: Collection, body: Any) -> Any:
    return {"count": call_edge(coll.shard.count, convert.count_request(body))}


def _read_query(coll: Collection, body: Any) -> Any:
    query = convert.query_request(body)
    points = call_edge(coll.shard.query, query.request)
    return {"points": convert.scored_points(points, query.with_vector)}


def _read_query_batch(coll: Collection, body: Any) -> Any:
    queries = convert.query_batch(body)
    if not queries:
        return []
    batch = qe.QueryBatchRequest([q.request for q in queries])
    results = call_edge(coll.shard.query_batch, batch)
    return [
        {"points": convert.scored_points(points, q.with_vector)}
        for q, points in zip(queries, results, strict=True)
    ]


def _read_facet(coll: Collection, body: Any) -> Any:
    response = call_edge(coll.shard.facet, convert.facet_request(body))
    return {"hits": [{"value": hit.value, "count": hit.count} for hit in response.hits]}


# ============================================================================ write operations
# Each runs on the collection's writer thread.

_WRITES: dict[str, Callable[[Any], qe.UpdateOperation]] = {
    "upsert": convert.upsert_operation,
    "delete": convert.delete_points_operation,
    "set_payload": lambda body: convert.set_payload_operation(body, overwrite=False),
    "overwrite_payload": lambda body: convert.set_payload_operation(body, overwrite=True),
    "delete_payload": convert.delete_payload_operation,
    "clear_payload": convert.clear_payload_operation,
    "update_vectors": convert.update_vectors_operation,
    "delete_vectors": convert.delete_vectors_operation,
}


def _write_one(kind: str) -> Callable[[Collection, Any, bool], Any]:
    to_operation = _WRITES[kind]

    def run(coll: Collection, body: Any, wait: bool) -> Any:
        return _update_result(coll.apply([to_operation(body)]), wait)

    return run


def _write_batch(coll: Collection, body: Any, wait: bool) -> Any:
    operations = convert.batch_operations(body)
    return [_update_result(coll.apply([op]), wait) for op in operations]


def _write_create_index(coll: Collection, body: Any, wait: bool) -> Any:
    field, schema, given = convert.create_index_request(body)
    return _update_result(coll.create_index(field, schema, given), wait)


def _write_delete_index(coll: Collection, field: str, wait: bool) -> Any:
    return _update_result(coll.delete_index(field), wait)


# ============================================================================ the application


class QdrantHostApp:
    def __init__(self, store: Store, api_key: str, *, version: str, read_threads: int) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self.store = store
        self.api_key = api_key.encode()
        self.root_body = orjson.dumps(
            {"title": "qdrant - vector search engine", "version": version}
        )
        self.read_pool = (
            ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="read")
            if read_threads > 0
            else None
        )

    def close(self) -> None:
        if self.read_pool is not None:
            self.read_pool.shutdown(wait=True)

    # ------------------------------------------------------------- ASGI entry point

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        health = HEALTH.get(path)
        if health is not None:
            await _respond(send, 200, health, TEXT_HEADERS)
            return
        try:
            self._authenticate(scope["headers"])
            body = await _read_body(receive)
            if path == "/" and scope["method"] == "GET":
                await _respond(send, 200, self.root_body, JSON_HEADERS)
                return
            result = await self._dispatch(scope, body)
            status = 200
            content = orjson.dumps(
                {"result": result, "status": "ok", "time": time.perf_counter() - started},
                default=convert.json_default,
            )
        except ApiError as exc:
            status, content = exc.status, _error_body(exc.message, started)
        except Exception as exc:
            logger.exception("%s %s failed", scope["method"], path)
            status, content = 500, _error_body(f"Service internal error: {exc}", started)
        except BaseException as exc:  # a Rust panic outside call_edge; anything else propagates
            if type(exc).__name__ != "PanicException":
                raise
            logger.error("%s %s: Edge panicked: %s", scope["method"], path, exc)
            status, content = 500, _error_body(f"Service internal error: {exc}", started)
        await _respond(send, status, content, JSON_HEADERS)

    def _authenticate(self, headers: list[tuple[bytes, bytes]]) -> None:
        given: bytes | None = None
        for name, value in headers:
            if name == b"api-key":
                given = value
                break
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if given is None:
            raise ApiError(401, MISSING_KEY)
        if not hmac.compare_digest(given, self.api_key):
            raise ApiError(401, WRONG_KEY)

    # ------------------------------------------------------------- routing

    async def _dispatch(self, scope: Scope, raw: bytes) -> Any:
        method: str = scope["method"]
        segments = scope["path"].strip("/").split("/")
        if segments[0] != "collections":
            raise ApiError(404, f"Not found: no route for {method} {scope['path']}")
        raw_query: bytes = scope["query_string"]
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        if len(segments) == 1:
            if method != "GET":
                raise _method_not_allowed(method, scope["path"])
            return {"collections": [{"name": n} for n in self.store.names()]}
        name = segments[1]
        rest = tuple(segments[2:])
        arg = ""
        methods = _ROUTES.get(rest)
        if methods is None and len(rest) == 2 and rest[0] in ("index", "points"):
            methods, arg = _ROUTES[(rest[0], "{}")], rest[1]
        if methods is None:
            raise ApiError(404, f"Not found: no route for {method} {scope['path']}")
        handler = methods.get(method)
        if handler is None:
            raise _method_not_allowed(method, scope["path"])
        body = _decode(raw)
        return await handler(self, name, arg, query, body)

    # ------------------------------------------------------------- execution helpers

    async def _read(self, name: str, fn: Callable[[Collection, Any], Any], body: Any) -> Any:
        coll = self.store.acquire(name)
        try:
            if self.read_pool is None:
                return fn(coll, body)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.read_pool, fn, coll, body)
        finally:
            coll.release()

    async def _write(
        self, name: str, fn: Callable[[Collection, Any, bool], Any], body: Any, wait: bool
    ) -> Any:
        coll = self.store.acquire(name)
        try:
            return await asyncio.wrap_future(coll.writer.submit(fn, coll, body, wait))
        finally:
            coll.release()

    # ------------------------------------------------------------- handlers

    async def collection_info(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_info, None)

    async def collection_exists(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return {"exists": self.store.exists(name)}

    async def create_collection(self, name: str, arg: str, query: Query, body: Any) -> Any:
        validate_name(name)
        if self.store.exists(name):
            raise collection_exists(name)
        settings = convert.collection_settings(body)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.store.create, name, settings)
        return True

    async def delete_collection(self, name: str, arg: str, query: Query, body: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.store.delete, name)

    async def update_collection(self, name: str, arg: str, query: Query, body: Any) -> Any:
        if not self.store.exists(name):
            raise collection_not_found(name)
        raise ApiError(
            400, "Bad request: updating a collection's parameters is not supported by the "
            "local Qdrant host; recreate the collection instead",
        )  # fmt: skip

    async def create_index(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._write(name, _write_create_index, body, _wait(query))

    async def delete_index(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._write(name, _write_delete_index, arg, _wait(query))

    async def retrieve(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_retrieve, body)

    async def get_point(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_point, arg)

    async def scroll(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_scroll, body)

    async def count(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_count, body)

    async def query(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_query, body)

    async def query_batch(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_query_batch, body)

    async def facet(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._read(name, _read_facet, body)

    async def batch(self, name: str, arg: str, query: Query, body: Any) -> Any:
        return await self._write(name, _write_batch, body, _wait(query))


def _writer(kind: str) -> Handler:
    fn = _write_one(kind)

    async def handler(app: QdrantHostApp, name: str, arg: str, query: Query, body: Any) -> Any:
        return await app._write(name, fn, body, _wait(query))

    return handler


A = QdrantHostApp
_ROUTES: dict[tuple[str, ...], dict[str, Handler]] = {
    (): {
        "GET": A.collection_info,
        "PUT": A.create_collection,
        "DELETE": A.delete_collection,
        "PATCH": A.update_collection,
    },
    ("exists",): {"GET": A.collection_exists},
    ("index",): {"PUT": A.create_index},
    ("index", "{}"): {"DELETE": A.delete_index},
    ("points",): {"PUT": _writer("upsert"), "POST": A.retrieve},
    ("points", "{}"): {"GET": A.get_point},
    ("points", "delete"): {"POST": _writer("delete")},
    ("points", "scroll"): {"POST": A.scroll},
    ("points", "count"): {"POST": A.count},
    ("points", "query"): {"POST": A.query},
    ("points", "query", "batch"): {"POST": A.query_batch},
    ("points", "payload"): {"POST": _writer("set_payload"), "PUT": _writer("overwrite_payload")},
    ("points", "payload", "delete"): {"POST": _writer("delete_payload")},
    ("points", "payload", "clear"): {"POST": _writer("clear_payload")},
    ("points", "vectors"): {"PUT": _writer("update_vectors")},
    ("points", "vectors", "delete"): {"POST": _writer("delete_vectors")},
    ("points", "batch"): {"POST": A.batch},
    ("facet",): {"POST": A.facet},
}
del A


# ============================================================================ HTTP plumbing


def _method_not_allowed(method: str, path: str) -> ApiError:
    return ApiError(405, f"Method {method} is not allowed on {path}")


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(str(exc)) from None


def _error_body(message: str, started: float) -> bytes:
    return orjson.dumps({"status": {"error": message}, "time": time.perf_counter() - started})


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                break
            chunks.append(chunk)
        body = b"".join(chunks)
    if len(body) > MAX_BODY_BYTES or message.get("more_body", False):
        raise ApiError(413, f"Payload too large: the limit is {MAX_BODY_BYTES} bytes")
    return body


async def _respond(
    send: Send, status: int, content: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})
