"""The gateway's per-index latency histogram: the gateway counts each answered request in a
bucket (`bucket_of`) per index and hour, the control plane reads percentiles back
(`percentile`). Both sides use these bounds, so a change here changes both together."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Final

BOUNDS_MS: Final[tuple[float, ...]] = (
    0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2000, 5000,
)  # fmt: skip
"""Upper bounds (inclusive, milliseconds) of the buckets; one more bucket holds the slower."""
BUCKETS: Final = len(BOUNDS_MS) + 1


def bucket_of(seconds: float) -> int:
    """The bucket of a latency: the first bound at or above it (BUCKETS - 1 past the last)."""
    return bisect_left(BOUNDS_MS, seconds * 1000.0)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The `q`-quantile (0 < q ≤ 1) of a histogram, as its bucket's upper bound in ms — an
    upper bound of the true value at the buckets' resolution; the overflow bucket reports the
    last bound. None for an empty histogram."""
    if not 0 < q <= 1:
        raise ValueError("q must be in (0, 1]")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return BOUNDS_MS[min(i, len(BOUNDS_MS) - 1)]
    return BOUNDS_MS[-1]
