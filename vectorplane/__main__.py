"""`python -m vectorplane`: run the whole platform locally, or wrap a command with its database.

    python -m vectorplane run                  # embedded PG + Redis, migrate, bootstrap, serve
    python -m vectorplane exec -- CMD [ARGS]   # CMD with the embedded PostgreSQL running
    python -m vectorplane pg start|stop|status|url|psql

The embedded PostgreSQL is skipped when DATABASE_URL is set, the embedded Redis when REDIS_URL
is set (`vectorplane.config`).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import psutil

from vectorplane import config
from vectorplane.embedded import EmbeddedError, EmbeddedPostgres, EmbeddedRedis
from vectorplane.supervisor import ProcessSpec, Supervisor, SupervisorError, exit_status

PROG = "python -m vectorplane"


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(config.REPO_ROOT / "manage.py"), *args]


def setup_specs() -> list[ProcessSpec]:
    """One-off commands run in order before the services start; any failure aborts `run`."""
    cwd = config.REPO_ROOT
    return [
        ProcessSpec("migrate", _manage("migrate", "--noinput"), cwd=cwd),
        ProcessSpec("collectstatic", _manage("collectstatic", "--noinput"), cwd=cwd),
        ProcessSpec("bootstrap", _manage("vectorplane_bootstrap"), cwd=cwd),
        # Dedicated clusters that should run (local driver: their servers) are started again.
        ProcessSpec("clusters", _manage("clusters", "reconcile"), cwd=cwd),
    ]


def service_specs() -> list[ProcessSpec]:
    """Long-running processes of `run` (add the gateway here)."""
    python = sys.executable
    cwd = config.REPO_ROOT
    # The redis child, when embedded, is started separately (before migrations).
    return [
        ProcessSpec(
            "web",
            [
                python, "-m", "granian",
                "--interface", "wsgi",
                "--host", config.http_host(),
                "--port", str(config.http_port()),
                "--workers", str(config.web_workers()),
                "--blocking-threads", str(config.web_threads()),
                "--backpressure", str(config.web_threads()),
                "controlplane.wsgi:application",
            ],
            cwd=cwd,
        ),
        ProcessSpec(
            "worker",
            [
                python, "-m", "celery", "-A", "controlplane", "worker",
                "--loglevel", "INFO", "--concurrency", "2",
            ],
            cwd=cwd,
        ),
        ProcessSpec(
            "beat",
            [
                python, "-m", "celery", "-A", "controlplane", "beat",
                "--loglevel", "INFO",
                "--schedule", str(config.state_dir() / "celerybeat-schedule"),
            ],
            cwd=cwd,
        ),
        ProcessSpec(
            "gateway",
            [
                python, "-m", "granian",
                "--interface", "asgi",
                "--host", config.http_host(),
                "--port", str(config.gateway_port()),
                "--workers", str(config.gateway_workers()),
                "--loop", "uvloop",  # measured faster than asyncio's (docs/BENCHMARKS.md)
                "--no-access-log",
                "--factory", "gateway.app:application",
            ],
            cwd=cwd,
        ),
    ]  # fmt: skip


@contextmanager
def embedded_postgres_running() -> Iterator[EmbeddedPostgres | None]:
    """Ensure the embedded PostgreSQL runs (unless DATABASE_URL is set) for the block.

    Several blocks may overlap (two `exec`s, a test run beside another): each registers its pid
    under `<state>/pg-users/`, and the server is stopped by the last one to leave, and only if
    one of them started it (a server started by `run` or `pg start` is left running).
    """
    if not config.uses_embedded_postgres():
        yield None
        return
    pg = EmbeddedPostgres.from_config()
    users = config.state_dir() / "pg-users"
    users.mkdir(parents=True, exist_ok=True)
    me = users / str(os.getpid())
    marker = users / "started-by-exec"
    with _users_locked(users):
        if not pg.is_running():
            marker.touch()
        me.touch()
    try:
        pg.start()
        yield pg
    finally:
        with _users_locked(users):
            me.unlink(missing_ok=True)
            others = [
                p for p in users.iterdir()
                if p.name.isdigit() and psutil.pid_exists(int(p.name))
            ]  # fmt: skip
            # Checked again instead of trusting start()'s result: an interrupted pg_ctl may
            # still have launched the server.
            if not others and marker.exists():
                if pg.is_running():
                    pg.stop()
                marker.unlink(missing_ok=True)


@contextmanager
def _users_locked(users: Path) -> Iterator[None]:
    with (users / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def cmd_run() -> int:
    config.state_dir().mkdir(parents=True, exist_ok=True)
    services = service_specs()
    setup = setup_specs()
    redis = EmbeddedRedis.from_config() if config.uses_embedded_redis() else None
    names = [spec.name for spec in [*setup, *services]] + (["redis"] if redis else [])
    with Supervisor(names=names) as sup:
        if config.uses_embedded_postgres():
            sup.log("starting embedded PostgreSQL")
        with embedded_postgres_running() as pg:
            if pg is not None:
                sup.log(f"PostgreSQL ready on 127.0.0.1:{pg.port} (data in {pg.data_dir})")
            if sup.stop_requested:
                return 1
            if redis is not None:
                sup.start(ProcessSpec("redis", redis.argv(), stop_last=True))
                redis.wait_until_ready(
                    alive=lambda: sup.is_alive("redis"), abort=lambda: sup.stop_requested
                )
                sup.log(f"Redis ready on 127.0.0.1:{redis.port}")
            for spec in setup:
                status = sup.run_once(spec)
                if status != 0 or sup.stop_requested:
                    sup.shutdown()
                    return status or 1
            for spec in services:
                sup.start(spec)
            status = sup.wait()
            # The local driver's cluster servers are detached (they outlive a crashed worker):
            # stop them with the platform; `clusters reconcile` starts them at the next run.
            stopped = subprocess.run(  # noqa: S603 - our own manage.py
                _manage("clusters", "stop-local"), cwd=config.REPO_ROOT, check=False,
                capture_output=True, text=True,
            )  # fmt: skip
            if stopped.returncode != 0:
                sup.log(f"stopping local clusters failed: {stopped.stderr.strip()[-500:]}")
        if pg is not None and not pg.is_running():
            sup.log("embedded PostgreSQL stopped")
        return status


def _run_foreground(cmd: Sequence[str]) -> int:
    """Run cmd in our process group with our stdio; relay SIGTERM/SIGHUP to it."""
    try:
        process = subprocess.Popen(list(cmd))  # noqa: S603 - the user's own command
    except OSError as exc:
        print(f"{PROG} exec: cannot run {cmd[0]!r}: {exc}", file=sys.stderr)
        return 127

    def relay(signum: int, _frame: FrameType | None) -> None:
        if signum != signal.SIGINT:  # Ctrl-C already reaches the child (same process group)
            process.send_signal(signum)

    previous = {s: signal.signal(s, relay) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return exit_status(process.wait())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def cmd_exec(cmd: Sequence[str]) -> int:
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print(f"usage: {PROG} exec -- CMD [ARGS...]", file=sys.stderr)
        return 2
    with embedded_postgres_running():
        return _run_foreground(cmd)


def cmd_pg(action: str, extra: Sequence[str]) -> int:
    pg = EmbeddedPostgres.from_config()
    if not config.uses_embedded_postgres() and action in {"start", "url"}:
        print("note: DATABASE_URL is set, the platform will not use this server", file=sys.stderr)
    if action == "start":
        started = pg.start()
        state = "started" if started else "already running"
        print(f"embedded PostgreSQL {state} on 127.0.0.1:{pg.port} (data: {pg.data_dir})")
        return 0
    if action == "stop":
        print("embedded PostgreSQL stopped" if pg.stop() else "embedded PostgreSQL not running")
        return 0
    if action == "status":
        pid = pg.pid()
        if pid is None:
            print(f"embedded PostgreSQL not running (data: {pg.data_dir})")
            return 3
        port = pg.running_port()
        print(f"embedded PostgreSQL running: pid {pid}, 127.0.0.1:{port}, data {pg.data_dir}")
        return 0
    if action == "url":
        print(pg.url())
        return 0
    if action == "psql":
        if not pg.is_running():
            print(f"embedded PostgreSQL not running; `{PROG} pg start` first", file=sys.stderr)
            return 1
        argv = pg.psql_argv(*(extra or [config.EMBEDDED_DB_NAME]))
        os.execv(argv[0], argv)  # noqa: S606 - fixed binary, replaces this process
    raise AssertionError(action)  # pragma: no cover - argparse restricts choices


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Vectorplane development runtime.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="start embedded PostgreSQL/Redis, migrate, bootstrap, then supervise web/worker/beat",
    )
    exec_parser = commands.add_parser(
        "exec", help="run a command with the embedded PostgreSQL running (`exec -- CMD ARGS`)"
    )
    exec_parser.add_argument("cmd", nargs=argparse.REMAINDER, help="command and its arguments")
    pg_parser = commands.add_parser("pg", help="manage the embedded PostgreSQL")
    pg_parser.add_argument("action", choices=["start", "stop", "status", "url", "psql"])
    pg_parser.add_argument("extra", nargs=argparse.REMAINDER, help="psql arguments (psql only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run()
        if args.command == "exec":
            return cmd_exec(args.cmd)
        return cmd_pg(args.action, args.extra)
    except (config.ConfigError, EmbeddedError, SupervisorError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
