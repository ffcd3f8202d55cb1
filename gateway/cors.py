"""Cross-origin requests from the browser origins the gateway trusts (by default the console's:
its query playground calls the gateway directly with a short-lived read key,
`vectorplane.config.gateway_cors_origins`).

A pure ASGI middleware, so that a request without an `Origin` header (every server-side
client) costs one header scan. For an allowed origin: preflights (`OPTIONS` with
`Access-Control-Request-Method`) answer 204 with the methods and headers the API takes, and
answers carry `Access-Control-Allow-Origin`. A preflight from another origin answers 403
`cors_origin_forbidden` (JSON, like every error); its other requests pass without CORS headers,
so the browser withholds the answer. No credentials (cookies) are involved: the key is a header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ALLOW_METHODS = b"GET, POST, PATCH, DELETE"
ALLOW_HEADERS = b"api-key, authorization, content-type, x-pinecone-api-version"
EXPOSE_HEADERS = b"retry-after"
MAX_AGE = b"600"


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(o.encode() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins:
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin in self.origins
        if preflight and scope["method"] == "OPTIONS":
            await self._preflight(send, origin if allowed else None)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += [
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    async def _preflight(send: Send, origin: bytes | None) -> None:
        if origin is None:
            body = orjson.dumps({"error": {
                "code": "cors_origin_forbidden",
                "message": "This origin may not call the gateway from a browser "
                "(VECTORPLANE_GATEWAY_CORS_ORIGINS).",
                "details": {},
            }})  # fmt: skip
            headers = [(b"content-type", b"application/json"), (b"vary", b"Origin")]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", MAX_AGE),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
