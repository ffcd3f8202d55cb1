"""`python -m vectorplane.qdrant_host --data DIR --port P --api-key-file FILE`

One process that owns the Edge shards of DIR and serves Qdrant's REST API (a subset) on
granian's embedded server: a single process, so that a SIGKILL cannot leave a worker behind
that still holds the shards' WAL locks. SIGTERM/SIGINT stop the server, then every shard is
flushed and closed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import signal
import sys
from pathlib import Path

from . import FALLBACK_VERSION

logger = logging.getLogger("vectorplane.qdrant_host")


def compatible_version() -> str:
    """The version GET / reports: the installed qdrant-client's major.minor, which its
    compatibility check (same major, minor within 1) accepts without a warning."""
    try:
        major, minor = importlib.metadata.version("qdrant-client").split(".")[:2]
        return f"{int(major)}.{int(minor)}.0"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return FALLBACK_VERSION


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vectorplane.qdrant_host",
        description="Serve Qdrant's REST API over Qdrant Edge shards kept in one data folder.",
    )
    parser.add_argument("--data", required=True, type=Path, help="data folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument(
        "--api-key-file", required=True, type=Path, help="file holding the API key clients send"
    )
    parser.add_argument(
        "--read-threads",
        type=int,
        default=0,
        help="threads running reads; 0 (default): on the event loop, since Edge holds the GIL "
        "while it searches (its own search pool already spreads a query over the segments)",
    )
    parser.add_argument(
        "--optimize-idle",
        type=float,
        default=2.0,
        help="seconds without writes before a collection is optimised (HNSW build)",
    )
    parser.add_argument(
        "--optimize-max-delay",
        type=float,
        default=60.0,
        help="seconds after which unoptimised writes are optimised even under constant writes",
    )
    parser.add_argument(
        "--no-auto-optimize", action="store_true", help="never optimise (segments stay plain)"
    )
    parser.add_argument("--report-version", default=None, help="version reported by GET /")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


async def serve(app: object, host: str, port: int, log_level: str) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        backlog=1024,
        log_level=LogLevels(log_level),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    await server.serve()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    api_key = args.api_key_file.read_text().strip()
    if not api_key:
        print(f"{args.api_key_file} is empty", file=sys.stderr)
        return 2

    from .app import QdrantHostApp
    from .store import Store

    store = Store(
        args.data,
        optimize_idle=args.optimize_idle,
        optimize_max_delay=args.optimize_max_delay,
        auto_optimize=not args.no_auto_optimize,
    )
    try:
        store.open()
    except Exception as exc:
        print(f"cannot open {args.data}: {exc}", file=sys.stderr)
        return 1
    app = QdrantHostApp(
        store,
        api_key,
        version=args.report_version or compatible_version(),
        read_threads=args.read_threads,
    )
    try:
        asyncio.run(serve(app, args.host, args.port, args.log_level))
    finally:
        app.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
