"""Usage metering: what each answered request used, made durable before it is answered.

What is counted. Per (index, hour): requests, read units, write units, queries, vectors written
and deleted (`provisioning_usagerecord`, what billing turns into Stripe meter events), and the
latency histogram of the answered requests per (index, hour, bucket)
(`provisioning_latencyrecord`, buckets of `vectorplane.contract.latency`). Refused requests are
counted per (tenant, hour, index, error code, status) (`provisioning_errorrecord`): the
console's error chart, never billed.

The guarantee (issue 11). `Meter.record` runs in `gateway.app.dispatch` after the operation
succeeded and before its response is returned to the server, so before a byte of the answer
is sent. With the usage journal on (`VECTORPLANE_USAGE_JOURNAL`, the default) it appends one
line for the request (tenant, index, name, hour, the amounts, the latency bucket) to this
process's journal with one `os.write` on an `O_APPEND` descriptor: when the client has its
answer, the line is in the kernel, and it survives a SIGKILL, an OOM kill or a crash of the
process. The counts are also kept in memory and flushed every `interval` seconds
(`VECTORPLANE_USAGE_FLUSH_SECONDS`, 5) in one transaction that upserts them (`+ EXCLUDED`)
*and* the journal's applied byte offset (`provisioning_usagejournal`): counts and offset commit
together or not at all, so no byte of the journal is ever counted twice and none is skipped.

Each process (each granian worker) writes a journal of its own, `<uuid>.journal` in
`VECTORPLANE_USAGE_JOURNAL_DIR` (default: `usage-journal` in the state folder), and holds an
exclusive `flock` on it while it lives. A journal whose lock can be taken belongs to a dead
process: at start and every `RECOVER_SECONDS` the meter replays such journals — the complete
lines after the stored offset, aggregated, upserted with the new offset in one transaction —
and then deletes them (a half-written last line, from a process killed inside a write, was
never acknowledged and is ignored). A live journal is rotated past `ROTATE_BYTES`; the old one
is deleted once a flush has applied all of it. A graceful stop flushes and deletes its journal.

What can still be lost:
- a crash of the *machine* (or its kernel) loses what the page cache had not written to disk:
  with `VECTORPLANE_USAGE_JOURNAL_FSYNC_MS` > 0 (default 1000) a background thread
  `fdatasync`s the journal that often, bounding the loss to about that long; with 0 the kernel's
  own writeback decides (about 30 s on Linux). The request path never waits for a disk.
- a journal write that fails (disk full, I/O error): the request is still answered and counted
  in memory (the pre-journal guarantee: lost only if the process dies before its next flush);
  the failure is logged and counted (`vectorplane_gateway_usage_journal_errors`).
- error counts (`record_error`) stay in memory: a SIGKILL loses at most one interval of them.
  They are not billed, and a refused request is not usage.
- a journal nobody replays: the folder must outlive the process. Any gateway process on the
  folder replays it (at start, or within `RECOVER_SECONDS` when a sibling worker died), so on
  one machine nothing is needed; on Kubernetes mount the folder on a volume that survives a
  container restart (an `emptyDir` does: an OOM kill or a crash restarts the container in the
  same pod) — a pod deleted gracefully flushes first, but a pod lost with its node takes its
  journal with it.
- replayed usage lands in the hour it was used in. Billing (billing/metering.py) updates an
  hour's meter event only until its first send: usage of an hour replayed after that is in the
  usage rows (and the console) but not billed.

With the journal off, usage is counted in memory only and a SIGKILL loses up to one interval.

A flush whose commit answer is lost (the connection drops after COMMIT) is not applied twice
either: the batch is kept aside with the offsets it carried, and the next flush reads the
stored offsets first — if they already reached the batch's, it had committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from vectorplane import config
from vectorplane.contract.latency import bucket_of

from .registry import IndexInfo

_Cursor = AsyncCursor[tuple[Any, ...]]

logger = logging.getLogger("vectorplane.gateway.metering")

FIELDS = ("requests", "read_units", "write_units", "queries", "vectors_written", "vectors_deleted")
_Key = tuple[uuid.UUID, uuid.UUID, str, datetime]
_LatencyKey = tuple[uuid.UUID, uuid.UUID, str, datetime, int]
_ErrorKey = tuple[uuid.UUID, str, datetime, str, int]

SUFFIX = ".journal"
ROTATE_BYTES = 64 * 1024 * 1024
RECOVER_SECONDS = 30.0
_HOUR_SECONDS = 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_USAGE_UPSERT = sql.SQL(
    "INSERT INTO provisioning_usagerecord (tenant_id, index_id, index_name, hour, {cols}) "
    "VALUES ({marks}) ON CONFLICT (index_id, hour) DO UPDATE SET {updates}"
).format(
    cols=sql.SQL(", ").join(sql.Identifier(f) for f in FIELDS),
    marks=sql.SQL(", ").join(sql.Placeholder() * (4 + len(FIELDS))),
    updates=sql.SQL(", ").join(
        sql.SQL("{c} = provisioning_usagerecord.{c} + EXCLUDED.{c}").format(c=sql.Identifier(f))
        for f in FIELDS
    ),
)
_LATENCY_UPSERT = (
    "INSERT INTO provisioning_latencyrecord (tenant_id, index_id, index_name, hour, bucket, "
    "requests) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (index_id, hour, bucket) DO UPDATE "
    "SET requests = provisioning_latencyrecord.requests + EXCLUDED.requests"
)
_ERROR_UPSERT = (
    "INSERT INTO provisioning_errorrecord (tenant_id, index_name, hour, code, status, requests) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, hour, index_name, code, status) "
    "DO UPDATE SET requests = provisioning_errorrecord.requests + EXCLUDED.requests"
)
_OFFSET_UPSERT = (
    "INSERT INTO provisioning_usagejournal (journal_id, applied_offset, host, updated_at) "
    "VALUES (%s, %s, %s, now()) ON CONFLICT (journal_id) DO UPDATE "
    "SET applied_offset = EXCLUDED.applied_offset, updated_at = EXCLUDED.updated_at"
)


def _this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def journal_dir() -> Path:
    """`VECTORPLANE_USAGE_JOURNAL_DIR`, else `usage-journal` in the state folder."""
    raw = config.env_str("VECTORPLANE_USAGE_JOURNAL_DIR", "")
    return Path(raw).expanduser().resolve() if raw else config.state_dir() / "usage-journal"


# ------------------------------------------------------------------------- the line format
# One request per line, fields separated by one space:
#   tenant-hex index-hex index-name epoch-hour requests read write queries written deleted bucket
# (bucket "-" when the request had no latency). Index names are [a-z0-9-], hex has no spaces.


def encode_line(
    tenant_id: uuid.UUID, index_id: uuid.UUID, name: str, hour: datetime,
    amounts: tuple[int, ...], bucket: int | None,
) -> bytes:  # fmt: skip
    epoch_hour = int(hour.timestamp()) // _HOUR_SECONDS
    counts = " ".join(map(str, amounts))
    tail = "-" if bucket is None else str(bucket)
    return f"{tenant_id.hex} {index_id.hex} {name} {epoch_hour} {counts} {tail}\n".encode()


@dataclass
class Batch:
    """Usage aggregated per key: from memory (a flush) or from journal lines (a replay)."""

    counts: dict[_Key, list[int]] = field(default_factory=lambda: defaultdict(_zeros))
    latency: dict[_LatencyKey, int] = field(default_factory=lambda: defaultdict(int))

    def __bool__(self) -> bool:
        return bool(self.counts or self.latency)

    def add(self, key: _Key, amounts: tuple[int, ...] | list[int], bucket: int | None) -> None:
        row = self.counts[key]
        for i, v in enumerate(amounts):
            row[i] += v
        if bucket is not None:
            self.latency[(*key, bucket)] += 1

    def merge(self, other: Batch) -> None:
        for key, values in other.counts.items():
            row = self.counts[key]
            for i, v in enumerate(values):
                row[i] += v
        for lkey, count in other.latency.items():
            self.latency[lkey] += count


def _zeros() -> list[int]:
    return [0] * len(FIELDS)


def parse(data: bytes) -> tuple[Batch, int, int]:
    """The complete lines of `data` aggregated; answers (batch, bytes consumed, bad lines).
    Bytes after the last newline (a line whose write was cut) are not consumed; a complete line
    that does not parse is skipped (counted in `bad`)."""
    batch = Batch()
    end = data.rfind(b"\n") + 1
    bad = 0
    hours: dict[int, datetime] = {}
    for line in data[:end].splitlines():
        parts = line.split(b" ")
        if len(parts) != 5 + len(FIELDS):
            bad += bool(line)
            continue
        try:
            tenant_id, index_id = uuid.UUID(parts[0].decode()), uuid.UUID(parts[1].decode())
            name = parts[2].decode()
            epoch_hour = int(parts[3])
            amounts = tuple(int(p) for p in parts[4 : 4 + len(FIELDS)])
            bucket = None if parts[-1] == b"-" else int(parts[-1])
        except ValueError:
            bad += 1
            continue
        hour = hours.get(epoch_hour)
        if hour is None:
            hour = hours[epoch_hour] = _EPOCH + timedelta(hours=epoch_hour)
        batch.add((tenant_id, index_id, name, hour), amounts, bucket)
    return batch, end, bad


# ------------------------------------------------------------------------- the journal file


class Journal:
    """This process's append-only journal: created under a hidden name, locked, then renamed
    into place, so a scan never sees a journal whose lock is not held yet."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4()
        self.path = folder / f"{self.id}{SUFFIX}"
        hidden = folder / f".{self.id}.new"
        self.fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, self.path)
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(hidden)
            raise
        self.size = 0  # bytes written: the file's end

    def append(self, line: bytes) -> None:
        written = os.write(self.fd, line)
        self.size += written
        if written != len(line):
            # A short write (disk full): end the cut line, so the next one starts clean and
            # the replay skips this one as malformed. `size` stays the file's end either way,
            # so the offsets a flush commits never point back into bytes already counted.
            with contextlib.suppress(OSError):
                self.size += os.write(self.fd, b"\n")
            raise OSError(errno.ENOSPC, f"short write to the usage journal {self.path}")

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def remove(self) -> None:
        """Delete the journal (its every byte applied) and release it."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)


def _lock_dead(path: Path) -> int | None:
    """An fd holding the exclusive lock of the journal at `path` when its process is gone (the
    lock could be taken and the path still names the locked file), else None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Replayed and deleted by another process between our open and our lock?
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)
    except OSError:
        os.close(fd)
        return None
    return fd


def _read_after(fd: int, offset: int) -> tuple[int, tuple[Batch, int, int]]:
    """The journal's size, and its complete lines after `offset` parsed."""
    size = os.fstat(fd).st_size
    return size, parse(os.pread(fd, max(0, size - offset), offset))


# ------------------------------------------------------------------------- writes


async def _upsert(cur: _Cursor, batch: Batch) -> int:
    rows = [(t, i, n, h, *c) for (t, i, n, h), c in batch.counts.items()]
    if rows:
        await cur.executemany(_USAGE_UPSERT, rows)
    latency_rows = [(*key, count) for key, count in batch.latency.items()]
    if latency_rows:
        await cur.executemany(_LATENCY_UPSERT, latency_rows)
    return len(rows)


async def _known_tenants(cur: _Cursor, batch: Batch) -> Batch:
    """The batch without the rows of tenants deleted since (their usage went with them: the
    usage tables cascade), so that one deleted tenant cannot block a replay forever."""
    tenants = {key[0] for key in batch.counts} | {key[0] for key in batch.latency}
    await cur.execute("SELECT id FROM tenants_tenant WHERE id = ANY(%s)", (list(tenants),))
    known = {row[0] for row in await cur.fetchall()}
    if known == tenants:
        return batch
    logger.warning("usage journal: dropping the usage of deleted tenants %s", tenants - known)
    kept = Batch()
    for key, values in batch.counts.items():
        if key[0] in known:
            kept.counts[key] = values
    for lkey, count in batch.latency.items():
        if lkey[0] in known:
            kept.latency[lkey] = count
    return kept


@dataclass
class _Unconfirmed:
    """A flushed batch whose commit's outcome is unknown, and the offsets it carried."""

    batch: Batch
    offsets: dict[uuid.UUID, int]  # journals whose offset the batch moved forward


class Meter:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        interval: float = 5.0,
        journal: bool = False,
        folder: Path | None = None,
        fsync_ms: int = 0,
        rotate_bytes: int = ROTATE_BYTES,
        on_journal_error: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.interval = interval
        self.pending = Batch()
        self.errors: dict[_ErrorKey, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self.flushed_rows = 0
        self.folder = folder or journal_dir()
        self.fsync_ms = fsync_ms
        self.rotate_bytes = rotate_bytes
        self.host = socket.gethostname()[:255]
        self.use_journal = journal
        self.journal: Journal | None = None  # opened by `start`
        # Offsets the database holds for our journals (what a flush moves forward), and the
        # rotated journals still waiting for a flush to apply their last bytes.
        self.applied: dict[uuid.UUID, int] = {}
        self.retired: list[Journal] = []
        self.unconfirmed: list[_Unconfirmed] = []
        self._forget: list[uuid.UUID] = []  # deleted journals whose offset rows are left
        self.journal_errors = 0
        self.on_journal_error = on_journal_error
        # Cached per index: the line's prefix (tenant, index, name) — hex and names per request.
        self._prefixes: dict[uuid.UUID, tuple[str, bytes]] = {}

    # ---------------------------------------------------------------- the request path

    @classmethod
    def from_config(cls, pool: AsyncConnectionPool[Any], **kwargs: Any) -> Meter:
        return cls(
            pool,
            interval=float(config.env_int("VECTORPLANE_USAGE_FLUSH_SECONDS", 5)),
            journal=config.env_bool("VECTORPLANE_USAGE_JOURNAL", True),
            fsync_ms=config.env_int("VECTORPLANE_USAGE_JOURNAL_FSYNC_MS", 1000),
            **kwargs,
        )

    def record(self, index: IndexInfo, *, seconds: float | None = None, **amounts: int) -> None:
        """Count a request's usage, and its latency (`seconds`) when it was answered: in the
        journal (before the caller answers) and in memory (until the next flush)."""
        hour = _this_hour()
        values = tuple(amounts.get(name, 0) for name in FIELDS)
        bucket = None if seconds is None else bucket_of(seconds)
        self.pending.add((index.tenant_id, index.id, index.name, hour), values, bucket)
        if self.journal is not None:
            cached = self._prefixes.get(index.id)
            if cached is None or cached[0] != index.name:
                prefix = f"{index.tenant_id.hex} {index.id.hex} {index.name} ".encode()
                cached = self._prefixes[index.id] = (index.name, prefix)
            epoch_hour = int(hour.timestamp()) // _HOUR_SECONDS
            tail = "-" if bucket is None else bucket
            line = b"%s%d %s %s\n" % (
                cached[1], epoch_hour, " ".join(map(str, values)).encode(), str(tail).encode()
            )
            try:
                self.journal.append(line)
            except OSError as exc:
                self.journal_errors += 1
                if self.on_journal_error is not None:
                    self.on_journal_error()
                if self.journal_errors == 1 or self.journal_errors % 1000 == 0:
                    logger.error("usage journal write failed (%d so far; the usage is kept in "
                                 "memory): %s", self.journal_errors, exc)  # fmt: skip

    def record_error(self, tenant_id: uuid.UUID, index_name: str, code: str, status: int) -> None:
        """Count a refused request of an authenticated key: its tenant, the index it reached
        ("" when none was resolved: the name is then the caller's, not a fact), code and
        status. Bounded: the codes are the gateway's own, the index names the tenant's.
        Memory only (not billed): a crash loses at most one interval of them."""
        self.errors[(tenant_id, index_name, _this_hour(), code, status)] += 1

    # ---------------------------------------------------------------- flush

    def _offsets(self) -> dict[uuid.UUID, int]:
        """The journals' offsets a flush of everything recorded so far commits."""
        offsets = {j.id: j.size for j in self.retired}
        if self.journal is not None:
            offsets[self.journal.id] = self.journal.size
        return offsets

    async def flush(self) -> int:
        """Apply what was recorded since the last flush, with the journals' offsets, in one
        transaction; answers the usage rows written."""
        offsets = self._offsets()
        moved = {j: o for j, o in offsets.items() if o != self.applied.get(j)}
        if not self.pending and not self.errors and not moved and not self.unconfirmed:
            self._retire_applied()
            return 0
        batch, self.pending = self.pending, Batch()
        errors, self.errors = self.errors, defaultdict(int)
        unconfirmed, self.unconfirmed = self.unconfirmed, []
        resolved = False
        try:
            async with self.pool.connection() as conn:
                conn_: AsyncConnection[Any] = conn
                async with conn_.transaction(), conn_.cursor(row_factory=tuple_row) as cur:
                    for earlier in unconfirmed:
                        if await self._committed(cur, earlier):
                            logger.info("usage flush: a batch whose commit went unanswered "
                                        "had committed; not applied again")  # fmt: skip
                        else:
                            batch.merge(earlier.batch)
                    resolved = True
                    rows = await _upsert(cur, batch)
                    error_rows = [(*ekey, count) for ekey, count in errors.items()]
                    if error_rows:
                        await cur.executemany(_ERROR_UPSERT, error_rows)
                    if offsets:
                        await cur.executemany(
                            _OFFSET_UPSERT, [(j, o, self.host) for j, o in offsets.items()]
                        )
        except Exception:
            # The outcome is unknown (the COMMIT may have landed): keep the batch aside with
            # the offsets it moved; the next flush reads them before applying it again.
            kept = [] if resolved else unconfirmed
            if moved:
                self.unconfirmed = [*kept, _Unconfirmed(batch, moved)]
            else:
                # No journal offset to tell (journal off): merge back, as before the journal.
                self.unconfirmed = kept
                self.pending.merge(batch)
            for ekey, count in errors.items():
                self.errors[ekey] += count
            raise
        self.applied.update(offsets)
        self.flushed_rows += rows
        self._rotate_if_big()
        self._retire_applied()
        return rows

    async def _committed(self, cur: _Cursor, unconfirmed: _Unconfirmed) -> bool:
        ids = list(unconfirmed.offsets)
        await cur.execute(
            "SELECT journal_id, applied_offset FROM provisioning_usagejournal "
            "WHERE journal_id = ANY(%s) FOR UPDATE",
            (ids,),
        )
        stored = {row[0]: row[1] for row in await cur.fetchall()}
        return all(stored.get(j, -1) >= o for j, o in unconfirmed.offsets.items())

    def _rotate_if_big(self) -> None:
        if self.journal is not None and self.journal.size >= self.rotate_bytes:
            old = self.journal
            self.journal = Journal(self.folder)
            self.retired.append(old)

    def _retire_applied(self) -> None:
        """Delete the rotated journals every byte of which a flush applied."""
        for old in list(self.retired):
            if self.applied.get(old.id, 0) == old.size:
                old.remove()
                self.retired.remove(old)
                self.applied.pop(old.id, None)
                self._forget.append(old.id)

    async def _forget_rows(self) -> None:
        """Delete the offset rows of deleted journals (after the files: a row deleted while its
        file exists would replay the file from 0)."""
        if not self._forget:
            return
        ids, self._forget = self._forget, []
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "DELETE FROM provisioning_usagejournal WHERE journal_id = ANY(%s)", (ids,)
                )
        except Exception:
            self._forget += ids
            raise

    # ---------------------------------------------------------------- recovery

    async def recover(self) -> int:
        """Replay and delete the journals of dead processes in the folder; answers how many.
        A journal that fails to replay (the database does not answer) stays for the next try."""
        if not self.folder.is_dir():
            return 0
        own = {self.journal.id if self.journal else None, *(j.id for j in self.retired)}
        done = 0
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                journal_id = uuid.UUID(path.name[: -len(SUFFIX)])
            except ValueError:
                continue
            if journal_id in own:
                continue
            fd = _lock_dead(path)
            if fd is None:
                continue  # alive, or just replayed by another process
            try:
                await self._replay(journal_id, fd)
                os.unlink(path)
            finally:
                os.close(fd)
            self._forget.append(journal_id)
            done += 1
        await self._forget_rows()
        return done

    async def _replay(self, journal_id: uuid.UUID, fd: int) -> None:
        async with self.pool.connection() as conn:
            conn_: AsyncConnection[Any] = conn
            async with conn_.transaction(), conn_.cursor(row_factory=tuple_row) as cur:
                await cur.execute(
                    "SELECT applied_offset FROM provisioning_usagejournal WHERE journal_id = %s "
                    "FOR UPDATE",
                    (journal_id,),
                )
                row = await cur.fetchone()
                offset = int(row[0]) if row else 0
                # Off the event loop: a dead journal can be up to ROTATE_BYTES long.
                size, (batch, consumed, bad) = await asyncio.to_thread(_read_after, fd, offset)
                if bad:
                    logger.warning("usage journal %s: %d malformed lines skipped", journal_id, bad)
                if size - offset - consumed:
                    logger.info("usage journal %s: %d bytes of a cut last line ignored",
                                journal_id, size - offset - consumed)  # fmt: skip
                if batch:
                    batch = await _known_tenants(cur, batch)
                    await _upsert(cur, batch)
                await cur.execute(_OFFSET_UPSERT, (journal_id, offset + consumed, self.host))
        logger.info("usage journal %s replayed: %d usage rows from byte %d to %d",
                    journal_id, len(batch.counts), offset, offset + consumed)  # fmt: skip

    # ---------------------------------------------------------------- the loop

    async def _run(self) -> None:
        since_recover = 0.0
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
                await self._forget_rows()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("usage flush failed; will retry")
            since_recover += self.interval
            if self.journal is not None and since_recover >= RECOVER_SECONDS:
                since_recover = 0.0
                try:
                    await self.recover()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("usage journal recovery failed; will retry")

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.fsync_ms / 1000)
            journal = self.journal
            if journal is not None:
                try:
                    await asyncio.to_thread(journal.sync)
                except OSError as exc:
                    logger.warning("usage journal fdatasync failed: %s", exc)

    async def start(self) -> None:
        """Replay the dead processes' journals (not fatal: retried by the loop), then start the
        flush loop (and the journal's fdatasync loop)."""
        if self.use_journal:
            self.journal = Journal(self.folder)
            try:
                await self.recover()
            except Exception:
                logger.exception("usage journal recovery at start failed; will retry")
        self._task = asyncio.create_task(self._run(), name="usage-flush")
        if self.journal is not None and self.fsync_ms > 0:
            self._sync_task = asyncio.create_task(self._sync_loop(), name="usage-journal-sync")

    async def stop(self) -> None:
        """Flush everything; a journal every byte of which is applied is deleted (otherwise it
        stays, and the next gateway to start replays it)."""
        for task in (self._task, self._sync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            await self.flush()
        except Exception:
            logger.exception("usage flush at shutdown failed; the journal is kept for replay")
            return
        journal, self.journal = self.journal, None
        if journal is not None:
            self.retired.append(journal)
        self._retire_applied()
        with contextlib.suppress(Exception):
            await self._forget_rows()

