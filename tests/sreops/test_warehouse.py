"""The warehouse: migrations from older schemas, transactions, and patience with a held lock.

What both backends share runs on each (`backend`, `any_warehouse`: the DuckDB file, then a DuckLake);
lock patience is the file's alone (a lake has no lock).
"""

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from sreops import ducklake, warehouse
from sreops.migrations import MIGRATIONS, runner

IN_ORDER = sorted(MIGRATIONS, key=lambda m: m.version)


def raw_connection(location: str) -> duckdb.DuckDBPyConnection:
    """A connection that neither checks nor migrates: to build a warehouse as an older sreops left it."""
    target = warehouse.location(location)
    if isinstance(target, warehouse.Lake):
        return ducklake.open_cursor(target, lambda con: None)
    return duckdb.connect(str(target))


def test_empty_warehouse_migrates_to_latest(backend: str) -> None:
    applied = warehouse.migrate()
    assert applied == sorted(m.version for m in MIGRATIONS)
    assert warehouse.migrate() == []  # idempotent
    assert warehouse.migrate(backend) == []  # the setting and the explicit location are one warehouse


def test_warehouse_from_an_older_version_upgrades_in_place_and_keeps_rows(backend: str) -> None:
    path = backend
    con = raw_connection(path)
    runner.migrate_connection(con, tuple(IN_ORDER[:1]))  # what version 1 of sreops created
    con.execute(
        "INSERT INTO metric_samples VALUES (TIMESTAMP '2026-11-20 10:00:00', 'api', 'cpu', 0.5, 'old', 1)"
    )
    con.execute(
        "INSERT INTO ingested_files VALUES (1, 'a.csv', 'abc', 10, 1, 'ingested', NULL, now()::TIMESTAMP)"
    )
    con.close()
    warehouse._migrated.clear()

    assert warehouse.migrate(path) == [m.version for m in IN_ORDER[1:]]
    with warehouse.connect(path) as con:
        assert warehouse.schema_version(con) == max(m.version for m in MIGRATIONS)
        row = con.execute("SELECT service, metric, value, source, labels FROM metric_samples").fetchone()
        assert row == ("api", "cpu", 0.5, "old", None)  # the rows and their source survive the migrations
        assert con.execute("SELECT min_ts FROM ingested_files").fetchone() == (None,)
        assert con.execute("SELECT count(*) FROM partition_marks").fetchone() == (0,)


def test_failed_migration_leaves_the_previous_version(backend: str) -> None:
    from sreops.migrations.base import Migration

    con = raw_connection(backend)
    broken = Migration(
        100_000, "broken", ("CREATE TABLE half_done (x INTEGER)", "SELECT * FROM no_such_table")
    )
    with pytest.raises(runner.MigrationError, match="migration 100000"):
        runner.migrate_connection(con, (*MIGRATIONS, broken))
    assert warehouse.schema_version(con) == max(m.version for m in MIGRATIONS)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "half_done" not in tables
    con.close()


def test_transaction_rolls_back_every_statement_on_error(any_warehouse: str) -> None:
    with pytest.raises(RuntimeError), warehouse.transaction(any_warehouse) as con:
        con.execute("INSERT INTO metric_samples_core VALUES (now()::TIMESTAMP, 'a', 'm', 1, 1)")
        raise RuntimeError("boom")
    assert warehouse.table_count("metric_samples_core", any_warehouse) == 0


def test_ids_are_unique_and_increasing_on_both_backends(any_warehouse: str) -> None:
    with warehouse.transaction(any_warehouse) as con:
        first = warehouse.next_ids(con, "partition_marks_seq", 3)
        second = warehouse.next_ids(con, "partition_marks_seq")
        assert warehouse.next_ids(con, "partition_marks_seq", 0) == []
        with pytest.raises(ValueError, match="not a warehouse sequence"):
            warehouse.next_ids(con, "x'); DROP TABLE alerts; --")
    assert len(set(first)) == 3 and first == sorted(first) and second[0] > first[-1]


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
con.close()
print("released", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def lock_holder(warehouse_path: Path):
    """Another process that holds the warehouse until told to let go."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_locked_warehouse_fails_with_an_actionable_message_after_patience(
    warehouse_path, lock_holder
) -> None:
    with (
        pytest.raises(warehouse.WarehouseLockedError, match="SREOPS_LOCK_PATIENCE_S"),
        warehouse.connect(warehouse_path, patience_s=0.3),
    ):
        pass


def test_connect_waits_for_another_process_to_release_the_lock(warehouse_path, lock_holder) -> None:
    outcome: dict = {}

    def writer() -> None:
        with warehouse.connect(warehouse_path, patience_s=60) as con:
            con.execute("INSERT INTO metric_samples_core VALUES (now()::TIMESTAMP, 'a', 'm', 1, 1)")
        outcome["done"] = True

    thread = threading.Thread(target=writer)
    thread.start()
    lock_holder.stdin.write("release\n")
    lock_holder.stdin.flush()
    assert lock_holder.stdout.readline().strip() == "released"
    thread.join(timeout=60)
    assert outcome.get("done")
    assert warehouse.table_count("metric_samples_core", warehouse_path) == 1


TOGGLER = """
import sys, time, duckdb
held = 0
for _ in range(2000):
    try:
        con = duckdb.connect(sys.argv[1])
    except duckdb.Error:
        time.sleep(0.005)
        continue
    time.sleep(0.03)
    con.close()
    held += 1
    if held == 30:
        break
"""


def test_threads_of_one_process_open_the_warehouse_while_another_process_holds_it(
    warehouse_path: Path,
) -> None:
    # Dagster evaluates sensors in threads of one process, while runs in other processes write.
    toggler = subprocess.Popen([sys.executable, "-c", TOGGLER, str(warehouse_path)])
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(2000):  # bounded; in practice until the other process is done
                if toggler.poll() is not None:
                    break
                with warehouse.connect(warehouse_path, patience_s=60) as con:
                    con.execute("SELECT count(*) FROM metric_samples").fetchall()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    toggler.wait(timeout=60)
    assert errors == []
