"""The one percentile definition shared by /healthz, the benchmarks and eval, so that their p50/p95 agree."""
from __future__ import annotations

import math
from typing import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile of `values`, q in 0..100 (50 = median, 95 = p95), by linear interpolation.

    The definition is numpy's default (`np.percentile(values, q)`, method "linear"): with the n values sorted,
    the rank is (n - 1) * q / 100 and the result is interpolated between the two values around it, so q=0 is the
    minimum and q=100 the maximum. Pure Python, so the server does not import numpy for its health check.
    Empty `values` give None ("no data", JSON null); q outside 0..100 raises ValueError.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in 0..100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))
