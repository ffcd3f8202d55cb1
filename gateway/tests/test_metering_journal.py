"""The usage journal (gateway/metering.py, issue 11): a request's usage is durable before it is
answered, and applied exactly once.

- The meter against the test database as the gateway's role: lines written, flushed with their
  offset, a "dead" journal (its descriptor closed, so its lock is free, as when its process is
  killed) replayed after the stored offset, a cut last line ignored, a replay that committed but
  did not delete its file not applied twice, rotation, a flush whose commit answer was lost.
- The real thing: a gateway process answers N upserts and queries, is SIGKILLed long before its
  flush (an hour), and a new gateway process on the same journal folder replays them: the usage
  rows hold exactly what was acknowledged. Twice in a row, then a third start that finds
  nothing left to replay.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gateway.metering import (
    FIELDS,
    SUFFIX,
    Batch,
    Journal,
    Meter,
    _this_hour,
    _Unconfirmed,
    encode_line,
    parse,
)
from gateway.registry import IndexInfo
from gateway.tests.conftest import (
    Platform,
    RedisProcess,
    Server,
    _control_db_name,
    gateway_control_url,
    start_gateway,
)

AMOUNTS = {"requests": 1, "write_units": 3, "vectors_written": 3}


def control(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Rows read from the test database as the gateway's role (plain psycopg: the meter's
    tests run in an event loop, where Django refuses to query)."""
    with psycopg.connect(gateway_control_url(_control_db_name())) as conn:
        return conn.execute(query, params).fetchall()


def usage(index_id: uuid.UUID) -> dict[str, int]:
    """The index's usage summed over its hours, as the database holds it."""
    sums = ", ".join(f"COALESCE(SUM({f}), 0)" for f in FIELDS)
    (row,) = control(
        f"SELECT {sums} FROM provisioning_usagerecord WHERE index_id = %s",  # noqa: S608
        (index_id,),
    )
    return dict(zip(FIELDS, map(int, row), strict=True))


def latency_requests(index_id: uuid.UUID) -> int:
    (row,) = control(
        "SELECT COALESCE(SUM(requests), 0) FROM provisioning_latencyrecord WHERE index_id = %s",
        (index_id,),
    )
    return int(row[0])


def journal_rows(ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = control(
        "SELECT journal_id, applied_offset FROM provisioning_usagejournal "
        "WHERE journal_id = ANY(%s)",
        (ids,),
    )
    return {r[0]: r[1] for r in rows}


def info(index: Any) -> IndexInfo:
    return IndexInfo(
        id=index.id, tenant_id=index.tenant_id, name=index.name, dimension=index.dimension,
        metric=index.metric, vector_type="vector", ef_search=100, text_field=False,
        schema_name=index.schema_name, table_name=index.table_name, status="ready",
    )  # fmt: skip


def run_with_pool(body: Any) -> Any:
    """Run `body(pool)` on a pool to the test database as the gateway's role, configured as
    the gateway's registry pool (the meter's) is."""

    async def main() -> Any:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            gateway_control_url(_control_db_name()), min_size=1, max_size=2, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )  # fmt: skip
        await pool.open()
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def die(meter: Meter) -> None:
    """What the kernel does to a killed process's journals: the descriptors close (the locks
    go), the files stay. Nothing is flushed."""
    for journal in [*meter.retired, *([meter.journal] if meter.journal else [])]:
        os.close(journal.fd)
    meter.journal, meter.retired = None, []


# ============================================================================ the format


def test_parse_aggregates_complete_lines_and_leaves_a_cut_one() -> None:
    tenant, index = uuid.uuid4(), uuid.uuid4()
    hour = datetime(2026, 12, 4, 19, tzinfo=UTC)
    line = encode_line(tenant, index, "ix-a", hour, (1, 0, 3, 0, 3, 0), 2)
    other = encode_line(tenant, index, "ix-a", hour, (1, 5, 0, 1, 0, 0), None)
    data = line + other + b"garbage line\n" + line[:20]
    batch, consumed, bad = parse(data)
    assert consumed == len(data) - 20 and bad == 1
    assert batch.counts == {(tenant, index, "ix-a", hour): [2, 5, 3, 1, 3, 0]}
    assert batch.latency == {(tenant, index, "ix-a", hour, 2): 1}
    assert parse(line[:-1]) == (Batch(), 0, 0)  # no newline yet: nothing consumed


def test_a_failed_journal_write_still_answers_and_keeps_the_usage_in_memory(
    tmp_path: Path,
) -> None:
    failures: list[int] = []
    meter = Meter(cast(Any, None), journal=True, folder=tmp_path,
                  on_journal_error=lambda: failures.append(1))  # fmt: skip
    meter.journal = Journal(tmp_path)
    tenant, index_id = uuid.uuid4(), uuid.uuid4()
    index = IndexInfo(id=index_id, tenant_id=tenant, name="ix", dimension=3, metric="cosine",
                      vector_type="vector", ef_search=100, text_field=False, schema_name="s",
                      table_name="t", status="ready")  # fmt: skip
    meter.record(index, **AMOUNTS)
    size = meter.journal.size
    os.close(meter.journal.fd)  # the disk went away
    meter.record(index, **AMOUNTS)
    assert failures == [1] and meter.journal_errors == 1
    assert meter.journal.size == size  # the offset covers only what was written
    assert [row[0] for row in meter.pending.counts.values()] == [2]  # both counted


# ============================================================================ the meter


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "journal"


def test_a_dead_journal_is_replayed_after_its_offset_exactly_once(
    platform: Platform, folder: Path
) -> None:
    tenant = platform.tenant()
    index = info(tenant.index())

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        meter = Meter(pool, interval=3600, journal=True, folder=folder)
        await meter.start()
        assert meter.journal is not None
        journal_id, path = meter.journal.id, meter.journal.path
        for _ in range(5):
            meter.record(index, seconds=0.001, **AMOUNTS)
        await meter.flush()  # 5 applied, with the offset
        assert journal_rows([journal_id]) == {journal_id: meter.journal.size}
        for _ in range(7):
            meter.record(index, seconds=0.001, **AMOUNTS)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        cut = encode_line(index.tenant_id, index.id, index.name, _this_hour(),
                          (1, 0, 3, 0, 3, 0), 1)[:30]  # fmt: skip
        os.write(fd, cut)  # a process killed inside a write
        os.close(fd)
        die(meter)
        assert usage(index.id)["requests"] == 5

        # A live meter's journal is not replayed by another; the dead one is, once.
        survivor = Meter(pool, interval=3600, journal=True, folder=folder)
        await survivor.start()
        assert not path.exists()
        assert usage(index.id) == {
            "requests": 12, "read_units": 0, "write_units": 36, "queries": 0,
            "vectors_written": 36, "vectors_deleted": 0,
        }  # fmt: skip
        assert latency_requests(index.id) == 12  # the latency is journaled too
        assert journal_rows([journal_id]) == {}  # deleted after the file
        assert await survivor.recover() == 0
        survivor.record(index, **AMOUNTS)
        await survivor.stop()  # a graceful stop flushes and deletes its own journal
        assert list(folder.iterdir()) == []
        assert usage(index.id)["requests"] == 13

    run_with_pool(body)


def test_a_replay_that_committed_but_kept_its_file_is_not_applied_twice(
    platform: Platform, folder: Path
) -> None:
    tenant = platform.tenant()
    index = info(tenant.index())

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        meter = Meter(pool, interval=3600, journal=True, folder=folder)
        await meter.start()
        assert meter.journal is not None
        journal_id, path = meter.journal.id, meter.journal.path
        for _ in range(4):
            meter.record(index, **AMOUNTS)
        die(meter)
        replayer = Meter(pool, interval=3600, journal=False, folder=folder)
        fd = os.open(path, os.O_RDONLY)
        await replayer._replay(journal_id, fd)  # committed; "killed" before the unlink
        os.close(fd)
        assert path.exists() and usage(index.id)["requests"] == 4
        assert await replayer.recover() == 1  # replays from the stored offset: nothing
        assert not path.exists()
        assert usage(index.id)["requests"] == 4

    run_with_pool(body)


def test_rotation_deletes_a_journal_once_applied_and_a_crash_loses_nothing(
    platform: Platform, folder: Path
) -> None:
    tenant = platform.tenant()
    index = info(tenant.index())

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        meter = Meter(pool, interval=3600, journal=True, folder=folder, rotate_bytes=300)
        await meter.start()
        assert meter.journal is not None
        first = meter.journal.path
        for _ in range(10):
            meter.record(index, **AMOUNTS)
        await meter.flush()  # applied, then rotated: the first journal is deleted
        assert not first.exists()
        assert meter.journal.path != first
        assert len(list(folder.glob(f"*{SUFFIX}"))) == 1
        for _ in range(3):
            meter.record(index, **AMOUNTS)
        die(meter)
        survivor = Meter(pool, interval=3600, journal=False, folder=folder)
        assert await survivor.recover() == 1
        assert usage(index.id)["requests"] == 13

    run_with_pool(body)


def test_a_flush_whose_commit_answer_was_lost_is_not_applied_twice(
    platform: Platform, folder: Path
) -> None:
    """The batch is kept aside with the offsets it carried; the next flush finds them stored
    (the commit had landed) and drops it — or, when they are not, applies it."""
    tenant = platform.tenant()
    index = info(tenant.index())

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        meter = Meter(pool, interval=3600, journal=True, folder=folder)
        await meter.start()
        assert meter.journal is not None
        for _ in range(3):
            meter.record(index, **AMOUNTS)
        landed = Batch()
        landed.merge(meter.pending)
        await meter.flush()
        # As if that flush had raised after its COMMIT reached the server:
        meter.unconfirmed = [_Unconfirmed(landed, {meter.journal.id: meter.journal.size})]
        meter.record(index, **AMOUNTS)
        await meter.flush()
        assert usage(index.id)["requests"] == 4
        # And one that did not land (its offset is past what is stored): applied.
        lost = Batch()
        lost.add((index.tenant_id, index.id, index.name, _this_hour()), (2, 0, 6, 0, 6, 0), None)
        meter.unconfirmed = [_Unconfirmed(lost, {meter.journal.id: meter.journal.size + 1})]
        await meter.flush()
        assert usage(index.id)["requests"] == 6
        await meter.stop()

    run_with_pool(body)


# ============================================================================ real processes


@pytest.fixture
def shared_journal(tmp_path: Path) -> Path:
    return tmp_path / "shared-journal"


def killed_gateway(
    name: str, tmp: Path, redis_server: RedisProcess, folder: Path
) -> Server:
    return start_gateway(
        name, tmp, redis_server,
        VECTORPLANE_USAGE_JOURNAL_DIR=str(folder),
        VECTORPLANE_USAGE_FLUSH_SECONDS="3600",
    )  # fmt: skip


def sigkill(server: Server) -> None:
    os.killpg(server.proc.pid, signal.SIGKILL)  # granian and its worker: the group we started
    server.proc.wait(timeout=10)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def test_usage_acknowledged_by_a_killed_gateway_is_counted_exactly_once(
    platform: Platform, redis_server: RedisProcess, shared_journal: Path, tmp_path: Path,
    servers: list[Server],
) -> None:  # fmt: skip
    tenant = platform.tenant()
    index = tenant.index(dimension=3)
    key = tenant.key()
    expected = dict.fromkeys(FIELDS, 0)
    for round_ in range(2):
        applied_before = dict(expected)
        server = killed_gateway(f"journal-{round_}", tmp_path, redis_server, shared_journal)
        servers.append(server)
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            for i in range(20):
                vectors = [{"id": f"r{round_}-{i}-{j}", "values": [1.0, j + 1.0, i + 1.0]}
                           for j in range(3)]  # fmt: skip
                response = client.post(
                    f"/v1/indexes/{index.name}/vectors/upsert",
                    headers={"Api-Key": key}, json={"vectors": vectors},
                )  # fmt: skip
                assert response.status_code == 200, response.text
                expected["requests"] += 1
                expected["write_units"] += 3
                expected["vectors_written"] += 3
            for _ in range(15):
                response = client.post(f"/v1/indexes/{index.name}/query",
                                       headers={"Api-Key": key},
                                       json={"vector": [1.0, 2.0, 3.0], "topK": 5})  # fmt: skip
                assert response.status_code == 200, response.text
                expected["requests"] += 1
                expected["queries"] += 1
                expected["read_units"] += response.json()["usage"]["readUnits"]
        sigkill(server)
        # Nothing was flushed (the interval is an hour): the rows hold only what the previous
        # round's replay applied, and the dead gateway's journal is left.
        assert usage(index.id) == applied_before
        assert len(list(shared_journal.glob(f"*{SUFFIX}"))) == 1
    # The next gateway replays the last killed one's journal as it starts, before it is ready.
    server = killed_gateway("journal-final", tmp_path, redis_server, shared_journal)
    servers.append(server)
    assert usage(index.id) == expected
    assert latency_requests(index.id) == expected["requests"]
    # One journal left: the live gateway's own. Stopped gracefully, it deletes it.
    assert len(list(shared_journal.glob(f"*{SUFFIX}"))) == 1
    server.stop()
    assert list(shared_journal.glob(f"*{SUFFIX}")) == []
    # A further start replays nothing again.
    server = killed_gateway("journal-again", tmp_path, redis_server, shared_journal)
    servers.append(server)
    assert usage(index.id) == expected
