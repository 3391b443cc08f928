"""The log sensor: changed files request an ingest run, idle files one more, clustered hours count runs."""

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from assets.partitions import hour_key
from assets.resources import ConfigResource, WarehouseResource
from sensors.logs import landing_logs_sensor, log_run_requests
from sreops import config, paths
from sreops.logs import run as logs_run
from sreops.logs.embedding import TokenHashEmbedder

NOW = 1_800_000_000.0
HOUR = dt.datetime(2026, 11, 20, 13)


def write(name: str, text: str, age_s: float) -> Path:
    folder = paths.landing_logs() / "api"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("a") as fh:
        fh.write(text)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def tick(warehouse_path: Path, cursor: str | None, keys: set[str] | None = None, now: float = NOW):
    return log_run_requests(cursor, now, paths.landing_logs(), str(warehouse_path), keys, idle_seconds=2.0)


def test_appended_lines_request_one_run_and_a_quiet_file_none(warehouse_path: Path) -> None:
    write("app.log", "2026-11-20 13:00:00,000 INFO hello\n", age_s=10)
    requests, cursor, _ = tick(warehouse_path, None)
    assert [r.job_name for r in requests] == ["ingest_logs"]
    assert tick(warehouse_path, cursor)[0] == []
    write("app.log", "2026-11-20 13:00:01,000 INFO again\n", age_s=10)
    assert [r.job_name for r in tick(warehouse_path, cursor)[0]] == ["ingest_logs"]


def test_a_file_being_written_gets_one_more_run_when_it_goes_idle(warehouse_path: Path) -> None:
    write("app.log", "2026-11-20 13:00:00,000 ERROR boom\n\tat x.y(Z.java:1)\n", age_s=0.5)
    first, cursor, _ = tick(warehouse_path, None)
    assert len(first) == 1
    assert tick(warehouse_path, cursor, now=NOW + 0.5)[0] == []  # still busy, nothing new
    later, cursor, _ = tick(warehouse_path, cursor, now=NOW + 5)
    assert [r.job_name for r in later] == ["ingest_logs"]  # idle now: read the held-back record
    assert tick(warehouse_path, cursor, now=NOW + 10)[0] == []


def test_clustered_hours_become_count_runs_for_those_partitions(warehouse_path: Path) -> None:
    write("app.log", "".join(f"2026-11-20 13:0{i}:00,000 INFO tick {i}\n" for i in range(5)), age_s=10)
    cfg = config.Config()
    logs_run.ingest(warehouse_path, cfg=cfg, clock=NOW + 10)
    logs_run.cluster_pending(warehouse_path, cfg=cfg, embedder=TokenHashEmbedder())
    key = hour_key(HOUR)
    requests, cursor, _ = tick(warehouse_path, None, keys={key})
    counts = [r for r in requests if r.job_name == "build_log_counts"]
    assert [r.partition_key for r in counts] == [key]
    assert [r for r in tick(warehouse_path, cursor, keys={key})[0] if r.job_name == "build_log_counts"] == []


def test_hours_outside_the_partitions_are_reported_not_requested(warehouse_path: Path) -> None:
    write("app.log", "2020-01-01 00:00:00,000 INFO ancient\n", age_s=10)
    cfg = config.Config()
    logs_run.ingest(warehouse_path, cfg=cfg, clock=NOW + 10)
    logs_run.cluster_pending(warehouse_path, cfg=cfg, embedder=TokenHashEmbedder())
    requests, _, note = tick(warehouse_path, None, keys={hour_key(HOUR)})
    assert all(r.job_name != "build_log_counts" for r in requests)
    assert "outside the hourly partitions" in note


def resources(warehouse_path: Path) -> dict[str, object]:
    return {"warehouse": WarehouseResource(location=str(warehouse_path)), "sreops_config": ConfigResource()}


def test_the_sensor_runs_in_dagster(warehouse_path: Path) -> None:
    write("app.log", "2026-11-20 13:00:00,000 INFO hello\n", age_s=10)
    context = dg.build_sensor_context(resources=resources(warehouse_path))
    result = landing_logs_sensor(context)
    assert [r.job_name for r in result] == ["ingest_logs"]
    assert landing_logs_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    again = landing_logs_sensor(
        dg.build_sensor_context(cursor=context.cursor, resources=resources(warehouse_path))
    )
    assert isinstance(again, dg.SkipReason)
