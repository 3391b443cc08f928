"""Two backfills in two processes against one DuckLake at once: no lock waits, exactly one writer's results."""

from __future__ import annotations

from pathlib import Path

import pytest

from sreops.devtools.bench import warehouse as bench

HOURS = 8
SERIES = 10


def _overlap(windows: list[list[float]]) -> bool:
    return max(start for start, _ in windows) < min(end for _, end in windows)


@pytest.mark.slow
def test_two_processes_backfill_one_lake_at_once_with_the_single_writer_result(
    lake: str, sreops_home: Path, tmp_path: Path
) -> None:
    files = bench.write_hour_files(tmp_path / "hours", HOURS, SERIES)
    # The reference: one process ingests every hour and builds every hour, on the DuckDB file.
    alone_env = {"SREOPS_HOME": str(tmp_path / "alone"), "SREOPS_WAREHOUSE": ""}
    alone = bench.run_writers(str(tmp_path / "alone" / "warehouse.duckdb"), [files], alone_env)
    # Two processes, each with every other hour, start on a fresh lake at the same moment: both
    # create its catalog and migrate it, ingest at once, then build their hours' features at once.
    two = bench.run_writers(lake, bench.split(files, 2))

    assert two.samples == alone.samples == HOURS * SERIES * 360
    assert [len(report["window"]) for report in two.built] == [2, 2]
    assert _overlap([r["window"] for r in two.ingested]) and _overlap([r["window"] for r in two.built])
    assert two.lock_waits == 0  # a lake has no lock to wait for

    on_lake = bench.digest_in(lake, {})
    assert on_lake == bench.digest_in(str(tmp_path / "alone" / "warehouse.duckdb"), alone_env)
    assert on_lake["metric_features_1m"][0] == HOURS * SERIES * 60
    assert on_lake["partition_builds"][0] == on_lake["ingested_files"][0] == HOURS

    from sreops import warehouse

    with warehouse.connect(lake) as con:  # ids drawn by both processes are unique
        files_ids = con.execute("SELECT count(*), count(DISTINCT file_id) FROM ingested_files").fetchone()
        marks_ids = con.execute("SELECT count(*), count(DISTINCT mark_id) FROM partition_marks").fetchone()
    assert files_ids == (HOURS, HOURS) and marks_ids == (HOURS, HOURS)


@pytest.mark.slow
def test_two_dagster_backfills_in_two_processes_write_one_lake_at_once(
    lake: str, sreops_home: Path, tmp_path: Path
) -> None:
    """`build_features` ranged runs of Dagster jobs, from two processes at once, the pool opened for the lake."""
    import datetime as dt
    import os
    import subprocess
    import sys

    import dagster as dg
    import yaml

    from assets.partitions import hour_key
    from sreops import features, warehouse
    from sreops.ingest import run as ingest_run

    root = Path(__file__).resolve().parents[2]
    files = bench.write_hour_files(tmp_path / "hours", HOURS, SERIES)
    for path in files:
        assert ingest_run.ingest_file(path, lake, move=False).status == "ingested"
    with warehouse.connect(lake) as con:
        first = con.execute("SELECT min(date_trunc('hour', ts)) FROM metric_samples_core").fetchone()[0]
    hours = [first + dt.timedelta(hours=h) for h in range(HOURS)]
    keys = [hour_key(h) for h in hours]

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    instance = yaml.safe_load((root / "dagster.yaml").read_text())
    instance["concurrency"]["pools"]["default_limit"] = 2  # docs/warehouse.md: a lake takes writers at once
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(root)}
    worker = str(Path(__file__).with_name("backfill_worker.py"))
    # one run first creates the instance's SQLite storage (as `dagster dev` does at start-up)
    subprocess.run(
        [sys.executable, worker, str(root), f"{keys[0]}...{keys[0]}"], env=env, check=True, timeout=600
    )
    ranges = [f"{keys[i]}...{keys[i + 1]}" for i in range(1, HOURS - 1, 2)] + [f"{keys[-1]}...{keys[-1]}"]
    workers = [
        subprocess.Popen([sys.executable, worker, str(root), *ranges[i::2]], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for i in range(2)
    ]  # fmt: skip
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), "\n".join(outputs)

    with dg.DagsterInstance.from_config(str(dagster_home)) as dagster_instance:
        runs = dagster_instance.get_runs()
    assert len(runs) == len(ranges) + 1 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    with warehouse.connect(lake) as con:
        per_hour = con.execute(
            "SELECT date_trunc('hour', minute) h, count(*), sum(n) FROM metric_features_1m GROUP BY h ORDER BY h"
        ).fetchall()
    assert [row[0] for row in per_hour] == hours
    assert all(row[1] == SERIES * 60 and row[2] == SERIES * 360 for row in per_hour)
    assert features.duplicate_keys(lake, hours[0], hours[-1] + dt.timedelta(hours=1)) == 0
