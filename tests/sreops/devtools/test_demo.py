"""The demo fleet: realistic shape, every incident kind, ground truth, and files that ingest cleanly."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops import config, paths, warehouse
from sreops.cli import main
from sreops.devtools import demo
from sreops.ingest import landing, run

START = dt.datetime(2026, 11, 16)


def test_fleet_has_the_services_metrics_and_resolution_promised() -> None:
    fleet = demo.generate(START, days=2, step_seconds=30, seed=1)
    s = fleet.samples
    assert s["service"].nunique() >= 5 and set(demo.METRICS) <= set(s["metric"])
    per_series = s.groupby(["service", "metric"])["ts"]
    assert (per_series.count() == 2 * 24 * 120).all()
    steps = per_series.diff().dropna().dt.total_seconds()
    assert set(steps) == {30.0}
    assert s["value"].notna().all() and np.isfinite(s["value"]).all()


def test_load_has_daily_and_weekly_rhythm() -> None:
    s = demo.generate(START, days=7, seed=2).samples
    rps = s[(s.service == "search") & (s.metric == "request_rate")].set_index("ts")["value"]
    by_hour = rps.groupby(rps.index.hour).mean()
    assert by_hour.max() > 2 * by_hour.min()  # day and night
    weekday = rps[rps.index.day_of_week < 5].mean()
    weekend = rps[rps.index.day_of_week >= 5].mean()
    assert weekend < 0.85 * weekday


def test_every_incident_kind_is_injected_and_visible_in_the_data() -> None:
    fleet = demo.generate(START, days=7, seed=3)
    kinds = {i["kind"] for i in fleet.incidents}
    assert {"spike", "level_shift", "memory_leak", "error_burst", "latency_degradation", "deploy"} <= kinds
    s = fleet.samples
    for incident in fleet.incidents:
        if incident["kind"] == "deploy":
            continue
        start, end = (
            pd.Timestamp(incident["start"]).tz_localize(None),
            pd.Timestamp(incident["end"]).tz_localize(None),
        )
        metric = incident["metrics"][0]
        series = s[(s.service == incident["service"]) & (s.metric == metric)].set_index("ts")["value"]
        inside = series[(series.index >= start) & (series.index < end)]
        before = series[(series.index >= start - pd.Timedelta(hours=6)) & (series.index < start)]
        shift = abs(inside.mean() - before.mean()) / before.std()
        assert shift > 1.5, (incident["kind"], shift)


def test_demo_command_writes_files_that_ingest_and_ground_truth(
    sreops_home: Path, warehouse_path: Path
) -> None:
    assert main(["demo", "--days", "2", "--start", "2026-11-20T12:00:00"]) == 0
    landed = landing.discover()
    assert {p.name.split(".", 1)[1] for p in landed} == {"csv.gz", "parquet", "jsonl"}
    results = run.ingest_files(landed, warehouse_path)
    assert all(r.status == "ingested" for r in results), [r.error for r in results]
    assert sum(r.rows for r in results) == 5 * 6 * 2 * 2880
    truth = json.loads((paths.demo_dir() / "incidents.json").read_text())
    assert truth and all({"service", "kind", "metrics", "start", "end"} <= set(item) for item in truth)
    with warehouse.connect(warehouse_path) as con:
        recorded = con.execute(
            "SELECT service, starts_at FROM events WHERE kind = 'deploy' ORDER BY 2"
        ).fetchall()
    deploys = sorted((i["service"], i["start"]) for i in truth if i["kind"] == "deploy")
    assert sorted((s, f"{t.isoformat()}Z") for s, t in recorded) == deploys


def test_the_demo_config_starts_partitions_on_the_demos_first_day(
    sreops_home: Path, warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["demo", "--days", "2", "--start", "2026-11-20T12:00:00", "--no-logs"]) == 0
    demo_config = paths.demo_dir() / "sreops.yaml"
    monkeypatch.setenv("SREOPS_CONFIG", str(demo_config))
    monkeypatch.delenv("SREOPS_PARTITIONS_START", raising=False)
    start = config.partitions_start(config.load(), today=dt.date(2027, 3, 1))
    assert start == dt.date(2026, 11, 20)
    results = run.ingest_files(landing.discover(), warehouse_path)
    first_hour = min(hour for r in results for hour in r.hours)
    assert first_hour.date() == start  # no partition before the data, none of the data before the partitions
    demo_config.write_text("partitions:\n  start: 2026-11-01\n")
    assert (
        main(
            [
                "demo",
                "--days",
                "1",
                "--start",
                "2026-11-25T00:00:00",
                "--no-logs",
                "--out",
                str(sreops_home / "x"),
            ]
        )
        == 0
    )
    assert "2026-11-01" in demo_config.read_text()  # a config the user edited is kept
