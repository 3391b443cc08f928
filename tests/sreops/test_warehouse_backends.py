"""The two warehouse backends: one data contract, one setting, and DuckLake's optimistic commits retried."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from sreops import marks, paths, warehouse
from sreops.integrity import WarehouseUnusableError

HOUR = dt.datetime(2026, 11, 20, 10)
ASSET = "metric_features_1m"
COLUMNS = (
    "SELECT c.table_name, t.table_type, c.column_name, c.ordinal_position, c.data_type, c.is_nullable"
    " FROM information_schema.columns AS c JOIN information_schema.tables AS t"
    " ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema AND t.table_name = c.table_name"
    " WHERE c.table_catalog = current_database() AND c.table_schema = 'main' ORDER BY 1, 4"
)


def contract(location: str | Path) -> list[tuple]:
    with warehouse.connect(location) as con:
        return con.execute(COLUMNS).fetchall()


def test_both_backends_hold_the_same_tables_and_columns(sreops_home: Path, lake: str) -> None:
    on_file = contract(sreops_home / "contract.duckdb")
    on_lake = contract(lake)
    assert on_lake == on_file
    tables = {row[0] for row in on_lake}
    assert {"metric_samples", "metric_features_1m", "anomalies", "alerts", "ingested_files"} <= tables
    assert ("events", "BASE TABLE", "event_id", 1, "BIGINT", "NO") in on_lake  # NOT NULL kept, key dropped


def test_one_setting_switches_the_backend(sreops_home: Path, lake: str) -> None:
    assert paths.warehouse_location() == lake
    with warehouse.connect() as con:
        assert warehouse.is_lake(con)
    # Code handed the default file path (as the Dagster resource does) uses the configured lake.
    with warehouse.connect(paths.warehouse_path()) as con:
        assert warehouse.is_lake(con)
    other = sreops_home / "other.duckdb"
    with warehouse.connect(other) as con:  # any other file stays that file
        assert not warehouse.is_lake(con)
    assert warehouse.verify().tables >= 20


def test_a_file_path_in_the_setting_is_that_file(sreops_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = sreops_home / "elsewhere" / "w.duckdb"
    monkeypatch.setenv("SREOPS_WAREHOUSE", str(target))
    warehouse.migrate()
    assert target.exists() and paths.warehouse_location() == str(target)
    assert not (sreops_home / "warehouse.duckdb").exists()


def test_an_unreachable_catalog_says_what_to_check_and_hides_the_password(sreops_home: Path) -> None:
    location = "ducklake:postgres:host=127.0.0.1 port=1 dbname=nowhere user=sreops password=hunter2"
    with pytest.raises(WarehouseUnusableError) as err, warehouse.connect(location):
        pass
    message = str(err.value)
    assert "PostgreSQL server runs" in message and "port=1" in message
    assert "hunter2" not in message


def test_a_catalog_other_than_postgresql_is_refused(sreops_home: Path) -> None:
    with pytest.raises(WarehouseUnusableError, match="only a PostgreSQL catalog"):
        warehouse.location("ducklake:metadata.ducklake")


def _builds(location: str) -> list[tuple]:
    with warehouse.connect(location) as con:
        return con.execute("SELECT asset, hour, rows, samples FROM partition_builds").fetchall()


def test_a_conflicting_commit_is_retried_as_a_whole_until_it_commits(lake: str) -> None:
    warehouse.migrate(lake)
    with warehouse.transaction(lake) as con:
        marks.record_build(con, ASSET, HOUR, 1, 1)
    attempts: list[int] = []

    def work(con: duckdb.DuckDBPyConnection) -> int:
        attempts.append(1)
        seen = con.execute("SELECT rows FROM partition_builds WHERE asset = ? AND hour = ?", [ASSET, HOUR])
        rows = seen.fetchone()[0]
        marks.record_build(con, ASSET, HOUR, rows + 10, 0)
        if len(attempts) == 1:  # another writer replaces the same build meanwhile, and commits first
            with warehouse.transaction(lake) as other:
                marks.record_build(other, ASSET, HOUR, 100, 0)
        return rows

    assert warehouse.transact(work, lake) == 100  # the second run read the other writer's row
    assert len(attempts) == 2
    assert _builds(lake) == [(ASSET, HOUR, 110, 0)]  # one build, no lost update


def test_a_conflict_is_a_clear_error_and_retries_are_bounded(lake: str) -> None:
    warehouse.migrate(lake)
    with warehouse.transaction(lake) as con:
        marks.record_build(con, ASSET, HOUR, 1, 1)

    def always_raced(con: duckdb.DuckDBPyConnection) -> None:
        marks.record_build(con, ASSET, HOUR, 2, 0)
        with warehouse.transaction(lake) as other:
            marks.record_build(other, ASSET, HOUR, 3, 0)

    with (
        pytest.raises(warehouse.WarehouseConflictError, match="conflicted with another writer") as err,
        warehouse.transaction(lake) as con,
    ):
        always_raced(con)
    assert "run it again" in str(err.value)
    with pytest.raises(warehouse.WarehouseConflictError, match="gave up after 3 attempts"):
        warehouse.transact(always_raced, lake, attempts=3)
    assert _builds(lake) == [(ASSET, HOUR, 3, 0)]  # each attempt rolled back whole


def test_the_catalog_keeps_the_data_path_and_refuses_another(
    lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("SREOPS_WAREHOUSE_DATA", f"{shared}/")
    warehouse.migrate(lake)
    monkeypatch.delenv("SREOPS_WAREHOUSE_DATA")  # another host that only knows the catalog
    with warehouse.transaction(lake) as con:
        con.execute(
            "INSERT INTO metric_samples_core SELECT now()::TIMESTAMP, 'a', 'm', i, 1 FROM range(50) t(i)"
        )
    assert list(shared.rglob("*.parquet"))  # its files went where the lake was created
    assert warehouse.table_count("metric_samples_core", lake) == 50

    monkeypatch.setenv("SREOPS_WAREHOUSE_DATA", f"{tmp_path / 'elsewhere'}/")
    with pytest.raises(WarehouseUnusableError, match="must be the lake's data path"), warehouse.connect(lake):
        pass
