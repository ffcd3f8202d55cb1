"""The `local` driver (embedded default): each dedicated cluster is real processes on this
machine, under `config.clusters_dir()/<stack name>/`.

- pgvector: a PostgreSQL 18 + pgvector server from the embedded wheel (`EmbeddedPostgres`), own
  port and data directory, the generated admin and gateway passwords, and the shared tier's
  layout (`vectorplane_data` database, `vp_gateway` role that owns nothing and cannot bypass
  RLS, `public.namespace_stats`).
- qdrant: `python -m vectorplane.qdrant_host` (Qdrant's engine through qdrant-edge-py, serving
  Qdrant's REST API) — or a real Qdrant server when `VECTORPLANE_QDRANT_BINARY` names one —
  with the generated API key.

Processes are detached (their own session), so they outlive the Celery worker that started
them: a worker killed mid-task leaves a cluster that the next `apply` adopts. Every step is
idempotent and guarded by a per-cluster file lock; `cluster.json` keeps the port so a restart
keeps the endpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg

from provisioning.storage import shared_tier
from vectorplane import config
from vectorplane.embedded import EmbeddedError, EmbeddedPostgres

from .base import ClusterSpec, Endpoint, Observed, PermanentError, TransientError

logger = logging.getLogger(__name__)

QDRANT_START_TIMEOUT = 30.0
# Qdrant processes this process started: kept (not garbage-collected while running) and polled,
# so an exited one is reaped instead of lingering as a zombie of a long-lived worker.
_CHILDREN: list[subprocess.Popen[bytes]] = []


def _reap() -> None:
    _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether a server could listen on the port now. With SO_REUSEADDR, as servers bind
    (PostgreSQL, granian): the closed connections of a stopped server linger in TIME_WAIT and
    must not make its own port look taken (the endpoint would then move on every restart)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class LocalDriver:
    name = "local"

    def __init__(self, base_dir: Path | None = None) -> None:
        self.base_dir = base_dir or config.clusters_dir()

    # ------------------------------------------------------------------ layout

    def cluster_dir(self, spec: ClusterSpec) -> Path:
        return self.base_dir / spec.stack_name

    @contextlib.contextmanager
    def _locked(self, spec: ClusterSpec) -> Iterator[Path]:
        folder = self.cluster_dir(spec)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        lock = self.base_dir / f"{spec.stack_name}.lock"
        with lock.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _state(self, folder: Path) -> dict[str, Any]:
        path = folder / "cluster.json"
        if not path.exists():
            return {}
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}

    def _save_state(self, folder: Path, state: dict[str, Any]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "cluster.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(folder / "cluster.json")

    def _port(self, folder: Path, spec: ClusterSpec, running_port: int | None) -> int:
        state = self._state(folder)
        port = running_port or state.get("port")
        if not isinstance(port, int) or (running_port is None and not _port_free(port)):
            port = _free_port()
        if state.get("port") != port:
            self._save_state(
                folder, {**state, "port": port, "engine": spec.engine, "cluster": spec.cluster_id}
            )
        return port

    # ------------------------------------------------------------------ protocol

    def apply(self, spec: ClusterSpec) -> Observed:
        with self._locked(spec) as folder:
            if spec.engine == "pgvector":
                return self._apply_pgvector(spec, folder)
            if spec.engine == "qdrant":
                return self._apply_qdrant(spec, folder)
            raise PermanentError(f"unknown engine {spec.engine!r}")

    def destroy(self, spec: ClusterSpec) -> None:
        with self._locked(spec) as folder:
            if spec.engine == "pgvector":
                pg = self._postgres(spec, folder, port=self._state(folder).get("port") or 1)
                if (folder / "pg").exists():
                    try:
                        pg.stop()
                    except EmbeddedError as exc:
                        raise TransientError(f"could not stop PostgreSQL: {exc}") from exc
            else:
                self._stop_qdrant(folder)
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.base_dir / f"{spec.stack_name}.lock").unlink()

    def observe(self, spec: ClusterSpec) -> Observed:
        folder = self.cluster_dir(spec)
        if not folder.exists():
            return Observed("absent", message="no local data directory")
        state = self._state(folder)
        port = state.get("port")
        if spec.engine == "pgvector":
            pg = self._postgres(spec, folder, port=port if isinstance(port, int) else 1)
            running = pg.running_port()
            if running is None:
                return Observed("absent", message="PostgreSQL is not running")
            return Observed(
                "ready",
                Endpoint("127.0.0.1", running, database=config.EMBEDDED_DATA_DB_NAME),
                details={"pid": pg.pid()},
            )
        pid = self._qdrant_pid(folder)
        if pid is None or not isinstance(port, int):
            return Observed("absent", message="the Qdrant process is not running")
        if not self._qdrant_ready(port):
            return Observed("provisioning", message="the Qdrant process does not answer yet")
        return Observed("ready", self._qdrant_endpoint(port), details={"pid": pid})

    def stop(self, spec: ClusterSpec) -> None:
        """Stop the cluster's processes, keeping its data (platform shutdown)."""
        with self._locked(spec) as folder:
            if spec.engine == "pgvector":
                port = self._state(folder).get("port")
                if (folder / "pg").exists() and isinstance(port, int):
                    with contextlib.suppress(EmbeddedError):
                        self._postgres(spec, folder, port=port).stop()
            else:
                self._stop_qdrant(folder)

    # ------------------------------------------------------------------ pgvector

    def _postgres(self, spec: ClusterSpec, folder: Path, *, port: int) -> EmbeddedPostgres:
        creds = spec.credentials
        return EmbeddedPostgres(
            folder / "pg",
            port,
            password=creds.get("admin_password", ""),
            gateway_password=creds.get("gateway_password", ""),
        )

    def _apply_pgvector(self, spec: ClusterSpec, folder: Path) -> Observed:
        for name in ("admin_password", "gateway_password"):
            if not spec.credentials.get(name):
                raise PermanentError(f"credentials lack {name}")
        probe = self._postgres(spec, folder, port=1)
        port = self._port(folder, spec, probe.running_port())
        pg = self._postgres(spec, folder, port=port)
        try:
            pg.start()  # initdb (crash-safe), start, roles and databases: all idempotent
        except EmbeddedError as exc:
            raise TransientError(f"PostgreSQL did not start: {exc}") from exc
        try:
            with shared_tier.connect(pg.url(config.EMBEDDED_DATA_DB_NAME)) as conn:
                shared_tier.ensure_base(conn)
                conn.commit()
        except psycopg.OperationalError as exc:
            raise TransientError(f"PostgreSQL does not answer: {exc}") from exc
        return Observed(
            "ready",
            Endpoint("127.0.0.1", port, database=config.EMBEDDED_DATA_DB_NAME),
            details={"pid": pg.pid(), "data_dir": str(folder / "pg")},
        )

    # ------------------------------------------------------------------ qdrant

    @staticmethod
    def _qdrant_endpoint(port: int) -> Endpoint:
        return Endpoint("127.0.0.1", port, url=f"http://127.0.0.1:{port}")

    @staticmethod
    def _qdrant_ready(port: int) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/readyz", timeout=1
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _qdrant_pid(self, folder: Path) -> int | None:
        _reap()
        path = folder / "qdrant.pid"
        if not path.exists():
            return None
        try:
            pid = int(path.read_text().strip())
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            # The pid must still be our process for this folder (pids are reused).
            if str(folder) not in " ".join(process.cmdline() + list(process.environ().values())):
                return None
        except (ValueError, psutil.Error):
            return None
        return pid

    def _qdrant_argv(self, folder: Path, port: int) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        binary = config.env_str("VECTORPLANE_QDRANT_BINARY", "")
        if binary:
            # A real Qdrant server: configured through its environment variables.
            env.update(
                {
                    "QDRANT__SERVICE__HOST": "127.0.0.1",
                    "QDRANT__SERVICE__HTTP_PORT": str(port),
                    "QDRANT__SERVICE__GRPC_PORT": "0",
                    "QDRANT__STORAGE__STORAGE_PATH": str(folder / "storage"),
                    "QDRANT__SERVICE__API_KEY": (folder / "api-key").read_text().strip(),
                    "QDRANT__TELEMETRY_DISABLED": "true",
                    "VECTORPLANE_CLUSTER_DIR": str(folder),
                }
            )
            return [binary], env
        return [
            sys.executable,
            "-m",
            "vectorplane.qdrant_host",
            "--data",
            str(folder / "storage"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key-file",
            str(folder / "api-key"),
        ], env

    def _apply_qdrant(self, spec: ClusterSpec, folder: Path) -> Observed:
        api_key = spec.credentials.get("api_key", "")
        if not api_key:
            raise PermanentError("credentials lack api_key")
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / "api-key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(api_key)
        pid = self._qdrant_pid(folder)
        state = self._state(folder)
        if pid is not None and isinstance(state.get("port"), int):
            port = int(state["port"])
        else:
            port = self._port(folder, spec, None)
            argv, env = self._qdrant_argv(folder, port)
            log = (folder / "qdrant.log").open("ab")
            try:
                process = subprocess.Popen(  # noqa: S603 - our own argv
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=str(folder),
                    env=env,
                    start_new_session=True,  # outlives the worker that starts it
                )
            except OSError as exc:
                raise PermanentError(f"cannot start Qdrant ({argv[0]}): {exc}") from exc
            finally:
                log.close()
            _CHILDREN.append(process)
            (folder / "qdrant.pid").write_text(str(process.pid))
            pid = process.pid
        deadline = time.monotonic() + QDRANT_START_TIMEOUT
        while not self._qdrant_ready(port):
            if self._qdrant_pid(folder) is None:
                tail = (folder / "qdrant.log").read_text(errors="replace")[-2000:]
                raise TransientError(f"the Qdrant process exited:\n{tail}")
            if time.monotonic() > deadline:
                raise TransientError(f"Qdrant did not answer within {QDRANT_START_TIMEOUT:.0f} s")
            time.sleep(0.02)
        return Observed("ready", self._qdrant_endpoint(port), details={"pid": pid})

    def _stop_qdrant(self, folder: Path) -> None:
        pid = self._qdrant_pid(folder)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        ours = next((child for child in _CHILDREN if child.pid == pid), None)
        if ours is not None:  # reaped through its Popen, which then knows it has ended
            try:
                ours.wait(timeout=15)
            except subprocess.TimeoutExpired:
                ours.kill()
                ours.wait(timeout=10)
            _CHILDREN.remove(ours)
        else:
            try:
                psutil.Process(pid).wait(timeout=15)
            except psutil.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        with contextlib.suppress(FileNotFoundError):
            (folder / "qdrant.pid").unlink()


def stop_all(base_dir: Path) -> int:
    """Stop every local cluster process under `base_dir` (tests' and tools' clean-up), reading
    only the folders: PostgreSQL by its data directory, Qdrant by its pid file."""
    stopped = 0
    if not base_dir.exists():
        return 0
    for folder in sorted(p for p in base_dir.iterdir() if p.is_dir()):
        state = json.loads((folder / "cluster.json").read_text()) if (
            folder / "cluster.json"
        ).exists() else {}
        if (folder / "pg").exists():
            pg = EmbeddedPostgres(folder / "pg", int(state.get("port") or 1))
            with contextlib.suppress(EmbeddedError):
                stopped += int(pg.stop())
        driver = LocalDriver(base_dir)
        if driver._qdrant_pid(folder) is not None:
            driver._stop_qdrant(folder)
            stopped += 1
    return stopped
