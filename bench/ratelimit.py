"""Rate-limit benchmarks (issue 8, section 4): one request-rate limit per tenant across 4
gateway processes (gateway/ratelimit.py).

    make bench-deps                                  # once (numpy, as bench/dataplane.py)
    .venv/bin/python bench/ratelimit.py              # both benchmarks (~9 min)
    .venv/bin/python bench/ratelimit.py accuracy     # one of them
    .venv/bin/python bench/ratelimit.py --quick      # both, short passes (~1.5 min)

Benchmarks (each in a private platform of its own, torn down afterwards):

- `accuracy`: a tenant at `max_qps` = each of `--rates` (200 first), the gateway with 4
  worker processes (`granian --workers 4`), `--clients` keep-alive connections in a closed loop
  sending queries far faster than the limit. From `--accuracy-warmup` s after the first
  refusal (so the bucket's burst is spent, whenever the gateway's workers got going), the
  answers of `--accuracy-duration` s are counted: admitted (200) per second.
  Goal: within ±10% of max_qps. Also measured: the same with the per-process buckets
  (`VECTORPLANE_GATEWAY_RATE_LIMIT=local`, the old behaviour: up to 4x), and the Redis calls
  (`INFO commandstats`) per admitted request.
- `overhead`: a tenant at max_qps 1,000,000 (never refused). Two gateways of 4 workers each run
  side by side, one with the limiter (`global`) and one without (`off`); once every worker of
  both is up and has served a warm-up pass, `--rounds` rounds, each a pass of `--duration` s
  (after `--warmup` s) on one then the other, the order swapped every round, with fresh
  `--overhead-clients` connections for every pass (the kernel spreads them over the workers at
  accept; the spread is recorded). Goal: throughput with the limiter >= 0.97x without (the
  median of the rounds' ratios). The CPU the gateways' processes use per request (psutil) is
  recorded too.

Set-up as bench/dataplane.py (whose helpers this imports): a temp state folder with a private
embedded PostgreSQL, migrated; tenants, keys and indexes made through the services by the
`_agent` child; vectors bulk-loaded with COPY (a small index: 2,000 x 16, so that a query costs
the gateway more than PostgreSQL and the limiter's share shows); plus the bundled redis-server
on a free port in the folder (`VECTORPLANE_GATEWAY_REDIS_URL`). The gateway runs as
`python -m vectorplane run` starts it. Everything listens on 127.0.0.1; every pass has a
deadline; Ctrl-C or SIGTERM stops the servers and deletes the folder (`--keep` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataplane as dp
from dataplane import BenchError, GatewayProc, Platform, RawHttp, median, ratio

from vectorplane.embedded import EmbeddedRedis

BENCHMARKS = ("accuracy", "overhead")
GOALS = {"accuracy": 0.10, "overhead_ratio": 0.97}
WORKERS = 4
DIM, VECTORS, QUERIES = 16, 2000, 200
# The throughput tenant never meets its limit (as dataplane.py's tenants).
BENCH_LIMITS = dp.BENCH_LIMITS


def log(message: str) -> None:
    print(f"[ratelimit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# =========================================================================== set-up


@contextlib.contextmanager
def redis_server(plat: Platform, port: int) -> Iterator[redis.Redis]:
    """The bundled redis-server in the platform's folder; answers a client of it."""
    server = EmbeddedRedis(plat.state / "redis", port)
    log_path = plat.logs / "redis.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            server.argv(), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    client = redis.Redis.from_url(server.url())
    try:
        server.wait_until_ready(alive=lambda: proc.poll() is None)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def gateway(plat: Platform, mode: str) -> Iterator[GatewayProc]:
    """dataplane.py's gateway (4 workers) with VECTORPLANE_GATEWAY_RATE_LIMIT=`mode`."""
    with contextlib.ExitStack() as stack:
        saved = plat.env.get("VECTORPLANE_GATEWAY_RATE_LIMIT")
        plat.env["VECTORPLANE_GATEWAY_RATE_LIMIT"] = mode
        try:
            gw = stack.enter_context(dp.gateway_server(plat, WORKERS))
        finally:
            if saved is None:
                plat.env.pop("VECTORPLANE_GATEWAY_RATE_LIMIT", None)
            else:
                plat.env["VECTORPLANE_GATEWAY_RATE_LIMIT"] = saved
        yield gw


def wait_for_workers(gw: GatewayProc, plat: Platform, timeout: float = 120.0) -> None:
    """Until every worker process of the gateway holds its PostgreSQL connections (its
    start-up done): connections opened before would all go to the workers already up."""
    deadline = time.monotonic() + timeout
    while True:
        ready = 0
        with contextlib.suppress(psutil.Error):
            for worker in psutil.Process(gw.process.pid).children():
                conns = worker.net_connections("tcp")
                ready += any(c.raddr and c.raddr.port == plat.pg_port for c in conns)
        if ready >= gw.workers:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"only {ready} of {gw.workers} gateway workers came up")
        time.sleep(0.2)


def spread(gw: GatewayProc) -> list[int]:
    """Client connections held by each worker (the kernel picks the worker at accept)."""
    counts = []
    with contextlib.suppress(psutil.Error):
        for worker in psutil.Process(gw.process.pid).children():
            counts.append(sum(1 for c in worker.net_connections("tcp")
                              if c.laddr and c.laddr.port == gw.port
                              and c.status == psutil.CONN_ESTABLISHED))  # fmt: skip
    return sorted(counts, reverse=True)


def small_index(plat: Platform, slug: str) -> tuple[dp.IndexRef, list[bytes]]:
    """A tenant with one small index, loaded; answers it and query bodies."""
    (index,), _ = plat.tenant(slug, [{"name": "small", "dimension": DIM}])
    everything = dp.clustered(VECTORS + QUERIES, DIM, clusters=20, seed=8)
    dp.bulk_load(plat.owner_url, index, dp.make_ids(0, VECTORS), everything[:VECTORS])
    bodies = [dp.query_body(q.tolist()) for q in everything[VECTORS:]]
    return index, bodies


def redis_calls(client: redis.Redis) -> int:
    """Script calls Redis has served (the limiter's only calls: EVALSHA, EVAL)."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


# =========================================================================== accuracy


REFUSAL_TIMEOUT = 60.0  # accuracy: the first 429 must come within this


async def overload(
    port: int, requests: list[bytes], clients: int, warmup: float, duration: float,
    on_window: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """`clients` connections sending `requests` in a closed loop; answers the statuses of the
    answers received within the measured window and per second of it. The window opens
    `warmup` s after the first refusal (429): by then the tenant's burst is spent, however
    long the gateway took to answer at all. `on_window("start"|"end")` is called at its edges."""
    conns = [RawHttp(port) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    statuses: Counter[int] = Counter()
    per_second: list[Counter[int]] = [Counter() for _ in range(int(duration) + 1)]
    started = time.perf_counter()
    refused = asyncio.Event()
    window = [math.inf, math.inf]  # opens, ends

    async def worker(w: int, conn: RawHttp) -> None:
        i = w
        while time.perf_counter() < window[1]:
            status, _ = await conn.send(requests[i % len(requests)])
            i += clients
            now = time.perf_counter()
            if status == 429 and not refused.is_set():
                window[:] = [now + warmup, now + warmup + duration]
                refused.set()
            if window[0] <= now < window[1]:
                statuses[status] += 1
                per_second[int(now - window[0])][status] += 1

    async def edges() -> None:
        try:
            await asyncio.wait_for(refused.wait(), REFUSAL_TIMEOUT)
        except TimeoutError:
            raise BenchError(f"no request was refused in {REFUSAL_TIMEOUT:.0f} s") from None
        await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
        on_window("start")
        await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
        on_window("end")

    try:
        async with asyncio.timeout(REFUSAL_TIMEOUT + warmup + duration + dp.PASS_SLACK):
            await asyncio.gather(edges(), *(worker(w, c) for w, c in enumerate(conns)))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    unexpected = set(statuses) - {200, 429}
    if unexpected:
        raise BenchError(f"unexpected statuses {sorted(unexpected)}: {dict(statuses)}")
    return {
        "admitted": statuses[200],
        "refused": statuses[429],
        "admitted_per_s": round(statuses[200] / duration, 1),
        "answers_per_s": round(sum(statuses.values()) / duration, 1),
        "admitted_each_second": [c[200] for c in per_second[: int(duration)]],
        "first_refusal_after_s": round(window[0] - warmup - started, 2),
    }


def bench_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"config": {"rates": args.rates, "workers": WORKERS,
                                      "clients": args.clients,
                                      "warmup_s": args.accuracy_warmup,
                                      "duration_s": args.accuracy_duration,
                                      "index": [VECTORS, DIM]},
                           "runs": []}  # fmt: skip
    redis_port = dp.free_port()
    extra = {"VECTORPLANE_GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    with Platform("ratelimit-accuracy", keep=args.keep, extra_env=extra) as plat, \
            redis_server(plat, redis_port) as client:  # fmt: skip
        out["versions"] = {**plat.versions(), "redis": client.info("server")["redis_version"]}
        for mode in ("global", "local"):
            with gateway(plat, mode) as gw:
                wait_for_workers(gw, plat)
                for rate in args.rates:
                    slug = f"acc-{mode}-{rate}"
                    index, bodies = small_index(plat, slug)
                    assert plat.agent is not None
                    plat.agent.call("limits", slug=slug, values={**BENCH_LIMITS, "max_qps": rate})
                    requests = [dp.http_request(gw.port, index.key, f"/v1/indexes/{index.name}"
                                                "/query", b) for b in bodies]  # fmt: skip
                    calls: dict[str, int] = {}

                    def on_window(edge: str, calls: dict[str, int] = calls) -> None:
                        calls[edge] = redis_calls(client)

                    log(f"{mode}: max_qps {rate}, {args.clients} clients, "
                        f"{args.accuracy_warmup:.0f} s + {args.accuracy_duration:.0f} s")
                    got = asyncio.run(overload(gw.port, requests, args.clients,
                                               args.accuracy_warmup, args.accuracy_duration,
                                               on_window))  # fmt: skip
                    got.update(mode=mode, max_qps=rate,
                               ratio=ratio(got["admitted_per_s"], rate),
                               redis_calls=calls["end"] - calls["start"])  # fmt: skip
                    got["redis_calls_per_admitted"] = round(
                        got["redis_calls"] / max(1, got["admitted"]), 3)  # fmt: skip
                    if mode == "global":
                        got["goal_met"] = abs(got["admitted_per_s"] / rate - 1) <= GOALS["accuracy"]
                    log(f"  admitted {got['admitted_per_s']}/s of {got['answers_per_s']}/s "
                        f"answered (x{got['ratio']} the limit); Redis calls per admitted "
                        f"{got['redis_calls_per_admitted']}")  # fmt: skip
                    out["runs"].append(got)
    return out


def md_accuracy(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    lines = [
        f"### Accuracy: admitted rate with {c['workers']} gateway processes, far over the limit",
        "",
        f"{c['clients']} keep-alive connections in a closed loop (queries on a "
        f"{c['index'][0]:,} x {c['index'][1]} index); the answers of {c['duration_s']:.0f} s, "
        f"from {c['warmup_s']:.0f} s after the first refusal. "
        f"PostgreSQL {r['versions']['postgresql']}, "
        f"Redis {r['versions']['redis']}.",
        "",
        "| limiter | max_qps | answered /s | admitted /s | admitted / max_qps | goal ±10% "
        "| Redis calls per admitted | admitted, each second |",
        "|---|---:|---:|---:|---:|:---:|---:|---|",
    ]
    for run in r["runs"]:
        goal = ("met" if run["goal_met"] else "**not met**") if "goal_met" in run else "(reference)"
        each = ", ".join(str(x) for x in run["admitted_each_second"])
        lines.append(
            f"| {run['mode']} | {run['max_qps']} | {run['answers_per_s']:.0f} | "
            f"{run['admitted_per_s']:.1f} | {run['ratio']:.3f} | {goal} | "
            f"{run['redis_calls_per_admitted']:.3f} | {each} |"
        )
    return lines


# =========================================================================== overhead


def bench_overhead(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"config": {"workers": WORKERS, "clients": args.overhead_clients,
                                      "rounds": args.rounds, "warmup_s": args.warmup,
                                      "duration_s": args.duration, "index": [VECTORS, DIM],
                                      "max_qps": BENCH_LIMITS["max_qps"]}}  # fmt: skip
    redis_port = dp.free_port()
    extra = {"VECTORPLANE_GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    with Platform("ratelimit-overhead", keep=args.keep, extra_env=extra) as plat, \
            redis_server(plat, redis_port) as client, \
            gateway(plat, "global") as on, gateway(plat, "off") as off:  # fmt: skip
        out["versions"] = {**plat.versions(), "redis": client.info("server")["redis_version"]}
        index, bodies = small_index(plat, "overhead")
        gateways = {"on": on, "off": off}
        for gw in gateways.values():
            wait_for_workers(gw, plat)

        async def clients_of(name: str) -> dp.Clients:
            # Fresh connections for every pass: which worker holds each is the kernel's
            # choice at accept, so a lopsided spread does not stick to one side all run long.
            return await dp.gateway_clients(gateways[name].port, index.key, index.name, bodies,
                                            args.overhead_clients, parse=False)  # fmt: skip

        async def one_pass(name: str, label: str) -> dict[str, Any]:
            clients = await clients_of(name)
            try:
                before = redis_calls(client)
                sample = await dp.measure(
                    label, clients, len(bodies), duration=args.duration, warmup=args.warmup,
                    cpu={"gateway": gateways[name].pids, "postgres": plat.postgres_pids},
                )  # fmt: skip
                return {**asdict(sample), "redis_calls": redis_calls(client) - before,
                        "connections_per_worker": spread(gateways[name])}  # fmt: skip
            finally:
                await clients.close()

        async def series() -> list[dict[str, Any]]:
            # Unmeasured, both: every worker has served requests (caches, pools, leases).
            for name in gateways:
                await one_pass(name, f"warm-up, limiter {name}")
            rounds = []
            for r in range(args.rounds):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                samples: dict[str, Any] = {}
                for name in order:
                    samples[name] = await one_pass(name, f"limiter {name}, round {r + 1}")
                samples["ratio"] = ratio(samples["on"]["qps"], samples["off"]["qps"])
                samples["cpu_ratio"] = ratio(samples["on"]["cpu_ms_per_request"]["gateway"],
                                             samples["off"]["cpu_ms_per_request"]["gateway"])
                log(f"  round {r + 1}: on/off throughput {samples['ratio']}, gateway CPU per "
                    f"request {samples['cpu_ratio']}")  # fmt: skip
                rounds.append(samples)
            return rounds

        rounds = asyncio.run(series())
    ratios = [r["ratio"] for r in rounds]

    def cpu_per_request(name: str) -> float:
        used = sum(r[name]["cpu_ms_per_request"]["gateway"] * r[name]["requests"] for r in rounds)
        return float(used / max(1, sum(r[name]["requests"] for r in rounds)))

    out["rounds"] = rounds
    out["summary"] = {
        "median_ratio": round(median(ratios), 3),
        "ratio_of_medians": ratio(median([r["on"]["qps"] for r in rounds]),
                                  median([r["off"]["qps"] for r in rounds])),
        "ratio_of_means": ratio(sum(r["on"]["qps"] for r in rounds),
                                sum(r["off"]["qps"] for r in rounds)),
        "quartiles": [round(dp.percentile(sorted(ratios), q), 3) for q in (25, 75)],
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "median_cpu_ratio": round(median([r["cpu_ratio"] for r in rounds]), 3),
        # Requests per CPU-second of the gateways' processes, on / off, over every pass: the
        # throughput each would reach with the same CPU (what the noise changes least).
        "gateway_cpu_ms_per_request": {"on": round(cpu_per_request("on"), 4),
                                       "off": round(cpu_per_request("off"), 4)},
        "throughput_per_cpu_ratio": ratio(cpu_per_request("off"), cpu_per_request("on")),
        "redis_calls_per_request": round(
            sum(r["on"]["redis_calls"] for r in rounds)
            / max(1, sum(r["on"]["requests"] for r in rounds)), 5),
        "goal_met": median(ratios) >= GOALS["overhead_ratio"],
    }  # fmt: skip
    log(f"  summary: {out['summary']}")
    return out


def md_overhead(r: dict[str, Any]) -> list[str]:
    c, s = r["config"], r["summary"]
    lines = [
        f"### Overhead: throughput with the limiter on vs off ({c['workers']} gateway "
        f"processes each, {c['clients']} clients, max_qps {c['max_qps']:,}: never refused)",
        "",
        f"Passes of {c['duration_s']:g} s after {c['warmup_s']:g} s of warm-up, on and off "
        "alternating (the order swapped every round), fresh connections for every pass.",
        "",
        "| round | limiter | q/s | p50 ms | p99 ms | gateway CPU ms/request | Redis calls "
        "| connections per worker | on/off q/s | on/off CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for i, rnd in enumerate(r["rounds"], 1):
        for name in ("on", "off"):
            smp = rnd[name]
            spread_text = "/".join(str(x) for x in smp["connections_per_worker"])
            lines.append(
                f"| {i} | {name} | {smp['qps']:.0f} | {smp['p50_ms']:.2f} | "
                f"{smp['p99_ms']:.2f} | {smp['cpu_ms_per_request']['gateway']:.3f} | "
                f"{smp['redis_calls']} | {spread_text} | "
                + (f"{rnd['ratio']:.3f} | {rnd['cpu_ratio']:.3f} |" if name == "on" else " | |")
            )
    lines += [
        "",
        f"Median of the rounds' on/off throughput ratios: **{s['median_ratio']:.3f}** "
        f"(goal ≥ {GOALS['overhead_ratio']}: {'met' if s['goal_met'] else '**not met**'}; "
        f"quartiles {s['quartiles'][0]:.3f} and {s['quartiles'][1]:.3f}, range "
        f"{s['min_ratio']:.3f} to {s['max_ratio']:.3f}; ratio of the medians "
        f"{s['ratio_of_medians']:.3f}, of the means {s['ratio_of_means']:.3f}). Requests per "
        f"CPU-second of the gateways' processes, on/off, over every pass: "
        f"**{s['throughput_per_cpu_ratio']:.3f}** ({s['gateway_cpu_ms_per_request']['on']:.3f} "
        f"vs {s['gateway_cpu_ms_per_request']['off']:.3f} ms per request). Gateway CPU "
        "per request on/off, median of the rounds "
        f"{s['median_cpu_ratio']:.3f}; Redis calls per request with the limiter "
        f"{s['redis_calls_per_request']}.",
    ]
    return lines


# =========================================================================== main

RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "accuracy": bench_accuracy, "overhead": bench_overhead,
}  # fmt: skip
MARKDOWN = {"accuracy": md_accuracy, "overhead": md_overhead}
QUICK = {"duration": 2.0, "rounds": 4, "rates": [200], "accuracy_duration": 5.0,
         "accuracy_warmup": 2.0}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/ratelimit.py",
        description="The global per-tenant rate limit with 4 gateway processes (issue 8).",
    )
    p.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                   help=f"any of {', '.join(BENCHMARKS)} (default: all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="short passes: a smoke test")
    p.add_argument("--rates", type=dp.int_list, default=[200, 50],
                   help="accuracy: the tenant's max_qps values")  # fmt: skip
    p.add_argument("--clients", type=dp.positive, default=32, help="accuracy: connections")
    p.add_argument("--accuracy-duration", type=float, default=20.0,
                   help="accuracy: seconds counted per rate and limiter")  # fmt: skip
    p.add_argument("--accuracy-warmup", type=float, default=3.0,
                   help="accuracy: seconds from the first refusal to the count")  # fmt: skip
    p.add_argument("--overhead-clients", type=dp.positive, default=16)
    p.add_argument("--duration", type=float, default=2.5, help="overhead: seconds per pass")
    p.add_argument("--warmup", type=float, default=0.5, help="overhead: seconds before a pass")
    p.add_argument("--rounds", type=dp.positive, default=40, help="overhead: on/off rounds")
    return dp.finish_args(p, argv, BENCHMARKS, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, dp._interrupt)
    started = time.monotonic()
    command = " ".join([".venv/bin/python", "bench/ratelimit.py", *sys.argv[1:]])
    try:
        for name in args.benchmarks:
            log(f"=== {name}")
            t0 = time.monotonic()
            meta = {**dp.machine(), "command": command, "benchmark": name}
            result = RUNNERS[name](args)
            meta["runtime_seconds"] = round(time.monotonic() - t0, 1)
            payload = {"meta": meta, **result}
            dp.write_json(args.output_dir / f"ratelimit_{name}.json", payload)
            print("\n".join(MARKDOWN[name](payload)) + f"\n\n({name}: "
                  f"{meta['runtime_seconds']} s)\n", flush=True)  # fmt: skip
    except BenchError as exc:
        print(f"bench/ratelimit.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/ratelimit.py: interrupted; stopped every process", file=sys.stderr)
        return 130
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
