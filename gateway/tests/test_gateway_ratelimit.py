"""One request-rate limit per tenant, however many gateway processes: two real gateway
processes (the session's and a second one, each a granian worker of its own, sharing the
session's Redis) serve one tenant, and together admit what its plan allows, not twice that.

The bound is checked against the time that passed on Redis's clock (the clock the tenant's
bucket refills by), read before the first request and after the last answer.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from gateway.tests.conftest import (
    Gateway,
    Platform,
    RedisProcess,
    Server,
    assert_error,
    start_gateway,
)


@pytest.fixture(scope="module")
def second_gateway(
    gateway_server: Server, redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log_dir: Path = tmp_path_factory.mktemp("gateway-2")
    server = start_gateway("gateway-2", log_dir, redis_server)
    try:
        yield server
    finally:
        server.stop()


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1_000_000


def test_two_gateway_processes_admit_one_tenants_rate_together(
    gateway: Gateway, second_gateway: Server, platform: Platform, redis_server: RedisProcess
) -> None:
    rate, processes, lease_max = 40, 2, 2  # leases of at most 5% of the burst of 40
    tenant = platform.tenant()
    tenant.limits(max_qps=rate)
    index = tenant.index()
    key = tenant.key()
    path = f"/v1/indexes/{index.name}/query"
    body = {"vector": [1, 2, 3], "topK": 1}
    urls = [gateway.url, second_gateway.url]
    sent = itertools.count()
    total = 800
    statuses: dict[str, Counter[int]] = {url: Counter() for url in urls}
    limited: list[httpx.Response] = []
    lock = threading.Lock()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30.0, headers={"Api-Key": key}) as http:
            while next(sent) < total:
                response = http.post(path, json=body)
                with lock:
                    statuses[url][response.status_code] += 1
                    if response.status_code == 429 and not limited:
                        limited.append(response)

    clock = redis.Redis.from_url(redis_server.url())
    try:
        started = redis_now(clock)
        threads = [threading.Thread(target=client, args=(urls[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = redis_now(clock) - started
    finally:
        clock.close()

    assert all(set(s) <= {200, 429} for s in statuses.values()), statuses
    admitted = sum(s[200] for s in statuses.values())
    # Both processes served the tenant, admitted some requests and refused others.
    assert all(s[200] > 0 and s[429] > 0 for s in statuses.values()), statuses
    # Together: at most the burst plus the rate over the time (a process alone would admit
    # that much; two with a bucket each, twice as much).
    assert admitted <= rate + rate * elapsed + 1, (admitted, elapsed, statuses)
    # And not much less: the burst, and at least half the rate meanwhile (the leases held at
    # the end are not spent).
    assert admitted >= rate + 0.5 * rate * elapsed - processes * lease_max, (admitted, elapsed)
    # The refusal is the documented one.
    details = assert_error(limited[0], 429, "rate_limited")
    assert details == {"max_qps": rate}
    assert limited[0].headers["Retry-After"] == "1"
