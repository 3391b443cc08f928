"""Forecasting benchmarks: Prophet fit time per series, total time for many series, and the replay.

`bench_forecasting()` fits 200 synthetic series of 7 days of minute data (daily and weekly
rhythm, noise, bursts), resampled to hourly peaks, in parallel processes, as the `forecasts`
asset does; then times one series cold and warm-started; then, when the demand traces of
`AUTOSCALING.md` are at hand (`sreops.paths.shared_data_dir("demand")`: `$SREOPS_DEMAND_DIR`,
else `../shared/data/demand` beside the repository), replays them and reports the recommender
against the reactive baseline.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from sreops import paths
from sreops.forecasting import model

SERIES = 200
DAYS = 7
TARGET_SECONDS = 120.0


def synthetic_minutes(series: int, days: int = DAYS, seed: int = 11) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """`series` rows of minute demand: daily and weekly rhythm, multiplicative noise and a few bursts."""
    rng = np.random.default_rng(seed)
    minutes = days * 24 * 60
    index = pd.date_range("2026-11-02", periods=minutes, freq="min")
    t = np.arange(minutes) / 1440.0
    level = rng.uniform(20, 2000, size=(series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(series, 1))
    daily = 1 + 0.5 * np.sin(2 * np.pi * t + phase)
    weekly = 1 + 0.15 * np.sin(2 * np.pi * t / 7)
    noise = rng.lognormal(0, 0.2, size=(series, minutes))
    values = level * daily * weekly * noise
    for row in range(series):
        for start in rng.integers(0, minutes - 60, size=3):
            values[row, start : start + int(rng.integers(5, 60))] *= rng.uniform(2, 5)
    return index, values


def _hourly(index: pd.DatetimeIndex, values: np.ndarray, end: pd.Timestamp) -> list[pd.Series]:
    return [model.hourly_peaks(pd.Series(row, index=index), end, DAYS * 24) for row in values]


def bench_fits(series: int = SERIES, workers: int | None = None) -> list[dict]:
    """Resample and fit `series` series of minute data in parallel; time each stage."""
    index, values = synthetic_minutes(series)
    end = index[-1] + pd.Timedelta(minutes=1)
    started = time.perf_counter()
    peaks = _hourly(index, values, end)
    resample_s = time.perf_counter() - started
    jobs = [model.FitJob((f"svc-{i}", "request_rate"), p, end) for i, p in enumerate(peaks)]
    workers = workers or model.default_workers()
    started = time.perf_counter()
    results = list(model.fit_many(jobs, model.ForecastSettings(), workers=workers))
    fit_s = time.perf_counter() - started
    fits = [r for r in results if isinstance(r, model.Fit)]
    total = resample_s + fit_s
    per_fit = statistics.median(f.fit_seconds for f in fits) if fits else float("nan")
    return [
        {
            "name": f"forecast {series} series (total)",
            "value": round(total, 2),
            "unit": "s",
            "note": f"{DAYS} d of minute data each → hourly peaks → Prophet, {workers} processes; "
            f"target ≤ {TARGET_SECONDS:.0f} s; {len(fits)}/{series} fitted",
        },
        {
            "name": "resample to hourly peaks",
            "value": round(resample_s, 2),
            "unit": "s",
            "note": "all series",
        },
        {
            "name": "fit + forecast per series (median)",
            "value": round(per_fit, 3),
            "unit": "s",
            "note": "inside a worker, Prophet MAP fit and a 48 h forecast",
        },
        {
            "name": "throughput",
            "value": round(len(fits) / fit_s, 1) if fit_s else 0.0,
            "unit": "series/s",
            "note": "including process start-up",
        },
    ]


def bench_warm_start(repeats: int = 5) -> list[dict]:
    """One series refitted a day later: cold start against warm start from the previous fit."""
    index, values = synthetic_minutes(1, days=14, seed=5)
    series = pd.Series(values[0], index=index)
    first_end = index[0] + pd.Timedelta(days=12)
    first = model.fit(("svc", "m"), model.hourly_peaks(series, first_end, 12 * 24), first_end)
    end = first_end + pd.Timedelta(days=1)
    peaks = model.hourly_peaks(series, end, 13 * 24)
    cold, warm = [], []
    for _ in range(repeats):
        cold.append(model.fit(("svc", "m"), peaks, end).fit_seconds)
        warm.append(model.fit(("svc", "m"), peaks, end, warm_start=first.params).fit_seconds)
    return [
        {
            "name": "refit, cold start (median)",
            "value": round(statistics.median(cold), 3),
            "unit": "s",
            "note": "13 d of hourly peaks",
        },
        {
            "name": "refit, warm start (median)",
            "value": round(statistics.median(warm), 3),
            "unit": "s",
            "note": "initialized from the previous day's fit",
        },
    ]


def demand_dir(candidate: Path | None = None) -> Path | None:
    """Where the AUTOSCALING.md demand traces are (`candidate`, else the shared folder), if anywhere."""
    candidate = candidate or paths.shared_data_dir("demand")
    return candidate if candidate.is_dir() and any(candidate.glob("*.csv")) else None


def bench_replay(folder: Path, workers: int | None = None) -> list[dict]:
    """Replay every demand trace in `folder`: the recommender against the reactive baseline."""
    from sreops.evaluation import autoscale

    paths = sorted(str(p) for p in folder.glob("*.csv"))
    settings = autoscale.RecommenderSettings()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=min(len(paths), workers or model.default_workers())) as pool:
        results = list(pool.map(autoscale.evaluate_path, paths, [settings] * len(paths)))
    elapsed = time.perf_counter() - started
    mean = autoscale.average(results)
    wins = sum(r.beats_reactive() for r in results)
    rec, reactive = mean[autoscale.RECOMMENDER], mean["reactive"]
    return [
        {
            "name": "replay: recommender violation rate",
            "value": round(rec["violation_rate"], 4),
            "unit": "",
            "note": f"average of {len(results)} traces; reactive {reactive['violation_rate']:.4f}",
        },
        {
            "name": "replay: recommender cost ratio",
            "value": round(rec["cost_ratio"], 3),
            "unit": "× oracle",
            "note": f"reactive {reactive['cost_ratio']:.3f}",
        },
        {
            "name": "replay: traces where it beats reactive",
            "value": wins,
            "unit": f"of {len(results)}",
            "note": "fewer violations at no more cost",
        },
        {
            "name": "replay: traces where it beats reactive at the same spend",
            "value": sum(r.beats_reactive_at_spend() for r in results),
            "unit": f"of {len(results)}",
            "note": f"fewer violations than {autoscale.AT_SPEND}"
            f" ({mean[autoscale.AT_SPEND]['violation_rate']:.4f} at {mean[autoscale.AT_SPEND]['cost_ratio']:.3f})",
        },
        {
            "name": "replay: wall time",
            "value": round(elapsed, 1),
            "unit": "s",
            "note": f"{sum(r.fits for r in results)} Prophet fits,"
            f" {sum(len(r.plan.decision_times) for r in results)} hourly decisions",
        },
    ]


def bench_forecasting(demand: Path | None = None) -> list[dict]:
    """Every forecasting benchmark row (a few minutes at most); `demand` overrides the traces' folder."""
    rows = bench_fits()
    rows += bench_warm_start()
    folder = demand_dir(demand)
    if folder is not None:
        rows += bench_replay(folder)
    else:
        rows.append(
            {"name": "replay", "value": "", "unit": "", "note": "no demand traces (set SREOPS_DEMAND_DIR)"}
        )
    return rows
