"""The landing sensor: run requests for new files, and for exactly the hours they touched."""

import datetime as dt
import json
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.partitions import hour_key
from assets.resources import WarehouseResource
from sensors.landing import landing_metrics_sensor, landing_run_requests
from sreops import paths
from sreops.ingest import run as ingest_run

NOW = 1_800_000_000.0


def drop(name: str, hours: list[dt.datetime], age_s: float = 60) -> Path:
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "timestamp": [h + dt.timedelta(minutes=5) for h in hours],
            "service": "api",
            "metric": "cpu",
            "value": range(len(hours)),
        }
    )
    path = folder / name
    frame.to_csv(path, index=False)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def tick(warehouse_path: Path, cursor: str | None, keys: set[str] | None = None, now: float = NOW):
    return landing_run_requests(cursor, now, paths.landing_metrics(), str(warehouse_path), keys)


def ingest_requested(request: dg.RunRequest, warehouse_path: Path) -> None:
    """Do what the requested ingestion run does."""
    names = request.run_config["ops"]["metric_samples"]["config"]["files"]
    ingest_run.ingest_files([Path(n) for n in names], warehouse_path)


def test_new_file_requests_one_ingestion_run_once(warehouse_path: Path) -> None:
    path = drop("a.csv", [dt.datetime(2026, 11, 20, 10)])
    requests, cursor, _ = tick(warehouse_path, None)
    assert [r.job_name for r in requests] == ["ingest_metrics"]
    assert requests[0].run_config["ops"]["metric_samples"]["config"]["files"] == [str(path)]
    again, _, _ = tick(warehouse_path, cursor)
    assert again == []


def test_file_still_being_written_waits(warehouse_path: Path) -> None:
    drop("young.csv", [dt.datetime(2026, 11, 20, 10)], age_s=0.1)
    drop("partial.csv.part", [dt.datetime(2026, 11, 20, 10)])
    requests, _, _ = tick(warehouse_path, None)
    assert requests == []


def test_ingested_hours_become_feature_runs_for_exactly_those_hours(warehouse_path: Path) -> None:
    hours = [dt.datetime(2026, 11, 20, h) for h in (3, 4, 5, 9)]
    drop("a.csv", hours)
    requests, cursor, _ = tick(warehouse_path, None)
    ingest_requested(requests[0], warehouse_path)

    requests, cursor, _ = tick(warehouse_path, cursor)
    feature_runs = [r for r in requests if r.job_name == "build_features"]
    ranges = sorted(
        (
            r.tags.get("dagster/asset_partition_range_start", r.partition_key),
            r.tags.get("dagster/asset_partition_range_end", r.partition_key),
        )
        for r in feature_runs
    )
    assert ranges == [("2026-11-20-03:00", "2026-11-20-05:00"), ("2026-11-20-09:00", "2026-11-20-09:00")]
    assert tick(warehouse_path, cursor)[0] == []  # nothing twice


def test_late_file_requests_only_the_past_hour_it_touched(warehouse_path: Path) -> None:
    drop("a.csv", [dt.datetime(2026, 11, 20, h) for h in range(10, 14)])
    requests, cursor, _ = tick(warehouse_path, None)
    ingest_requested(requests[0], warehouse_path)
    _, cursor, _ = tick(warehouse_path, cursor)

    drop("late.csv", [dt.datetime(2026, 11, 19, 22)])
    requests, cursor, _ = tick(warehouse_path, cursor)
    ingest_requested(requests[0], warehouse_path)
    requests, _, _ = tick(warehouse_path, cursor)
    assert [(r.job_name, r.partition_key) for r in requests] == [("build_features", "2026-11-19-22:00")]


def test_hours_outside_the_partitions_are_not_requested(warehouse_path: Path) -> None:
    drop("old.csv", [dt.datetime(2020, 1, 1, 0), dt.datetime(2026, 11, 20, 10)])
    requests, cursor, _ = tick(warehouse_path, None)
    ingest_requested(requests[0], warehouse_path)
    requests, _, note = tick(warehouse_path, cursor, keys={"2026-11-20-10:00"})
    assert [r.partition_key for r in requests] == ["2026-11-20-10:00"]
    assert "outside the hourly partitions" in note


def test_a_file_left_behind_by_a_failed_run_is_requested_again_later(warehouse_path: Path) -> None:
    drop("stuck.csv", [dt.datetime(2026, 11, 20, 10)])
    requests, cursor, _ = tick(warehouse_path, None)
    assert len(requests) == 1
    assert tick(warehouse_path, cursor, now=NOW + 60)[0] == []
    retried, _, _ = tick(warehouse_path, cursor, now=NOW + 3600)
    assert len(retried) == 1 and retried[0].run_key != requests[0].run_key


def test_sensor_definition_evaluates_with_its_resources(warehouse_path: Path) -> None:
    hour = dt.datetime.now(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - dt.timedelta(
        hours=2
    )
    path = drop("recent.csv", [hour])
    os.utime(path, (time.time() - 10, time.time() - 10))
    context = dg.build_sensor_context(
        resources={"warehouse": WarehouseResource(location=str(warehouse_path))}
    )
    result = landing_metrics_sensor(context)
    assert [r.job_name for r in result] == ["ingest_metrics"]
    ingest_run.ingest_files([path], warehouse_path)
    context = dg.build_sensor_context(
        cursor=context.cursor, resources={"warehouse": WarehouseResource(location=str(warehouse_path))}
    )
    result = landing_metrics_sensor(context)
    assert [(r.job_name, r.partition_key) for r in result] == [("build_features", hour_key(hour))]
    assert json.loads(context.cursor)["mark"] >= 1
