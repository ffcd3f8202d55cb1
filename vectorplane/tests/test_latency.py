"""The latency histogram both the gateway and the control plane use."""

from __future__ import annotations

import random

import pytest

from vectorplane.contract.latency import BOUNDS_MS, BUCKETS, bucket_of, percentile


def test_buckets_are_the_first_bound_at_or_above() -> None:
    assert bucket_of(0.0) == 0
    assert bucket_of(0.0005) == 0  # 0.5 ms: inclusive
    assert bucket_of(0.00051) == 1
    assert bucket_of(0.0101) == BOUNDS_MS.index(15)
    assert bucket_of(60.0) == BUCKETS - 1


def test_percentiles_bound_the_true_quantile_from_above() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(-5, 1) for _ in range(10_000)]  # ~7 ms median
    counts = [0] * BUCKETS
    for s in samples:
        counts[bucket_of(s)] += 1
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        true_ms = ordered[int(q * len(ordered)) - 1] * 1000
        reported = percentile(counts, q)
        assert reported is not None
        below = [b for b in BOUNDS_MS if b < reported]
        assert true_ms <= reported and (not below or true_ms > below[-1] * 0.999), (q, true_ms)


def test_edges() -> None:
    assert percentile([0] * BUCKETS, 0.5) is None
    only_slow = [0] * BUCKETS
    only_slow[-1] = 3
    assert percentile(only_slow, 0.99) == BOUNDS_MS[-1]
    with pytest.raises(ValueError):
        percentile([1], 0)
