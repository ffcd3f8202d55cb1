"""The embedded PostgreSQL (+pgvector) and Redis really start, persist data and authenticate."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.conninfo import make_conninfo

from vectorplane.embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    # Not under tmp_path: as root, PostgreSQL runs as another user that must traverse to its
    # data, and every new pytest session resets /tmp/pytest-of-<user> to mode 0700.
    path = Path(tempfile.mkdtemp(prefix="vectorplane-test-"))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("VECTORPLANE_STATE_DIR", str(path))
            yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(state_dir: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(state_dir / "pg", free_port())
    assert pg.start() is True
    try:
        yield pg
    finally:
        pg.stop()


def test_postgres_vector_roundtrip_survives_restart(
    postgres: EmbeddedPostgres, state_dir: Path
) -> None:
    secret = (state_dir / "secrets" / "pg-vectorplane-password").read_text().strip()
    conninfo = make_conninfo(
        host="127.0.0.1",
        port=postgres.port,
        user="vectorplane",
        password=secret,
        dbname="vectorplane",
    )
    with psycopg.connect(conninfo) as conn:
        (version,) = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone() or (None,)
        assert version is not None
        assert version.startswith("0.8")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]')")
        nearest = conn.execute(
            "SELECT id FROM items ORDER BY embedding <-> '[0.1,0.9,0]' LIMIT 1"
        ).fetchone()
        assert nearest == (2,)

    assert postgres.stop() is True
    assert not postgres.is_running()
    assert postgres.start() is True  # warm start on the same data directory

    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT id FROM items ORDER BY embedding <-> '[0,0,1]'").fetchall()
        assert rows == [(3,), (1,), (2,)]


def test_postgres_start_is_idempotent(postgres: EmbeddedPostgres) -> None:
    pid = postgres.pid()
    assert pid is not None
    assert postgres.start() is False
    assert postgres.pid() == pid


def test_postgres_url_and_template1_have_vector(postgres: EmbeddedPostgres) -> None:
    # pytest-django creates its test databases from template1: they must have the extension.
    with psycopg.connect(postgres.url("template1")) as conn:
        row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert row == (1,)
        can_create = conn.execute(
            "SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert can_create == (True, False)


def test_postgres_rejects_wrong_password_over_tcp(postgres: EmbeddedPostgres) -> None:
    for user in ("vectorplane", "postgres"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(
                host="127.0.0.1",
                port=postgres.port,
                user=user,
                password="not-the-password",
                dbname="vectorplane",
                connect_timeout=5,
            )


def test_postgres_listens_only_on_loopback(postgres: EmbeddedPostgres) -> None:
    with postgres.superuser_connect() as conn:
        row = conn.execute("SHOW listen_addresses").fetchone()
    assert row == ("127.0.0.1",)


def _start_redis(server: EmbeddedRedis) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(server.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.wait_until_ready(timeout=15, alive=lambda: process.poll() is None)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def test_redis_ping_and_aof_survives_restart(state_dir: Path) -> None:
    server = EmbeddedRedis(state_dir / "redis", free_port())
    process = _start_redis(server)
    try:
        assert server.ping()
        with redis.Redis.from_url(server.url()) as client:
            assert client.ping() is True
            client.set("greeting", "hello")
    finally:
        _stop(process)
    assert not server.ping()
    assert (state_dir / "redis").exists()

    process = _start_redis(server)
    try:
        with redis.Redis.from_url(server.url()) as client:
            assert client.get("greeting") == b"hello"
    finally:
        _stop(process)
