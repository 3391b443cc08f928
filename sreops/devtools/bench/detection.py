"""Detection benchmarks for `make bench`: training time and scoring throughput, measured now.

Training: one model per series for `SERIES` series of 7 days of minute features (the daily
`detector_models` run). Scoring: every series scored over one hour (what an `anomalies`
partition does) and over one day (a replay), with the trained models, as series-minutes/second.
The data is synthetic (daily cycles, noise of several sizes), generated with a fixed seed.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sreops.detection.models import fit_series_model
from sreops.detection.settings import DetectorSettings
from sreops.detection.streaming import StreamingDetector

SERIES = 1000
DAYS = 7
RANGE_SERIES = 1000
RANGE_DAYS = 3
START = 1_794_787_200.0  # 2026-11-16 00:00 UTC


def _fleet(series: int, minutes: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.arange(minutes)
    return [
        40
        + 10 * np.sin(2 * np.pi * steps / 1440 + rng.uniform(0, 2 * np.pi))
        + rng.normal(0, rng.uniform(0.5, 3), minutes)
        for _ in range(series)
    ]


def _score_rate(settings, times, fleet, models, first, trained, minutes) -> float:
    keep = np.ones(trained + minutes, dtype=bool)
    started = time.perf_counter()
    for values, model in zip(fleet, models, strict=True):
        detector = StreamingDetector(settings, first_s=first, model_provider=lambda *_, model=model: model)
        detector.score_points(
            times[: trained + minutes], values[: trained + minutes], keep, trained, trained + minutes
        )
    return len(fleet) * minutes / (time.perf_counter() - started)


def _feature_frame(
    series: int, seed: int, days: int = 3, start: dt.datetime = dt.datetime(2026, 11, 16)
) -> pd.DataFrame:
    """`days` days (from 2026-11-16) of minute features for `series` series, six metrics per service."""
    minutes = pd.date_range(start, periods=days * 1440, freq="min")
    return pd.concat(
        pd.DataFrame(
            {"minute": minutes, "service": f"svc{i // 6}", "metric": f"m{i % 6}", "n": 2, "mean": values}
        )
        for i, values in enumerate(_fleet(series, len(minutes), seed=seed))
    )


def _warehouse_hour_rate(series: int = 100) -> tuple[float, float]:
    """(first hour incl. training, next hour) series-minutes/s of `score_hour` on a temporary warehouse."""
    from sreops import features, warehouse
    from sreops.detection.artifacts import MemoryModelStore
    from sreops.detection.run import score_hour
    from sreops.detection.settings import AlarmPolicy

    frame = _feature_frame(series, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warehouse.duckdb"
        with warehouse.transaction(path) as con:
            features.insert_features(con, frame)
        settings, policy, store = DetectorSettings(), AlarmPolicy(), MemoryModelStore()
        rates = []
        for hour in (dt.datetime(2026, 11, 18, 10), dt.datetime(2026, 11, 18, 11)):
            started = time.perf_counter()
            score_hour(path, hour, settings, policy, store)
            rates.append(series * 60 / (time.perf_counter() - started))
    return rates[0], rates[1]


_RANGE_CHILD = """
import json, sys
from pathlib import Path
from sreops.devtools.bench import detection
step = getattr(detection, sys.argv[1])
print(json.dumps(step(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
"""
_RANGE_START = dt.datetime(2026, 11, 17)


def prepare_range(folder: Path, series: int, days: int) -> dict:
    """A warehouse in `folder` with a week of history, `days` more days of features, and the models, as files.

    A week: the models learn from at most `training_points` (a week of minutes), so each day's
    models are as large as a long-lived fleet's.
    """
    from sreops import features, warehouse
    from sreops.detection import run
    from sreops.detection.artifacts import FileModelStore

    path = folder / "warehouse.duckdb"
    history = DetectorSettings().training_points // 1440
    for day in range(history + days):  # a day at a time: the input never sits whole in memory
        frame = _feature_frame(
            series, seed=day, days=1, start=_RANGE_START + dt.timedelta(days=day - history)
        )
        with warehouse.transaction(path) as con:
            features.insert_features(con, frame)
        del frame
    store = FileModelStore(folder / "models")
    for day in range(days):  # the daily `detector_models` runs
        run.train_as_of(path, _RANGE_START + dt.timedelta(days=day), DetectorSettings(), store)
    return {}


def range_run(folder: Path, series: int, days: int) -> dict:
    """The ranged `anomalies` run over `days` days (models on file), as its asset does it.

    Series-minutes/s end to end and the process's peak memory after the first day and after the
    whole range: flat memory when the two agree. Run in its own process after `prepare_range`.
    """
    from sreops.detection import run
    from sreops.detection.artifacts import FileModelStore
    from sreops.detection.settings import AlarmPolicy
    from sreops.devtools.bench import peak_rss_mib as peak_mib

    path, end = folder / "warehouse.duckdb", _RANGE_START + dt.timedelta(days=days)
    settings, policy, store = DetectorSettings(), AlarmPolicy(), FileModelStore(folder / "models")
    first_day = scored = windows = 0
    started = time.perf_counter()
    for result in run.score_range(path, _RANGE_START, end, settings, policy, store):
        scored += int((result.frame["metric"] != "*").sum())
        windows += 1
        if result.end <= _RANGE_START + dt.timedelta(days=1):
            first_day = peak_mib()
        del result
    seconds = time.perf_counter() - started
    return {
        "rate": scored / seconds,
        "seconds": seconds,
        "windows": windows,
        "first_day_mib": first_day,
        "range_mib": peak_mib(),
    }


def _ranged(series: int, days: int) -> dict:
    """`range_run` measured in a fresh process, on a warehouse another process prepared."""
    with tempfile.TemporaryDirectory() as folder:
        out = {}
        for step in ("prepare_range", "range_run"):
            out = json.loads(
                subprocess.run(
                    [sys.executable, "-c", _RANGE_CHILD, step, folder, str(series), str(days)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.splitlines()[-1]
            )
        return out


def _live_run_seconds(series: int = 100, minutes_in: tuple[int, ...] = (5, 55)) -> list[float]:
    """Seconds of `score_hour` for the hour in progress when it has reached each of `minutes_in`.

    What each live ingest run does (models already trained): it rescores the hour so far, so the
    ratio of the two says how much its cost grows through the hour.
    """
    from sreops import features, warehouse
    from sreops.detection.artifacts import MemoryModelStore
    from sreops.detection.run import score_hour
    from sreops.detection.settings import AlarmPolicy

    hour = dt.datetime(2026, 11, 18, 11)
    frame = _feature_frame(series, seed=2)
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warehouse.duckdb"
        settings, policy, store = DetectorSettings(), AlarmPolicy(), MemoryModelStore()
        with warehouse.transaction(path) as con:
            features.insert_features(con, frame[frame["minute"] < hour])
        score_hour(path, hour - dt.timedelta(hours=1), settings, policy, store)  # trains the models
        landed = hour
        for minute in minutes_in:
            upto = hour + dt.timedelta(minutes=minute)
            with warehouse.transaction(path) as con:
                features.insert_features(con, frame[(frame["minute"] >= landed) & (frame["minute"] < upto)])
            landed = upto
            started = time.perf_counter()
            score_hour(path, hour, settings, policy, store)
            seconds.append(time.perf_counter() - started)
    return seconds


def many_metric_service(seed: int, days: int = 12, metrics: int = 38, test_from_day: int = 4):
    """A server's minute metrics (as in public server-machine benchmarks) with labelled incidents.

    Metrics follow a few shared drivers (daily load with AR(1) wander, a slow drift, load squared,
    a constant) at their own scales and noise, five of them counters; incidents after
    `test_from_day` shift 1 to 12 metrics by 1.5–8 of their own noise for 5–90 minutes, weaker when
    broader. Returns (values (minutes × metrics), [(start, end) minute indices]).
    """
    rng = np.random.default_rng(seed)
    n = days * 1440
    steps = np.arange(n)
    hours = (steps % 1440) / 60
    load = 0.6 + 0.4 * np.clip(np.sin((hours - 7) / 24 * 2 * np.pi), -0.5, 1)
    wander = np.zeros(n)
    shocks = rng.normal(0, 0.02, n)
    for i in range(1, n):
        wander[i] = 0.98 * wander[i - 1] + shocks[i]
    drivers = [load * (1 + wander), np.cumsum(rng.normal(0, 0.002, n)) + 1, load**2, np.ones(n)]
    kinds = rng.integers(0, len(drivers), metrics)
    scale, noise = rng.uniform(1, 100, metrics), rng.uniform(0.01, 0.15, metrics)
    values = np.column_stack(
        [scale[j] * (drivers[kinds[j]] + rng.normal(0, noise[j], n)) for j in range(metrics)]
    )
    for j in rng.choice(metrics, 5, replace=False):
        values[:, j] = rng.poisson(np.clip(values[:, j] / scale[j] * 5, 0.1, None))
    start = test_from_day * 1440
    truth, last_end = [], 0
    begins = np.sort(
        rng.choice(np.arange(start, n - 200, 30), rng.poisson(3.5 * (days - test_from_day)), replace=False)
    )
    for begin in begins:
        if begin < last_end + 60:
            continue
        duration, width = int(rng.integers(5, 90)), int(rng.choice([1, 2, 3, 5, 8, 12]))
        strength = rng.uniform(1.5, 5) if width > 2 else rng.uniform(3, 8)
        sign = rng.choice([-1, 1])
        for j in rng.choice(metrics, width, replace=False):
            sd = np.std(np.diff(values[start - 1440 : start, j])) / np.sqrt(2) + 1e-9
            values[begin : begin + duration, j] += sign * strength * sd * (1 + 0.3 * rng.normal())
        truth.append((int(begin), int(begin + duration)))
        last_end = begin + duration
    return values, truth


def bench_service_rules(seeds: tuple[int, ...] = (1, 2)) -> list[dict]:
    """Incidents caught and false incidents per service-day, per service rule, on many-metric services."""
    from sreops.detection import incidents, service
    from sreops.detection.settings import AlarmPolicy

    policy = AlarmPolicy()
    totals = {rule: [0, 0, 0, 0.0] for rule in service.RULES}  # caught, labelled, false, days
    for seed in seeds:
        values, truth = many_metric_service(seed)
        n, metrics = values.shape
        minutes = pd.date_range("2026-11-01", periods=n, freq="min")
        times = START + 60.0 * np.arange(n)
        scores = pd.concat(
            pd.DataFrame(
                {
                    "service": "server",
                    "metric": f"m{j}",
                    "minute": minutes,
                    "score": StreamingDetector(DetectorSettings()).replay(times, values[:, j]).score,
                }
            )
            for j in range(metrics)
        )
        test_from = 4 * 1440
        for rule in service.RULES:
            per_minute = service.service_scores(scores, rule).rename("score").reset_index()
            found = incidents.find_incidents(per_minute.iloc[test_from:], policy)
            slack = pd.Timedelta(minutes=5)
            matched = set()
            for begin, end in truth:
                hits = [
                    k
                    for k, i in enumerate(found)
                    if minutes[begin] - slack <= i.first_minute <= minutes[end - 1] + slack
                ]
                totals[rule][0] += bool(hits)
                matched.update(hits)
            totals[rule][1] += len(truth)
            totals[rule][2] += len(found) - len(matched)
            totals[rule][3] += (n - test_from) / 1440
    rows = []
    for rule, (caught, labelled, false, days) in totals.items():
        note = f"{len(seeds)} synthetic 38-metric servers, {days:.0f} test days"
        rows.append(
            {
                "name": f"service rule {rule}: incidents caught",
                "value": f"{caught}/{labelled}",
                "unit": "",
                "note": note,
            }
        )
        rows.append(
            {
                "name": f"service rule {rule}: false incidents",
                "value": round(false / days, 2),
                "unit": "per service-day",
                "note": note,
            }
        )
    return rows


def bench_detection(series: int = SERIES) -> list[dict]:
    """Rows `{name, value, unit, note}` for the bench table."""
    settings = DetectorSettings()
    trained = DAYS * 1440
    times = START + 60.0 * np.arange(trained + 1440)
    fleet = _fleet(series, trained + 1440)
    started = time.perf_counter()
    models = [fit_series_model(times, values, settings, trained) for values in fleet]
    for model in models:  # the novelty member's k-d tree is built on first use: count it as training
        index = getattr(model.member_, "index", None)
        if index is not None:
            index.tree  # noqa: B018
    train_s = time.perf_counter() - started
    first = START - 30 * 86400.0  # long-lived series: no warm-up damping
    hourly = _score_rate(settings, times, fleet, models, first, trained, 60)
    daily = _score_rate(settings, times, fleet, models, first, trained, 1440)
    with_training, warm = _warehouse_hour_rate()
    early, late = _live_run_seconds(1000)
    ranged = _ranged(RANGE_SERIES, RANGE_DAYS)
    rules = bench_service_rules()
    note = f"{series} series, {DAYS} days of minute features each, 1 process"
    return [
        {
            "name": "training time",
            "value": round(train_s, 2),
            "unit": "s",
            "note": f"{note} (target <= 60 s)",
        },
        {
            "name": "scoring throughput, 1-hour partitions",
            "value": round(hourly),
            "unit": "series-minutes/s",
            "note": "each series scored for one hour with its model (target >= 50,000)",
        },
        {
            "name": "scoring throughput, 1-day replay",
            "value": round(daily),
            "unit": "series-minutes/s",
            "note": "each series scored for a day with its model",
        },
        {
            "name": "anomalies partition end to end",
            "value": round(warm),
            "unit": "series-minutes/s",
            "note": f"score_hour on DuckDB, 100 series: read, score, explain, write ({round(with_training)} "
            "when the hour also trains the models)",
        },
        {
            "name": "anomalies of the hour in progress end to end, 1,000 series",
            "value": round(1000 * 55 / late),
            "unit": "series-minutes/s",
            "note": "score_hour at minute 55: read, score, explain, write (target >= 50,000)",
        },
        {
            "name": f"anomalies over a {RANGE_DAYS}-day range end to end, {RANGE_SERIES:,} series",
            "value": round(ranged["rate"]),
            "unit": "series-minutes/s",
            "note": f"{ranged['seconds']:.0f} s in {ranged['windows']} windows, models trained before"
            " (target >= 50,000)",
        },
        {
            "name": "ranged run peak memory, first day / whole range",
            "value": f"{ranged['first_day_mib']:,} / {ranged['range_mib']:,}",
            "unit": "MiB",
            "note": "whole process, models on file: flat when the two agree",
        },
        {
            "name": "live run at minute 55 / minute 5",
            "value": round(late / early, 2),
            "unit": "ratio",
            "note": f"score_hour of the hour in progress, 1,000 series: {early:.2f} s at minute 5, {late:.2f} s at"
            " minute 55 (target <= 1.5)",
        },
        *rules,
    ]
