"""Management API benchmark: p50/p95/p99 of list and create calls through the real server.

    .venv/bin/python bench/mgmt_api.py                      # 10,000 tenants, 100,000 keys
    .venv/bin/python bench/mgmt_api.py --tenants 500 --keys 5000 --requests 100   # quick look

What it does, all on 127.0.0.1 and in a temporary state folder of its own (never the
developer's `.state/`, database or pepper):

1. starts a private embedded PostgreSQL 18 on a free port (`vectorplane.embedded`);
2. `manage.py migrate`;
3. seeds with COPY: N tenants (one owner user each), K API keys with real HMAC hashes under the
   benchmark's own pepper (one "big" tenant holds `--big-keys` of them, the rest are spread
   evenly), one audit event per tenant and per key, an operator (staff) user, and personal
   access tokens for the users the requests are made as; then VACUUM ANALYZE;
4. starts granian exactly as `python -m vectorplane run` does (WSGI, 2 workers);
5. per endpoint: a warm-up, then `--requests` requests sequentially (one keep-alive client),
   then `--requests` more from `--concurrency` clients in parallel; records p50/p95/p99/max
   and throughput, and EXPLAIN ANALYZE of the list queries' first and deep pages;
6. prints a markdown table, writes `bench/results/mgmt_api.json`, and tears everything down
   (server, PostgreSQL, state folder unless `--keep`).

The goal of issue 2 is p95 <= 50 ms per endpoint, and list pages whose cost does not grow with
the table (first page vs a page deep in the table; a small tenant vs the big one).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python bench/mgmt_api.py`
    sys.path.insert(0, str(REPO_ROOT))

from tenants import credentials  # noqa: E402
from vectorplane import config  # noqa: E402
from vectorplane.embedded import EmbeddedPostgres  # noqa: E402

GOAL_P95_MS = 50.0
PAGE_SIZE = 20  # the API's default page size: what the measured list calls ask for
WALK_PAGE_SIZE = 100  # the API's maximum, used to walk to a deep cursor quickly
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results" / "mgmt_api.json"
# As `python -m vectorplane run` serves the control plane (minus the access log).
GRANIAN_ARGS = (
    "--interface", "wsgi", "--host", "127.0.0.1", "--workers", "2",
    "--blocking-threads", "16", "--backpressure", "16", "--no-access-log",
)  # fmt: skip
WSGI_APP = "controlplane.wsgi:application"
SERVER_START_TIMEOUT = 60.0
SUBPROCESS_TIMEOUT = 600.0
PREFIX_ALPHABET = string.ascii_lowercase + string.digits

# Variables of the caller's environment that could point the benchmark at something else.
_SCRUBBED_PREFIXES = ("VECTORPLANE_", "GRANIAN_", "DJANGO_", "PG")
_SCRUBBED = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_CONN_MAX_AGE"}


class BenchError(RuntimeError):
    """The benchmark could not set up, or a request did not answer as expected."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# =========================================================================== environment


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(state: Path, *, pg_port: int, http_port: int, pepper: str) -> dict[str, str]:
    """Environment of every process the benchmark starts: only its own state and ports."""
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
            "VECTORPLANE_HTTP_HOST": "127.0.0.1",
            "VECTORPLANE_HTTP_PORT": str(http_port),
            # An unused port: nothing on the measured paths talks to Redis.
            "VECTORPLANE_REDIS_PORT": str(free_port()),
            "VECTORPLANE_KEY_PEPPER": pepper,
            "VECTORPLANE_LOG_LEVEL": "WARNING",
            "DJANGO_DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_manage(env: dict[str, str], *args: str) -> None:
    argv = [sys.executable, str(REPO_ROOT / "manage.py"), *args]
    result = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


# =========================================================================== seeding


@dataclass(frozen=True)
class TenantFixture:
    slug: str
    id: str
    owner_token: str
    keys: int
    audit_events: int


@dataclass(frozen=True)
class Seeded:
    operator_token: str
    creator_token: str
    admin_key: str  # an admin-scoped API key of the small tenant
    small: TenantFixture
    big: TenantFixture
    write: TenantFixture
    counts: dict[str, int]
    seconds: float


def _prefix(used: set[str]) -> str:
    for _ in range(100):
        value = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(credentials.PREFIX_LENGTH))
        if value not in used:
            used.add(value)
            return value
    raise BenchError("could not draw a unique prefix")


def _secret(kind: str, used: set[str], pepper: str) -> tuple[str, str, str]:
    """(prefix, whole secret, stored hash) exactly as `tenants.credentials.generate` makes."""
    prefix = _prefix(used)
    whole = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return prefix, whole, credentials.hash_secret(whole, pepper=pepper)


def _keys_per_tenant(tenants: int, keys: int, big: int, big_index: int) -> list[int]:
    others = tenants - 1
    rest = keys - big
    counts = [rest // others + (1 if i < rest % others else 0) for i in range(others)]
    counts.insert(big_index, big)
    return counts


def seed(url: str, *, tenants: int, keys: int, big_keys: int, pepper: str) -> Seeded:
    """Bulk-load the tables with COPY (minutes of ORM inserts become seconds)."""
    started = time.monotonic()
    rng = random.Random(20250601)  # the shape is reproducible; secrets are not
    now = datetime.now(UTC).replace(microsecond=0)
    big_index, small_index, write_index = tenants // 2, tenants // 4, tenants // 4 + 1
    per_tenant = _keys_per_tenant(tenants, keys, big_keys, big_index)
    used_prefixes: set[str] = set()

    # Users: 1 = operator (staff), 2 = creator (makes tenants through the API), 3.. = owners.
    operator_id, creator_id, first_owner_id = 1, 2, 3
    tenant_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(tenants)]
    # One tenant a minute, oldest first; the newest was created a minute ago.
    tenant_created = [now - timedelta(minutes=tenants - i) for i in range(tenants)]
    tokens: dict[int, str] = {}
    admin_key = ""

    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT id FROM tenants_plan WHERE slug = 'free'").fetchone()
        if row is None:
            raise BenchError("the free plan is missing (did migrate run?)")
        plan_id = row[0]
        with conn.cursor() as cur:
            with cur.copy(
                "COPY auth_user (id, password, last_login, is_superuser, username, first_name, "
                "last_name, email, is_staff, is_active, date_joined) FROM STDIN"
            ) as copy:
                specials = [(operator_id, "operator", True), (creator_id, "creator", False)]
                for user_id, name, staff in specials:
                    email = f"{name}@bench.invalid"
                    copy.write_row(
                        (user_id, "!bench", None, False, email, name, "", email, staff, True, now)
                    )
                for i in range(tenants):
                    email = f"owner{i}@bench.invalid"
                    copy.write_row(
                        (first_owner_id + i, "!bench", None, False, email, f"Owner{i}", "",
                         email, False, True, tenant_created[i])
                    )  # fmt: skip
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('auth_user', 'id'), "
                "(SELECT max(id) FROM auth_user))"
            )

            with cur.copy(
                "COPY tenants_tenant (id, slug, name, status, status_reason, plan_id, created_at, "
                "updated_at, suspended_at, deleted_at) FROM STDIN"
            ) as copy:
                for i in range(tenants):
                    copy.write_row(
                        (tenant_ids[i], f"bench-{i:06d}", f"Bench tenant {i}", "active", "",
                         plan_id, tenant_created[i], tenant_created[i], None, None)
                    )  # fmt: skip

            with cur.copy(
                "COPY tenants_membership (role, created_at, updated_at, tenant_id, user_id) "
                "FROM STDIN"
            ) as copy:
                for i in range(tenants):
                    at = tenant_created[i]
                    copy.write_row(("owner", at, at, tenant_ids[i], first_owner_id + i))

            # Personal access tokens of the users the requests are made as.
            token_users = {
                operator_id: operator_id,
                creator_id: creator_id,
                **{first_owner_id + i: first_owner_id + i for i in (small_index, big_index,
                                                                    write_index)},
            }  # fmt: skip
            with cur.copy(
                "COPY tenants_personalaccesstoken (id, name, prefix, secret_hash, expires_at, "
                "revoked_at, last_used_at, created_at, user_id) FROM STDIN"
            ) as copy:
                for user_id in token_users:
                    prefix, whole, digest = _secret(credentials.TOKEN_KIND, used_prefixes, pepper)
                    tokens[user_id] = whole
                    copy.write_row(
                        (uuid.uuid4(), "bench", prefix, digest, None, None, None, now, user_id)
                    )

            key_rows: list[tuple[Any, ...]] = []
            audit_rows: list[tuple[Any, ...]] = []
            for i in range(tenants):
                owner = first_owner_id + i
                owner_label = f"owner{i}@bench.invalid"
                audit_rows.append(
                    ("user", owner_label, False, "tenant.created", "tenant", str(tenant_ids[i]),
                     f"bench-{i:06d}", None, "bench-seed",
                     Jsonb({"name": f"Bench tenant {i}", "plan": "free"}),
                     tenant_created[i], None, owner, tenant_ids[i])
                )  # fmt: skip
                for k in range(per_tenant[i]):
                    key_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                    prefix, whole, digest = _secret(credentials.KEY_KIND, used_prefixes, pepper)
                    admin = i == small_index and k == 0
                    if admin:
                        admin_key = whole
                    scopes = ["admin"] if admin else rng.choice((["read"], ["read", "write"]))
                    jitter = timedelta(seconds=k + 1, microseconds=rng.randrange(1_000_000))
                    at = tenant_created[i] + jitter
                    name = f"key-{k}"
                    key_rows.append(
                        (key_id, name, prefix, digest, scopes, [], [], None, None, None, None,
                         at, at, owner, None, tenant_ids[i])
                    )  # fmt: skip
                    audit_rows.append(
                        ("user", owner_label, True, "api_key.created", "api_key", str(key_id),
                         f"{name} (vpk_{prefix})", "127.0.0.1", "bench-seed",
                         Jsonb({"scopes": scopes, "index_names": [], "namespaces": [],
                                "expires_at": None, "rotated_from": None}),
                         at, None, owner, tenant_ids[i])
                    )  # fmt: skip
            with cur.copy(
                "COPY tenants_apikey (id, name, prefix, secret_hash, scopes, index_names, "
                "namespaces, expires_at, revoke_after, revoked_at, last_used_at, created_at, "
                "updated_at, created_by_id, rotated_from_id, tenant_id) FROM STDIN"
            ) as copy:
                for key_row in key_rows:
                    copy.write_row(key_row)
            # Audit ids grow with time, as they do when the events are written live.
            audit_rows.sort(key=lambda r: r[10])
            with cur.copy(
                "COPY tenants_auditevent (actor_type, actor_label, via_token, action, "
                "target_type, target_id, target_label, source_ip, user_agent, details, "
                "created_at, actor_api_key_id, actor_user_id, tenant_id) FROM STDIN"
            ) as copy:
                for audit_row in audit_rows:
                    copy.write_row(audit_row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        counts: dict[str, int] = {}
        for table in ("auth_user", "tenants_tenant", "tenants_membership", "tenants_apikey",
                      "tenants_auditevent", "tenants_personalaccesstoken"):  # fmt: skip
            counted = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            counts[table] = int(counted[0]) if counted else 0

    def fixture(index: int) -> TenantFixture:
        return TenantFixture(
            slug=f"bench-{index:06d}",
            id=str(tenant_ids[index]),
            owner_token=tokens[first_owner_id + index],
            keys=per_tenant[index],
            audit_events=per_tenant[index] + 1,
        )

    return Seeded(
        operator_token=tokens[operator_id],
        creator_token=tokens[creator_id],
        admin_key=admin_key,
        small=fixture(small_index),
        big=fixture(big_index),
        write=fixture(write_index),
        counts=counts,
        seconds=time.monotonic() - started,
    )


# =========================================================================== server


@contextlib.contextmanager
def granian_server(env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    """The control plane as `python -m vectorplane run` serves it; yields its base URL."""
    argv = [sys.executable, "-m", "granian", *GRANIAN_ARGS, "--port", str(port), WSGI_APP]
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we stop it and its workers
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise BenchError(f"granian exited with {process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"granian not ready after {SERVER_START_TIMEOUT:.0f}s")
            time.sleep(0.2)
        yield base_url
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# =========================================================================== measuring


@dataclass(frozen=True)
class Call:
    """One measured endpoint. `path(i)` and `body(i)` get a request number, unique per run."""

    label: str
    kind: str  # list | get | create
    method: str
    token: str
    path: Callable[[int], str]
    body: Callable[[int], dict[str, Any]] | None = None
    expect: int = 200


@dataclass
class Stats:
    label: str
    kind: str
    mode: str  # sequential | concurrent
    concurrency: int
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    throughput_rps: float
    meets_goal: bool


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _headers(call: Call) -> dict[str, str]:
    return {"Authorization": f"Bearer {call.token}", "User-Agent": "vectorplane-bench/1"}


def _one(client: httpx.Client, call: Call, number: int) -> float:
    body = call.body(number) if call.body is not None else None
    started = time.perf_counter()
    response = client.request(call.method, call.path(number), json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != call.expect:
        raise BenchError(
            f"{call.label}: HTTP {response.status_code} (expected {call.expect}): "
            f"{response.text[:500]}"
        )
    return elapsed


class Counter:
    """Request numbers unique across every run of a call (create bodies must not collide)."""

    def __init__(self) -> None:
        self._next = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> range:
        with self._lock:
            start = self._next
            self._next += count
        return range(start, start + count)


def measure(
    base_url: str,
    call: Call,
    *,
    requests: int,
    concurrency: int,
    warmup: int,
    numbers: Counter,
    timeout: float,
) -> Stats:
    """`concurrency` keep-alive clients in parallel, `requests` measured requests in total."""
    shares = [requests // concurrency + (1 if i < requests % concurrency else 0)
              for i in range(concurrency)]  # fmt: skip
    warm_each = max(1, math.ceil(warmup / concurrency))
    barrier = threading.Barrier(concurrency + 1, timeout=timeout * (warm_each + 1))

    def worker(share: int) -> list[float]:
        with httpx.Client(base_url=base_url, headers=_headers(call), timeout=timeout) as client:
            try:
                for number in numbers.take(warm_each):
                    _one(client, call, number)
            except BaseException:
                barrier.abort()  # release the others at once
                raise
            barrier.wait()
            return [_one(client, call, number) for number in numbers.take(share)]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker, share) for share in shares]
        # A worker that fails during warm-up breaks the barrier; its exception is raised below.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        started = time.perf_counter()
        errors = [exc for future in futures if (exc := future.exception()) is not None]
        wall = time.perf_counter() - started
    if errors:
        # The worker that failed first, not the ones it released from the barrier.
        raise next(
            (e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0]
        )
    latencies = sorted(ms for future in futures for ms in future.result())
    p95 = percentile(latencies, 95)
    return Stats(
        label=call.label,
        kind=call.kind,
        mode="sequential" if concurrency == 1 else "concurrent",
        concurrency=concurrency,
        requests=len(latencies),
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(p95, 2),
        p99_ms=round(percentile(latencies, 99), 2),
        max_ms=round(latencies[-1], 2),
        mean_ms=round(sum(latencies) / len(latencies), 2),
        throughput_rps=round(len(latencies) / wall, 1),
        meets_goal=p95 <= GOAL_P95_MS,
    )


def deep_cursor(
    base_url: str, path: str, token: str, *, rows: int, timeout: float
) -> tuple[str, int]:
    """The `next_cursor` after about `rows` rows, walked through the API itself (its real
    cursor format). Returns (cursor, rows skipped)."""
    pages = max(1, rows // WALK_PAGE_SIZE)
    separator = "&" if "?" in path else "?"
    cursor: str | None = None
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                      timeout=timeout) as client:  # fmt: skip
        for _ in range(pages):
            query = f"{separator}limit={WALK_PAGE_SIZE}" + (f"&cursor={cursor}" if cursor else "")
            response = client.get(path + query)
            if response.status_code != 200:
                raise BenchError(f"walking {path}: HTTP {response.status_code} {response.text}")
            cursor = response.json()["next_cursor"]
            if cursor is None:
                raise BenchError(f"walking {path}: the list ended before {rows} rows")
        # The measured page must be a full one.
        response = client.get(f"{path}{separator}cursor={cursor}")
        if response.status_code != 200 or len(response.json()["data"]) != PAGE_SIZE:
            raise BenchError(f"deep page of {path} is not a full page: {response.text[:300]}")
    assert cursor is not None
    return cursor, pages * WALK_PAGE_SIZE


# =========================================================================== EXPLAIN


def _scan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Relation Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _scan_nodes(child)


def _plan_summary(plan: dict[str, Any], table: str) -> dict[str, Any]:
    """Execution time and how the listed table was read: the access path, the index
    condition, and how many rows the scan read only to throw them away (the cursor
    condition applied as a filter, not as an index bound)."""
    scan = next(n for n in _scan_nodes(plan["Plan"]) if n["Relation Name"] == table)
    loops = int(scan.get("Actual Loops", 1))
    index = f" using {scan['Index Name']}" if "Index Name" in scan else ""
    return {
        "execution_ms": round(float(plan["Execution Time"]), 3),
        "access": f"{scan['Node Type']}{index}",
        "index_cond": scan.get("Index Cond", ""),
        "filter": scan.get("Filter", ""),
        "rows_returned": int(float(scan.get("Actual Rows", 0)) * loops),
        "rows_removed_by_filter": int(scan.get("Rows Removed by Filter", 0)) * loops,
        "shared_buffers": int(plan["Plan"].get("Shared Hit Blocks", 0))
        + int(plan["Plan"].get("Shared Read Blocks", 0)),
    }


# The SQL Django sends for these pages (`controlplane.api.pagination.paginate`: newest first
# on (created_at, id); a cursor becomes `a <= x AND (a < x OR (b < y AND a = x))`, the first
# term being the index bound), with the selected columns shortened. The "row-value cursor"
# variants, `(a, b) < (x, y)`, are the other way to spell the bound, kept for comparison.
_TENANTS_PAGE = (
    "SELECT t.*, p.slug, (SELECT m.role FROM tenants_membership m WHERE m.tenant_id = t.id "
    "AND m.user_id = %s ORDER BY m.created_at DESC, m.id DESC LIMIT 1) AS caller_role "
    "FROM tenants_tenant t JOIN tenants_plan p ON t.plan_id = p.id {where} "
    "ORDER BY t.created_at DESC, t.id DESC LIMIT 21"
)
_KEYS_PAGE = (
    "SELECT * FROM tenants_apikey k WHERE k.tenant_id = %s {where} "
    "ORDER BY k.created_at DESC, k.id DESC LIMIT 21"
)
_AUDIT_PAGE = (
    "SELECT * FROM tenants_auditevent a WHERE a.tenant_id = %s {where} "
    "ORDER BY a.created_at DESC, a.id DESC LIMIT 21"
)
_CURSOR = (
    "({a}.created_at <= %s::timestamptz AND ({a}.created_at < %s::timestamptz "
    "OR ({a}.id < %s::{t} AND {a}.created_at = %s)))"
)
_ROW_CURSOR = "({a}.created_at, {a}.id) < (%s::timestamptz, %s::{t})"


def _decode_cursor(cursor: str) -> list[Any]:
    padded = cursor + "=" * (-len(cursor) % 4)
    values: list[Any] = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    return values


def explain_lists(url: str, seeded: Seeded, cursors: dict[str, str]) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the first and the deep page of each measured list."""
    operator = 1
    t_at, t_id = _decode_cursor(cursors["tenants"])
    k_at, k_id = _decode_cursor(cursors["big_keys"])
    a_at, a_id = _decode_cursor(cursors["big_audit"])
    big, small = seeded.big.id, seeded.small.id
    tc, kc = _CURSOR.format(a="t", t="uuid"), _CURSOR.format(a="k", t="uuid")
    ac = _CURSOR.format(a="a", t="bigint")
    queries: dict[str, tuple[str, str, tuple[Any, ...]]] = {
        "tenants?all=true, first page": (
            "tenants_tenant", _TENANTS_PAGE.format(where=""), (operator,)),
        "tenants?all=true, deep page": (
            "tenants_tenant", _TENANTS_PAGE.format(where="WHERE " + tc),
            (operator, t_at, t_at, t_id, t_at)),
        "tenants?all=true, deep page, row-value cursor": (
            "tenants_tenant",
            _TENANTS_PAGE.format(where="WHERE " + _ROW_CURSOR.format(a="t", t="uuid")),
            (operator, t_at, t_id)),
        "small tenant api-keys, first page": (
            "tenants_apikey", _KEYS_PAGE.format(where=""), (small,)),
        "big tenant api-keys, first page": (
            "tenants_apikey", _KEYS_PAGE.format(where=""), (big,)),
        "big tenant api-keys, deep page": (
            "tenants_apikey", _KEYS_PAGE.format(where="AND " + kc),
            (big, k_at, k_at, k_id, k_at)),
        "big tenant api-keys, deep page, row-value cursor": (
            "tenants_apikey",
            _KEYS_PAGE.format(where="AND " + _ROW_CURSOR.format(a="k", t="uuid")),
            (big, k_at, k_id)),
        "small tenant audit-events, first page": (
            "tenants_auditevent", _AUDIT_PAGE.format(where=""), (small,)),
        "big tenant audit-events, first page": (
            "tenants_auditevent", _AUDIT_PAGE.format(where=""), (big,)),
        "big tenant audit-events, deep page": (
            "tenants_auditevent", _AUDIT_PAGE.format(where="AND " + ac),
            (big, a_at, a_at, a_id, a_at)),
    }  # fmt: skip
    out: dict[str, Any] = {}
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
        for name, (table, query, params) in queries.items():
            row = None
            for _ in range(3):  # the first runs warm the cache; keep the last
                row = conn.execute(
                    f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", params
                ).fetchone()
            assert row is not None
            out[name] = _plan_summary(row[0][0], table)
    return out


# =========================================================================== the run


@dataclass
class Report:
    meta: dict[str, Any]
    seed: dict[str, Any]
    results: list[Stats] = field(default_factory=list)
    scaling: dict[str, Any] = field(default_factory=dict)
    explain: dict[str, Any] = field(default_factory=dict)
    slug_collisions: dict[str, Any] = field(default_factory=dict)


def build_calls(seeded: Seeded, cursors: dict[str, str]) -> list[Call]:
    small, big, write = seeded.small, seeded.big, seeded.write
    run_tag = secrets.token_hex(3)

    def fixed(path: str) -> Callable[[int], str]:
        return lambda _number: path

    return [
        Call("GET /tenants?all=true (operator, first page)", "list", "GET",
             seeded.operator_token, fixed("/api/v1/tenants?all=true")),
        Call("GET /tenants?all=true (operator, deep page)", "list", "GET",
             seeded.operator_token,
             fixed(f"/api/v1/tenants?all=true&cursor={cursors['tenants']}")),
        Call("GET /tenants (owner's own tenants)", "list", "GET", small.owner_token,
             fixed("/api/v1/tenants")),
        Call("GET /tenants/{small}", "get", "GET", small.owner_token,
             fixed(f"/api/v1/tenants/{small.slug}")),
        Call(f"GET /tenants/{{small}}/api-keys ({small.keys} keys)", "list", "GET",
             small.owner_token, fixed(f"/api/v1/tenants/{small.slug}/api-keys")),
        Call("GET /tenants/{small}/api-keys (admin API key auth)", "list", "GET",
             seeded.admin_key, fixed(f"/api/v1/tenants/{small.slug}/api-keys")),
        Call(f"GET /tenants/{{big}}/api-keys ({big.keys} keys, first page)", "list", "GET",
             big.owner_token, fixed(f"/api/v1/tenants/{big.slug}/api-keys")),
        Call(f"GET /tenants/{{big}}/api-keys ({big.keys} keys, deep page)", "list", "GET",
             big.owner_token,
             fixed(f"/api/v1/tenants/{big.slug}/api-keys?cursor={cursors['big_keys']}")),
        Call("GET /tenants/{big}/audit-events (first page)", "list", "GET", big.owner_token,
             fixed(f"/api/v1/tenants/{big.slug}/audit-events")),
        Call("GET /tenants/{big}/audit-events (deep page)", "list", "GET", big.owner_token,
             fixed(f"/api/v1/tenants/{big.slug}/audit-events?cursor={cursors['big_audit']}")),
        Call("POST /tenants/{t}/api-keys (create key)", "create", "POST", write.owner_token,
             fixed(f"/api/v1/tenants/{write.slug}/api-keys"),
             body=lambda n: {"name": f"bench-{run_tag}-{n}", "scopes": ["read", "write"]},
             expect=201),
        Call("POST /tenants (create tenant)", "create", "POST", seeded.creator_token,
             fixed("/api/v1/tenants"),
             body=lambda n: {"name": f"Created {run_tag} {n}"}, expect=201),
    ]  # fmt: skip


def slug_collisions(base_url: str, token: str, *, count: int, timeout: float) -> dict[str, Any]:
    """POST /tenants with the same name `count` times: each derived slug probes name, name-2,
    ... one query at a time (`services._unique_slug`), so the n-th create runs n queries."""
    latencies: list[float] = []
    name = f"Collide {secrets.token_hex(3)}"
    call = Call("POST /tenants (same name)", "create", "POST", token, lambda _n: "/api/v1/tenants",
                body=lambda _n: {"name": name}, expect=201)  # fmt: skip
    with httpx.Client(base_url=base_url, headers=_headers(call), timeout=timeout) as client:
        latencies = [_one(client, call, n) for n in range(count)]
    tenth = max(1, count // 10)
    return {
        "creates": count,
        "first_tenth_mean_ms": round(sum(latencies[:tenth]) / tenth, 2),
        "last_tenth_mean_ms": round(sum(latencies[-tenth:]) / tenth, 2),
        "last_ms": round(latencies[-1], 2),
    }


def scaling_summary(results: list[Stats]) -> dict[str, Any]:
    def p50(fragment: str, mode: str = "sequential") -> float:
        for stats in results:
            if fragment in stats.label and stats.mode == mode:
                return stats.p50_ms
        return math.nan

    pairs = {
        "tenants?all=true: deep / first page": ("operator, deep page", "operator, first page"),
        "big tenant api-keys: deep / first page": ("keys, deep page", "keys, first page"),
        "api-keys first page: big / small tenant": ("keys, first page", "{small}/api-keys ("),
        "audit-events: deep / first page": ("audit-events (deep", "audit-events (first"),
    }
    out: dict[str, Any] = {}
    for name, (numerator, denominator) in pairs.items():
        a, b = p50(numerator), p50(denominator)
        out[name] = {"p50_ms": [a, b], "ratio": round(a / b, 2) if b else math.nan}
    return out


def markdown(report: Report) -> str:
    meta = report.meta
    lines = [
        f"{meta['date']}: {meta['cpus']} CPUs ({meta['machine']}, {meta['system']}), "
        f"Python {meta['python']}, PostgreSQL {meta['postgresql']} (embedded); "
        f"{meta['requests']} requests per endpoint and mode after {meta['warmup']} warm-up, "
        f"page size {meta['page_size']}; runtime {meta['runtime_seconds']} s",
        "",
        "Seeded in {:.1f} s: {}".format(
            report.seed["seconds"],
            ", ".join(f"{table} {count:,}" for table, count in report.seed["counts"].items()),
        ),
        "",
        "| Endpoint | Mode | n | p50 ms | p95 ms | p99 ms | max ms | req/s | p95 ≤ 50 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in report.results:
        mode = "seq" if s.mode == "sequential" else f"{s.concurrency} clients"
        lines.append(
            f"| {s.label} | {mode} | {s.requests} | {s.p50_ms:.1f} | {s.p95_ms:.1f} | "
            f"{s.p99_ms:.1f} | {s.max_ms:.1f} | {s.throughput_rps:.0f} | "
            f"{'yes' if s.meets_goal else '**no**'} |"
        )
    lines += ["", "| List scaling (sequential p50) | p50 ms | ratio |", "|---|---|---:|"]
    for name, value in report.scaling.items():
        a, b = value["p50_ms"]
        lines.append(f"| {name} | {a:.1f} / {b:.1f} | {value['ratio']:.2f} |")
    if report.explain:
        lines += [
            "",
            "| Query (EXPLAIN ANALYZE) | exec ms | access path | rows removed by filter |",
            "|---|---:|---|---:|",
        ]
        for name, value in report.explain.items():
            lines.append(
                f"| {name} | {value['execution_ms']:.3f} | {value['access']} | "
                f"{value['rows_removed_by_filter']} |"
            )
    if report.slug_collisions:
        c = report.slug_collisions
        lines += [
            "",
            f"POST /tenants with one name x{c['creates']}: first tenth {c['first_tenth_mean_ms']}"
            f" ms, last tenth {c['last_tenth_mean_ms']} ms, last {c['last_ms']} ms",
        ]
    return "\n".join(lines)


def write_json(path: Path, report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    payload = asdict(report)
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def machine_info(url: str) -> dict[str, Any]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": row[0] if row else "?",
    }


def run(args: argparse.Namespace) -> Report:
    state = Path(tempfile.mkdtemp(prefix="vpbench-")) if args.state_dir is None else args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    log(f"state folder {state}")
    # Our own process reads the state folder's secrets too (PostgreSQL password, pepper).
    os.environ["VECTORPLANE_STATE_DIR"] = str(state)
    os.environ.pop("VECTORPLANE_KEY_PEPPER", None)
    os.environ["VECTORPLANE_ENV"] = "development"
    pepper = config.state_secret("key-pepper")
    pg_port, http_port = free_port(), free_port()
    env = child_env(state, pg_port=pg_port, http_port=http_port, pepper=pepper)
    pg = EmbeddedPostgres(state / "pg", pg_port)
    started = time.monotonic()
    try:
        log(f"starting embedded PostgreSQL on 127.0.0.1:{pg_port}")
        pg.start()
        url = pg.url()
        env["DATABASE_URL"] = url
        log("migrate")
        run_manage(env, "migrate", "--noinput")
        log(f"seeding {args.tenants} tenants, {args.keys} keys ({args.big_keys} in the big one)")
        seeded = seed(
            url, tenants=args.tenants, keys=args.keys, big_keys=args.big_keys, pepper=pepper
        )
        log(f"seeded in {seeded.seconds:.1f}s: {seeded.counts}")
        report = Report(
            meta={
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": " ".join([".venv/bin/python", "bench/mgmt_api.py", *sys.argv[1:]]),
                "tenants": args.tenants,
                "keys": args.keys,
                "big_tenant_keys": args.big_keys,
                "requests": args.requests,
                "warmup": args.warmup,
                "concurrency": args.concurrency,
                "page_size": PAGE_SIZE,
                "server": " ".join(["granian", *GRANIAN_ARGS, WSGI_APP]),
                "goal_p95_ms": GOAL_P95_MS,
                **machine_info(url),
            },
            seed={"counts": seeded.counts, "seconds": round(seeded.seconds, 1)},
        )
        with granian_server(env, http_port, state / "logs" / "granian.log") as base_url:
            log(f"server ready at {base_url}")
            cursors = {}
            cursors["tenants"], skipped = deep_cursor(
                base_url, "/api/v1/tenants?all=true", seeded.operator_token,
                rows=int(args.tenants * 0.8), timeout=args.timeout,
            )  # fmt: skip
            report.meta["tenants_deep_page"] = skipped // PAGE_SIZE + 1
            cursors["big_keys"], skipped = deep_cursor(
                base_url, f"/api/v1/tenants/{seeded.big.slug}/api-keys", seeded.big.owner_token,
                rows=int(seeded.big.keys * 0.8), timeout=args.timeout,
            )  # fmt: skip
            report.meta["big_keys_deep_page"] = skipped // PAGE_SIZE + 1
            cursors["big_audit"], skipped = deep_cursor(
                base_url, f"/api/v1/tenants/{seeded.big.slug}/audit-events",
                seeded.big.owner_token, rows=int(seeded.big.audit_events * 0.8),
                timeout=args.timeout,
            )  # fmt: skip
            report.meta["big_audit_deep_page"] = skipped // PAGE_SIZE + 1
            numbers = Counter()
            modes = [1] if args.concurrency == 1 else [1, args.concurrency]
            for call in build_calls(seeded, cursors):
                for concurrency in modes:
                    stats = measure(
                        base_url, call, requests=args.requests, concurrency=concurrency,
                        warmup=args.warmup, numbers=numbers, timeout=args.timeout,
                    )  # fmt: skip
                    report.results.append(stats)
                    log(
                        f"{stats.label} [{stats.mode}]: p50 {stats.p50_ms} ms, "
                        f"p95 {stats.p95_ms} ms, {stats.throughput_rps} req/s"
                    )
            if args.slug_collisions > 0:
                report.slug_collisions = slug_collisions(
                    base_url, seeded.creator_token, count=args.slug_collisions,
                    timeout=args.timeout,
                )  # fmt: skip
        report.scaling = scaling_summary(report.results)
        report.explain = explain_lists(url, seeded, cursors)
        report.meta["runtime_seconds"] = round(time.monotonic() - started, 1)
        return report
    finally:
        log("stopping embedded PostgreSQL")
        try:
            pg.stop()
        finally:
            if args.keep:
                log(f"kept {state} (stop nothing: PostgreSQL is stopped; delete it when done)")
            else:
                shutil.rmtree(state, ignore_errors=True)


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/mgmt_api.py",
        description="Seed a private control plane and measure the management API's latency.",
    )
    parser.add_argument("--tenants", type=positive, default=10_000, help="default 10000")
    parser.add_argument("--keys", type=positive, default=100_000, help="API keys in all")
    parser.add_argument(
        "--big-keys", type=positive, default=None, help="keys of the big tenant (default keys/5)"
    )
    parser.add_argument("--requests", type=positive, default=500, help="measured per endpoint")
    parser.add_argument("--warmup", type=positive, default=20, help="unmeasured, per endpoint")
    parser.add_argument(
        "--concurrency", type=positive, default=4, help="parallel clients of the second pass"
    )
    parser.add_argument(
        "--slug-collisions",
        type=int,
        default=200,
        help="POST /tenants with one name this many times (0: skip)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--output", type=Path, default=DEFAULT_RESULTS, help="JSON results")
    parser.add_argument("--state-dir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--keep", action="store_true", help="keep the state folder")
    args = parser.parse_args(argv)
    if args.big_keys is None:
        args.big_keys = args.keys // 5
    if args.keys - args.big_keys < args.tenants - 1:
        parser.error("every tenant but the big one needs a key: raise --keys or lower --big-keys")
    if args.tenants < 150 or args.big_keys < 150:
        parser.error("the deep pages need --tenants >= 150 and --big-keys >= 150")
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM/SIGHUP unwind like Ctrl-C, so the server and PostgreSQL are stopped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench/mgmt_api.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/mgmt_api.py: interrupted; stopped the server and PostgreSQL", file=sys.stderr)
        return 130
    print(markdown(report))
    write_json(args.output, report)
    log(f"wrote {args.output} (total {report.meta['runtime_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
