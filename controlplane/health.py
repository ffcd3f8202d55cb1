"""The platform's health as an operator sees it: each part probed once, with a short timeout,
its answer and how long it took. A part that does not answer is reported, never raised: the
operators' health page (`GET /api/v1/operator/health`) must answer while parts are down."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from django.db import connection

from controlplane.celery import app
from vectorplane import config

# Each probe gives up after this long: the page answers within a few seconds, whatever is down.
TIMEOUT_SECONDS = 2

# The parts probed, and the overall answer (choices, for the API's enums).
PARTS = (
    ("database", "database"),
    ("broker", "broker"),
    ("gateway", "gateway"),
    ("workers", "workers"),
    ("reconcile", "reconcile"),
)
STATUSES = (("ok", "ok"), ("degraded", "degraded"))


class Unhealthy(Exception):
    """What a probe found wrong, said as it is (not as a Python exception's name)."""


@dataclass(frozen=True)
class PartHealth:
    name: str
    ok: bool
    latency_ms: float
    error: str = ""
    target: str = ""  # what was probed (no secret: a URL without its credentials)


def timed(name: str, target: str, probe: Callable[[], None]) -> PartHealth:
    started = time.perf_counter()
    error = ""
    try:
        probe()
    except Unhealthy as exc:
        error = str(exc)[:300] or "unhealthy"
    except Exception as exc:  # whatever the part answers, it is reported, not raised
        error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    latency = round((time.perf_counter() - started) * 1000, 1)
    return PartHealth(name=name, ok=not error, latency_ms=latency, error=error, target=target)


def _public(url: str) -> str:
    """`url` without credentials (a broker URL may carry a password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def database_health() -> PartHealth:
    def probe() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    return timed("database", "control-plane PostgreSQL", probe)


def broker_health() -> PartHealth:
    """The Celery broker accepts a connection (not whether a worker listens: that needs the
    workers' answer to a broadcast, which waits its whole timeout)."""
    url = str(app.conf.broker_url or "")

    def probe() -> None:
        options = {"socket_connect_timeout": TIMEOUT_SECONDS, "socket_timeout": TIMEOUT_SECONDS}
        with app.connection_for_read(transport_options=options) as conn:
            conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)

    return timed("broker", _public(url), probe)


def gateway_health() -> PartHealth:
    """The gateway's `/readyz` at its configured URL (`VECTORPLANE_GATEWAY_URL`): 200 when its
    database answers and its registry listens."""
    url = config.gateway_public_url().rstrip("/") + "/readyz"

    def probe() -> None:
        if urlsplit(url).scheme not in {"http", "https"}:
            raise ValueError(f"not an HTTP URL: {url}")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        if status != 200:
            raise Unhealthy(f"/readyz answered {status}")

    return timed("gateway", _public(url), probe)


def workers_health() -> PartHealth:
    """The Celery workers' heartbeat: a `ping` broadcast, answered by every live worker
    within the timeout (1 s, which this probe always waits)."""
    answered: list[str] = []

    def probe() -> None:
        replies = app.control.ping(timeout=1.0) or []
        answered.extend(sorted(name for reply in replies for name in reply))
        if not answered:
            raise Unhealthy("no worker answered a ping within 1 s: is a worker running?")

    part = timed("workers", "celery ping", probe)
    if answered:
        names = ", ".join(answered[:5]) + (" …" if len(answered) > 5 else "")
        part = replace(part, target=f"{len(answered)} answered: {names}")
    return part


def platform_health() -> list[PartHealth]:
    """The platform's own parts (the apps built on the base add theirs: the reconcile)."""
    return [database_health(), broker_health(), gateway_health(), workers_health()]
