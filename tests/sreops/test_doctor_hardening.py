"""`sreops doctor` looks before it says ok: a bad log pattern or a damaged warehouse is a FAIL line.

The config check loads with every validation the platform applies (so an invalid or
catastrophically backtracking `log_pattern` fails it), and the warehouse check opens the file,
checks that it is whole, that its schema is not newer than the code and that every table reads,
before anything migrates it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import yaml

from sreops import config, warehouse
from sreops.cli import doctor
from sreops.migrations import MIGRATIONS

LATEST = max(m.version for m in MIGRATIONS)


def real_warehouse(path: Path, rows: int = 100_000) -> Path:
    """A migrated, checkpointed warehouse whose rows span several storage blocks."""
    warehouse.migrate(path)
    with warehouse.connect(path) as con:
        con.execute(
            "INSERT INTO metric_samples_core SELECT TIMESTAMP '2026-11-20 10:00:00', 'svc', 'cpu', i, 1"
            " FROM range(?) t(i)",
            [rows],
        )
        con.execute("CHECKPOINT")
    return path


def _truncated(path: Path) -> None:
    data = real_warehouse(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales (amount DOUBLE)")
    con.close()


def _newer(path: Path) -> None:
    real_warehouse(path, rows=10)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_migrations VALUES (?, 'future', now()::TIMESTAMP)", [LATEST + 7])
    con.close()


# case -> (how to make it, what the FAIL line says is wrong, what it says to do)
DAMAGED: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)", "backup"),
    "truncated-half": (_truncated, "is truncated", "move it aside"),
    "random-bytes": (lambda p: p.write_bytes(os.urandom(100_000)), "is not a DuckDB database", "backup"),
    "text-file": (lambda p: p.write_text("not a database\n" * 300), "it holds text", "SREOPS_HOME"),
    "foreign-duckdb": (_foreign, "sreops did not create", "SREOPS_HOME"),
    "newer-schema": (_newer, f"schema version {LATEST + 7}, newer than this sreops", "Upgrade sreops"),
}


def run_doctor(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    doctor.add_arguments(parser)
    code = doctor.run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


def line_of(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.split()[1:2] == [name])


def use_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: dict) -> None:
    path = tmp_path / "sreops.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("SREOPS_CONFIG", str(path))
    config.current.cache_clear()


@pytest.mark.parametrize(
    "pattern, fragment",
    [
        ("(?P<message>[a-", "not a valid regex"),
        (r"^(?P<ts>\S+) (.*)$", "needs a named group (?P<message>…)"),
        (r"^(?P<message>(a+)+)$", "backtracks catastrophically"),
        (r"^(?P<message>(a|aa)+)$", "backtracks catastrophically"),
    ],
)
def test_doctor_fails_on_a_log_pattern_the_reader_could_not_use(
    warehouse_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    pattern: str,
    fragment: str,
) -> None:
    use_config(tmp_path, monkeypatch, {"services": {"api": {"log_pattern": pattern}}})
    code, out = run_doctor(capsys)
    assert code == 1
    line = line_of(out, "config")
    assert line.startswith("FAIL") and "services.api.log_pattern" in line and fragment in line


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("partitions:\n  start: 2026-13-45\n", "partitions.start"),
        ("detection:\n  threshold: 80\n  threshold: 90\n", "appears twice"),
        ("alerting:\n  pacing_seconds: .inf\n", "alerting.pacing_seconds"),
    ],
)
def test_doctor_fails_on_a_config_that_would_break_later(
    warehouse_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    text: str,
    fragment: str,
) -> None:
    path = tmp_path / "sreops.yaml"
    path.write_text(text)
    monkeypatch.setenv("SREOPS_CONFIG", str(path))
    code, out = run_doctor(capsys)
    assert code == 1 and fragment in line_of(out, "config") and line_of(out, "config").startswith("FAIL")


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_doctor_fails_on_a_damaged_or_foreign_warehouse_and_says_what_to_do(
    sreops_home: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    make, what, todo = DAMAGED[case]
    path = sreops_home / "warehouse.duckdb"
    make(path)
    warehouse._migrated.discard(path)
    before = path.read_bytes()
    code, out = run_doctor(capsys, "--warehouse", str(path))
    assert code == 1
    line = line_of(out, "warehouse")
    assert line.startswith("FAIL") and str(path) in line and what in line and todo in line
    assert path.read_bytes() == before  # looked at, not repaired or migrated


def test_doctor_reports_a_whole_warehouse_with_what_it_read(
    sreops_home: Path, capsys: pytest.CaptureFixture
) -> None:
    path = real_warehouse(sreops_home / "warehouse.duckdb", rows=1000)
    code, out = run_doctor(capsys, "--warehouse", str(path))
    line = line_of(out, "warehouse")
    assert code == 0 and line.startswith("ok") and "tables read" in line


def test_doctor_checks_the_lake_it_is_given_not_the_local_file(
    lake: str, sreops_home: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--warehouse ducklake:…` names the lake even where SREOPS_WAREHOUSE is not set
    monkeypatch.delenv("SREOPS_WAREHOUSE")
    warehouse.migrate(lake)
    code, out = run_doctor(capsys, "--warehouse", f"{lake} password=hunter2")
    line = line_of(out, "warehouse")
    assert code == 0 and line.startswith("ok") and "ducklake:" in line and "tables read" in line
    assert "hunter2" not in out
    assert not (sreops_home / "warehouse.duckdb").exists()  # the local file was never created
