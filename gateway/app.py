"""The data-plane gateway: a pure ASGI (Starlette) application that imports no Django and no
engine client.

Every request: authenticate the `Api-Key` (cached prefix lookup + HMAC), resolve the index from
the path (`/v1/indexes/{index}/...`, tenant from the key) or from the host
(`{index}-{tenant}.{domain}`), check scopes, restrictions, tenant status and the tenant's
query rate (`gateway/auth.py`), then run the operation (`gateway/operations.py`) on the index's
store (`gateway/backends/`: pgvector, shared or dedicated, or Qdrant). docs/ARCHITECTURE.md
follows one request through these layers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
import yaml
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vectorplane import config

from . import auth
from . import validation as v
from .backends import BackendUnavailable, UnsupportedOnEngine
from .cors import CORSMiddleware
from .errors import GatewayError
from .operations import EXTRA_ROUTES, OPERATIONS, Context
from .registry import IndexInfo, KeyInfo
from .runtime import Gateway

logger = logging.getLogger("vectorplane.gateway")


async def dispatch(
    gw: Gateway, request: Request, operation: str, index_name: str | None
) -> Response:
    _method, _path, scope, handler = OPERATIONS[operation]
    started = time.perf_counter()
    dedicated = False
    key: KeyInfo | None = None
    index: IndexInfo | None = None
    code = ""
    try:
        key = await auth.authenticate(gw, request)
        if index_name is None:
            index_name = auth.host_index(gw, request, key)
            if index_name is None:
                raise GatewayError(404, "not_found", "No such endpoint.")
        auth.require_scope(key, scope)
        await auth.throttle(gw, key)
        index = await auth.resolve_index(gw, key, index_name)
        dedicated = index.cluster_id is not None
        body = await v.json_body(request) if request.method == "POST" else {}
        store = await gw.store_for(index)
        ctx = Context(key=key, index=index, body=body, store=store)
        response = await handler(gw, ctx, request)
        if response.status_code < 400:
            gw.meter.record(
                index, seconds=time.perf_counter() - started, requests=1, **ctx.usage
            )
    except Exception as exc:
        error = _as_error(exc, operation, index_name, dedicated)
        code = error.code
        response = error.response()
    status = response.status_code
    if key is not None and status >= 400:
        # Errors by code, per tenant (the console's overview): only for a key that
        # authenticated, so an unauthenticated caller cannot write into anyone's counts.
        gw.meter.record_error(key.tenant_id, index.name if index else "",
                              code or f"http_{status}", status)  # fmt: skip
    gw.requests.labels(operation, str(status)).inc()
    gw.latency.labels(operation, str(status)).observe(time.perf_counter() - started)
    return response


def _as_error(exc: Exception, operation: str, index_name: str | None,
              dedicated: bool) -> GatewayError:  # fmt: skip
    """The error a failed request answers."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, UnsupportedOnEngine):
        return GatewayError(400, "unsupported_on_engine", exc.message, exc.details)
    if isinstance(exc, BackendUnavailable):
        logger.warning("gateway %s: %s", operation, exc)
        return unavailable(index_name, dedicated)
    # The request's own faults are refused before any engine sees it (validation), and the
    # engines' outages are BackendUnavailable: what is left is a bug.
    logger.error("gateway error in %s", operation, exc_info=exc)
    return GatewayError(500, "internal_error", "An internal error occurred.")


def unavailable(index_name: str | None, dedicated: bool) -> GatewayError:
    """The 503 of a vector database that does not answer (down, restarting, overloaded past
    its timeout): the client should retry."""
    if dedicated:
        return GatewayError(
            503,
            "cluster_unavailable",
            "The index's cluster does not answer; try again shortly.",
            {"index": index_name},
        )
    return GatewayError(
        503,
        "data_plane_unavailable",
        "The vector database does not answer; try again shortly.",
        {"index": index_name},
    )


def _route(operation: str, *, path_form: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        gw: Gateway = request.app.state.gateway
        index = request.path_params.get("index") if path_form else None
        return await dispatch(gw, request, operation, index)

    return endpoint


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        async with gw.store.pool.connection() as conn:
            await conn.execute("SELECT 1")
            await conn.rollback()
        ready = gw.registry.listening.is_set()
    except Exception:  # any failure means not ready
        ready = False
    return JSONResponse(
        {"status": "ok" if ready else "unavailable"}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    stats = gw.registry.stats
    gw.cache.labels("hit").set(stats.hits)
    gw.cache.labels("miss").set(stats.misses)
    pool = gw.store.pool.get_stats()
    gw.pool_in_use.labels("size").set(pool.get("pool_size", 0))
    gw.pool_in_use.labels("available").set(pool.get("pool_available", 0))
    return Response(generate_latest(gw.metrics), media_type=CONTENT_TYPE_LATEST)


# This API's OpenAPI description, served by `openapi_routes`.
OPENAPI_PATH = Path(__file__).resolve().parents[1] / "docs" / "gateway-openapi.yaml"


def openapi_routes(path: Path = OPENAPI_PATH) -> list[Route]:
    """`GET /openapi.yaml` and `GET /openapi.json`: the data plane's OpenAPI description
    (docs/gateway-openapi.yaml), read once when the app is built and served without
    credentials. An install without the file serves neither (the JSON 404; a warning at start)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        logger.warning("the gateway's OpenAPI schema is not served: %s", exc)
        return []
    as_json = orjson.dumps(yaml.safe_load(text))

    async def openapi_yaml(request: Request) -> Response:
        return Response(text, media_type="application/yaml")

    async def openapi_json(request: Request) -> Response:
        return Response(as_json, media_type="application/json")

    return [Route("/openapi.yaml", openapi_yaml), Route("/openapi.json", openapi_json)]


async def not_found(request: Request, exc: Exception) -> Response:
    return GatewayError(404, "not_found", "No such endpoint.").response()


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return GatewayError(405, "method_not_allowed", "Method not allowed.").response()


def build_routes() -> list[Route]:
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *openapi_routes(),
    ]
    for operation, (method, path, _scope, _handler) in OPERATIONS.items():
        methods = [method] + [m for (m, p), op in EXTRA_ROUTES.items() if op == operation]
        routes.append(Route(f"/v1/indexes/{{index}}/{path}", _route(operation, path_form=True),
                            methods=methods))  # fmt: skip
        routes.append(Route(f"/{path}", _route(operation, path_form=False), methods=methods))
    return routes


def create_app(
    *, control_url: str | None = None, data_url: str | None = None, pepper: str | None = None
) -> Starlette:
    if pepper is None:
        pepper = (
            config.env_str("VECTORPLANE_KEY_PEPPER")
            if config.is_production()
            else config.env_str("VECTORPLANE_KEY_PEPPER", config.state_secret("key-pepper"))
        )
    gateway = Gateway(
        control_url=control_url or config.gateway_control_database_url(),
        data_url=data_url or config.gateway_data_database_url(),
        pepper=pepper,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.open()
        try:
            yield
        finally:
            await gateway.close()

    app = Starlette(
        routes=build_routes(),
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
        middleware=[Middleware(CORSMiddleware, origins=config.gateway_cors_origins())],
    )
    app.state.gateway = gateway
    return app


def application() -> Starlette:
    """Factory for `granian --interface asgi --factory gateway.app:application`."""
    return create_app()
