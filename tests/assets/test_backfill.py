"""A 48-hour backfill: concurrent ranged runs from four processes, one DuckDB file, no lock errors."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.partitions import hour_key
from sreops import features, paths, warehouse
from sreops.ingest import run as ingest_run

ROOT = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 11, 10)
HOURS = [START + dt.timedelta(hours=h) for h in range(48)]
SERIES = [(f"svc{s}", m) for s in range(5) for m in ("cpu", "mem", "p95", "rps")]
WORKERS = 4
HOURS_PER_RUN = 4


@pytest.mark.slow
def test_48_partition_backfill_with_concurrent_runs_has_no_lock_errors(
    warehouse_path: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    ts = pd.date_range(START, START + dt.timedelta(hours=48), freq="10s", inclusive="left")
    frame = pd.concat(
        pd.DataFrame({"timestamp": ts, "service": s, "metric": m, "value": rng.normal(size=len(ts))})
        for s, m in SERIES
    )
    path = paths.landing_metrics() / "week.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path, index=False)
    assert ingest_run.ingest_file(path, warehouse_path).status == "ingested"

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(ROOT)}
    keys = [hour_key(h) for h in HOURS]
    # Runs cover ranges of hours, 4 each here (a UI or CLI backfill is one run for its whole range:
    # the policy is single-run), so that 12 runs from 4 processes compete for the warehouse.
    ranges = [f"{keys[i]}...{keys[i + HOURS_PER_RUN - 1]}" for i in range(0, len(keys), HOURS_PER_RUN)]
    # The first run creates the instance's SQLite storage, as `dagster dev` does at start-up.
    first = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("backfill_worker.py")), str(ROOT), ranges[0]],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("backfill_worker.py")),
                str(ROOT),
                *ranges[1:][i::WORKERS],
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(WORKERS)
    ]
    outputs = [w.communicate(timeout=1500)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), "\n".join(outputs)

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == len(ranges) and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        records = instance.get_records_for_run(runs[0].run_id).records
        assert any(
            r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.is_step_success
            for r in records
        )
    with warehouse.connect(warehouse_path) as con:
        per_hour = con.execute(
            "SELECT date_trunc('hour', minute) h, count(*), sum(n) FROM metric_features_1m GROUP BY h ORDER BY h"
        ).fetchall()
    assert [row[0] for row in per_hour] == HOURS
    assert all(row[1] == len(SERIES) * 60 and row[2] == len(SERIES) * 360 for row in per_hour)
    assert features.duplicate_keys(warehouse_path, HOURS[0], HOURS[-1] + dt.timedelta(hours=1)) == 0

    # The detection assets backfill from the shell too (one run for the range: single-run policy).
    scored = f"{keys[40]}...{keys[47]}"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "sreops.definitions"]
        + ["--select", "anomalies,alerts", "--partition-range", scored],
        env={**env, "SREOPS_PARTITIONS_START": f"{START:%Y-%m-%d}"},  # whatever today's default start
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with warehouse.connect(warehouse_path) as con:
        hours = con.execute(
            "SELECT DISTINCT date_trunc('hour', minute) FROM anomalies WHERE metric <> '*' ORDER BY 1"
        ).fetchall()
    assert [h for (h,) in hours] == HOURS[40:48]
