"""Detection benchmarks for `make bench`: training time and scoring throughput, measured now.

Training: one model per series for `SERIES` series of 7 days of minute features (the daily
`detector_models` run). Scoring: every series scored over one hour (what an `anomalies`
partition does) and over one day (a replay), with the trained models, as series-minutes/second.
The data is synthetic (daily cycles, noise of several sizes), generated with a fixed seed.
"""

from __future__ import annotations

import datetime as dt
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


def _warehouse_hour_rate(series: int = 100) -> tuple[float, float]:
    """(first hour incl. training, next hour) series-minutes/s of `score_hour` on a temporary warehouse."""
    from sreops import warehouse
    from sreops.detection.scoring import score_hour
    from sreops.detection.settings import AlarmPolicy
    from sreops.detection.store import MemoryModelStore

    start = dt.datetime(2026, 11, 16)
    minutes = pd.date_range(start, periods=3 * 1440, freq="min")
    frame = pd.concat(
        pd.DataFrame(
            {"minute": minutes, "service": f"svc{i // 6}", "metric": f"m{i % 6}", "n": 2, "mean": values}
        )
        for i, values in enumerate(_fleet(series, len(minutes), seed=1))
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warehouse.duckdb"
        with warehouse.transaction(path) as con:
            con.register("rows", frame)
            con.execute(
                "INSERT INTO metric_features_1m (minute, service, metric, n, mean) SELECT * FROM rows"
            )
            con.unregister("rows")
        settings, policy, store = DetectorSettings(), AlarmPolicy(), MemoryModelStore()
        rates = []
        for hour in (dt.datetime(2026, 11, 18, 10), dt.datetime(2026, 11, 18, 11)):
            started = time.perf_counter()
            score_hour(path, hour, settings, policy, store)
            rates.append(series * 60 / (time.perf_counter() - started))
    return rates[0], rates[1]


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
    ]
