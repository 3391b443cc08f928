"""Would a service-shard partition dimension spread one hour over workers? Measure where an hour's time goes.

For S services × 4 metrics (10-second samples, two days of history), times the two per-hour steps
of one hour with everything warm (models trained), and the same hour after the models are
dropped (what a first backfill pays). A service shard could only split the part that grows with S;
docs/deploy.md quotes the output. Run: `.venv/bin/python deploy/measure_shards.py`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sreops import config, features, warehouse  # noqa: E402
from sreops.detection import run, versions  # noqa: E402
from sreops.detection.artifacts import FileModelStore  # noqa: E402
from sreops.ingest import run as ingest_run  # noqa: E402

START = dt.datetime(2026, 11, 10)
HOUR = START + dt.timedelta(days=2)
METRICS = ("cpu", "mem", "latency", "rps")


def _samples(services: int) -> pd.DataFrame:
    ts = pd.date_range(START, HOUR + dt.timedelta(hours=1), freq="10s", inclusive="left")
    rng = np.random.default_rng(services)
    day = np.sin(2 * np.pi * (ts.hour * 60 + ts.minute).to_numpy() / 1440)
    return pd.concat(
        pd.DataFrame(
            {
                "timestamp": ts,
                "service": f"svc{s:02d}",
                "metric": m,
                "value": 50 + 8 * day + rng.normal(0, 1, len(ts)),
            }
        )
        for s in range(services)
        for m in METRICS
    )


def measure(services: int, root: Path) -> dict[str, float]:
    """Seconds for one hour's features and scores (models cold, then warm) with `services` services."""
    path = root / f"w{services}.duckdb"
    warehouse.migrate(path)
    source = root / f"s{services}.parquet"
    _samples(services).to_parquet(source, index=False)
    ingest_run.ingest_file(source, path, move=False)
    features.build_range(path, START, HOUR)
    cfg = config.Config()
    settings, policy = versions.current(path, cfg)
    began = time.perf_counter()
    features.build_hour(path, HOUR)
    features_s = time.perf_counter() - began
    models = root / f"models{services}"
    began = time.perf_counter()
    run.score_hour(
        path, HOUR, settings, policy, FileModelStore(root=models), now=HOUR + dt.timedelta(hours=2)
    )
    cold_s = time.perf_counter() - began
    began = time.perf_counter()
    run.score_hour(
        path, HOUR, settings, policy, FileModelStore(root=models), now=HOUR + dt.timedelta(hours=2)
    )
    warm_s = time.perf_counter() - began
    return {"features_s": features_s, "score_cold_s": cold_s, "score_warm_s": warm_s}


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="sreops-shards-"))
    try:
        print("services  series  features_s  score_cold_s  score_warm_s")
        for services in (2, 8, 32, 128):
            m = measure(services, root)
            print(
                f"{services:8d}  {services * len(METRICS):6d}  {m['features_s']:10.2f}"
                f"  {m['score_cold_s']:12.2f}  {m['score_warm_s']:12.2f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
