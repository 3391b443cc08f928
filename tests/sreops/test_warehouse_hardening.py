"""A damaged or foreign warehouse file fails with an error that names it, says what is wrong and what to do.

Empty, truncated, random, text, foreign-DuckDB and newer-schema files each raise a specific
`WarehouseUnusableError` from every way in (connect, transaction, migrate, verify), the CLI prints
it without a traceback and exits 2, and nothing is written into such a file. A lock held by
another process stays a lock error, never damage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from sreops import cli, config, integrity, warehouse
from sreops.migrations import MIGRATIONS

LATEST = max(m.version for m in MIGRATIONS)


def real_warehouse(path: Path, rows: int = 200_000) -> Path:
    """A migrated warehouse with enough rows to span several storage blocks, checkpointed."""
    warehouse.migrate(path)
    with warehouse.connect(path) as con:
        con.execute(
            "INSERT INTO metric_samples_core SELECT TIMESTAMP '2026-11-20 10:00:00' + INTERVAL (i) SECOND,"
            " 'svc' || (i % 50), 'cpu', i, 1 FROM range(?) t(i)",
            [rows],
        )
        con.execute("CHECKPOINT")
    return path


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_half(path: Path) -> None:
    data = real_warehouse(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _header_only(path: Path) -> None:
    data = real_warehouse(path).read_bytes()
    path.write_bytes(data[:4096])


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(300_000))


def _text_file(path: Path) -> None:
    path.write_text("timestamp,service,metric,value\n2026-11-20T10:00:00Z,api,cpu,0.5\n" * 500)


def _foreign_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales (region VARCHAR, amount DOUBLE)")
    con.close()


def _newer_schema(path: Path) -> None:
    real_warehouse(path, rows=10)
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO schema_migrations VALUES (?, 'from the future', now()::TIMESTAMP)", [LATEST + 1000]
    )
    con.close()


# case -> (how to make it, error type, what the message says is wrong, what it says to do)
DAMAGED: dict[str, tuple[Callable[[Path], None], type[Exception], str, str]] = {
    "empty": (_empty, integrity.WarehouseDamagedError, "is empty (0 bytes)", "backup"),
    "truncated-half": (_truncated_half, integrity.WarehouseDamagedError, "is truncated", "move it aside"),
    "truncated-header": (_header_only, integrity.WarehouseDamagedError, "is truncated", "move it aside"),
    "random-bytes": (_random_bytes, integrity.WarehouseDamagedError, "is not a DuckDB database", "backup"),
    "text-file": (
        _text_file,
        integrity.WarehouseDamagedError,
        "is not a DuckDB database: it holds text",
        "SREOPS_HOME",
    ),
    "foreign-duckdb": (
        _foreign_duckdb,
        integrity.WarehouseDamagedError,
        "sreops did not create",
        "SREOPS_HOME",
    ),
    "newer-schema": (
        _newer_schema,
        integrity.WarehouseTooNewError,
        f"schema version {LATEST + 1000}, newer",
        "Upgrade sreops",
    ),
}


@pytest.fixture(params=sorted(DAMAGED))
def damaged(request: pytest.FixtureRequest, sreops_home: Path) -> tuple[Path, type[Exception], str, str]:
    """The data directory's warehouse file, damaged in one way (and not yet opened by this process)."""
    make, error, what, todo = DAMAGED[request.param]
    path = sreops_home / "warehouse.duckdb"
    make(path)
    warehouse._migrated.discard(path)  # this process has not opened it yet
    return path, error, what, todo


def assert_says_what_and_what_to_do(exc: BaseException, path: Path, what: str, todo: str) -> None:
    message = str(exc)
    assert str(path) in message
    assert what in message
    assert todo in message


@pytest.mark.parametrize(
    "way_in",
    [
        lambda p: warehouse.connect(p).__enter__(),
        lambda p: warehouse.transaction(p).__enter__(),
        warehouse.migrate,
        warehouse.verify,
    ],
    ids=["connect", "transaction", "migrate", "verify"],
)
def test_every_way_in_names_the_damage_and_what_to_do(damaged, way_in) -> None:
    path, error, what, todo = damaged
    with pytest.raises(error) as err:
        way_in(path)
    assert isinstance(err.value, integrity.WarehouseUnusableError)
    assert_says_what_and_what_to_do(err.value, path, what, todo)


def test_table_count_names_the_damage(damaged) -> None:
    path, error, what, todo = damaged
    with pytest.raises(error) as err:
        warehouse.table_count("metric_samples_core", path)
    assert_says_what_and_what_to_do(err.value, path, what, todo)


def test_reading_a_truncated_file_after_it_opened_names_the_damage(sreops_home: Path) -> None:
    # A process that opened the file before it was cut: the reads that reach missing blocks fail.
    path = sreops_home / "warehouse.duckdb"
    _truncated_half(path)
    warehouse._migrated.add(path)
    with (
        pytest.raises(integrity.WarehouseDamagedError, match="is truncated") as err,
        warehouse.connect(path) as con,
    ):
        con.execute("SELECT sum(value) FROM metric_samples_core").fetchall()
    assert "move it aside" in str(err.value)


def test_nothing_is_written_into_a_foreign_or_newer_warehouse(sreops_home: Path) -> None:
    foreign = sreops_home / "foreign.duckdb"
    _foreign_duckdb(foreign)
    with pytest.raises(integrity.WarehouseDamagedError):
        warehouse.migrate(foreign)
    con = duckdb.connect(str(foreign))
    assert [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()] == [
        "sales"
    ]
    con.close()

    newer = sreops_home / "newer.duckdb"
    _newer_schema(newer)
    with pytest.raises(integrity.WarehouseTooNewError):
        warehouse.migrate(newer)
    con = duckdb.connect(str(newer))
    assert con.execute("SELECT max(version), count(*) FROM schema_migrations").fetchone() == (
        LATEST + 1000,
        len(MIGRATIONS) + 1,
    )
    con.close()


def test_a_whole_warehouse_verifies(sreops_home: Path) -> None:
    path = real_warehouse(sreops_home / "warehouse.duckdb", rows=1000)
    found = warehouse.verify(path)
    assert found.schema_version == LATEST and found.latest_known == LATEST
    assert found.tables >= 20 and found.size_bytes == path.stat().st_size


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_held_lock_is_a_lock_error_not_damage(warehouse_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        warehouse._migrated.discard(warehouse_path)
        for way_in in (
            lambda: warehouse.connect(warehouse_path, patience_s=0.3).__enter__(),
            lambda: warehouse.verify(warehouse_path, patience_s=0.3),
        ):
            with pytest.raises(warehouse.WarehouseLockedError) as err:
                way_in()
            assert not isinstance(err.value, integrity.WarehouseUnusableError)
    finally:
        proc.kill()
        proc.wait()


def test_cli_prints_the_damage_without_a_traceback_and_exits_2(
    damaged, capsys: pytest.CaptureFixture
) -> None:
    path, _, what, todo = damaged
    assert cli.main(["alerts", "list"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("sreops: error: warehouse ")
    assert what in err and todo in err and "Traceback" not in err


def test_cli_prints_a_config_error_and_exits_2(
    sreops_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("partitions:\n  start: 2026-13-45\n")
    monkeypatch.setenv("SREOPS_CONFIG", str(bad))
    config.current.cache_clear()
    assert cli.main(["alerts", "test"]) == cli.EXIT_USER_ERROR  # reads the config before anything
    err = capsys.readouterr().err
    assert "partitions.start" in err and "Traceback" not in err
