"""Replay a demand trace as AUTOSCALING.md says (`sreops eval autoscale DEMAND.csv --out RECS.csv`).

The recommender is the one the assets run (`sreops.forecasting.recommender`: Prophet refitted
every `refit_hours`, the scaling policy every hour), configured from the `forecasting` section of
the config (the defaults when there is none). Each decision sees only the records before it.
Printed beside it: the hourly oracle, the reactive (HPA-like) and the static-peak baselines, and
the reactive rule at the utilisation target that spends what the recommender spent, or a little
more as whole replicas allow (`reactive@spend`). Beating that one says the forecast places
replicas better than persistence, whatever the operating point; the protocol's target is beating
reactive at its own 80 %.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sreops.forecasting import export, policy, replay
from sreops.forecasting.recommender import ForecastRecommender, RecommenderSettings

RECOMMENDER = "recommender"
AT_SPEND = "reactive@spend"
POLICIES = (RECOMMENDER, *replay.BASELINES, AT_SPEND)
# The replay's replicas are bounded below by 1 only; no service-specific ceiling applies.
UNBOUNDED = 1_000_000


@dataclass
class TraceResult:
    """One trace's replay: the plan, every policy's replicas and measures."""

    name: str
    plan: replay.ReplayPlan
    replicas: dict[str, list[int]]
    measures: dict[str, replay.Measures]
    fits: int
    spend_utilization: float  # the target at which the reactive rule spends at least what the recommender did

    def beats_reactive(self) -> bool:
        """Fewer violations than the reactive baseline at no more cost: the target."""
        mine, reactive = self.measures[RECOMMENDER], self.measures["reactive"]
        return mine.violation_rate < reactive.violation_rate and mine.cost_ratio <= reactive.cost_ratio

    def beats_reactive_at_spend(self) -> bool:
        """Fewer violations than the reactive rule retargeted to spend at least as much as the recommender."""
        return self.measures[RECOMMENDER].violation_rate < self.measures[AT_SPEND].violation_rate


def evaluate(
    trace: replay.Trace, settings: RecommenderSettings | None = None, progress: bool = False
) -> TraceResult:
    """Replay `trace` with the recommender and every baseline."""
    replay_plan = replay.plan(trace)
    recommender = ForecastRecommender(
        policy.Limits(replay_plan.capacity, min_replicas=1, max_replicas=UNBOUNDED), settings, name=trace.name
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(replay_plan.decision_times), desc=trace.name, unit="decision", file=sys.stderr)
    try:
        decisions = replay.replay(
            trace, recommender, replay_plan, on_decision=(lambda _: bar.update()) if bar else None
        )
    finally:
        if bar is not None:
            bar.close()
    replicas = {RECOMMENDER: decisions}
    replicas.update({name: baseline(trace, replay_plan) for name, baseline in replay.BASELINES.items()})
    utilization, replicas[AT_SPEND] = replay.reactive_at_spend(trace, replay_plan, float(decisions.sum()))
    measures = {name: replay.measure(trace, replay_plan, values) for name, values in replicas.items()}
    return TraceResult(
        trace.name,
        replay_plan,
        {name: [int(v) for v in values] for name, values in replicas.items()},
        measures,
        fits=len(recommender.fits_),
        spend_utilization=utilization,
    )


def evaluate_path(path: str, settings: RecommenderSettings) -> TraceResult:
    """Load and replay one trace file (a picklable unit of work for parallel replays)."""
    return evaluate(replay.load_trace(path), settings)


def format_result(result: TraceResult) -> str:
    """One trace's table: each policy's violation rate, unserved share, cost ratio and replica-hours."""
    p = result.plan
    lines = [
        f"{result.name}: {len(p.decision_times)} hourly decisions from"
        f" {p.decision_times[0]:%Y-%m-%d %H:%M:%S}, one replica serves C = {p.capacity:.6g} per record"
        " (q99 of the warm-up week / 10)",
        f"  {'policy':<14} {'violation rate':>14} {'unserved share':>14} {'cost ratio':>10}"
        f" {'replica-hours':>13}",
    ]
    for name in POLICIES:
        m = result.measures[name]
        lines.append(
            f"  {name:<14} {m.violation_rate:>14.4f} {m.unserved_share:>14.4f} {m.cost_ratio:>10.3f}"
            f" {m.replica_hours:>13.0f}"
        )
    verdict = "yes" if result.beats_reactive() else "no"
    lines.append(f"  beats reactive (fewer violations at no more cost): {verdict}")
    lines.append(
        f"  {AT_SPEND}: the reactive rule at a {result.spend_utilization:.0%} target spends at least as much as"
        f" the recommender; fewer violations than it: {'yes' if result.beats_reactive_at_spend() else 'no'}"
    )
    return "\n".join(lines)


def average(results: list[TraceResult]) -> dict[str, dict[str, float]]:
    """Each policy's measures averaged over traces (each trace weighs the same)."""
    return {
        name: {
            field: sum(getattr(r.measures[name], field) for r in results) / len(results)
            for field in ("violation_rate", "unserved_share", "cost_ratio")
        }
        for name in POLICIES
    }


def format_summary(results: list[TraceResult]) -> str:
    """The average over traces and how often the recommender met the target."""
    mean = average(results)
    lines = [
        f"average over {len(results)} traces",
        f"  {'policy':<14} {'violation rate':>14} {'unserved share':>14} {'cost ratio':>10}",
    ]
    for name in POLICIES:
        m = mean[name]
        lines.append(
            f"  {name:<14} {m['violation_rate']:>14.4f} {m['unserved_share']:>14.4f} {m['cost_ratio']:>10.3f}"
        )
    wins = sum(r.beats_reactive() for r in results)
    on_average = (
        mean[RECOMMENDER]["violation_rate"] < mean["reactive"]["violation_rate"]
        and mean[RECOMMENDER]["cost_ratio"] <= mean["reactive"]["cost_ratio"]
    )
    lines.append(
        f"  recommender beats reactive on {wins} of {len(results)} traces; on the average: "
        f"{'yes' if on_average else 'no'}"
    )
    at_spend = sum(r.beats_reactive_at_spend() for r in results)
    lines.append(f"  fewer violations than {AT_SPEND} (same spend) on {at_spend} of {len(results)} traces")
    return "\n".join(lines)


def replay_all(
    demand: Sequence[str], traces: Sequence[replay.Trace], settings: RecommenderSettings, jobs: int = 1
) -> list[TraceResult]:
    """Replay every loaded trace: `jobs` processes (reloading from `demand`) when several, else in turn."""
    if jobs > 1 and len(traces) > 1:
        from tqdm import tqdm

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(evaluate_path, path, settings) for path in demand]
            return [f.result() for f in tqdm(futures, desc="traces", unit="trace", file=sys.stderr)]
    return [evaluate(trace, settings, progress=True) for trace in traces]


def output_paths(out: str | None, names: list[str]) -> list[Path | None]:
    """Where each trace's decisions go: the file `out` for one trace, else `out/<trace>.csv` (none without `out`)."""
    if not out:
        return [None] * len(names)
    if len(names) == 1 and not Path(out).is_dir():
        return [Path(out)]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return [folder / f"{name}.csv" for name in names]


def write_min_replicas_schedule(result: TraceResult, target: Path) -> None:
    """The recommender's decisions of one trace as a minReplicas schedule (YAML)."""
    windows = [
        (start, start + replay.DECISION_PERIOD, replicas)
        for start, replicas in zip(result.plan.decision_times, result.replicas[RECOMMENDER], strict=True)
    ]
    target.write_text(export.min_replicas_schedule(result.name, windows, max_replicas=UNBOUNDED))


def write_report(results: list[TraceResult], settings: RecommenderSettings, target: Path) -> None:
    """Every measure of every trace, the averages and the verdicts, as JSON."""
    payload = {
        "settings": dataclasses.asdict(settings),
        "traces": {
            r.name: {name: dataclasses.asdict(m) for name, m in r.measures.items()} | {"fits": r.fits}
            for r in results
        },
        "average": average(results),
        "beats_reactive": {r.name: r.beats_reactive() for r in results},
        "reactive_at_spend": {
            r.name: {"utilization": r.spend_utilization, "beaten": r.beats_reactive_at_spend()}
            for r in results
        },
    }
    target.write_text(json.dumps(payload, indent=2, default=str))


def trace_frame(result: TraceResult) -> pd.DataFrame:
    """Decisions of every policy side by side, one row per decision time."""
    return pd.DataFrame({"decision_time": result.plan.decision_times, **result.replicas})
