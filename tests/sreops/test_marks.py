"""Partition marks and builds: what `sreops.marks`, their one writer, records and reads back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sreops import marks, warehouse

HOUR = dt.datetime(2026, 11, 20, 10)


def test_marks_are_one_per_distinct_hour_and_read_back_oldest_first(warehouse_path: Path) -> None:
    moments = [HOUR + dt.timedelta(minutes=50), HOUR, HOUR + dt.timedelta(hours=1, seconds=5)]
    with warehouse.transaction(warehouse_path) as con:
        assert marks.mark_hours(con, "metric_features_1m", moments, "samples from a.csv", 7) == 2
        assert marks.mark_hours(con, "log_cluster_counts_1m", [HOUR], "log lines clustered") == 1
        assert marks.mark_hours(con, "metric_features_1m", [], "nothing") == 0
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT asset, hour, reason, file_id FROM partition_marks ORDER BY mark_id"
        ).fetchall()
        found = marks.marks_after(con, "metric_features_1m", 0)
        later = marks.marks_after(con, "metric_features_1m", found[0][0])
    assert rows == [
        ("metric_features_1m", HOUR, "samples from a.csv", 7),
        ("metric_features_1m", HOUR + dt.timedelta(hours=1), "samples from a.csv", 7),
        ("log_cluster_counts_1m", HOUR, "log lines clustered", None),
    ]
    assert [hour for _, hour in found] == [HOUR, HOUR + dt.timedelta(hours=1)]
    assert later == found[1:]


def test_a_rebuild_replaces_the_hours_build_record(warehouse_path: Path) -> None:
    with warehouse.transaction(warehouse_path) as con:
        marks.record_build(con, "metric_features_1m", HOUR, 10, 600)
        marks.record_build(con, "metric_features_1m", HOUR, 12, 720)
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute("SELECT asset, hour, rows, samples FROM partition_builds").fetchall()
    assert rows == [("metric_features_1m", HOUR, 12, 720)]


def test_marked_hours_group_into_contiguous_ranges_of_at_most_a_day() -> None:
    hours = [HOUR + dt.timedelta(hours=h) for h in (0, 1, 2, 5)] + [
        HOUR + dt.timedelta(hours=30 + h) for h in range(30)
    ]
    ranges = marks.group_hours(list(enumerate(hours, start=1)))
    assert [(r.first, r.hours) for r in ranges] == [
        (HOUR, 3),
        (HOUR + dt.timedelta(hours=5), 1),
        (HOUR + dt.timedelta(hours=30), 24),
        (HOUR + dt.timedelta(hours=54), 6),
    ]
    assert ranges[-1].newest_mark == len(hours)
