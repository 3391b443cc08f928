"""`sreops …`: every command's parser builds from its own module, and the bench runner takes options."""

from __future__ import annotations

from pathlib import Path

import pytest

from sreops import paths
from sreops.cli import COMMANDS, main
from sreops.devtools.bench.runner import UnknownStageError, format_table, run_benchmarks


@pytest.mark.parametrize("group, name", sorted(COMMANDS, key=lambda key: (key[0] or "", key[1])))
def test_every_command_prints_its_help(group: str | None, name: str, capsys: pytest.CaptureFixture) -> None:
    argv = [word for word in (group, name) if word]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert f"sreops {' '.join(argv)}" in capsys.readouterr().out


def test_bench_runs_the_named_stage_with_its_options() -> None:
    rows, failed = run_benchmarks(["features"], {"features": {"series": 12}})
    assert not failed and rows[0]["stage"] == "features" and "12 series" in rows[0]["name"]
    assert "features" in format_table(rows)


def test_bench_refuses_an_unknown_stage(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UnknownStageError, match="known: ingest"):
        run_benchmarks(["nope"])
    assert main(["bench", "nope"]) == 2
    assert "unknown stage(s): nope" in capsys.readouterr().err


def test_shared_data_folders_follow_their_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SREOPS_LOGHUB_DIR", str(tmp_path))
    monkeypatch.delenv("SREOPS_DEMAND_DIR", raising=False)
    assert paths.shared_data_dir("loghub") == tmp_path
    assert paths.shared_data_dir("demand").parts[-3:] == ("shared", "data", "demand")
