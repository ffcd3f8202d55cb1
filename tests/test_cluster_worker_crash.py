"""A Celery worker killed with SIGKILL in the middle of provisioning a cluster: another worker
(with its beat) reconciles it to `ready`, and no resource exists twice.

Real parts only: a Redis broker (the bundled redis-server), `celery -A controlplane worker`
processes, the pytest-django test database (opened in autocommit mode so the workers see the
rows), the `local` driver's real PostgreSQL server.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg
import pytest
from celery import Celery
from django.db import transaction

from provisioning import connections, steps
from provisioning.drivers.local import LocalDriver
from provisioning.models import Cluster, ClusterStatus
from provisioning.services import clusters as cluster_services
from tenants import services as tenant_services
from tenants.actors import Actor
from tenants.models import Plan
from tenants.tests.factories import UserFactory
from vectorplane import config
from vectorplane.embedded import EmbeddedRedis

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return (
        f"postgresql://{quote(str(db['USER']), safe='')}:{quote(str(db['PASSWORD']), safe='')}"
        f"@{db['HOST']}:{db['PORT']}/{quote(str(db['NAME']), safe='')}"
    )


@pytest.fixture
def broker() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="vp-broker-"))
    redis = EmbeddedRedis(folder, _free_port())
    proc = subprocess.Popen(redis.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        redis.wait_until_ready(alive=lambda: proc.poll() is None)
        yield redis.url()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Workers:
    def __init__(self, broker: str, folder: Path) -> None:
        self.broker = broker
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *, beat: bool = False) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(
            DATABASE_URL=_database_url(),
            DATABASE_CONN_MAX_AGE="0",
            CELERY_BROKER_URL=self.broker,
            DJANGO_SETTINGS_MODULE="controlplane.settings",
            VECTORPLANE_RECONCILE_SECONDS="1",
            VECTORPLANE_RECONCILE_STALE_SECONDS="2",
            PYTHONUNBUFFERED="1",
        )
        argv = [
            sys.executable, "-m", "celery", "-A", "controlplane", "worker",
            "--pool", "solo", "--loglevel", "INFO", "-n", f"{name}@%h",
        ]  # fmt: skip
        if beat:
            argv += ["--beat", "--schedule", str(self.folder / f"{name}-beat")]
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-4000:]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and everything it started
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.kill(proc)


def _postmasters(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
            if process.info["name"] == "postgres" and str(data_dir) in cmdline:
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_provision_converges(
    broker: str, local_clusters: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vp-workers-"))
    workers = Workers(broker, folder)
    # The services queue tasks on commit through the project's Celery app, which runs them
    # inline in this test session; here they go to the real broker instead, through a client
    # app of their own (the session's app, its producer pool included, is left untouched).
    sender = Celery("crash-test", broker=broker, set_as_current=False)

    def enqueue(task_name: str, cluster_id: uuid.UUID) -> None:
        transaction.on_commit(
            lambda: sender.send_task(f"provisioning.tasks.{task_name}", args=[str(cluster_id)])
        )

    monkeypatch.setattr(cluster_services, "_enqueue", enqueue)
    cluster_id: uuid.UUID | None = None
    try:
        if True:  # the test database, in autocommit mode (transaction=True)
            first = workers.start("first")
            deadline = time.monotonic() + 60
            while "ready." not in workers.log("first"):
                assert first.poll() is None and time.monotonic() < deadline, workers.log("first")
                time.sleep(0.1)
            # The seeded plans (put back if a transactional test flushed them).
            seeds = importlib.import_module("tenants.migrations.0005_plan_cluster_limits")
            if not Plan.objects.filter(slug="pro").exists():
                plans = importlib.import_module("tenants.migrations.0002_seed_plans").PLANS
                Plan.objects.create(**next(p for p in plans if p["slug"] == "pro"))
            Plan.objects.filter(slug="pro", max_clusters=0).update(**seeds.CLUSTERS["pro"])
            operator: Any = UserFactory(
                email=f"ops-{uuid.uuid4().hex[:8]}@example.test", is_staff=True
            )
            actor = Actor(user=operator)
            slug = f"crash-{uuid.uuid4().hex[:8]}"
            tenant = tenant_services.tenant_create(
                actor=actor, name=slug, slug=slug, plan_slug="pro"
            )
            cluster = cluster_services.cluster_create(
                actor=actor, tenant=tenant, name="c1", engine="pgvector", size="xs"
            )
            cluster_id = cluster.id
            rows = Cluster.objects.unscoped().filter(pk=cluster_id)
            # Kill the worker as soon as it has taken the task (status provisioning), while
            # initdb / the server start is under way.
            deadline = time.monotonic() + 30
            while rows.values_list("status", flat=True).get() != ClusterStatus.PROVISIONING:
                assert time.monotonic() < deadline, workers.log("first")
                time.sleep(0.005)
            workers.kill(first)
            assert rows.values_list("status", flat=True).get() == ClusterStatus.PROVISIONING
            spec = steps.spec_for(rows.get())
            driver = LocalDriver()
            cluster_dir = driver.cluster_dir(spec)

            # A new worker (with beat: the reconcile task every second) finishes the job.
            workers.start("second", beat=True)
            deadline = time.monotonic() + 90
            while rows.values_list("status", flat=True).get() != ClusterStatus.READY:
                status = rows.values_list("status", flat=True).get()
                assert status in ("provisioning",) and time.monotonic() < deadline, (
                    status,
                    rows.get().status_message,
                    workers.log("second"),
                )
                time.sleep(0.1)
            cluster = rows.get()
            assert cluster.observed_generation == cluster.generation == 1
            # Exactly one of everything: one folder for the stack, one data directory, one
            # postmaster serving it (on the recorded port), no half-made initdb left over.
            assert [p.name for p in local_clusters.iterdir() if p.is_dir()].count(
                spec.stack_name
            ) == 1
            assert sorted(p.name for p in cluster_dir.iterdir() if p.is_dir()) == [
                "logs", "pg", "pg-run",
            ] or sorted(p.name for p in cluster_dir.iterdir() if p.is_dir()) == ["logs", "pg"]
            assert not (cluster_dir / "pg.initdb-tmp").exists()
            assert len(_postmasters(cluster_dir / "pg")) == 1
            gateway_url = connections.cluster_gateway_url(cluster)
            with psycopg.connect(gateway_url, connect_timeout=5) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (config.GATEWAY_DB_USER,)
    finally:
        sender.close()
        workers.stop_all()
        if cluster_id is not None:
            row = Cluster.objects.unscoped().filter(pk=cluster_id).first()
            if row is not None:
                LocalDriver().destroy(steps.spec_for(row))
