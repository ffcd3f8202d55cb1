"""The web console's speed (issue 10): cold load of the overview to interactive, the first
load's bytes, and the index list and audit log of a big tenant, in Debian's Chromium.

    make frontend                                  # the console's build (frontend/dist/)
    .venv/bin/python bench/console.py              # 1,000 indexes, 100,000 events, 10 runs
    .venv/bin/python bench/console.py --runs 3 --events 20000   # quick look

What it does, all on 127.0.0.1 and in a temporary state folder of its own (never the
developer's `.state/`, database or pepper):

1. starts a private embedded PostgreSQL 18 on `--pg-port` (default 54441) and migrates it;
2. seeds, in a child process with Django set up (`bench/console.py _seed`):
   - through the services: an operator, a user who signs up (`user_signup`), two tenants
     (`tenant_create`), an operator override of `max_indexes` for the big one
     (`tenant_limits_override_set`) and a few real shared-tier indexes (`index_create`:
     rows, tables and audit events as the API makes them);
   - in bulk, with the ORM models (`bulk_create`): the rest of the big tenant's
     `--indexes` index rows (status `ready`, storage names as `index_create` computes them,
     no tables behind them: the pages measured never touch an index's data), `--events` audit
     events of the big tenant interleaved with `--other-events` of other tenants over the past
     weeks, and a week of hourly rows: usage for `--usage-indexes` indexes, refused requests
     (`ErrorRecord`, a few error codes per hour on those indexes and on none) and stored-vectors
     samples for `--stored-indexes` indexes (default: all, as the hourly sampler writes one row
     per ready index); then VACUUM ANALYZE;
   - the SQL that each page's API calls send (Django's `CaptureQueriesContext` around the
     test client) and `EXPLAIN (ANALYZE, BUFFERS)` of each list query;
3. starts the control plane as `python -m vectorplane run` serves it (granian WSGI, 2
   workers; `bench/mgmt_api.py`'s `granian_server`) with the built console (`frontend/dist/`);
   no gateway: no page measured calls it;
4. per page's API call, `--api-requests` requests with httpx (session cookie), after a
   warm-up: the server's answer times without a browser;
5. Chromium (`--chromium`, headless, Playwright): signs in once through the sign-in form, then
   `--runs` rounds of cold loads, each in a fresh browser context (empty HTTP cache, the
   session cookie only): the big tenant's overview, the small tenant's overview, the big
   tenant's index list, its audit log. Times are the page's own clock (`performance.now()`,
   from navigation start), read by a MutationObserver installed before the page's scripts;
6. prints markdown tables, writes `bench/results/console-<date>.json`, stops everything and
   deletes the folder (unless `--keep`).

"Interactive" for the overview: the plan heading (`#plan-heading`, shown once every API call
of the overview has answered) is in the DOM together with the five links of the console's
navigation, measured at the next animation frame (painted); each run then clicks "Indexes"
and waits for the list's first row (the navigation works; a client-side route change).

Goals (issue 10): first load <= 250 KB gzip, overview interactive <= 1 s on this machine,
every list paginated.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python bench/console.py`
    sys.path.insert(0, str(REPO_ROOT))

from vectorplane import config  # noqa: E402
from vectorplane.embedded import EmbeddedPostgres  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mgmt_api  # noqa: E402 - the control plane's server, shared with bench/mgmt_api.py

RESULTS_DIR = REPO_ROOT / "bench" / "results"
DIST = REPO_ROOT / "frontend" / "dist"
GOAL_FIRST_LOAD_GZIP_BYTES = 250 * 1024
GOAL_INTERACTIVE_MS = 1000.0
PASSWORD = "correct horse battery staple 42"  # noqa: S105 - a throwaway benchmark user
OWNER_EMAIL = "owner@bench.invalid"
BIG, SMALL = "bench-big", "bench-small"
REAL_INDEXES = 3  # of the big tenant's, made through index_create (the rest in bulk)
INDEX_LIST_PAGE = 50  # the index list's page (frontend/src/pages/IndexesPage.tsx)
# Refused requests seeded per hour (codes of docs/ERRORS.md): on each usage index, and on none.
INDEX_ERRORS = (("dimension_mismatch", 400), ("invalid_filter", 400))
TENANT_ERRORS = (("rate_limited", 429), ("not_found", 404))
SUBPROCESS_TIMEOUT = 900.0
PAGE_TIMEOUT_MS = 60_000

_SCRUBBED_PREFIXES = ("VECTORPLANE_", "GRANIAN_", "DJANGO_", "PG", "GATEWAY_")
_SCRUBBED = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_CONN_MAX_AGE"}


class BenchError(RuntimeError):
    """The benchmark could not set up, or a page did not show what it should."""


def log(message: str) -> None:
    print(f"[console {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def port_free(port: int) -> bool:
    """Nothing listens on the port (connections in TIME_WAIT do not count, as for PostgreSQL,
    which binds with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median (p50), p90, min and max of a run's values, rounded to 0.1 ms."""
    if not values:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


# =========================================================================== seeding (child)


def seed_main(params: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - runs in the child
    """Runs with Django set up: makes the tenants, seeds the rows, explains the queries."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from provisioning.models import (
        ErrorRecord,
        Index,
        IndexStatus,
        StoredVectorsRecord,
        UsageRecord,
    )
    from provisioning.services import indexes as index_services
    from tenants import services
    from tenants.actors import Actor
    from tenants.models import AuditEvent
    from tenants.scoping import tenant_scope
    from vectorplane.contract import storage

    started = time.monotonic()
    n_indexes, n_events = int(params["indexes"]), int(params["events"])
    n_other, usage_indexes = int(params["other_events"]), int(params["usage_indexes"])
    stored_indexes = n_indexes if params["stored_indexes"] is None else params["stored_indexes"]
    user_model = get_user_model()
    operator_user = user_model.objects.create_user(
        username="operator@bench.invalid", email="operator@bench.invalid", password=None
    )
    operator_user.is_staff = True
    operator_user.save(update_fields=["is_staff"])
    operator = Actor(user=operator_user)
    signed_up = services.user_signup(
        actor=Actor(ip="127.0.0.1"), email=OWNER_EMAIL, password=PASSWORD, name="Bench Owner"
    )
    owner_user = User.objects.get(pk=signed_up.pk)
    owner = Actor(user=owner_user, ip="127.0.0.1", user_agent="vectorplane-bench/1")
    big = services.tenant_create(actor=owner, name="Bench big", slug=BIG)
    services.tenant_limits_override_set(
        actor=operator, tenant=big, values={"max_indexes": n_indexes + 100}, reason="benchmark"
    )
    small = services.tenant_create(actor=owner, name="Bench small", slug=SMALL)
    # Other tenants, whose audit events interleave with the big tenant's.
    others = [
        services.tenant_create(actor=operator, name=f"Bench other {i}", slug=f"bench-other-{i}")
        for i in range(3)
    ]
    real = [
        index_services.index_create(actor=owner, tenant=big, name=f"real-{i}", dimension=8)
        for i in range(min(REAL_INDEXES, n_indexes))
    ]
    index_services.index_create(actor=owner, tenant=small, name="only", dimension=8)
    made = time.monotonic()

    # The big tenant's other index rows, oldest first, in bulk through the model.
    bulk = []
    for i in range(n_indexes - len(real)):
        index = Index(
            tenant=big, name=f"index-{i:05d}", dimension=384 if i % 3 else 1536,
            metric=("cosine", "euclidean", "dotproduct")[i % 3], engine="pgvector",
            tier="shared", vector_type="vector", status=IndexStatus.READY,
            tags={"team": f"team-{i % 7}"} if i % 4 == 0 else {},
        )  # fmt: skip
        index.schema_name = storage.schema_name(big.id)
        index.table_name = storage.table_name(index.id)
        bulk.append(index)
    with tenant_scope(big.id):
        Index.objects.bulk_create(bulk, batch_size=1000)
    indexes_done = time.monotonic()

    # Audit events: the big tenant's and the others', interleaved in time, ids growing with
    # time as when they are written live; `created_at` (auto_now_add) is set afterwards.
    actions = ("index.created", "index.configured", "api_key.created", "api_key.revoked",
               "member.invited", "index.deleted")  # fmt: skip
    total = n_events + n_other
    rows: list[AuditEvent] = []
    tenants_cycle = [big, *others]
    for i in range(total):
        # Spread the others' events evenly among the big tenant's.
        is_big = n_other == 0 or (i * n_events) // total != ((i + 1) * n_events) // total
        tenant = big if is_big else tenants_cycle[1 + i % len(others)]
        action = actions[i % len(actions)]
        rows.append(
            AuditEvent(
                tenant=tenant, actor_type="user", actor_user=owner_user, actor_label=OWNER_EMAIL,
                action=action, target_type=action.split(".")[0], target_id=f"t{i}",
                target_label=f"index-{i % max(1, n_indexes):05d}", source_ip="127.0.0.1",
                user_agent="vectorplane-bench/1", details={"seed": i},
            )
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM tenants_auditevent")
        before = int(cursor.fetchone()[0])
    for start in range(0, total, 5000):
        batch = rows[start : start + 5000]
        for tenant_id in dict.fromkeys(r.tenant_id for r in batch):
            assert tenant_id is not None
            with tenant_scope(tenant_id):
                AuditEvent.objects.bulk_create([r for r in batch if r.tenant_id == tenant_id])
    now = timezone.now()
    with connection.cursor() as cursor:
        # One event every 20 s (~23 days for 100,000), the newest a minute ago, in id order.
        cursor.execute("SELECT max(id) FROM tenants_auditevent")
        last = int(cursor.fetchone()[0])
        cursor.execute(
            "UPDATE tenants_auditevent SET created_at = %s - (%s - id) * interval '20 seconds' "
            "WHERE id > %s",
            [now - timedelta(minutes=1), last, before],
        )
    events_done = time.monotonic()

    # A week of hourly usage for the first `usage_indexes` indexes (what the gateway flushes).
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    usage: list[UsageRecord] = []
    with tenant_scope(big.id):
        charted = list(Index.objects.order_by("-created_at", "-id")[:usage_indexes])
        for index in charted:
            for h in range(24 * 7):
                requests = 50 + (h * 37 + hash(index.name)) % 400
                usage.append(
                    UsageRecord(
                        tenant=big, index_id=index.id, index_name=index.name,
                        hour=hour0 - timedelta(hours=h), requests=requests,
                        read_units=requests * 3, write_units=requests // 5, queries=requests,
                        vectors_written=requests // 2, vectors_deleted=requests // 20,
                    )
                )  # fmt: skip
        UsageRecord.objects.bulk_create(usage, batch_size=2000)
        # The refused requests the gateway counts with that usage: a few codes per hour on each
        # of those indexes, and on no index (failed before one was resolved).
        errors: list[ErrorRecord] = []
        for h in range(24 * 7):
            hour = hour0 - timedelta(hours=h)
            for index_name, codes in [*((i.name, INDEX_ERRORS) for i in charted),
                                      ("", TENANT_ERRORS)]:  # fmt: skip
                for n, (code, status) in enumerate(codes):
                    errors.append(
                        ErrorRecord(tenant=big, index_name=index_name, hour=hour, code=code,
                                    status=status, requests=1 + (h * 7 + n * 13) % 40)
                    )  # fmt: skip
        ErrorRecord.objects.bulk_create(errors, batch_size=2000)
        # The hourly stored-vectors samples (`provisioning.sampling`: one row per ready index
        # and hour), growing over the week.
        sampled = list(Index.objects.order_by("-created_at", "-id")[:stored_indexes])
        samples: list[StoredVectorsRecord] = []
        for h in range(24 * 7):
            hour = hour0 - timedelta(hours=h)
            for i, index in enumerate(sampled):
                samples.append(
                    StoredVectorsRecord(
                        tenant=big, index_id=index.id, index_name=index.name, hour=hour,
                        vectors=max(0, (i % 50) * 1000 - h * 3), dimension=index.dimension,
                        sampled_at=hour + timedelta(minutes=5),
                    )
                )  # fmt: skip
            if len(samples) >= 20_000:
                StoredVectorsRecord.objects.bulk_create(samples, batch_size=5000)
                samples = []
        StoredVectorsRecord.objects.bulk_create(samples, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        counts: dict[str, int] = {}
        for table in ("provisioning_index", "tenants_auditevent", "provisioning_usagerecord",
                      "provisioning_errorrecord", "provisioning_storedvectorsrecord"):  # fmt: skip
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
            counts[table] = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM tenants_auditevent WHERE tenant_id = %s", [big.id])
        counts["big tenant's audit events"] = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM provisioning_index WHERE tenant_id = %s", [big.id])
        counts["big tenant's indexes"] = int(cursor.fetchone()[0])
    seeded = time.monotonic()

    # The SQL each page's API calls send, and EXPLAIN ANALYZE of each list query.
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner_user)
    since = (now - timedelta(days=7)).isoformat()
    listed = client.get(f"/api/v1/tenants/{BIG}/indexes?limit={INDEX_LIST_PAGE}").json()
    list_names = [row["name"] for row in listed["data"]]
    calls = api_calls(BIG, since, list_names)
    explained: dict[str, Any] = {}
    for label, path in calls.items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {response.content[:300]!r}")
        body = response.json()
        queries = [q["sql"] for q in captured.captured_queries]
        entry: dict[str, Any] = {
            "path": path,
            "queries": len(queries),
            "rows": len(body["data"]) if isinstance(body, dict) and "data" in body else None,
            "next_cursor": bool(body.get("next_cursor")) if isinstance(body, dict) else None,
            "body_bytes": len(response.content),
        }
        plans: dict[str, Any] = {}
        for table in LIST_TABLES.get(label, ()):
            page_sql = next(
                (q for q in queries if f'FROM "{table}"' in q and "LIMIT" in q), None
            ) or next((q for q in queries if f'FROM "{table}"' in q), None)
            if page_sql is None:
                continue
            with connection.cursor() as cursor:
                plan: Any = None
                for _ in range(3):  # the first runs warm the cache; keep the last
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {page_sql}")
                    plan = cursor.fetchone()[0]
            if isinstance(plan, str):
                plan = json.loads(plan)
            plans[table] = {"sql": page_sql, **plan_summary(plan[0], table)}
        if plans:
            first = next(iter(plans.values()))
            entry["sql"] = first["sql"]
            entry["plan"] = {k: v for k, v in first.items() if k != "sql"}
        if len(plans) > 1:  # e.g. the usage summary's grouped queries, one per table
            entry["plans"] = plans
        explained[label] = entry
    return {
        "big": {"slug": big.slug, "id": str(big.id)},
        "small": {"slug": small.slug, "id": str(small.id)},
        "counts": counts,
        "index_list_names": list_names,
        "seconds": {
            "services": round(made - started, 1),
            "index_rows": round(indexes_done - made, 1),
            "audit_events": round(events_done - indexes_done, 1),
            "usage_errors_stored_and_vacuum": round(seeded - events_done, 1),
        },
        "api": explained,
    }


# The tables each call's list query reads (for EXPLAIN): the first statement reading each.
LIST_TABLES: dict[str, tuple[str, ...]] = {
    "tenants (limit 100)": ("tenants_tenant",),
    "usage/summary (overview, 7 days)": (
        "provisioning_usagerecord", "provisioning_errorrecord",
        "provisioning_storedvectorsrecord",
    ),
    "stored vectors (overview, all)": ("provisioning_index",),
    "indexes (index list, limit 50)": ("provisioning_index",),
    "stored vectors (index list, 50 names)": ("provisioning_index",),
    "audit events (limit 50)": ("tenants_auditevent",),
}  # fmt: skip


def api_calls(slug: str, since: str, list_names: Sequence[str]) -> dict[str, str]:
    """The API calls the three pages make on first load (frontend/src/pages/*.tsx): the layout
    (auth/me, the tenant, the tenant list), the overview (limits, usage/summary of the week,
    stored-vectors of every index), the index list (its first page, stored-vectors of those
    rows' names, limits; clusters only on a plan with the dedicated tier, not the seeded one),
    the audit log (its first page)."""
    t = f"/api/v1/tenants/{slug}"
    names = httpx.QueryParams([("index", name) for name in list_names])
    return {
        "auth/me": "/api/v1/auth/me",
        "tenant": t,
        "tenants (limit 100)": "/api/v1/tenants?limit=100",
        "limits": f"{t}/limits",
        "usage/summary (overview, 7 days)": f"{t}/usage/summary?{httpx.QueryParams(since=since)}",
        "stored vectors (overview, all)": f"{t}/usage/stored-vectors",
        "indexes (index list, limit 50)": f"{t}/indexes?limit={INDEX_LIST_PAGE}",
        "stored vectors (index list, 50 names)": f"{t}/usage/stored-vectors?{names}",
        "audit events (limit 50)": f"{t}/audit-events?limit=50",
    }


def _scan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Relation Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _scan_nodes(child)


def plan_summary(plan: dict[str, Any], table: str) -> dict[str, Any]:
    """Execution time and how the listed table was read."""
    scans = [n for n in _scan_nodes(plan["Plan"]) if n["Relation Name"] == table]
    out: dict[str, Any] = {
        "execution_ms": round(float(plan["Execution Time"]), 3),
        "top_node": plan["Plan"]["Node Type"],
    }
    if scans:
        scan = scans[0]
        loops = int(scan.get("Actual Loops", 1))
        index = f" using {scan['Index Name']}" if "Index Name" in scan else ""
        out.update(
            access=f"{scan['Node Type']}{index}",
            index_cond=scan.get("Index Cond", ""),
            rows_read=int(float(scan.get("Actual Rows", 0)) * loops),
            rows_removed_by_filter=int(scan.get("Rows Removed by Filter", 0)) * loops,
        )
    return out


# =========================================================================== the platform


def child_env(state: Path, *, pg_port: int, redis_port: int, http_port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED
    }
    env.update(
        {
            "VECTORPLANE_ENV": "development",
            "VECTORPLANE_STATE_DIR": str(state),
            "VECTORPLANE_PG_PORT": str(pg_port),
            # Not started: nothing on the measured pages talks to Redis (no index is created
            # through the API, so no Celery task is queued).
            "VECTORPLANE_REDIS_PORT": str(redis_port),
            "VECTORPLANE_HTTP_HOST": "127.0.0.1",
            "VECTORPLANE_HTTP_PORT": str(http_port),
            "VECTORPLANE_LOG_LEVEL": "WARNING",
            "VECTORPLANE_CONSOLE_DIR": str(DIST),
            "DJANGO_DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_child(env: dict[str, str], argv: list[str], what: str) -> str:
    result = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=SUBPROCESS_TIMEOUT, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BenchError(f"{what} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


@contextlib.contextmanager
def control_plane(env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    """The control plane as `python -m vectorplane run` serves it (bench/mgmt_api.py's
    `granian_server`; BenchError as this script's); yields its base URL."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with mgmt_api.granian_server(env, port, log_path) as base_url:
            yield base_url
    except mgmt_api.BenchError as exc:
        raise BenchError(str(exc)) from exc


# =========================================================================== the server alone


@contextlib.contextmanager
def session_client(base_url: str) -> Iterator[httpx.Client]:
    """An httpx client signed in as the owner (the console's own login call)."""
    with httpx.Client(
        base_url=base_url, timeout=30.0, headers={"Accept-Encoding": "gzip"}
    ) as client:
        client.get("/api/v1/auth/csrf").raise_for_status()
        token = client.cookies.get("csrftoken") or ""
        answer = client.post(
            "/api/v1/auth/login",
            json={"email": OWNER_EMAIL, "password": PASSWORD},
            headers={"X-CSRFToken": token, "Referer": base_url + "/console/sign-in"},
        )
        if answer.status_code != 200:
            raise BenchError(f"login: HTTP {answer.status_code} {answer.text[:300]}")
        yield client


def measure_api(base_url: str, calls: dict[str, str], *, requests: int) -> dict[str, Any]:
    """Sequential answer times of each API call (one keep-alive client, session auth)."""
    out: dict[str, Any] = {}
    with session_client(base_url) as client:
        for label, path in calls.items():
            times: list[float] = []
            answer = None
            for i in range(requests + 3):  # 3 unmeasured
                started = time.perf_counter()
                answer = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200:
                    raise BenchError(f"{path}: HTTP {answer.status_code} {answer.text[:300]}")
                if i >= 3:
                    times.append(elapsed)
            assert answer is not None
            raw = answer.content
            out[label] = {
                "ms": summary(times),
                "body_bytes": len(raw),
                "body_gzip_bytes": len(gzip.compress(raw, 6)),
                "content_encoding": answer.headers.get("content-encoding", ""),
            }
    return out


def static_encoding(base_url: str) -> dict[str, Any]:
    """What the server sends for the console's files when the client accepts gzip and br."""
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        html = client.get("/console/", headers={"Accept-Encoding": "gzip, br"})
        assets = sorted(set(re.findall(r'"(/console/assets/[^"]+)"', html.text)))
        for path in ["/console/", *assets]:
            answer = client.get(path, headers={"Accept-Encoding": "gzip, br"})
            out[path] = {
                "status": answer.status_code,
                "content_encoding": answer.headers.get("content-encoding", ""),
                "content_length": answer.headers.get("content-length"),
                "cache_control": answer.headers.get("cache-control", ""),
            }
    return out


# =========================================================================== the browser

# Installed before the page's own scripts in every document: the time (performance.now(),
# from navigation start) at which each thing first appears in the DOM, and the next frame.
MARKS_JS = """
(() => {
  const marks = {};
  window.__vpMarks = marks;
  const navLinks = () =>
    document.querySelectorAll('nav[aria-label="Console sections"] a[href]').length >= 5;
  const checks = {
    nav: navLinks,
    overview: () => navLinks() && document.querySelector('#plan-heading') !== null,
    index_row: () =>
      document.querySelector('[role="region"][aria-label="Indexes"] tbody tr') !== null,
    audit_row: () =>
      document.querySelector('[role="region"][aria-label="Audit events"] tbody tr') !== null,
  };
  const check = () => {
    for (const [name, test] of Object.entries(checks)) {
      if (!(name in marks) && test()) {
        marks[name] = performance.now();
        requestAnimationFrame(() => { marks[name + "_frame"] = performance.now(); });
      }
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true });
})();
"""

COLLECT_JS = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource").map((r) => ({
    url: r.name, start: r.startTime, request: r.requestStart, response_start: r.responseStart,
    end: r.responseEnd, transfer: r.transferSize, encoded: r.encodedBodySize,
    decoded: r.decodedBodySize, type: r.initiatorType,
  }));
  return {
    marks: { ...window.__vpMarks },
    nav: nav && {
      response_end: nav.responseEnd, dom_interactive: nav.domInteractive,
      dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
      transfer: nav.transferSize, encoded: nav.encodedBodySize, decoded: nav.decodedBodySize,
    },
    resources,
    rows: {
      indexes: document.querySelectorAll('[role="region"][aria-label="Indexes"] tbody tr').length,
      audit: document.querySelectorAll(
        '[role="region"][aria-label="Audit events"] tbody tr').length,
      stored: document.querySelectorAll(
        '[role="region"][aria-label="Stored vectors per index"] tbody tr').length,
    },
    dom_nodes: document.getElementsByTagName("*").length,
  };
}
"""


def kind_of(url: str) -> str:
    path = httpx.URL(url).path
    if "/api/" in path:
        return "api"
    if path.endswith(".js"):
        return "js"
    if path.endswith(".css"):
        return "css"
    if path.startswith("/console"):
        return "html"
    return "other"


def wait_marks(page: Any, names: Sequence[str], timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    condition = " && ".join(f"window.__vpMarks && '{n}_frame' in window.__vpMarks" for n in names)
    page.wait_for_function(f"() => {condition}", timeout=timeout_ms)


def cold_load(
    browser: Any, storage_state: dict[str, Any], url: str, marks: Sequence[str],
    *, sizes: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """One cold load of `url` in a fresh context (empty cache, the session cookie only)."""
    context = browser.new_context(
        storage_state=storage_state, viewport={"width": 1280, "height": 900}
    )
    try:
        context.add_init_script(MARKS_JS)
        page = context.new_page()
        finished: list[Any] = []
        if sizes:
            page.on("requestfinished", lambda request: finished.append(request))
        page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        wait_marks(page, marks)
        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)
        data: dict[str, Any] = page.evaluate(COLLECT_JS)
        data["has_load_more"] = page.get_by_role("button", name="Load more").count() > 0
        if sizes:
            data["network"] = network_log(finished)
        if "overview" in marks:
            # The navigation is usable: a click on "Indexes" shows the list (client-side).
            before = float(page.evaluate("() => performance.now()"))
            page.get_by_role("navigation", name="Console sections").get_by_role(
                "link", name="Indexes"
            ).click()
            wait_marks(page, ["index_row"])
            after = page.evaluate("() => window.__vpMarks")
            data["nav_to_indexes_ms"] = float(after["index_row_frame"]) - before
        return data
    finally:
        context.close()


def network_log(finished: list[Any]) -> list[dict[str, Any]]:
    """Playwright's view of each finished request: bytes on the wire (headers and body, from
    `request.sizes()`), the encoding the server chose, and what gzip -6 would make of the body."""
    out = []
    for request in finished:
        response = request.response()
        if response is None:
            continue
        wire = request.sizes()
        try:
            body = response.body()
        except Exception:  # a body the browser discarded
            body = b""
        out.append(
            {
                "url": request.url,
                "kind": kind_of(request.url),
                "status": response.status,
                "request_accept_encoding": request.headers.get("accept-encoding", ""),
                "content_encoding": response.headers.get("content-encoding", ""),
                "response_body_bytes": int(wire["responseBodySize"]),
                "response_header_bytes": int(wire["responseHeadersSize"]),
                "decoded_bytes": len(body),
                "gzip6_bytes": len(gzip.compress(body, 6)) if body else 0,
            }
        )
    return out


def sign_in(browser: Any, base_url: str) -> dict[str, Any]:
    """Signs in through the console's form once; the session is reused by every cold load."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base_url}/console/sign-in", timeout=PAGE_TIMEOUT_MS)
        page.get_by_label("Email").fill(OWNER_EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/console/t/"), timeout=PAGE_TIMEOUT_MS)
        state: dict[str, Any] = context.storage_state()
        return state
    finally:
        context.close()


def run_browser(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    pages = {
        "overview_big": (f"{base_url}/console/t/{BIG}", ["overview"]),
        "overview_small": (f"{base_url}/console/t/{SMALL}", ["overview"]),
        "indexes_big": (f"{base_url}/console/t/{BIG}/indexes", ["index_row"]),
        "audit_big": (f"{base_url}/console/t/{BIG}/audit", ["audit_row"]),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in pages}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(args.chromium), headless=True)
        try:
            log(f"chromium {browser.version}")
            state = sign_in(browser, base_url)
            # One unmeasured load of each page: the server's first requests (imports, caches).
            for url, marks in pages.values():
                cold_load(browser, state, url, marks)
            for round_number in range(args.runs):
                for name, (url, marks) in pages.items():
                    runs[name].append(
                        cold_load(browser, state, url, marks, sizes=round_number == 0)
                    )
                big = runs["overview_big"][-1]["marks"]
                log(f"round {round_number + 1}/{args.runs}: big overview interactive "
                    f"{big['overview_frame']:.0f} ms")  # fmt: skip
            version = browser.version
        finally:
            browser.close()
    return {"chromium": version, "runs": runs}


# =========================================================================== summarising


def first_load_bytes(network: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind: bytes on the wire (body as sent) and the gzip -6 size of the same bodies."""
    by_kind: dict[str, dict[str, int]] = {}
    for entry in network:
        kind = by_kind.setdefault(
            entry["kind"], {"requests": 0, "wire_body": 0, "wire_headers": 0, "decoded": 0,
                            "gzip6": 0}
        )  # fmt: skip
        kind["requests"] += 1
        kind["wire_body"] += entry["response_body_bytes"]
        kind["wire_headers"] += entry["response_header_bytes"]
        kind["decoded"] += entry["decoded_bytes"]
        kind["gzip6"] += entry["gzip6_bytes"]
    total = {k: sum(v[k] for v in by_kind.values()) for k in
             ("requests", "wire_body", "wire_headers", "decoded", "gzip6")}  # fmt: skip
    return {"by_kind": by_kind, "total": total}


def summarise_page(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def values(pick: Any) -> list[float]:
        out = []
        for run in runs:
            with contextlib.suppress(KeyError, TypeError):
                out.append(float(pick(run)))
        return out

    def api_ends(run: dict[str, Any]) -> list[float]:
        return [r["end"] for r in run["resources"] if kind_of(r["url"]) == "api"]

    result: dict[str, Any] = {
        "runs": len(runs),
        "response_end_ms": summary(values(lambda r: r["nav"]["response_end"])),
        "dom_content_loaded_ms": summary(values(lambda r: r["nav"]["dom_content_loaded"])),
        "load_ms": summary(values(lambda r: r["nav"]["load"])),
        "first_api_answer_ms": summary(values(lambda r: min(api_ends(r)))),
        "last_api_answer_ms": summary(values(lambda r: max(api_ends(r)))),
        "api_requests": summary(values(lambda r: len(api_ends(r)))),
        "dom_nodes": summary(values(lambda r: r["dom_nodes"])),
    }
    mark = {"overview": "overview", "indexes": "index_row", "audit": "audit_row"}[
        name.split("_")[0]
    ]
    result["ready_ms"] = summary(values(lambda r: r["marks"][f"{mark}_frame"]))
    result["ready_dom_ms"] = summary(values(lambda r: r["marks"][mark]))
    last = runs[-1]
    result["rows_rendered"] = last["rows"]
    result["has_load_more"] = last["has_load_more"]
    if name.startswith("overview"):
        result["nav_to_indexes_ms"] = summary(values(lambda r: r["nav_to_indexes_ms"]))
    # Per API path (query string dropped): time from request start to last byte, in the page.
    per_api: dict[str, list[float]] = {}
    for run in runs:
        for r in run["resources"]:
            if kind_of(r["url"]) == "api":
                path = httpx.URL(r["url"]).path
                per_api.setdefault(path, []).append(r["end"] - r["start"])
    result["api_in_page_ms"] = {
        path: {**summary(ms), "per_load": round(len(ms) / len(runs), 1)}
        for path, ms in per_api.items()
    }
    if runs and "network" in runs[0]:
        result["first_load_bytes"] = first_load_bytes(runs[0]["network"])
        result["network"] = runs[0]["network"]
    return result


def goals(pages: dict[str, Any]) -> dict[str, Any]:
    big = pages["overview_big"]
    total = big["first_load_bytes"]["total"]
    wire = total["wire_body"]
    return {
        "first_load_gzip_bytes_goal": GOAL_FIRST_LOAD_GZIP_BYTES,
        "first_load_wire_bytes": wire,
        "first_load_gzip6_bytes": total["gzip6"],
        "first_load_met_as_sent": wire <= GOAL_FIRST_LOAD_GZIP_BYTES,
        "first_load_met_if_gzipped": total["gzip6"] <= GOAL_FIRST_LOAD_GZIP_BYTES,
        "interactive_goal_ms": GOAL_INTERACTIVE_MS,
        "interactive_big_p50_ms": big["ready_ms"]["p50"],
        "interactive_big_p90_ms": big["ready_ms"]["p90"],
        "interactive_met_p50": big["ready_ms"]["p50"] <= GOAL_INTERACTIVE_MS,
        "interactive_met_p90": big["ready_ms"]["p90"] <= GOAL_INTERACTIVE_MS,
        "index_list_paginated": pages["indexes_big"]["has_load_more"],
        "audit_log_paginated": pages["audit_big"]["has_load_more"],
    }


def kb(n: float) -> str:
    return f"{n / 1024:.1f}"


def markdown(report: dict[str, Any]) -> str:
    meta, pages, api, g = report["meta"], report["pages"], report["api"], report["goals"]
    lines = [
        f"{meta['date']} (commit {meta['git_commit']}): {meta['cpus']} CPUs, load average "
        f"{meta['load_average']}, Chromium {meta['chromium']} headless, PostgreSQL "
        f"{meta['postgresql']}; {meta['runs']} cold loads per page; runtime "
        f"{meta['runtime_seconds']} s",
        "",
        "Seeded: " + ", ".join(f"{k} {v:,}" for k, v in report["seed"]["counts"].items()),
        "",
        "| Page (cold load) | ready p50 ms | ready p90 ms | DOMContentLoaded p50 | load p50 "
        "| first API answer p50 | last API answer p50 | API calls | rows | Load more |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    counts = report["seed"]["counts"]
    n_idx, n_ev = counts["big tenant's indexes"], counts["big tenant's audit events"]
    names = {
        "overview_big": f"overview, {n_idx:,} indexes (plan heading + nav)",
        "overview_small": "overview, 1 index (plan heading + nav)",
        "indexes_big": f"index list, {n_idx:,} indexes (first row)",
        "audit_big": f"audit log, {n_ev:,} events (first row)",
    }
    for name, page in pages.items():
        rows = page["rows_rendered"]
        shown = {"overview_big": rows["stored"], "overview_small": rows["stored"],
                 "indexes_big": rows["indexes"], "audit_big": rows["audit"]}[name]  # fmt: skip
        lines.append(
            f"| {names.get(name, name)} | {page['ready_ms']['p50']:.0f} | "
            f"{page['ready_ms']['p90']:.0f} | {page['dom_content_loaded_ms']['p50']:.0f} | "
            f"{page['load_ms']['p50']:.0f} | {page['first_api_answer_ms']['p50']:.0f} | "
            f"{page['last_api_answer_ms']['p50']:.0f} | {page['api_requests']['p50']:.0f} | "
            f"{shown} | {'yes' if page['has_load_more'] else 'no'} |"
        )
    for name in ("overview_big", "overview_small"):
        lines.append(
            f'\n{names[name]}: click on "Indexes" to its first row, p50 '
            f"{pages[name]['nav_to_indexes_ms']['p50']:.0f} ms"
        )
    fl = pages["overview_big"]["first_load_bytes"]
    lines += [
        "",
        "| First load of the big overview | requests | on the wire (body) KB | decoded KB "
        "| gzip -6 of the bodies KB |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, v in sorted(fl["by_kind"].items()):
        lines.append(
            f"| {kind} | {v['requests']} | {kb(v['wire_body'])} | {kb(v['decoded'])} | "
            f"{kb(v['gzip6'])} |"
        )
    t = fl["total"]
    lines.append(
        f"| **total** | {t['requests']} | {kb(t['wire_body'])} | {kb(t['decoded'])} | "
        f"{kb(t['gzip6'])} |"
    )
    encodings = sorted({f"{e['kind']}: {e['content_encoding'] or 'identity'}"
                        for e in pages["overview_big"]["network"]})  # fmt: skip
    lines += ["", "Content-Encoding sent to Chromium: " + ", ".join(encodings)]
    lines += [
        "",
        "| API call (server alone, httpx, sequential) | p50 ms | p90 ms | body KB | gzip KB "
        "| SQL statements | list query exec ms | access path |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    explained = report["seed"]["api"]
    for label, value in api.items():
        e = explained.get(label, {})
        plans = e.get("plans") or ({"": e["plan"]} if "plan" in e else {})
        exec_ms = " + ".join(str(plan["execution_ms"]) for plan in plans.values())
        access = "; ".join(
            (f"{table.removeprefix('provisioning_')}: " if len(plans) > 1 else "")
            + plan.get("access", "")
            for table, plan in plans.items()
        )
        lines.append(
            f"| {label} | {value['ms']['p50']:.1f} | {value['ms']['p90']:.1f} | "
            f"{kb(value['body_bytes'])} | {kb(value['body_gzip_bytes'])} | "
            f"{e.get('queries', '')} | {exec_ms} | {access} |"
        )
    lines += [
        "",
        "| Goal | result | met |",
        "|---|---|:---:|",
        f"| first load ≤ 250 KB gzip | {kb(g['first_load_wire_bytes'])} KB sent "
        f"({kb(g['first_load_gzip6_bytes'])} KB if gzipped) | "
        f"{'yes' if g['first_load_met_as_sent'] else '**no**'} as sent, "
        f"{'yes' if g['first_load_met_if_gzipped'] else 'no'} if gzipped |",
        f"| overview interactive ≤ 1 s | p50 {g['interactive_big_p50_ms']:.0f} ms, "
        f"p90 {g['interactive_big_p90_ms']:.0f} ms | "
        f"{'yes' if g['interactive_met_p90'] else '**no**'} |",
        f"| every list paginated | index list: Load more "
        f"{'yes' if g['index_list_paginated'] else 'no'}, audit log: Load more "
        f"{'yes' if g['audit_log_paginated'] else 'no'} | see docs/BENCHMARKS.md |",
    ]
    return "\n".join(lines)


# =========================================================================== the run


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!bench/results"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
                           check=False)  # fmt: skip
    return result.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not (DIST / "index.html").exists():
        raise BenchError("the console is not built: run `make frontend` first")
    if not args.chromium.exists():
        raise BenchError(f"{args.chromium} is missing: `make browser` installs it")
    if not port_free(args.pg_port):
        raise BenchError(f"127.0.0.1:{args.pg_port} is in use: pass another --pg-port")
    started = time.monotonic()
    state = Path(tempfile.mkdtemp(prefix="vpbench-console-"))
    log(f"state folder {state}; PostgreSQL on 127.0.0.1:{args.pg_port}")
    os.environ["VECTORPLANE_STATE_DIR"] = str(state)
    os.environ["VECTORPLANE_ENV"] = "development"
    http_port = args.http_port or free_port()
    env = child_env(state, pg_port=args.pg_port, redis_port=args.redis_port, http_port=http_port)
    pg = EmbeddedPostgres(state / "pg", args.pg_port)
    try:
        pg.start()
        log("migrate")
        run_child(env, [sys.executable, str(REPO_ROOT / "manage.py"), "migrate", "--noinput"],
                  "migrate")  # fmt: skip
        params = {
            "indexes": args.indexes,
            "events": args.events,
            "other_events": args.other_events,
            "usage_indexes": args.usage_indexes,
            "stored_indexes": args.stored_indexes,
        }
        log(f"seeding {params}")
        out = run_child(env, [sys.executable, str(Path(__file__).resolve()), "_seed",
                              json.dumps(params)], "seeding")  # fmt: skip
        seeded = json.loads(out.strip().splitlines()[-1])
        log(f"seeded {seeded['counts']} in {seeded['seconds']}")
        with psycopg_version(pg) as version:
            postgresql = version
        with control_plane(env, http_port, state / "logs" / "granian.log") as base_url:
            log(f"control plane at {base_url}")
            encoding = static_encoding(base_url)
            since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
            log(f"API calls, {args.api_requests} each")
            calls = api_calls(BIG, since, seeded["index_list_names"])
            api = measure_api(base_url, calls, requests=args.api_requests)
            log(f"browser: {args.runs} rounds of 4 cold loads")
            browser = run_browser(args, base_url)
        pages = {name: summarise_page(name, runs) for name, runs in browser["runs"].items()}
        report = {
            "meta": {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": " ".join([".venv/bin/python", "bench/console.py", *sys.argv[1:]]),
                "git_commit": git_commit(),
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "machine": platform.machine(),
                "system": f"{platform.system()} {platform.release()}",
                "python": platform.python_version(),
                "postgresql": postgresql,
                "chromium": browser["chromium"],
                "server": " ".join(["granian", *mgmt_api.GRANIAN_ARGS, mgmt_api.WSGI_APP]),
                "runs": args.runs,
                "api_requests": args.api_requests,
                "definitions": {
                    "ready_ms": "performance.now() (from navigation start) at the first "
                    "animation frame after the page's marker is in the DOM: overview = "
                    "#plan-heading and the 5 navigation links; index list / audit log = the "
                    "first table row",
                    "first_load_bytes": "every response of the big overview's cold load up "
                    "to network idle (Playwright request.sizes(): body bytes as sent), and "
                    "gzip -6 of the same decoded bodies",
                },
                "runtime_seconds": round(time.monotonic() - started, 1),
            },
            "seed": seeded,
            "static_encoding": encoding,
            "api": api,
            "pages": pages,
        }
        report["goals"] = goals(pages)
        return report
    finally:
        log("stopping PostgreSQL")
        try:
            pg.stop()
        finally:
            if args.keep:
                log(f"kept {state} (PostgreSQL is stopped)")
            else:
                shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def psycopg_version(pg: EmbeddedPostgres) -> Iterator[str]:
    with pg.superuser_connect(config.EMBEDDED_DB_NAME) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    yield str(row[0]) if row else "?"


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/console.py",
        description="Cold loads of the web console in Chromium against a seeded control plane.",
    )
    parser.add_argument("--indexes", type=positive, default=1000, help="big tenant's indexes")
    parser.add_argument("--events", type=positive, default=100_000, help="its audit events")
    parser.add_argument("--other-events", type=int, default=20_000,
                        help="audit events of other tenants, interleaved")  # fmt: skip
    parser.add_argument("--usage-indexes", type=int, default=10,
                        help="indexes with a week of hourly usage rows")  # fmt: skip
    parser.add_argument("--stored-indexes", type=int, default=None,
                        help="indexes with a week of hourly stored-vectors samples "
                        "(default: all of the big tenant's)")  # fmt: skip
    parser.add_argument("--runs", type=positive, default=10, help="cold loads per page")
    parser.add_argument("--api-requests", type=positive, default=30, help="per API call")
    parser.add_argument("--pg-port", type=positive, default=54441)
    parser.add_argument(
        "--redis-port",
        type=positive,
        default=63841,
        help="passed to the servers; not started (nothing measured uses it)",
    )
    parser.add_argument("--http-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    parser.add_argument("--output", type=Path, default=None,
                        help="default bench/results/console-<date>.json")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    args = parser.parse_args(argv)
    if args.indexes < 60:
        parser.error("--indexes must be at least 60 (more than a page of the index list)")
    if args.output is None:
        args.output = RESULTS_DIR / f"console-{datetime.now(UTC):%Y-%m-%d}.json"
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_seed"]:
        print(json.dumps(seed_main(json.loads(argv[1])), default=str))
        return 0
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench/console.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/console.py: interrupted; stopped the server and PostgreSQL", file=sys.stderr)
        return 130
    print(markdown(report))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"wrote {args.output} (total {report['meta']['runtime_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
