"""`python -m vectorplane run` (what `make run` runs) end to end, as a user would: it starts,
prints a working login and key, serves the API with a real worker and beat, stops every child
on Ctrl-C, and a second run keeps the data."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]
KEY_RE = re.compile(r"Demo API key\s+(vpk_[a-z0-9]{12}_[A-Za-z0-9_-]+)")
LOGIN_RE = re.compile(r"Login\s+(\S+) / (\S+)")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Platform:
    def __init__(self, state: Path, ports: dict[str, int]) -> None:
        # What a user's shell would not have: the test session's own databases and folders.
        private = {
            "DATABASE_URL", "REDIS_URL", "VECTORPLANE_DATA_DATABASE_URL",
            "GATEWAY_DATA_DATABASE_URL", "GATEWAY_CONTROL_DATABASE_URL",
            "VECTORPLANE_CLUSTERS_DIR",
        }  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in private}
        env.update(
            VECTORPLANE_STATE_DIR=str(state),
            VECTORPLANE_PG_PORT=str(ports["pg"]),
            VECTORPLANE_REDIS_PORT=str(ports["redis"]),
            VECTORPLANE_HTTP_PORT=str(ports["http"]),
            VECTORPLANE_GATEWAY_PORT=str(ports["gateway"]),
            VECTORPLANE_WEB_WORKERS="1",
            PYTHONUNBUFFERED="1",
        )
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.base = f"http://127.0.0.1:{ports['http']}"
        self.gateway = f"http://127.0.0.1:{ports['gateway']}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vectorplane", "run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.proc.stdout.close()

    def text(self) -> str:
        while True:
            try:
                self.output.append(self.lines.get_nowait())
            except queue.Empty:
                return "".join(self.output)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            match = regex.search(self.text())
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"{pattern!r} not seen in {timeout}s; output:\n{self.text()[-4000:]}")

    def request(
        self, method: str, path: str, key: str, body: dict[str, Any] | None = None,
        *, base: str | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            (base or self.base) + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {key}"} if key else {}),
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def wait_cluster(self, name: str, key: str, status: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            code, body = self.request("GET", f"/api/v1/tenants/demo/clusters/{name}", key)
            if code == 200 and body["status"] == status:
                return
            assert code == 200 and body["status"] != "failed", body
            time.sleep(0.2)
        pytest.fail(f"cluster {name} not {status} in {timeout}s: {body}\n{self.text()[-3000:]}")

    def wait_ready(self, timeout: float) -> None:
        self.wait_url(self.base + "/readyz", timeout)

    def wait_url(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        pytest.fail(f"{url} never became ready; output:\n{self.text()[-4000:]}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self, timeout: float = 40) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"run did not stop on Ctrl-C; output:\n{self.text()[-4000:]}")


def _block(text: str, start: str, end: str) -> str:
    """The lines the bootstrap printed between two markers, without the log prefix."""
    lines = [line.split("| ", 1)[1] if "| " in line else line for line in text.splitlines()]
    body = "\n".join(lines)
    chunk = body[body.index(start) + len(start) :]
    chunk = chunk[: chunk.index(end)]
    return "\n".join(line[4:] if line.startswith("    ") else line for line in chunk.splitlines())


ENGINES = ("pgvector", "qdrant")


def _cluster_processes(state: Path) -> list[psutil.Process]:
    """Processes serving a dedicated cluster under the state folder (PostgreSQL postmasters,
    Qdrant hosts), found by their command lines."""
    folder = str(state / "clusters")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(folder in part for part in process.info["cmdline"] or []):
                found.append(process)
    return found


def _postmaster_running(state: Path) -> bool:
    pid_file = state / "pg" / "data" / "postmaster.pid"
    if not pid_file.exists():
        pid_files = list(state.rglob("postmaster.pid"))
        if not pid_files:
            return False
        pid_file = pid_files[0]
    pid = int(pid_file.read_text().splitlines()[0])
    return psutil.pid_exists(pid)


@pytest.fixture
def state() -> Iterator[Path]:
    # Not under pytest's tmp_path: a later pytest session resets /tmp/pytest-of-root to 0700,
    # which locks PostgreSQL's unprivileged system user out of its data folder.
    folder = Path(tempfile.mkdtemp(prefix="vectorplane-e2e-"))
    try:
        yield folder / "state"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_run_end_to_end(state: Path) -> None:
    ports = {n: _free_port() for n in ("pg", "redis", "http", "gateway")}

    first = Platform(state, ports)
    try:
        key = first.wait_for(KEY_RE.pattern, timeout=180).group(1)
        email, password = first.wait_for(LOGIN_RE.pattern, timeout=5).groups()
        first.wait_ready(timeout=60)
        first.wait_for(r"celery@\S+ ready\.", timeout=60)
        first.wait_for(r"beat: Starting", timeout=60)

        status, tenant = first.request("GET", "/api/v1/tenants/demo", key)
        assert status == 200 and tenant["slug"] == "demo" and tenant["role"] == "admin"
        status, created = first.request(
            "POST", "/api/v1/tenants/demo/api-keys", key, {"name": "e2e", "scopes": ["read"]}
        )
        assert status == 201 and created["key"].startswith("vpk_")
        status, body = first.request("GET", "/api/v1/tenants/demo/api-keys", "vpk_wrong")
        assert status == 401 and body["error"]["code"] == "invalid_credentials"

        # The printed curl session and pinecone snippet work as printed.
        first.wait_url(first.gateway + "/readyz", timeout=60)
        text = first.text()
        shell = _block(text, "Try it (copy-paste):", "With the pinecone client")
        done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        assert outputs[0] == {"upsertedCount": 2}
        assert [m["id"] for m in outputs[1]["matches"]] == ["a"]  # the drama filter
        snippet = _block(text, "With the pinecone client (pip install pinecone):", "=====")
        done = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "ScoredVector(id='c'" in done.stdout

        # The printed login works (the console's session login), and is an operator.
        status, me = first.request(
            "POST", "/api/v1/auth/login", "", {"email": email, "password": password}
        )
        assert status == 200 and me["email"] == email and me["is_operator"] is True
        children = first.descendants()
        assert len(children) >= 4  # redis, web (+ its worker), celery worker, beat

        # Dedicated clusters through the API, provisioned by the running worker.
        for engine in ENGINES:
            status, cluster = first.request(
                "POST", "/api/v1/tenants/demo/clusters", key,
                {"name": engine, "engine": engine, "size": "xs"},
            )  # fmt: skip
            assert status == 202 and cluster["status"] == "pending", cluster
        for engine in ENGINES:
            first.wait_cluster(engine, key, "ready", timeout=60)
            status, index = first.request(
                "POST", "/api/v1/tenants/demo/indexes", key,
                {"name": f"on-{engine}", "dimension": 3, "tier": "dedicated", "engine": engine,
                 "cluster": engine},
            )  # fmt: skip
            assert status == 201, index
            status, body = first.request(
                "POST", f"/v1/indexes/on-{engine}/vectors/upsert", key,
                {"vectors": [{"id": "x", "values": [1, 2, 3], "metadata": {"e": engine}}]},
                base=first.gateway,
            )  # fmt: skip
            assert status == 200 and body == {"upsertedCount": 1}, body
        cluster_pids = _cluster_processes(state)
        assert len(cluster_pids) >= 2, cluster_pids  # a PostgreSQL and a Qdrant host
    finally:
        code = first.interrupt()
    assert code == 0, first.text()[-4000:]
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"children left running: {alive}"
    assert not _postmaster_running(state), "embedded PostgreSQL left running"
    assert _cluster_processes(state) == [], "cluster servers left running"

    # Second run: same data; the key's secret is not printed again; the old key still works.
    second = Platform(state, ports)
    try:
        second.wait_for(r"Demo API key\s+created on the first run", timeout=180)
        second.wait_ready(timeout=60)
        # (A worker stopped while it is still forking its pool exits 1; a user would not
        # notice, but the exit status below would.)
        second.wait_for(r"celery@\S+ ready\.", timeout=60)
        status, keys = second.request("GET", "/api/v1/tenants/demo/api-keys", key)
        assert status == 200
        assert "e2e" in {k["name"] for k in keys["data"]}
        assert key not in second.text()
        # The clusters came back (started again before the services), with their data.
        second.wait_url(second.gateway + "/readyz", timeout=60)
        for engine in ENGINES:
            second.wait_cluster(engine, key, "ready", timeout=30)
            status, body = second.request(
                "POST", f"/v1/indexes/on-{engine}/query", key,
                {"vector": [1, 2, 3], "topK": 1, "includeMetadata": True}, base=second.gateway,
            )  # fmt: skip
            assert status == 200, body
            assert [(m["id"], m["metadata"]) for m in body["matches"]] == [("x", {"e": engine})]
    finally:
        code = second.interrupt()
    assert code == 0, second.text()[-4000:]
    assert not _postmaster_running(state)
    assert _cluster_processes(state) == [], "cluster servers left running"
