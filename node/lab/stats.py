"""Percentiles as the lab's reports quote them: the value at a rank, not
interpolated between two (the median of finality latencies aside).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["latency_summary", "nearest_rank", "percentile_ms"]


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The value at rank `q` (0..1) of `ordered`: sorted, not empty."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def percentile_ms(values: Sequence[float], q: float) -> float | None:
    """Rank `q` of `values` (seconds) in milliseconds, to 0.01 ms; None without values."""
    if not values:
        return None
    return round(nearest_rank(sorted(values), q) * 1000, 2)


def latency_summary(ordered_ms: Sequence[float]) -> dict[str, float]:
    """p50 (the median), p99 and max of sorted milliseconds, to 0.1 ms; NaN without values."""
    if not ordered_ms:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "p50": round(statistics.median(ordered_ms), 1),
        "p99": round(nearest_rank(ordered_ms, 0.99), 1),
        "max": round(ordered_ms[-1], 1),
    }
