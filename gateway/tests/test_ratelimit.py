"""The global per-tenant limits (gateway/ratelimit.py) against a real Redis: the bundled
redis-server, the session's (`redis_server`) or, for the outage tests, one of the test's own
that it stops, restarts, pauses and resumes.

Several `RateLimiter`s, each with its own `RedisLink` (its own connections), stand for several
gateway processes; they share only Redis, as processes do. Bounds are checked against the time
that passed on Redis's clock (`TIME`, read before and after), the clock the bucket refills by,
so a slow or stalled test machine widens what is allowed by exactly the time it lost, and never
makes a correct limiter fail. No test waits for a deadline: waits are for an event (a count
reached, Redis's clock passing a mark, a lease answered), each with a generous bound.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import redis

from gateway.ratelimit import (
    BUCKET_SCRIPT,
    RateLimiter,
    RedisLink,
    TenantLock,
    bucket_keys,
)
from gateway.tests.conftest import RedisProcess

T = TypeVar("T")
TIMEOUT = 1.0  # Redis calls of the tests that do not test the timeout: generous, never hit


@pytest.fixture
def prefix() -> str:
    """Keys of this test only."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def sync_redis(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url())
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A Redis of the test's own, to stop and pause."""
    server = RedisProcess()
    try:
        yield server
    finally:
        server.close()


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1_000_000


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


class Processes:
    """`count` limiters (gateway processes) on their own links; closed (tokens given back,
    connections closed) at the end."""

    def __init__(self, url: str, count: int, prefix: str, **options: Any) -> None:
        timeout = options.pop("timeout", TIMEOUT)
        call_timeout = options.pop("call_timeout", None)
        self.links = [RedisLink(url, timeout=timeout, call_timeout=call_timeout)
                      for _ in range(count)]  # fmt: skip
        self.limiters = [RateLimiter(link, prefix=prefix, **options) for link in self.links]

    async def __aenter__(self) -> list[RateLimiter]:
        for link in self.links:
            await link.open()
        return self.limiters

    async def __aexit__(self, *exc: object) -> None:
        for limiter in self.limiters:
            await limiter.close()
        for link in self.links:
            await link.close()


async def drive(
    limiters: list[RateLimiter], tenant: uuid.UUID, max_qps: float, calls: int, clients: int = 16
) -> tuple[int, int]:
    """`calls` admit() calls from `clients` concurrent clients, spread over the limiters
    (client c uses limiter c mod n); a refused client yields before its next call. Answers
    (admitted, refused)."""
    remaining = itertools.count()
    admitted = refused = 0

    async def client(c: int) -> None:
        nonlocal admitted, refused
        limiter = limiters[c % len(limiters)]
        while next(remaining) < calls:
            if await limiter.admit(tenant, max_qps) is None:
                admitted += 1
            else:
                refused += 1
                await asyncio.sleep(0.0005)

    await asyncio.gather(*(client(c) for c in range(clients)))
    return admitted, refused


# ============================================================================ the script


def test_the_script_grants_the_burst_refuses_with_the_wait_and_takes_tokens_back(
    sync_redis: redis.Redis, prefix: str
) -> None:
    script = sync_redis.register_script(BUCKET_SCRIPT)
    keys = bucket_keys(prefix, uuid.uuid4())
    rate, capacity = 1.0, 10.0  # slow refill: at most a token in the test's second

    def call(n: int, process: str = "p1") -> tuple[int, int, int]:
        granted, wait, processes = script(keys=keys, args=[rate, capacity, n, process, 10**7])
        return int(granted), int(wait), int(processes)

    started = redis_now(sync_redis)
    assert call(4) == (4, 0, 1)  # a new bucket is full
    granted, wait, _ = call(10)
    assert granted == 6  # the rest (the refill since is below one token)
    granted, wait, _ = call(5)
    assert granted == 0
    elapsed = redis_now(sync_redis) - started
    # Until 5 tokens are there again, at 1 a second, from the (nearly) empty bucket.
    assert 5_000_000 - elapsed * 1_000_000 - 1 <= wait <= 5_000_000
    # A second process asks too: both are counted, and the wait is until a lease for each
    # (2 x 3 tokens), so that refused processes come back about once per lease in all.
    granted, wait, processes = call(3, "p2")
    elapsed = redis_now(sync_redis) - started
    assert (granted, processes) == (0, 2)
    assert 6_000_000 - elapsed * 1_000_000 - 1 <= wait <= 6_000_000
    # Tokens given back are added, up to the capacity.
    assert call(-3) == (0, 0, 0)
    assert 3 <= call(10)[0] <= 3 + rate * (redis_now(sync_redis) - started)
    assert call(-1000) == (0, 0, 0)
    assert call(1000)[0] == 10
    # The state's time is Redis's clock (microseconds of TIME), whatever the callers' clocks.
    before = redis_now(sync_redis)
    call(1)
    after = redis_now(sync_redis)
    stamp = float(sync_redis.hget(keys[0], "ts") or 0) / 1_000_000
    assert before <= stamp <= after
    # The key goes when the bucket would be full again (plus a second): a missing key is full.
    assert 0 < sync_redis.pttl(keys[0]) <= 10_000 + 1000


def test_the_script_never_grants_more_than_the_bucket_under_concurrency(
    redis_server: RedisProcess, sync_redis: redis.Redis, prefix: str
) -> None:
    keys = bucket_keys(prefix, uuid.uuid4())
    rate, capacity = 2.0, 500.0

    async def body() -> tuple[int, float]:
        links = [RedisLink(redis_server.url(), timeout=TIMEOUT) for _ in range(4)]
        for link in links:
            await link.open()
        granted_total = 0
        rng = random.Random(7)

        async def caller(i: int) -> None:
            nonlocal granted_total
            link = links[i % len(links)]
            while True:
                n = rng.randint(1, 9)
                answer = await link.run_script(BUCKET_SCRIPT, keys, [rate, capacity, n,
                                                                     f"p{i}", 10**7])  # fmt: skip
                granted_total += int(answer[0])
                if int(answer[0]) < n:  # the bucket ran dry
                    return

        started = redis_now(sync_redis)
        try:
            await asyncio.gather(*(caller(i) for i in range(32)))
        finally:
            for link in links:
                await link.close()
        return granted_total, redis_now(sync_redis) - started

    granted, elapsed = run(body)
    # Exactly the capacity, plus what refilled meanwhile (Redis's clock), never more.
    assert capacity <= granted <= capacity + rate * elapsed + 1


def test_the_script_refills_at_the_rate_on_redis_time(
    sync_redis: redis.Redis, prefix: str
) -> None:
    script = sync_redis.register_script(BUCKET_SCRIPT)
    keys = bucket_keys(prefix, uuid.uuid4())
    rate, capacity = 200.0, 1000.0

    def take(n: int) -> int:
        return int(script(keys=keys, args=[rate, capacity, n, "p", 10**7])[0])

    assert take(1000) == 1000
    before_drain = redis_now(sync_redis)
    take(1000)  # what refilled since
    drained = redis_now(sync_redis)
    while redis_now(sync_redis) < drained + 0.5:  # Redis's clock passing a mark
        time.sleep(0.05)
    asked = redis_now(sync_redis)
    granted = take(1000)
    answered = redis_now(sync_redis)
    assert rate * (asked - drained) - 1 <= granted <= rate * (answered - before_drain) + 1
    assert granted >= 99  # at least half a second at 200/s


# ============================================================================ leasing


def test_processes_share_one_bucket(
    redis_server: RedisProcess, sync_redis: redis.Redis, prefix: str
) -> None:
    tenant, rate, n = uuid.uuid4(), 100.0, 4
    lease_max = 5  # 5% of the burst

    async def body() -> tuple[int, int, float, list[RateLimiter]]:
        async with Processes(redis_server.url(), n, prefix) as limiters:
            started = redis_now(sync_redis)
            admitted, refused = await drive(limiters, tenant, rate, calls=20_000)
            elapsed = redis_now(sync_redis) - started
            return admitted, refused, elapsed, limiters

    admitted, refused, elapsed, limiters = run(body)
    assert all(lim.stats.errors == 0 for lim in limiters)
    assert all(lim.stats.granted > 0 for lim in limiters)  # all took part
    # At most the burst + the rate x the time (no lease was held before): never N x. Tokens
    # are conserved: granted = spent + given back + held, and given back ones are granted anew.
    granted = sum(lim.stats.granted for lim in limiters)
    given_back = sum(lim.stats.given_back for lim in limiters)
    assert admitted <= granted - given_back <= rate + rate * elapsed + 1, (admitted, elapsed)
    # At least the burst and half the rate over the time (less only the leases left unspent).
    assert admitted >= rate + 0.5 * rate * elapsed - n * lease_max, (admitted, elapsed)
    # Refusals are decided locally: Redis sees far fewer calls than the requests, about one
    # per lease (5 tokens) plus a few for the processes that come back to an empty bucket.
    calls = sum(lim.stats.lease_calls for lim in limiters)
    assert calls * 5 < admitted + refused, (calls, admitted, refused)
    assert calls <= admitted, (calls, admitted)


def test_round_trips_are_rare_at_high_rates(redis_server: RedisProcess, prefix: str) -> None:
    tenant, rate = uuid.uuid4(), 1_000_000.0

    async def body() -> tuple[int, int, int]:
        async with Processes(redis_server.url(), 4, prefix) as limiters:
            admitted, refused = await drive(limiters, tenant, rate, calls=40_000)
            return admitted, refused, sum(lim.stats.lease_calls for lim in limiters)

    admitted, refused, calls = run(body)
    assert (admitted, refused) == (40_000, 0)
    # A lease is what a process spends in 0.25 s (capped at 5% of the burst): after the first
    # few calls it covers thousands of requests.
    assert calls * 100 <= admitted, calls


def test_clocks_of_processes_do_not_matter(
    redis_server: RedisProcess, sync_redis: redis.Redis, prefix: str
) -> None:
    """The bucket runs on Redis's clock: processes whose own clocks are a week apart, or run
    three times too fast, still share one rate."""
    tenant, rate, lease_max = uuid.uuid4(), 100.0, 5
    skewed: list[Callable[[], float]] = [
        lambda: time.monotonic() + 7 * 86400,
        lambda: 3 * time.monotonic(),
        lambda: time.monotonic() - 86400,
    ]

    async def body() -> tuple[int, float]:
        links = [RedisLink(redis_server.url(), timeout=TIMEOUT) for _ in skewed]
        limiters = [RateLimiter(link, prefix=prefix, clock=clock)
                    for link, clock in zip(links, skewed, strict=True)]  # fmt: skip
        for link in links:
            await link.open()
        try:
            started = redis_now(sync_redis)
            admitted, _ = await drive(limiters, tenant, rate, calls=3000)
            return admitted, redis_now(sync_redis) - started
        finally:
            for limiter in limiters:
                await limiter.close()
            for link in links:
                await link.close()

    admitted, elapsed = run(body)
    assert rate <= admitted + len(skewed) * lease_max
    assert admitted <= rate + rate * elapsed + 1, (admitted, elapsed)


class ManualClock:
    """A process's local clock that the test moves (leases' age); Redis keeps its own."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_unspent_tokens_go_back_when_the_lease_is_old(
    redis_server: RedisProcess, sync_redis: redis.Redis, prefix: str
) -> None:
    """Traffic leaves a process: what it leased and did not spend goes back to the bucket
    after the lease's time, where another process can take it."""
    tenant = uuid.uuid4()
    rate = 1.0  # a token a second: the refill during the test is small and measured
    clock = ManualClock()
    keys = bucket_keys(prefix, tenant)

    async def body() -> None:
        link, other_link = RedisLink(redis_server.url(), timeout=TIMEOUT), RedisLink(
            redis_server.url(), timeout=TIMEOUT)  # fmt: skip
        await link.open()
        await other_link.open()
        # A bucket of 100 tokens (burst 100 s at 1/s): leases of up to 5.
        limiter = RateLimiter(link, prefix=prefix, burst_seconds=100, clock=clock)
        other = RateLimiter(other_link, prefix=prefix, burst_seconds=100)
        try:
            # A first lease of 1; then (2 requests at once, for the local clock) the rate
            # estimate asks for a full lease of 5: 1 spent, 4 held.
            assert await limiter.admit(tenant, rate) is None
            assert await limiter.admit(tenant, rate) is None
            held = limiter._tenants[tenant].tokens
            assert held == 4
            # The bucket as the last lease left it, at `stamp` on Redis's clock.
            in_bucket = float(sync_redis.hget(keys[0], "tokens") or 0)
            stamp = float(sync_redis.hget(keys[0], "ts") or 0) / 1_000_000
            taken = limiter.stats.granted
            assert in_bucket == pytest.approx(100 - taken, abs=1)  # (+ the refill, < 1)

            await limiter.sweep()  # the lease is young: nothing goes back
            assert limiter.stats.given_back == 0
            clock.now += 1.5  # older than the lease's second
            await limiter.sweep()
            await asyncio.gather(*limiter._tasks)
            assert limiter.stats.given_back == held
            assert limiter._tenants[tenant].tokens == 0
            after = redis_now(sync_redis)
            back = float(sync_redis.hget(keys[0], "tokens") or 0)
            assert in_bucket + held <= back <= in_bucket + held + rate * (after - stamp) + 1e-6
            # Another process gets them.
            got = 0
            while await other.admit(tenant, rate) is None:
                got += 1
            assert got >= int(in_bucket + held) - 1
        finally:
            await limiter.close()
            await other.close()
            await link.close()
            await other_link.close()

    run(body)


def test_a_changed_limit_applies_at_once(redis_server: RedisProcess, prefix: str) -> None:
    tenant = uuid.uuid4()

    async def body() -> None:
        async with Processes(redis_server.url(), 1, prefix) as [limiter]:
            admitted, _ = await drive([limiter], tenant, 10_000, calls=2000)
            assert admitted == 2000
            await asyncio.gather(*limiter._tasks)
            held = limiter._tenants[tenant].tokens  # leased at the high rate
            # Lowered to 2 a second: the tokens leased under 10,000/s are not spent, they go
            # back; the bucket holds at most 2 now.
            admitted, refused = await drive([limiter], tenant, 2, calls=50, clients=1)
            assert admitted <= 3 and refused >= 47, (admitted, refused)
            await asyncio.gather(*limiter._tasks)
            assert limiter.stats.given_back == held
            # Raised again: the next request is admitted (no refusal window of the old rate).
            assert await limiter.admit(tenant, 10_000) is None

    run(body)


def test_a_plan_without_queries_admits_nothing(redis_server: RedisProcess, prefix: str) -> None:
    async def body() -> None:
        async with Processes(redis_server.url(), 2, prefix) as limiters:
            admitted, refused = await drive(limiters, uuid.uuid4(), 0, calls=200)
            assert (admitted, refused) == (0, 200)
            wait = await limiters[0].admit(uuid.uuid4(), 0)
            assert wait is not None and wait > 100  # as the plan says: not soon

    run(body)


def test_the_local_and_off_modes() -> None:
    async def body() -> None:
        tenant = uuid.uuid4()
        local = RateLimiter(None, mode="local")
        answers = [await local.admit(tenant, 5) for _ in range(20)]
        assert answers[:5] == [None] * 5 and all(a is not None for a in answers[5:])
        off = RateLimiter(None, mode="off")
        assert [await off.admit(tenant, 0) for _ in range(20)] == [None] * 20

    run(body)


# ============================================================================ Redis down or slow


def test_redis_down_fails_open_at_the_process_share_then_recovers(
    own_redis: RedisProcess, prefix: str
) -> None:
    """Redis stops: each process admits its share of the rate (max_qps / the processes Redis
    last counted) from a local bucket, at once; Redis is back: the limit is global again."""
    tenant, rate, n = uuid.uuid4(), 100.0, 2

    async def body() -> None:
        async with Processes(own_redis.url(), n, prefix, timeout=0.2) as limiters:
            first = limiters[0]
            # Both serve the tenant, then the first leases again: Redis counts 2 processes.
            for limiter in [*limiters, first]:
                assert await limiter.admit(tenant, rate) is None
            assert first._tenants[tenant].processes == n
            leased = first._tenants[tenant].tokens

            own_redis.stop()
            slowest = 0.0
            admitted = 0
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < 1.5:  # as a client far over it
                t0 = time.monotonic()
                if await first.admit(tenant, rate) is None:
                    admitted += 1
                slowest = max(slowest, time.monotonic() - t0)
                await asyncio.sleep(0.002)
            assert first.stats.errors >= 1
            assert slowest < 1.0, slowest  # refused connections fail fast
            # Its share: 50 a second (from one token, no burst of its own), measured on this
            # process's clock, the fallback bucket's.
            share = rate / n
            fallback = first.stats.fallback_admitted
            assert share * elapsed - 2 <= fallback <= 1 + share * elapsed, (fallback, elapsed)
            assert admitted == fallback + leased
            errors = first.stats.errors
            # While Redis is marked down, no request tries it (one attempt a second at most).
            for _ in range(50):
                await first.admit(tenant, rate)
            assert first.stats.errors <= errors + 1

            own_redis.start()
            calls = first.stats.lease_calls
            deadline = time.monotonic() + 30
            while first.stats.lease_calls == calls:  # until a lease is answered again
                assert time.monotonic() < deadline, "the limiter never used Redis again"
                await first.admit(tenant, rate)
                await asyncio.sleep(0.01)
            fallback = first.stats.fallback_admitted
            assert await first.admit(tenant, rate) is None  # a fresh bucket in a fresh Redis
            assert first.stats.fallback_admitted == fallback  # decided by the global bucket

    run(body)


def test_a_stalled_redis_never_stalls_a_request_beyond_the_timeout(
    own_redis: RedisProcess, prefix: str
) -> None:
    """Redis accepts connections and answers nothing (SIGSTOP): no request waits longer than
    the timeout; they are admitted by the local fallback; the call that does not answer within
    its own bound marks Redis down; Redis resumes: global again."""
    tenant, rate, timeout = uuid.uuid4(), 1000.0, 0.05

    async def body() -> None:
        async with Processes(own_redis.url(), 1, prefix, timeout=timeout,
                             call_timeout=0.15) as [limiter]:  # fmt: skip
            assert await limiter.admit(tenant, rate) is None
            own_redis.pause()
            try:
                latencies: list[float] = []

                async def one() -> float | None:
                    t0 = time.monotonic()
                    try:
                        return await limiter.admit(tenant, rate)
                    finally:
                        latencies.append(time.monotonic() - t0)

                answers = []
                for _ in range(30):  # 10 at a time, 300 requests, about 1,000 a second
                    answers += await asyncio.gather(*(one() for _ in range(10)))
                    await asyncio.sleep(0.01)
                # Fail open: the fallback admits this process's share, 1,000 a second.
                assert answers.count(None) >= 240, answers
                assert limiter.stats.fallback_admitted >= 200
                assert limiter.stats.errors >= 1
                # The bound: the timeout, plus scheduling on a busy machine (Redis's socket
                # timeout would have held them for 5 s).
                assert max(latencies) < timeout + 0.5, max(latencies)
            finally:
                own_redis.resume()
            calls = limiter.stats.lease_calls
            deadline = time.monotonic() + 30
            while limiter.stats.lease_calls == calls:
                assert time.monotonic() < deadline, "the limiter never used Redis again"
                await limiter.admit(tenant, rate)
                await asyncio.sleep(0.01)

    run(body)


def test_a_late_answer_is_not_an_outage(own_redis: RedisProcess, prefix: str) -> None:
    """Redis answers after the request's bound but within the call's (a process or a Redis the
    machine paused for a moment): the request that waited is decided by the fallback; the
    lease lands and Redis is not treated as down."""
    tenant, rate, timeout = uuid.uuid4(), 1000.0, 0.05

    async def body() -> None:
        async with Processes(own_redis.url(), 1, prefix, timeout=timeout,
                             call_timeout=30.0) as [limiter]:  # fmt: skip
            assert await limiter.admit(tenant, rate) is None  # a lease of 1, spent
            assert limiter._tenants[tenant].tokens == 0
            own_redis.pause()
            try:
                t0 = time.monotonic()
                assert await limiter.admit(tenant, rate) is None  # the fallback's first token
                assert time.monotonic() - t0 < timeout + 0.5
                assert limiter.stats.fallback_admitted == 1
            finally:
                own_redis.resume()
            await asyncio.gather(*limiter._tasks)  # the late lease lands
            assert limiter.stats.errors == 0 and limiter.link is not None and limiter.link.usable()
            calls = limiter.stats.lease_calls
            assert calls == 2
            assert await limiter.admit(tenant, rate) is None
            assert limiter.stats.fallback_admitted == 1  # from the lease, not the fallback

    run(body)


# ============================================================================ the tenant lock


def test_the_tenant_lock_excludes_across_processes(
    redis_server: RedisProcess, prefix: str
) -> None:
    tenant = uuid.uuid4()

    async def body() -> tuple[int, int, list[bool]]:
        links = [RedisLink(redis_server.url(), timeout=TIMEOUT) for _ in range(3)]
        for link in links:
            await link.open()
        locks = [TenantLock(link, "test", prefix=prefix) for link in links]
        inside = most = counter = 0
        global_: list[bool] = []

        async def section(i: int) -> None:
            nonlocal inside, most, counter
            async with locks[i % len(locks)].hold(tenant) as held:
                global_.append(held)
                inside += 1
                most = max(most, inside)
                seen = counter
                await asyncio.sleep(0.002)  # a read, a write: lost updates if not exclusive
                counter = seen + 1
                inside -= 1

        try:
            # Another tenant's lock is another lock: held meanwhile, it blocks nothing.
            async with locks[0].hold(uuid.uuid4()):
                await asyncio.gather(*(section(i) for i in range(30)))
        finally:
            for link in links:
                await link.close()
        return most, counter, global_

    most, counter, global_ = run(body)
    assert (most, counter) == (1, 30)
    assert global_ == [True] * 30


def test_a_dead_holders_lock_expires_and_a_stale_release_frees_nothing(
    redis_server: RedisProcess, sync_redis: redis.Redis, prefix: str
) -> None:
    tenant = uuid.uuid4()

    async def body() -> None:
        link = RedisLink(redis_server.url(), timeout=TIMEOUT)
        await link.open()
        lock = TenantLock(link, "test", ttl=0.5, prefix=prefix)
        key = lock.key(tenant)
        try:
            # A process took the lock and died: it is free after its ttl, not before.
            sync_redis.set(key, "dead-holder", px=500)
            async with lock.hold(tenant) as held:
                assert held
                assert sync_redis.get(key) not in (None, b"dead-holder")
                # The dead holder's release (its token) leaves the new holder's lock alone.
                assert await link.run_script(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                    "return redis.call('DEL', KEYS[1]) end return 0", [key], ["dead-holder"]
                ) == 0  # fmt: skip
                assert sync_redis.exists(key)
            assert not sync_redis.exists(key)  # released
        finally:
            await link.close()

    run(body)


def test_a_held_lock_is_renewed_past_its_ttl(redis_server: RedisProcess, prefix: str) -> None:
    tenant = uuid.uuid4()

    async def body() -> list[str]:
        links = [RedisLink(redis_server.url(), timeout=TIMEOUT) for _ in range(2)]
        for link in links:
            await link.open()
        first, second = (TenantLock(link, "test", ttl=0.3, prefix=prefix) for link in links)
        events: list[str] = []
        entered = asyncio.Event()

        async def long_holder() -> None:
            async with first.hold(tenant):
                entered.set()
                await asyncio.sleep(1.2)  # four times the ttl
                events.append("first released")

        async def waiter() -> None:
            await entered.wait()
            async with second.hold(tenant):
                events.append("second entered")

        try:
            await asyncio.gather(long_holder(), waiter())
        finally:
            for link in links:
                await link.close()
        return events

    assert run(body) == ["first released", "second entered"]


def test_the_lock_falls_back_when_redis_is_down(own_redis: RedisProcess, prefix: str) -> None:
    async def body() -> None:
        link = RedisLink(own_redis.url(), timeout=0.1)
        await link.open()
        lock = TenantLock(link, "test", prefix=prefix)
        try:
            own_redis.stop()
            t0 = time.monotonic()
            async with lock.hold(uuid.uuid4()) as held:
                assert held is False
            async with lock.hold(uuid.uuid4()) as held:  # marked down: not even tried
                assert held is False
            assert time.monotonic() - t0 < 1.0
            assert lock.fallbacks == 2 and link.failures == 1
            own_redis.start()
            while not link.usable():
                await asyncio.sleep(0.05)
            async with lock.hold(uuid.uuid4()) as held:
                assert held is True
        finally:
            await link.close()

    run(body)
