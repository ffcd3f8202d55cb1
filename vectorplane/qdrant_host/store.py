"""The collections of one data folder: one Edge shard per collection, their executors and the
maintenance thread (optimisation and periodic flushes).

Layout: DATA/collections/<name>/collection.json (what GET /collections/{name} reports: the
config as created, the payload index schemas as given) and DATA/collections/<name>/shard/ (the
Edge shard: WAL, segments, edge_config.json). A collection exists once its collection.json is
in place; a folder without one is an interrupted creation and is removed at start, as are the
`.deleted-*` folders an interrupted deletion leaves.

Concurrency: reads run on any thread; writes to a collection run one at a time, in order, on the
collection's own single-thread executor (Edge applies each update to its WAL and segments inside
`update()`, so an acknowledged write is in the WAL). Deleting a collection waits for the
operations already admitted on it, then closes its shard.

Optimisation: Edge has no background optimiser; `EdgeShard.optimize()` builds HNSW indexes and
merges segments synchronously and holds the GIL while it does, so the whole process stalls for
its duration. It therefore runs only once a collection has had no write for `optimize_idle`
seconds (or has had unoptimised writes for `optimize_max_delay` seconds), on the collection's
writer thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import qdrant_edge as qe

from . import convert
from .errors import ApiError, collection_exists, collection_not_found, from_edge

logger = logging.getLogger("vectorplane.qdrant_host")

META_FILE = "collection.json"
SHARD_DIR = "shard"
LOCK_FILE = ".lock"
_FORBIDDEN_NAME_CHARS = frozenset('<>:"/\\|?*\0')
T = TypeVar("T")


def validate_name(name: str) -> None:
    """Qdrant's collection name rules, plus no leading dot (reserved for our own folders)."""
    if not name or len(name.encode()) > 255:
        raise ApiError(
            400, "Validation error in path parameters: collection name must be 1-255 bytes"
        )
    bad = sorted(set(name) & _FORBIDDEN_NAME_CHARS)
    if bad or name.startswith("."):
        shown = repr(bad[0]) if bad else "a leading '.'"
        raise ApiError(
            400, f"Validation error in path parameters: collection name cannot contain {shown}"
        )


def call_edge(fn: Callable[..., T], *args: Any) -> T:
    """Run an Edge call, mapping its exceptions (including Rust panics, which PyO3 raises as a
    BaseException) to the HTTP error Qdrant would answer with."""
    try:
        return fn(*args)
    except ApiError:
        raise
    except Exception as exc:
        raise from_edge(exc) from exc
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        logger.error("Edge panicked: %s", exc)
        raise from_edge(exc) from None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Collection:
    def __init__(
        self,
        name: str,
        path: Path,
        shard: qe.EdgeShard,
        meta: dict[str, Any],
        *,
        loaded: bool,
        auto_optimize: bool,
    ) -> None:
        self.name = name
        self.path = path
        self.shard = shard
        self.meta = meta
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{name[:16]}")
        self._cond = threading.Condition()
        self._active = 0
        self._closing = False
        self.operation_id = 0
        optimizers = meta["config"].get("optimizer_config", {})
        # Qdrant: max_optimization_threads = 0 disables optimisations.
        self.auto_optimize = auto_optimize and optimizers.get("max_optimization_threads") != 0
        self.flush_interval = float(optimizers.get("flush_interval_sec") or 5)
        now = time.monotonic()
        # Loaded shards may hold unoptimised data (replayed from the WAL): check them once.
        self.dirty = loaded
        self.dirty_since = now
        self.last_write = now
        self.unflushed = False
        self.last_flush = now
        self.optimizing = False

    # ------------------------------------------------------------- admission

    def try_acquire(self) -> bool:
        with self._cond:
            if self._closing:
                return False
            self._active += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def close(self, *, flush: bool) -> None:
        """Refuse new operations, wait for admitted ones, stop the writer, close the shard."""
        with self._cond:
            self._closing = True
            while self._active:
                self._cond.wait()
        self.writer.shutdown(wait=True)
        try:
            if flush:
                call_edge(self.shard.flush)
        finally:
            self.shard.close()

    # ------------------------------------------------------------- writer-thread operations

    def apply(self, operations: list[qe.UpdateOperation]) -> int:
        """Apply updates in order (on the writer thread); returns the operation id."""
        try:
            for operation in operations:
                call_edge(self.shard.update, operation)
        finally:
            self._written()
        self.operation_id += 1
        return self.operation_id

    def _written(self) -> None:
        now = time.monotonic()
        if not self.dirty:
            self.dirty = True
            self.dirty_since = now
        self.last_write = now
        self.unflushed = True

    def create_index(self, field: str, schema: Any, given: Any) -> int:
        operation_id = self.apply([qe.UpdateOperation.create_field_index(field, schema)])
        self.meta["payload_indexes"][field] = given
        _write_json(self.path / META_FILE, self.meta)
        return operation_id

    def delete_index(self, field: str) -> int:
        operation_id = self.apply([qe.UpdateOperation.delete_field_index(field)])
        if self.meta["payload_indexes"].pop(field, None) is not None:
            _write_json(self.path / META_FILE, self.meta)
        return operation_id

    def optimize(self) -> bool:
        self.optimizing = True
        self.dirty = False
        started = time.perf_counter()
        try:
            changed = call_edge(self.shard.optimize)
        finally:
            self.optimizing = False
        if changed:
            self.unflushed = True
            logger.info(
                "optimised collection %s in %.2f s", self.name, time.perf_counter() - started
            )
        return changed

    def flush(self) -> None:
        self.unflushed = False
        self.last_flush = time.monotonic()
        call_edge(self.shard.flush)

    # ------------------------------------------------------------- reads

    def info(self) -> dict[str, Any]:
        info = call_edge(self.shard.info)
        schema: dict[str, Any] = {}
        for field, index in info.payload_schema.items():
            entry: dict[str, Any] = {
                "data_type": convert.schema_type_name(index.data_type),
                "points": index.points,
            }
            given = self.meta["payload_indexes"].get(field)
            if isinstance(given, dict):
                entry["params"] = given
            schema[field] = entry
        busy = self.optimizing or (self.dirty and self.auto_optimize)
        result = {
            "status": "yellow" if busy else "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": info.indexed_vectors_count,
            "points_count": info.points_count,
            "segments_count": info.segments_count,
            "config": self.meta["config"],
            "payload_schema": schema,
        }
        if self.meta.get("created_at"):
            result["created_at"] = self.meta["created_at"]
        return result


class Store:
    def __init__(
        self,
        root: Path,
        *,
        optimize_idle: float = 2.0,
        optimize_max_delay: float = 60.0,
        auto_optimize: bool = True,
    ) -> None:
        self.root = root
        self.collections_dir = root / "collections"
        self.optimize_idle = optimize_idle
        self.optimize_max_delay = optimize_max_delay
        self.auto_optimize = auto_optimize
        self._collections: dict[str, Collection] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        self._lock_fd: int | None = None

    # ------------------------------------------------------------- lifecycle

    def open(self) -> None:
        self.collections_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise RuntimeError(
                f"{self.root} is in use by another process (one process per data folder)"
            ) from None
        started = time.perf_counter()
        for entry in sorted(self.collections_dir.iterdir()):
            if not entry.is_dir():
                continue
            if entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            if not (entry / META_FILE).exists():
                logger.warning("removing %s: its creation was interrupted", entry)
                self._discard(entry)
                continue
            meta = orjson.loads((entry / META_FILE).read_bytes())
            shard = call_edge(qe.EdgeShard.load, str(entry / SHARD_DIR))
            self._collections[entry.name] = Collection(
                entry.name, entry, shard, meta, loaded=True, auto_optimize=self.auto_optimize
            )
        logger.info(
            "loaded %d collection(s) from %s in %.2f s",
            len(self._collections),
            self.collections_dir,
            time.perf_counter() - started,
        )
        self._maintenance = threading.Thread(
            target=self._maintain, name="qdrant-maintenance", daemon=True
        )
        self._maintenance.start()

    def close(self) -> None:
        """Stop maintenance, then flush and close every shard (SIGTERM/SIGINT path)."""
        self._stop.set()
        if self._maintenance is not None:
            self._maintenance.join()
        with self._lock:
            collections = list(self._collections.values())
            self._collections.clear()
        for coll in collections:
            try:
                coll.close(flush=True)
            except Exception:
                logger.exception("closing collection %s failed", coll.name)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        logger.info("flushed and closed %d collection(s)", len(collections))

    # ------------------------------------------------------------- lookups

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._collections

    @contextlib.contextmanager
    def use(self, name: str) -> Iterator[Collection]:
        """The collection, kept open (not deleted under us) for the block; 404 if absent."""
        with self._lock:
            coll = self._collections.get(name)
            if coll is None or not coll.try_acquire():
                raise collection_not_found(name)
        try:
            yield coll
        finally:
            coll.release()

    def acquire(self, name: str) -> Collection:
        with self._lock:
            coll = self._collections.get(name)
            if coll is None or not coll.try_acquire():
                raise collection_not_found(name)
            return coll

    # ------------------------------------------------------------- create / delete (blocking)

    def create(self, name: str, settings: convert.CollectionSettings) -> None:
        validate_name(name)
        with self._lock:
            if name in self._collections or name in self._pending:
                raise collection_exists(name)
            self._pending.add(name)
        try:
            path = self.collections_dir / name
            if path.exists():  # left over by a failed creation
                self._discard(path)
            path.mkdir()
            try:
                shard = call_edge(qe.EdgeShard.create, str(path / SHARD_DIR), settings.edge)
                meta = {
                    "name": name,
                    "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "config": settings.config,
                    "payload_indexes": {},
                }
                try:
                    _write_json(path / META_FILE, meta)
                except BaseException:
                    shard.close()
                    raise
            except BaseException:
                self._discard(path)
                raise
            with self._lock:
                self._collections[name] = Collection(
                    name, path, shard, meta, loaded=False, auto_optimize=self.auto_optimize
                )
            logger.info("created collection %s", name)
        finally:
            with self._lock:
                self._pending.discard(name)

    def delete(self, name: str) -> bool:
        with self._lock:
            if name in self._pending:
                raise ApiError(409, f"Wrong input: Collection `{name}` is being created or deleted")
            coll = self._collections.pop(name, None)
            if coll is None:
                return False
            self._pending.add(name)
        try:
            coll.close(flush=False)
            self._discard(coll.path)
            logger.info("deleted collection %s", name)
            return True
        finally:
            with self._lock:
                self._pending.discard(name)

    def _discard(self, path: Path) -> None:
        """Rename out of the way (atomic: the collection is gone), then remove."""
        trash = self.collections_dir / f".deleted-{uuid.uuid4().hex}"
        os.rename(path, trash)
        _fsync_dir(self.collections_dir)
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------- maintenance

    def _maintain(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                collections = list(self._collections.values())
            for coll in collections:
                if self._stop.is_set():
                    return
                task = self._due(coll, time.monotonic())
                if task is None or not coll.try_acquire():
                    continue
                try:
                    future: Future[Any] = coll.writer.submit(task)
                    future.result()
                except ApiError as exc:
                    logger.error("maintenance of %s failed: %s", coll.name, exc.message)
                except Exception:
                    logger.exception("maintenance of %s failed", coll.name)
                finally:
                    coll.release()

    def _due(self, coll: Collection, now: float) -> Callable[[], Any] | None:
        if coll.dirty and coll.auto_optimize:
            idle = now - coll.last_write >= self.optimize_idle
            overdue = now - coll.dirty_since >= self.optimize_max_delay
            if idle or overdue:
                return coll.optimize
        if coll.unflushed and now - coll.last_flush >= coll.flush_interval:
            return coll.flush
        return None
