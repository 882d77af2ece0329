"""Percentile estimates from the fixed-bucket duration histograms of the rollups.

Plain Python, no Django: tested alone.
"""

from __future__ import annotations

from collections.abc import Sequence


def estimate_percentile(
    counts: Sequence[int], bounds: Sequence[float], p: float, *, lo: float | None = None, hi: float | None = None
) -> float | None:
    """Estimate the p-quantile (0..1) of values counted in `counts` (counts[i] holds
    bounds[i] <= v < bounds[i + 1]; the last bucket is open-ended).

    Mirrors percentile_cont: the quantile sits at rank p × (n − 1) (0-based) between two
    order statistics, interpolated linearly. Each order statistic is placed inside its
    bucket as if the bucket's values were evenly spread, with the bucket clamped to
    [lo, hi] (the true min and max, which the rollups keep). None for an empty histogram.
    """
    n = sum(counts)
    if n == 0:
        return None
    rank = p * (n - 1)
    below = int(rank)
    value = _order_statistic(counts, bounds, below, lo, hi)
    if rank > below and below + 1 < n:
        value += (rank - below) * (_order_statistic(counts, bounds, below + 1, lo, hi) - value)
    return value


def _order_statistic(
    counts: Sequence[int], bounds: Sequence[float], k: int, lo: float | None, hi: float | None
) -> float:
    """Estimate of the k-th smallest value (0-based)."""
    seen = 0
    for i, c in enumerate(counts):
        if c and k < seen + c:
            left = float(bounds[i])
            right = float(bounds[i + 1]) if i + 1 < len(bounds) else (hi if hi is not None else left * 2 or 1.0)
            if lo is not None:
                left = max(left, min(lo, right))
            if hi is not None:
                right = min(right, max(hi, left))
            return left + (right - left) * ((k - seen + 0.5) / c)
        seen += c
    return float(hi if hi is not None else bounds[-1])


def median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def mad(values: Sequence[float]) -> float | None:
    """Median absolute deviation from the median."""
    m = median(values)
    return None if m is None else median([abs(v - m) for v in values])
