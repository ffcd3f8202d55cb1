"""A real Celery worker for the console's browser tests: `celery -A controlplane worker` on the
test database, consuming the queue the control plane (`control_plane_server`) writes to on the
session's Redis (purged first: tasks other tests queued are not this test's), in the session's
clusters folder. The `worker` fixture (re-exported by conftest.py) starts one per test."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from gateway.tests.conftest import CONTROL_PLANE_BROKER_DB, RedisProcess, Server
from vectorplane import config

REPO = Path(__file__).resolve().parents[2]
WORKER_START = 60  # s


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return (
        f"postgresql://{quote(str(db['USER']), safe='')}:{quote(str(db['PASSWORD']), safe='')}"
        f"@{db['HOST']}:{db['PORT']}/{quote(str(db['NAME']), safe='')}"
    )


class Worker:
    """A `celery -A controlplane worker` process whose output is read by a thread (so that it
    never blocks on a full pipe); `ready` is set when it says it consumes."""

    def __init__(self, broker: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(
            DATABASE_URL=_database_url(),
            DATABASE_CONN_MAX_AGE="0",
            CELERY_BROKER_URL=broker,
            REDIS_URL=broker,  # the control plane's Redis (the reconcile's heartbeat)
            VECTORPLANE_STATE_DIR=str(config.state_dir()),
            DJANGO_SETTINGS_MODULE="controlplane.settings",
            PYTHONUNBUFFERED="1",
        )
        argv = [
            sys.executable, "-m", "celery", "-A", "controlplane", "worker",
            "--pool", "solo", "--loglevel", "INFO", "--purge",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"console-{os.getpid()}@%h",
        ]  # fmt: skip
        self.log_path = log
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if " ready." in line:
                    self.ready.set()
        self.ready.set()  # it exited: stop waiting (the caller checks that it runs)

    def tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown: the task under way finishes first
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def worker(
    control_plane_server: Server, redis_server: RedisProcess, tmp_path: Path
) -> Iterator[Worker]:
    started = Worker(redis_server.url(CONTROL_PLANE_BROKER_DB), tmp_path / "worker.log")
    try:
        if not started.ready.wait(WORKER_START) or started.proc.poll() is not None:
            pytest.fail(f"the Celery worker did not start:\n{started.tail()}")
        yield started
    finally:
        started.stop()


