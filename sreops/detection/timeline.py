"""Timestamps as real feeds deliver them: out of order, repeated, missing, irregular.

The detector orders a stream by arrival, never by sorting: a row is scored when it arrives, from
the rows before it. Its clock is the latest time seen so far (`arrival_times`), so a feed whose
clock jumps back an hour (a DST change, a reset, a replayed buffer) neither stops scoring nor
lets a row see the rows after it. The sampling interval (`sampling_interval`) is the median
positive step, which gaps and duplicates barely move; scales are counted in points, so it is
reported rather than needed.
"""

from __future__ import annotations

import numpy as np


def arrival_times(times_s: np.ndarray, since_s: float = -np.inf) -> np.ndarray:
    """The running maximum of the timestamps (NaN counts as no news): monotone, in input order."""
    times = np.asarray(times_s, dtype=float)
    if len(times) == 0:
        return times.copy()
    filled = np.where(np.isfinite(times), times, -np.inf)
    clock = np.maximum.accumulate(np.concatenate([[since_s], filled]))[1:]
    if not np.isfinite(clock[0]):
        first = np.flatnonzero(np.isfinite(clock))
        clock[: first[0] if len(first) else len(clock)] = first_finite(times)
    return clock


def first_finite(times_s: np.ndarray) -> float:
    """The first finite timestamp (0 when there is none)."""
    times = np.asarray(times_s, dtype=float)
    finite = times[np.isfinite(times)]
    return float(finite[0]) if len(finite) else 0.0


def sampling_interval(times_s: np.ndarray) -> float | None:
    """The median positive step between consecutive arrival times, in seconds (None if none)."""
    steps = np.diff(arrival_times(times_s))
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else None


def out_of_order(times_s: np.ndarray) -> int:
    """How many rows arrived with a timestamp earlier than one before them."""
    times = np.asarray(times_s, dtype=float)
    if len(times) < 2:
        return 0
    return int((times[1:] < np.maximum.accumulate(np.where(np.isfinite(times), times, -np.inf))[:-1]).sum())
