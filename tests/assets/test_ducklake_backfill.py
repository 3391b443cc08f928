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
