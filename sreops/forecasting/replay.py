"""The autoscaling replay of `AUTOSCALING.md`: decisions, baselines and measures on a demand trace.

`t0` is the first record; the first 7 days are warm-up. Decision `k` is taken at
`t_k = t0 + 7 days + k hours`, sees only records with `t < t_k`, and holds for the records with
`t_k <= t < t_k + 1 hour`; decisions continue while `t_k + 1 hour <= last timestamp`. One
replica serves `C = q99(warm-up) / 10`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from sreops.forecasting.policy import replicas_for

WARMUP = pd.Timedelta(days=7)
DECISION_PERIOD = pd.Timedelta(hours=1)
REACTIVE_TARGET_UTILIZATION = 0.8
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TraceError(ValueError):
    """A demand trace cannot be replayed; the message says which file and what to fix."""


@dataclass(frozen=True)
class Trace:
    """A demand series: `values[i]` arrived in the record stamped `timestamps[i]` (sorted)."""

    name: str
    timestamps: pd.DatetimeIndex
    values: np.ndarray

    def series(self) -> pd.Series:
        """The trace as a pandas Series indexed by time."""
        return pd.Series(self.values, index=self.timestamps, name=self.name)


class Recommender(Protocol):
    """Anything that decides, at `now`, how many replicas to run for the next hour."""

    def decide(self, history: pd.Series, now: pd.Timestamp) -> int:
        """Replicas for `[now, now + 1 h)`, from `history` (the records before `now` only)."""
        ...


@dataclass(frozen=True)
class ReplayPlan:
    """When decisions are taken on a trace and what one replica serves."""

    start: pd.Timestamp
    warmup_end: pd.Timestamp
    decision_times: pd.DatetimeIndex
    capacity: float
    # records [window_bounds[k, 0], window_bounds[k, 1]) are scored against decision k
    window_bounds: np.ndarray


@dataclass(frozen=True)
class Measures:
    """How one replica schedule fared on the scored records."""

    violation_rate: float
    unserved_share: float
    cost_ratio: float
    replica_hours: float


def load_trace(path: str | Path) -> Trace:
    """Read a `timestamp,value` CSV (timestamps without zone), sorted by time."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"demand trace {path} does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TraceError(f"demand trace {path} is not a readable CSV: {exc}") from exc
    missing = {"timestamp", "value"} - set(frame.columns)
    if missing:
        raise TraceError(
            f"demand trace {path} lacks column(s) {sorted(missing)}; expected a header 'timestamp,value'"
        )
    timestamps = pd.to_datetime(frame["timestamp"], errors="coerce")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = timestamps.isna() | values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # 1-based, after the header
        raise TraceError(
            f"demand trace {path}, row {row}: timestamp {frame['timestamp'].iloc[row - 2]!r} / value "
            f"{frame['value'].iloc[row - 2]!r} is not a time and a number"
        )
    if (values < 0).any():
        row = int(np.flatnonzero((values < 0).to_numpy())[0]) + 2
        raise TraceError(f"demand trace {path}, row {row}: demand cannot be negative")
    order = np.argsort(timestamps.to_numpy(), kind="stable")
    index = pd.DatetimeIndex(timestamps.to_numpy()[order])
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return Trace(path.stem, index, values.to_numpy(dtype=float)[order])


def plan(trace: Trace) -> ReplayPlan:
    """Decision times, replica capacity and scored windows of `trace`, as the protocol fixes them."""
    if len(trace.values) == 0:
        raise TraceError(f"demand trace {trace.name} is empty")
    start = trace.timestamps[0]
    warmup_end = start + WARMUP
    last = trace.timestamps[-1]
    count = int((last - warmup_end) // DECISION_PERIOD) if last >= warmup_end + DECISION_PERIOD else 0
    if count == 0:
        raise TraceError(
            f"demand trace {trace.name} spans {last - start}; the replay needs more than 7 days "
            "(warm-up) plus one hour to score"
        )
    decision_times = pd.DatetimeIndex([warmup_end + k * DECISION_PERIOD for k in range(count)])
    warm = trace.values[trace.timestamps < warmup_end]
    q99 = float(np.quantile(warm, 0.99))
    if q99 <= 0:
        raise TraceError(
            f"demand trace {trace.name}: the warm-up week's 99th percentile is {q99}, so one replica's "
            "capacity (q99 / 10) would be zero"
        )
    stamps = trace.timestamps.to_numpy()
    lo = np.searchsorted(stamps, decision_times.to_numpy(), side="left")
    hi = np.searchsorted(stamps, (decision_times + DECISION_PERIOD).to_numpy(), side="left")
    return ReplayPlan(start, warmup_end, decision_times, q99 / 10.0, np.column_stack([lo, hi]))


def measure(trace: Trace, replay_plan: ReplayPlan, replicas: Iterable[int]) -> Measures:
    """Violation rate, unserved share and cost ratio of one replica per decision."""
    replicas = np.asarray(list(replicas), dtype=float)
    served = served_per_record(replay_plan, replicas)
    demand = scored_demand(trace, replay_plan)
    oracle_hours = float(oracle(trace, replay_plan).sum())
    total = float(demand.sum())
    return Measures(
        violation_rate=float(np.mean(demand > served)) if len(demand) else 0.0,
        unserved_share=float(np.maximum(0.0, demand - served).sum() / total) if total > 0 else 0.0,
        cost_ratio=float(replicas.sum()) / oracle_hours,
        replica_hours=float(replicas.sum()),
    )


def scored_demand(trace: Trace, replay_plan: ReplayPlan) -> np.ndarray:
    """The records the decisions are scored on, in order (the hours are back to back)."""
    bounds = replay_plan.window_bounds
    return trace.values[bounds[0, 0] : bounds[-1, 1]]


def served_per_record(replay_plan: ReplayPlan, replicas: Iterable[int] | np.ndarray) -> np.ndarray:
    """The capacity each scored record met: its decision's replicas × one replica's capacity."""
    replicas = np.asarray(list(replicas), dtype=float)
    bounds = replay_plan.window_bounds
    if len(replicas) != len(bounds):
        raise ValueError(f"{len(replicas)} replica counts for {len(bounds)} decisions")
    return np.repeat(replicas, bounds[:, 1] - bounds[:, 0]) * replay_plan.capacity


def _window_peaks(trace: Trace, bounds: np.ndarray) -> np.ndarray:
    return np.array([trace.values[lo:hi].max() if hi > lo else 0.0 for lo, hi in bounds])


def oracle(trace: Trace, replay_plan: ReplayPlan) -> np.ndarray:
    """The hourly oracle: enough replicas for the hour's maximum demand, known in advance."""
    peaks = _window_peaks(trace, replay_plan.window_bounds)
    return np.array([replicas_for(p, replay_plan.capacity) for p in peaks], dtype=int)


def reactive(
    trace: Trace, replay_plan: ReplayPlan, utilization: float = REACTIVE_TARGET_UTILIZATION
) -> np.ndarray:
    """HPA-like: the previous hour's peak at a `utilization` target (the protocol's is 80 %)."""
    return _reactive_replicas(_previous_hour_peaks(trace, replay_plan), replay_plan.capacity, utilization)


def _previous_hour_peaks(trace: Trace, replay_plan: ReplayPlan) -> np.ndarray:
    stamps = trace.timestamps.to_numpy()
    times = replay_plan.decision_times
    lo = np.searchsorted(stamps, (times - DECISION_PERIOD).to_numpy(), side="left")
    hi = np.searchsorted(stamps, times.to_numpy(), side="left")
    return _window_peaks(trace, np.column_stack([lo, hi]))


def _reactive_replicas(peaks: np.ndarray, capacity: float, utilization: float) -> np.ndarray:
    """`replicas_for(peak, utilization * capacity)` for every peak (at least one replica each)."""
    with np.errstate(invalid="ignore"):
        needed = np.ceil(peaks / (utilization * capacity))
    return np.where(np.isfinite(peaks) & (peaks > 0), np.maximum(needed, 1), 1).astype(int)


def reactive_at_spend(
    trace: Trace, replay_plan: ReplayPlan, replica_hours: float
) -> tuple[float, np.ndarray]:
    """The reactive rule at the highest utilisation target that still spends at least `replica_hours`.

    Returns the target and its replicas. It answers "how often would the reactive rule breach if
    it spent what this policy spent" (a little more, as whole replicas allow): a policy that
    breaches less than that owes it to where it puts its replicas, not to how many it buys.
    """
    peaks = _previous_hour_peaks(trace, replay_plan)
    capacity = replay_plan.capacity

    def spend(utilization: float) -> float:
        return float(_reactive_replicas(peaks, capacity, utilization).sum())

    # Spend falls as the target rises; keep `low` at or above the budget and `high` below it.
    low, high = 1e-3, 1.0
    while spend(low) < replica_hours and low > 1e-12:
        low /= 4
    while spend(high) >= replica_hours:
        if high > 1e9:  # one replica every hour: the least any policy spends
            return high, _reactive_replicas(peaks, capacity, high)
        low, high = high, high * 4
    for _ in range(60):
        middle = (low * high) ** 0.5
        low, high = (middle, high) if spend(middle) >= replica_hours else (low, middle)
    return low, _reactive_replicas(peaks, capacity, low)


def reactive_line(
    trace: Trace, replay_plan: ReplayPlan, targets: Iterable[float]
) -> list[tuple[float, Measures]]:
    """The reactive rule's cost-against-breaches line: its measures at each utilisation target."""
    peaks = _previous_hour_peaks(trace, replay_plan)
    return [
        (u, measure(trace, replay_plan, _reactive_replicas(peaks, replay_plan.capacity, u))) for u in targets
    ]


def static_peak(trace: Trace, replay_plan: ReplayPlan) -> np.ndarray:
    """The warm-up week's peak, held for the whole replay."""
    peak = float(trace.values[trace.timestamps < replay_plan.warmup_end].max())
    return np.full(len(replay_plan.decision_times), replicas_for(peak, replay_plan.capacity), dtype=int)


BASELINES: dict[str, Callable[[Trace, ReplayPlan], np.ndarray]] = {
    "oracle": oracle,
    "reactive": reactive,
    "static_peak": static_peak,
}


def replay(
    trace: Trace,
    recommender: Recommender,
    replay_plan: ReplayPlan | None = None,
    on_decision: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The recommender's replicas for every decision, each taken seeing only the records before it."""
    replay_plan = replay_plan or plan(trace)
    series = trace.series()
    stamps = trace.timestamps.to_numpy()
    decisions = np.empty(len(replay_plan.decision_times), dtype=int)
    for k, now in enumerate(replay_plan.decision_times):
        visible = int(np.searchsorted(stamps, now.to_datetime64(), side="left"))
        replicas = recommender.decide(series.iloc[:visible], now)
        if not isinstance(replicas, int | np.integer) or replicas < 1:
            raise ValueError(f"decision {k} at {now}: replicas must be a whole number >= 1, got {replicas!r}")
        decisions[k] = int(replicas)
        if on_decision is not None:
            on_decision(k)
    return decisions


def write_decisions(path: str | Path, decision_times: pd.DatetimeIndex, replicas: Iterable[int]) -> None:
    """Write the `decision_time,replicas` CSV of the protocol."""
    frame = pd.DataFrame(
        {"decision_time": decision_times.strftime(TIME_FORMAT), "replicas": np.asarray(list(replicas), int)}
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
