"""Pipeline health: a source that stopped sending, a model not retrained, failed runs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sreops import config, warehouse
from sreops.alerting import health
from sreops.alerting.model import fetch_alerts

NOW = dt.datetime(2026, 11, 20, 13, 0)


def samples(path, service: str, source: str, start: dt.datetime, end: dt.datetime, step_s: int = 30) -> None:
    ts = pd.date_range(start, end, freq=f"{step_s}s", inclusive="left")
    frame = pd.DataFrame(
        {"ts": ts, "service": service, "metric": "cpu", "value": np.linspace(1, 2, len(ts)), "source": source}
    )
    with warehouse.transaction(path) as con:
        con.register("frame", frame)
        con.execute(
            "INSERT INTO metric_samples_extra (ts, service, metric, value, source) SELECT * FROM frame"
        )


def firing(path) -> dict[str, str]:
    with warehouse.connect(path) as con:
        return {a.fingerprint: a.summary for a in fetch_alerts(con, "status = 'firing'")}


def test_source_that_stopped_sending_raises_and_recovery_resolves(warehouse_path, tmp_path) -> None:
    cfg = config.Config()
    samples(warehouse_path, "api", "landing", NOW - dt.timedelta(hours=3), NOW - dt.timedelta(minutes=25))
    samples(warehouse_path, "web", "landing", NOW - dt.timedelta(hours=3), NOW)  # still sending
    samples(
        warehouse_path, "old", "backfill", NOW - dt.timedelta(days=9), NOW - dt.timedelta(days=8)
    )  # history
    report = health.check_pipeline(warehouse_path, cfg, NOW, models_dir=tmp_path / "none")
    alerts = firing(warehouse_path)
    assert list(alerts) == ["source_stale:api:landing"]
    assert (
        alerts["source_stale:api:landing"]
        == "api: no data from source 'landing' for 25 min (usually every 30 s)"
    )
    assert len(report.firing) == 1
    samples(warehouse_path, "api", "landing", NOW - dt.timedelta(minutes=25), NOW + dt.timedelta(minutes=5))
    report = health.check_pipeline(
        warehouse_path, cfg, NOW + dt.timedelta(minutes=5), models_dir=tmp_path / "x"
    )
    assert firing(warehouse_path) == {} and len(report.resolved) == 1


def test_slow_source_is_judged_by_its_own_cadence(warehouse_path, tmp_path) -> None:
    # one sample every 5 minutes: 20 minutes of silence is normal for it
    samples(
        warehouse_path,
        "batch",
        "prometheus",
        NOW - dt.timedelta(hours=6),
        NOW - dt.timedelta(minutes=20),
        step_s=300,
    )
    health.check_pipeline(warehouse_path, config.Config(), NOW, models_dir=tmp_path / "none")
    assert firing(warehouse_path) == {}


def test_model_not_retrained_in_time_raises(warehouse_path, tmp_path) -> None:
    models = tmp_path / "models"
    for family, age_h in (("detection", 50), ("forecasting", 2)):
        artefact = models / family / "v7" / "model.pkl"
        artefact.parent.mkdir(parents=True)
        artefact.write_bytes(b"x")
        stamp = (NOW - dt.timedelta(hours=age_h)).replace(tzinfo=dt.UTC).timestamp()
        os.utime(artefact, (stamp, stamp))
    health.check_pipeline(warehouse_path, config.Config(), NOW, models_dir=models)
    assert firing(warehouse_path) == {
        "model_stale:detection": "model 'detection' not retrained for 50 h (limit 36 h)"
    }


def test_failed_run_opens_one_alert_per_job_and_success_resolves_it(warehouse_path) -> None:
    failure = health.RunFailure(
        "run-1",
        "build_features",
        "KeyError: 'mean'\nTraceback ...",
        ("metric_features_1m",),
        "2026-11-20-12:00",
    )
    first = health.record_run_failure(warehouse_path, failure, NOW)
    again = health.record_run_failure(
        warehouse_path, health.RunFailure("run-2", "build_features", "boom"), NOW + dt.timedelta(minutes=5)
    )
    assert first == again
    with warehouse.connect(warehouse_path) as con:
        [alert] = fetch_alerts(con, "kind = 'run_failure'")
    assert alert.details["run_id"] == "run-2" and alert.revision == 2
    assert health.record_run_success(warehouse_path, "build_features", "run-3", NOW + dt.timedelta(minutes=9))
    assert firing(warehouse_path) == {}


def landed_file(folder, name: str, service: str, start: dt.datetime, end: dt.datetime) -> Path:
    ts = pd.date_range(start, end, freq="30s", inclusive="left")
    path = folder / name
    pd.DataFrame({"timestamp": ts, "service": service, "metric": "cpu", "value": 1.0}).to_csv(
        path, index=False
    )
    return path


def arrived(path, file_id: int, at: dt.datetime) -> None:
    """Pretend a file was ingested at `at` (arrival time is wall clock; tests cannot wait for it)."""
    with warehouse.transaction(path) as con:
        con.execute("UPDATE ingested_files SET ingested_at = ? WHERE file_id = ?", [at, file_id])


def test_one_shot_loads_never_go_stale_but_a_stream_that_stops_does(warehouse_path, tmp_path) -> None:
    from sreops.ingest import run

    cfg = config.Config()
    # the demo: a day of files up to now, landed in one go; a historical file dropped later
    demo = [
        landed_file(
            tmp_path,
            f"demo-{i}.csv",
            "demo",
            NOW - dt.timedelta(hours=24 - 6 * i),
            NOW - dt.timedelta(hours=18 - 6 * i),
        )
        for i in range(4)
    ]
    history = landed_file(
        tmp_path, "old.csv", "hist", NOW - dt.timedelta(hours=20), NOW - dt.timedelta(hours=19)
    )
    # a stream: files that arrived as their data happened, then nothing for 40 minutes
    stream = [
        landed_file(
            tmp_path,
            f"live-{i}.csv",
            "live",
            NOW - dt.timedelta(minutes=100 - 10 * i),
            NOW - dt.timedelta(minutes=90 - 10 * i),
        )
        for i in range(6)
    ]
    results = run.ingest_files([*demo, history, *stream], warehouse_path, move=False)
    assert all(r.status == "ingested" for r in results), [r.error for r in results]
    for r in results[:4]:
        arrived(warehouse_path, r.file_id, NOW - dt.timedelta(minutes=1))
    arrived(warehouse_path, results[4].file_id, NOW - dt.timedelta(minutes=30))
    for i, r in enumerate(results[5:]):
        arrived(warehouse_path, r.file_id, NOW - dt.timedelta(minutes=89 - 10 * i))
    later = NOW + dt.timedelta(hours=2)
    health.check_pipeline(warehouse_path, cfg, later, models_dir=tmp_path / "none")
    assert list(firing(warehouse_path)) == ["source_stale:live:landing"]
