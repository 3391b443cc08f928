"""The UI as a user meets it: the real `dagster dev`, a backfill through the GraphQL call the UI makes, pages in Chromium."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assets.partitions import hour_key
from sreops import features, warehouse
from sreops.devtools.dagster_dev import dagster_dev, launch_backfill, wait_for_backfill
from sreops.ingest import run as ingest_run

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 11, 16)
HOURS = [dt.datetime(2026, 11, 18, h) for h in range(8, 14)]
SPIKE = dt.datetime(2026, 11, 18, 12, 20)


def history(home: Path) -> Path:
    """Two and a half days of minute samples for 2 services × 2 metrics, one latency spike."""
    ts = pd.date_range(START, HOURS[-1] + dt.timedelta(hours=1), freq="1min", inclusive="left")
    rng = np.random.default_rng(3)
    frames = []
    for service in ("checkout", "search"):
        for metric in ("cpu", "latency"):
            value = 50 + 8 * np.sin(2 * np.pi * np.arange(len(ts)) / 1440) + rng.normal(0, 1, len(ts))
            if (service, metric) == ("checkout", "latency"):
                value[(ts >= SPIKE) & (ts < SPIKE + dt.timedelta(minutes=5))] += 60
            frames.append(
                pd.DataFrame({"timestamp": ts, "service": service, "metric": metric, "value": value})
            )
    path = home / "history.parquet"
    pd.concat(frames).to_parquet(path, index=False)
    return path


def running_dagster_dev(sreops_home: Path, tmp_path: Path) -> AbstractContextManager[int]:
    """`dagster dev` on this test's home, partitions from the history's first day."""
    settings = {"SREOPS_HOME": str(sreops_home), "SREOPS_PARTITIONS_START": f"{START:%Y-%m-%d}"}
    return dagster_dev(tmp_path / "dagster", settings)


def page(port: int, route: str) -> str:
    """The DOM of a UI page after headless Chromium ran its scripts (and their GraphQL calls)."""
    browser = shutil.which("chromium")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
        + ["--dump-dom", f"http://127.0.0.1:{port}{route}"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
def test_a_backfill_launched_through_the_webserver_scores_every_hour(
    sreops_home: Path, warehouse_path: Path, tmp_path: Path
) -> None:
    assert ingest_run.ingest_file(history(sreops_home), warehouse_path, move=False).status == "ingested"
    features.build_range(warehouse_path, START, HOURS[-1] + dt.timedelta(hours=1))
    with running_dagster_dev(sreops_home, tmp_path) as port:
        # the call the UI's "Materialize" on a partition range makes; the daemon submits its runs
        backfill_id = launch_backfill(port, ["anomalies", "alerts"], [hour_key(h) for h in HOURS])
        backfill = wait_for_backfill(port, backfill_id, timeout_s=300)
        assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
        assert backfill["numPartitions"] == len(HOURS)
    with warehouse.connect(warehouse_path) as con:
        scored = con.execute(
            "SELECT DISTINCT date_trunc('hour', minute) FROM anomalies WHERE metric <> '*' ORDER BY 1"
        ).fetchall()
        alerts = con.execute("SELECT fingerprint, details FROM alerts WHERE kind = 'anomaly'").fetchall()
    assert [h for (h,) in scored] == HOURS
    assert [a[0] for a in alerts] == ["anomaly:checkout"]
    assert json.loads(alerts[0][1])["first_minute"] == SPIKE.isoformat()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_asset_graph_and_an_asset_page_show_our_assets_and_a_plot(
    sreops_home: Path, warehouse_path: Path, tmp_path: Path
) -> None:
    assert ingest_run.ingest_file(history(sreops_home), warehouse_path, move=False).status == "ingested"
    env = {**os.environ, "SREOPS_HOME": str(sreops_home), "SREOPS_PARTITIONS_START": f"{START:%Y-%m-%d}"}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster")
    with running_dagster_dev(sreops_home, tmp_path) as port:
        materialized = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "sreops.definitions"]
            + ["--select", "metric_features_1m", "--partition", hour_key(HOURS[-1])],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert materialized.returncode == 0, materialized.stderr[-3000:]
        graph = page(port, "/assets/metric_features_1m?view=lineage")
        details = page(port, "/assets/metric_features_1m")
    assert {"metric_samples", "anomalies"} <= {
        name for name in ("metric_samples", "anomalies") if name in graph
    }
    assert ">plot<" in details and ">samples<" in details  # the latest materialization's metadata
