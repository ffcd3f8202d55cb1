"""Global per-tenant limits, shared by every gateway process through Redis.

Two things a tenant's plan bounds must hold however many gateway processes, on however many
machines, serve the tenant: its request rate (`max_qps`, `RateLimiter`) and its Qdrant vector
quota, whose count-then-write must not interleave with another process's (`TenantLock`). Both
use one Redis (`RedisLink`: `VECTORPLANE_GATEWAY_REDIS_URL`, else `REDIS_URL`, the platform's
Celery broker). docs/rate-limits.md explains the design; the contract is:

**RateLimiter.admit(tenant, max_qps)** answers None (admitted) or the seconds after which a
retry may succeed (refused: the gateway answers `429 rate_limited` with `Retry-After`).

- One token bucket per tenant, in Redis: capacity `max_qps x burst` (burst 1 s), refilled
  continuously at `max_qps`. Only one Lua script reads or writes it, so every change is atomic,
  and the script reads the time with Redis `TIME`: process clocks never enter the bucket (they
  only time leases and refusals, as local durations on a monotonic clock).
- Leasing: a process takes up to L tokens in one script call and spends them locally, with no
  Redis round trip for those requests. L = clamp(ceil(r x lease_seconds), 1, Lmax), r the
  process's own recent request rate for the tenant (refused requests count: they are demand),
  Lmax = max(1, floor(capacity x lease_share)). The next lease is asked for in the background
  when the local tokens fall to L/2; at most one lease call per tenant is in flight per
  process, and requests that find no token wait for that call rather than make their own (it
  then asks for at least one token per waiting request: those are spent at once, and other
  requests of the process take a token only when there is one left beyond the waiters').
- Tokens not spent within LEASE_TTL_SECONDS of their lease go back to the bucket (capped at its
  capacity), so tokens held by a process the traffic has left are not stranded there.
- When the bucket cannot fill a lease it answers how long until it holds a lease for each of
  the tenant's processes (L x n tokens); the process then refuses locally until that time
  without asking Redis again, so a tenant far over its limit costs about rate / L round trips a
  second in all, not one per request.
- Bound: a token is spent once, given back, or lost (a call whose answer never came), never
  duplicated. Over any interval of T seconds a tenant's admitted requests, summed over its N
  processes, are at most capacity + max_qps x T + N x Lmax (the leases held when the interval
  began), plus the requests the fallback below decided; under sustained overload they
  approach max_qps x T.
- Redis down or slow: a request waits for a lease at most `timeout` (from the lease call's
  start; requests that come when the call is already that late do not wait at all), and is
  then decided by the fallback below, while the call goes on. A call that fails, or has not
  answered within `call_timeout` (10 x timeout, at least 1 s; no retries inside the client),
  marks Redis down: this process does not ask it again for RETRY_SECONDS and **fails open**.
  The fallback is a local token bucket at max_qps / n (starting with one token, not a burst),
  n = how many processes took leases for the tenant in the last PROCESS_WINDOW_SECONDS as Redis
  last reported (1 if it has not answered yet); tokens already leased are still spent. The
  first call after the window that Redis answers makes the limit global again. (Why two
  bounds: a process the machine pauses for longer than `timeout` finds its answer late though
  Redis was quick; it should not then treat Redis as down for a second.)
- `local` mode: the per-process bucket only, at max_qps (N processes admit up to N x);
  `off`: everything is admitted.

**TenantLock.hold(tenant)** is an async context manager held around a critical section that
must not interleave with the same tenant's in any process: `SET key token NX PX ttl`, retried
until it succeeds or `wait` seconds pass (then `503 cluster_unavailable`); renewed every ttl/3
while held, so a slow section keeps it and a crashed process's lock expires after `ttl`;
released with a compare-and-delete on the token, so a holder whose lock expired never releases
another's. When Redis is down or slow it yields without the global lock (False; the caller's
process-local lock still serialises this process, and each process may then overshoot a quota by
one batch, as before) and logs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from vectorplane import config

from .errors import GatewayError

logger = logging.getLogger("vectorplane.gateway.ratelimit")

MIN_RATE: Final = 0.001
"""Requests per second of a plan with max_qps 0 (nothing is ever admitted: capacity < 1)."""
BURST_SECONDS: Final = 1.0
"""The bucket holds this many seconds of the plan's rate (the burst a tenant may send)."""
LEASE_TTL_SECONDS: Final = 1.0
"""Unspent leased tokens go back to the bucket after this long."""
RETRY_SECONDS: Final = 1.0
"""After a failed Redis call, this process does not ask Redis again for this long."""
PROCESS_WINDOW_SECONDS: Final = 10
"""A process counts as serving a tenant (the fallback's n) for this long after a lease."""
MAX_LEASE_ROUNDS: Final = 4
"""Lease calls a request waits for, at most, before it is refused (heavy contention only)."""
DEFAULT_TIMEOUT_MS: Final = 100
DEFAULT_LEASE_MS: Final = 250
DEFAULT_LEASE_MAX_PERCENT: Final = 5

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)

# KEYS[1]: the tenant's bucket (hash: tokens, ts in microseconds of Redis TIME)
# KEYS[2]: the processes that took leases for it lately (sorted set: process id -> last lease)
# ARGV: rate (tokens/s), capacity, n (> 0: take up to n; < 0: give -n back), process id,
#       process window (microseconds)
# Answers {granted, wait (microseconds until min(n x processes, capacity) tokens are there: a
# lease for each of the tenant's processes), processes}.
BUCKET_SCRIPT: Final = """
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local window = tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
elseif now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000000)
else
  -- Redis's clock went back (a failover): no refill for the step, and none counted twice.
  tokens = math.min(capacity, tokens)
end
local granted = 0
local wait = 0
local processes = 0
if n > 0 then
  granted = math.max(0, math.min(n, math.floor(tokens)))
  tokens = tokens - granted
  redis.call('ZADD', KEYS[2], now, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[2], math.ceil(window / 1000))
  processes = redis.call('ZCARD', KEYS[2])
  -- Come back when there is a lease for each process that may be waiting too: they then ask
  -- about rate / n a second in all, not each of them that often.
  local need = math.max(1, math.min(n * processes, capacity))
  if tokens < need then
    wait = math.ceil((need - tokens) / rate * 1000000)
  end
else
  tokens = math.min(capacity, tokens - n)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', now))
-- A bucket left alone is full again after (capacity - tokens) / rate: a missing key is read as
-- a full bucket, so the key may go then.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {granted, wait, processes}
"""

_RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def bucket_keys(prefix: str, tenant: uuid.UUID) -> list[str]:
    """The bucket's Redis keys (one hash tag: the same slot on a Redis Cluster)."""
    return [f"{prefix}rl:{{{tenant}}}", f"{prefix}rl:{{{tenant}}}:procs"]


# ====================================================================== the connection


class RedisLink:
    """One Redis client per gateway process, and whether Redis may be asked right now.

    Connections are made on first use (opening never fails). `timeout` is how long a request
    may wait for Redis (the callers' bound); every call is bounded by `call_timeout`, without
    the client's own retries; a failed call makes `usable()` False for RETRY_SECONDS, in which
    the callers use their fallbacks."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_MS / 1000,
        call_timeout: float | None = None,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.call_timeout = max(1.0, 10 * timeout) if call_timeout is None else call_timeout
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.client: aioredis.Redis | None = None
        self.failures = 0
        self._down_until = 0.0
        self._down = False
        self._scripts: dict[str, Any] = {}

    @classmethod
    def from_config(cls) -> RedisLink:
        timeout_ms = config.env_int("VECTORPLANE_GATEWAY_REDIS_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)
        if timeout_ms < 1:
            raise config.ConfigError("VECTORPLANE_GATEWAY_REDIS_TIMEOUT_MS must be at least 1")
        return cls(config.gateway_redis_url(), timeout=timeout_ms / 1000)

    async def open(self) -> None:
        self._scripts.clear()
        self.client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=self.call_timeout,
            socket_connect_timeout=self.call_timeout,
            retry=Retry(NoBackoff(), 0),
        )

    async def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    def usable(self) -> bool:
        return self.client is not None and self.clock() >= self._down_until

    def failed(self, exc: BaseException, doing: str) -> None:
        self.failures += 1
        self._down_until = self.clock() + self.retry_seconds
        if not self._down:
            self._down = True
            logger.warning(
                "Redis (%s) failed while %s: %s: %s; per-process fallbacks for %.0f s at a time "
                "until it answers (docs/rate-limits.md)",
                self.url.rsplit("@", 1)[-1], doing, type(exc).__name__, exc, self.retry_seconds,
            )  # fmt: skip

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            logger.warning("Redis answers again: tenant limits are global again")

    async def call(self, operation: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        """Run `operation(client)` within `call_timeout`; raises what it raised, or
        TimeoutError (the caller then calls `failed`)."""
        client = self.client
        if client is None:
            raise RedisError("the Redis link is closed")
        async with asyncio.timeout(self.call_timeout):
            return await operation(client)

    async def run_script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """A Lua script by its SHA (loaded on first use), within `call_timeout`."""

        async def run(client: aioredis.Redis) -> Any:
            script = self._scripts.get(source)
            if script is None:
                script = self._scripts[source] = client.register_script(source)
            return await script(keys=keys, args=args)

        return await self.call(run)


# ====================================================================== the request rate


@dataclass
class Bucket:
    """A token bucket in this process: `local` mode, and the fallback while Redis is down."""

    rate: float
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """None when a token was taken, else the seconds until one is there."""
        self.tokens = min(self.rate * BURST_SECONDS,
                          self.tokens + (now - self.updated) * self.rate)  # fmt: skip
        self.updated = now
        if self.tokens < 1.0:
            return (1.0 - self.tokens) / self.rate
        self.tokens -= 1.0
        return None


@dataclass
class _Tenant:
    """This process's state of one tenant's global bucket."""

    rate: float
    capacity: float
    lease_max: int
    tokens: int = 0  # leased and not spent
    expires: float = 0.0  # when unspent tokens go back
    deny_until: float = 0.0  # the bucket cannot fill a lease before then
    inflight: asyncio.Task[None] | None = None
    inflight_since: float = 0.0
    want: int = 1  # the size of the last lease asked for
    waiting: int = 0  # requests waiting for the lease in flight
    demand: int = 0  # admit() calls since the last lease call
    since: float = -1.0  # when the last lease call started
    per_second: float = 0.0  # this process's recent request rate for the tenant
    processes: int = 1  # as Redis last counted them
    used: float = 0.0  # last admit()
    fallback: Bucket | None = None


@dataclass
class LimiterStats:
    """Counts for tests and the benchmark (the same as the Prometheus counters)."""

    lease_calls: int = 0
    granted: int = 0
    denied_calls: int = 0
    errors: int = 0
    given_back: int = 0
    fallback_admitted: int = 0
    fallback_refused: int = 0


class RateLimiter:
    """Requests per second per tenant, global across gateway processes (module docstring)."""

    def __init__(
        self,
        link: RedisLink | None,
        *,
        mode: str = "global",
        lease_seconds: float = DEFAULT_LEASE_MS / 1000,
        lease_share: float = DEFAULT_LEASE_MAX_PERCENT / 100,
        burst_seconds: float = BURST_SECONDS,
        lease_ttl: float = LEASE_TTL_SECONDS,
        prefix: str = "vp:",
        clock: Callable[[], float] = time.monotonic,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        if mode not in config.GATEWAY_RATE_LIMIT_MODES:
            raise ValueError(f"unknown rate-limit mode {mode!r}")
        if mode == "global" and link is None:
            raise ValueError("the global mode needs a RedisLink")
        self.link = link
        self.mode = mode
        self.lease_seconds = lease_seconds
        self.lease_share = lease_share
        self.burst_seconds = burst_seconds
        self.lease_ttl = lease_ttl
        self.prefix = prefix
        self.clock = clock
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.stats = LimiterStats()
        self._tenants: dict[uuid.UUID, _Tenant] = {}
        self._local: dict[uuid.UUID, Bucket] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._leases = Counter(
            "vectorplane_gateway_ratelimit_leases",
            "Token lease calls to Redis, by result",
            ["result"],
            registry=metrics,
        )
        self._fallback = Counter(
            "vectorplane_gateway_ratelimit_fallback",
            "Requests decided by the per-process fallback bucket (Redis down or slow)",
            ["result"],
            registry=metrics,
        )

    @classmethod
    def from_config(cls, link: RedisLink, *, metrics: CollectorRegistry | None) -> RateLimiter:
        lease_ms = config.env_int("VECTORPLANE_GATEWAY_LEASE_MS", DEFAULT_LEASE_MS)
        percent = config.env_int("VECTORPLANE_GATEWAY_LEASE_MAX_PERCENT",
                                 DEFAULT_LEASE_MAX_PERCENT)  # fmt: skip
        if lease_ms < 1 or not 1 <= percent <= 100:
            raise config.ConfigError(
                "VECTORPLANE_GATEWAY_LEASE_MS must be >= 1 and "
                "VECTORPLANE_GATEWAY_LEASE_MAX_PERCENT 1-100"
            )
        return cls(
            link,
            mode=config.gateway_rate_limit(),
            lease_seconds=lease_ms / 1000,
            lease_share=percent / 100,
            metrics=metrics,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the sweeper that gives back the unspent tokens of idle tenants."""
        if self.mode == "global" and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep_forever(), name="ratelimit-sweeper"
            )

    async def close(self) -> None:
        """Give every unspent token back (bounded by the link's call timeout), stop the
        tasks."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for tenant, state in list(self._tenants.items()):
            if state.tokens > 0:
                self._give_back(tenant, state)
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def sweep(self) -> None:
        """Give back the tokens of leases past their time; forget tenants idle for long."""
        now = self.clock()
        for tenant, state in list(self._tenants.items()):
            if state.inflight is not None:
                continue
            if state.tokens > 0 and now >= state.expires:
                self._give_back(tenant, state)
            elif state.tokens == 0 and now - state.used > PROCESS_WINDOW_SECONDS:
                del self._tenants[tenant]
        idle = [t for t, b in self._local.items() if now - b.updated > PROCESS_WINDOW_SECONDS]
        for tenant in idle:
            del self._local[tenant]

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 2)
            await self.sweep()

    # ------------------------------------------------------------------ the hot path

    async def admit(self, tenant: uuid.UUID, max_qps: float) -> float | None:
        """None: admitted. Else refused: the seconds until a retry may be admitted."""
        if self.mode == "off":
            return None
        rate = max(float(max_qps), MIN_RATE)
        now = self.clock()
        if self.mode == "local":
            return self._bucket(self._local, tenant, rate, now)
        state = self._tenants.get(tenant)
        if state is None or state.rate != rate:
            state = self._reset(tenant, state, rate)
        state.demand += 1
        state.used = now
        if state.tokens > state.waiting:  # tokens are the waiting requests' first
            if now < state.expires:
                state.tokens -= 1
                if (state.tokens <= state.want // 2 and state.inflight is None
                        and now >= state.deny_until and self._usable()):  # fmt: skip
                    self._lease(tenant, state, now)  # ahead of need, in the background
                return None
            self._give_back(tenant, state)  # held too long: back, and a fresh lease
        link = self.link
        assert link is not None  # noqa: S101 - global mode
        for _round in range(MAX_LEASE_ROUNDS):
            if now < state.deny_until:
                return state.deny_until - now
            task = state.inflight
            if task is None and not self._usable():
                return self._fall_back(state, now)
            if task is not None and now - state.inflight_since >= link.timeout:
                return self._fall_back(state, now)  # that call is late: do not wait for it
            state.waiting += 1
            try:
                if task is None:
                    task = self._lease(tenant, state, now)
                # Not cancelled when this request gives up or is cancelled: the lease goes on.
                await asyncio.wait({task}, timeout=state.inflight_since + link.timeout - now)
            finally:
                state.waiting -= 1
            now = self.clock()
            if not task.done():
                return self._fall_back(state, now)
            if self._tenants.get(tenant) is not state:  # the limit changed meanwhile
                return await self.admit(tenant, max_qps)
            if state.tokens > 0 and now < state.expires:
                state.tokens -= 1
                return None
        return 1.0 / rate  # other requests took every token of several leases

    # ------------------------------------------------------------------ leases

    def _usable(self) -> bool:
        return self.link is not None and self.link.usable()

    def _reset(self, tenant: uuid.UUID, old: _Tenant | None, rate: float) -> _Tenant:
        """A new state for the tenant's (new) rate; tokens leased under the old one go back."""
        if old is not None and old.tokens > 0:
            self._give_back(tenant, old)
        capacity = rate * self.burst_seconds
        state = _Tenant(rate=rate, capacity=capacity,
                        lease_max=max(1, math.floor(capacity * self.lease_share)))  # fmt: skip
        if old is not None:
            state.processes = old.processes
            state.per_second = old.per_second
        self._tenants[tenant] = state
        return state

    def _lease(self, tenant: uuid.UUID, state: _Tenant, now: float) -> asyncio.Task[None]:
        """Ask for a lease in the background, sized to what this process spends in
        lease_seconds (the requests since the last call over the time since, smoothed; a
        quiet second resets it), within [1, lease_max]; or, when more requests are waiting for
        it, one token for each (they spend them at once: nothing is held)."""
        if state.since >= 0:
            elapsed = now - state.since
            recent = state.demand / max(elapsed, 0.001)
            stale = elapsed > 1.0 or state.per_second == 0
            state.per_second = recent if stale else (state.per_second + recent) / 2
        state.demand = 0
        state.since = now
        ahead = min(math.ceil(state.per_second * self.lease_seconds), state.lease_max)
        state.want = max(ahead, state.waiting, 1)
        task = self._spawn(self._lease_call(tenant, state, state.want))
        state.inflight = task
        state.inflight_since = now
        return task

    async def _lease_call(self, tenant: uuid.UUID, state: _Tenant, want: int) -> None:
        link = self.link
        assert link is not None  # noqa: S101 - global mode
        try:
            try:
                answer = await link.run_script(
                    BUCKET_SCRIPT, bucket_keys(self.prefix, tenant), self._args(state, want)
                )
            except _REDIS_ERRORS as exc:
                link.failed(exc, "leasing rate-limit tokens")
                self.stats.errors += 1
                self._leases.labels("error").inc()
                return
            link.succeeded()
            granted, wait_us, processes = (int(x) for x in answer)
            self.stats.lease_calls += 1
            self.stats.granted += granted
            self._leases.labels("granted" if granted else "denied").inc()
            now = self.clock()
            if self._tenants.get(tenant) is not state:
                # The limit changed while the call was out: the tokens go back to the bucket.
                state.tokens += granted
                self._give_back(tenant, state)
                return
            state.processes = max(1, processes)
            state.fallback = None  # a later outage starts from a fresh share
            if granted:
                state.tokens += granted
                state.expires = now + self.lease_ttl
            if granted < want and wait_us > 0:
                self.stats.denied_calls += 1
                state.deny_until = now + wait_us / 1_000_000
        finally:
            state.inflight = None

    def _args(self, state: _Tenant, n: int) -> list[Any]:
        return [repr(state.rate), repr(state.capacity), n, self.process_id,
                PROCESS_WINDOW_SECONDS * 1_000_000]  # fmt: skip

    def _give_back(self, tenant: uuid.UUID, state: _Tenant) -> None:
        """Return the state's unspent tokens to the bucket (in the background; dropped when
        Redis cannot be asked: the bucket then has fewer tokens, never more)."""
        count, state.tokens = state.tokens, 0
        if count <= 0 or not self._usable():
            return
        link = self.link
        assert link is not None  # noqa: S101 - usable

        async def give() -> None:
            try:
                await link.run_script(
                    BUCKET_SCRIPT, bucket_keys(self.prefix, tenant), self._args(state, -count)
                )
            except _REDIS_ERRORS as exc:
                link.failed(exc, "giving rate-limit tokens back")
                self.stats.errors += 1
                return
            self.stats.given_back += count

        self._spawn(give())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ local buckets

    def _bucket(
        self, buckets: dict[uuid.UUID, Bucket], tenant: uuid.UUID, rate: float, now: float
    ) -> float | None:
        bucket = buckets.get(tenant)
        if bucket is None or bucket.rate != rate:
            bucket = buckets[tenant] = Bucket(rate, rate * self.burst_seconds, now)
        return bucket.take(now)

    def _fall_back(self, state: _Tenant, now: float) -> float | None:
        """Redis cannot be asked: this process's share of the rate, in a local bucket. It starts
        with one token, not a burst: the tenant's burst is the global bucket's, and a process
        falling back for a second (a slow answer) must not add one of its own."""
        if state.fallback is None:
            share = state.rate / state.processes
            state.fallback = Bucket(share, min(1.0, share * self.burst_seconds), now)
        wait = state.fallback.take(now)
        if wait is None:
            self.stats.fallback_admitted += 1
            self._fallback.labels("admitted").inc()
        else:
            self.stats.fallback_refused += 1
            self._fallback.labels("refused").inc()
        return wait


# ====================================================================== the quota lock


class TenantLock:
    """Mutual exclusion per tenant across gateway processes (module docstring)."""

    def __init__(
        self,
        link: RedisLink | None,
        name: str,
        *,
        ttl: float = 5.0,
        wait: float = 30.0,
        prefix: str = "vp:",
    ) -> None:
        self.link = link
        self.name = name
        self.ttl = ttl
        self.wait = wait
        self.prefix = prefix
        self.fallbacks = 0  # sections run without the global lock (Redis down or slow)

    def key(self, tenant: uuid.UUID) -> str:
        return f"{self.prefix}lock:{self.name}:{{{tenant}}}"

    @contextlib.asynccontextmanager
    async def hold(self, tenant: uuid.UUID) -> AsyncIterator[bool]:
        """Hold the tenant's lock for the block; yields whether it is the global lock (False:
        Redis could not be asked, the block runs under the caller's local lock only)."""
        link = self.link
        token = secrets.token_hex(16)
        key = self.key(tenant)
        if link is None or not await self._acquire(link, key, token):
            self.fallbacks += 1
            yield False
            return
        renewer = asyncio.get_running_loop().create_task(self._renew(link, key, token))
        try:
            yield True
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            try:
                await link.run_script(_RELEASE_SCRIPT, [key], [token])
            except _REDIS_ERRORS as exc:  # it expires after the ttl
                link.failed(exc, f"releasing the {self.name} lock")

    async def _acquire(self, link: RedisLink, key: str, token: str) -> bool:
        """True once the lock is ours; False when Redis cannot be asked (fall back)."""
        deadline = time.monotonic() + self.wait
        delay = 0.001
        ttl_ms = math.ceil(self.ttl * 1000)
        while link.usable():
            try:
                if await link.call(lambda c: c.set(key, token, nx=True, px=ttl_ms)):
                    link.succeeded()
                    return True
            except _REDIS_ERRORS as exc:
                link.failed(exc, f"taking the {self.name} lock")
                return False
            if time.monotonic() > deadline:
                raise GatewayError(
                    503,
                    "cluster_unavailable",
                    "The index's cluster is busy with this tenant's other writes; try again.",
                    {"lock": self.name},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
        return False

    async def _renew(self, link: RedisLink, key: str, token: str) -> None:
        ttl_ms = math.ceil(self.ttl * 1000)
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                kept = await link.run_script(_RENEW_SCRIPT, [key], [token, ttl_ms])
            except _REDIS_ERRORS as exc:
                link.failed(exc, f"renewing the {self.name} lock")
                continue
            if not kept:
                logger.warning("the %s lock %s expired while held", self.name, key)
                return
