"""Parquet files are checked from the file itself before any row is written (issue 14): the same
outcome as for the other formats, row for row, hour for hour."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from sreops import paths, warehouse
from sreops.ingest import run as ingest_run


def landing(name: str) -> Path:
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def frame(stamps: list[str], **extra: list) -> pd.DataFrame:
    data = {
        "timestamp": pd.to_datetime(stamps),
        "service": ["api"] * len(stamps),
        "metric": ["cpu"] * len(stamps),
        "value": [float(i) for i in range(len(stamps))],
    }
    return pd.DataFrame(data | extra)


def marked_hours(warehouse_path: Path) -> list[dt.datetime]:
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT DISTINCT hour FROM partition_marks WHERE asset = ? ORDER BY hour",
            [ingest_run.FEATURES_ASSET],
        ).fetchall()
    return [hour for (hour,) in rows]


@pytest.mark.parametrize("labels", [False, True])
def test_a_parquet_file_lands_with_exactly_the_hours_it_holds(warehouse_path: Path, labels: bool) -> None:
    stamps = ["2026-11-20 09:59:59", "2026-11-20 10:00:00", "2026-11-20 13:30:00", "2026-11-20 13:59:00"]
    extra = {"host": ["h1", "h2", "h3", "h4"]} if labels else {}
    path = landing("spread.parquet")
    frame(stamps, **extra).to_parquet(path, index=False)

    result = ingest_run.ingest_file(path, warehouse_path)

    assert result.status == "ingested", result.error
    assert result.rows == 4
    expected = [dt.datetime(2026, 11, 20, h) for h in (9, 10, 13)]  # no row at 11:00 or 12:00
    assert result.hours == expected
    assert marked_hours(warehouse_path) == expected
    assert warehouse.table_count("metric_sample_values", warehouse_path) == 4


def test_a_parquet_file_before_1970_is_refused_and_one_at_the_window_edge_lands(warehouse_path: Path) -> None:
    early = landing("early.parquet")
    frame(["1969-12-31 23:00:00", "2026-11-20 10:00:00"]).to_parquet(early, index=False)
    edge = landing("edge.parquet")
    frame(["1970-01-01 00:00:00", "2026-11-20 10:00:00"]).to_parquet(edge, index=False)

    refused, landed = ingest_run.ingest_files([early, edge], warehouse_path)

    assert refused.status == "quarantined"
    assert "outside the plausible window 1970-01-01 to 2100-01-01" in refused.error, refused.error
    assert landed.status == "ingested", landed.error
    assert landed.hours == [dt.datetime(1970, 1, 1), dt.datetime(2026, 11, 20, 10)]
    assert warehouse.table_count("metric_sample_values", warehouse_path) == 2


def test_a_refused_parquet_file_leaves_no_row_and_its_neighbours_land(warehouse_path: Path) -> None:
    late = landing("late.parquet")
    frame(["2026-11-20 10:00:00", "2150-01-01 00:00:00"]).to_parquet(late, index=False)
    empty_name = landing("empty-name.parquet")
    frame(["2026-11-20 10:00:00"], service=[""]).to_parquet(empty_name, index=False)
    good = landing("good.parquet")
    frame(["2026-11-20 11:00:00", "2026-11-20 11:01:00"]).to_parquet(good, index=False)

    results = ingest_run.ingest_files([late, empty_name, good], warehouse_path)

    assert [r.status for r in results] == ["quarantined", "quarantined", "ingested"]
    assert "late.parquet, row 2" in results[0].error and "plausible window" in results[0].error
    assert "empty-name.parquet, row 1, column service" in results[1].error, results[1].error
    assert warehouse.table_count("metric_sample_values", warehouse_path) == 2
    assert marked_hours(warehouse_path) == [dt.datetime(2026, 11, 20, 11)]


def test_a_parquet_file_replaced_between_the_check_and_the_insert_is_marked_by_what_was_inserted(
    warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sreops.ingest import store

    path = landing("moving.parquet")
    frame(["2026-11-20 10:00:00"]).to_parquet(path, index=False)
    replacement = path.with_name("replacement.tmp")
    frame(["2026-11-20 15:00:00", "2026-11-20 16:00:00"]).to_parquet(replacement, index=False)
    real_checked = store._checked

    def checked_then_replaced(*args, **kwargs):
        result = real_checked(*args, **kwargs)
        if replacement.exists():  # a writer that breaks the landing contract, right after the check
            replacement.replace(path)
        return result

    monkeypatch.setattr(store, "_checked", checked_then_replaced)
    result = ingest_run.ingest_file(path, warehouse_path, move=False)

    assert result.status == "ingested", result.error
    assert result.rows == 2
    assert result.hours == [dt.datetime(2026, 11, 20, 15), dt.datetime(2026, 11, 20, 16)]
    assert marked_hours(warehouse_path) == result.hours
