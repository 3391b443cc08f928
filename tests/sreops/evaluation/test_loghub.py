"""Loghub scoring: GA, FGA and PA on hand-made cases, and the command on a tiny Loghub-shaped folder."""

import argparse
from pathlib import Path

import pandas as pd
import pytest

from sreops.cli import evaluate
from sreops.evaluation import log_scores, loghub


def test_grouping_accuracy_counts_only_exactly_recovered_groups() -> None:
    truth = ["A", "A", "B", "B", "C"]
    assert log_scores.grouping_accuracy([1, 1, 2, 2, 3], truth) == 1.0
    # B split in two: its 2 lines are wrong; A and C are right.
    assert log_scores.grouping_accuracy([1, 1, 2, 4, 3], truth) == pytest.approx(3 / 5)
    # A and C merged: both groups wrong.
    assert log_scores.grouping_accuracy([1, 1, 2, 2, 1], truth) == pytest.approx(2 / 5)


def test_f1_grouping_accuracy_weighs_groups_not_lines() -> None:
    truth = ["A"] * 8 + ["B", "C"]
    predicted = [1] * 8 + [2, 2]  # A exact; B and C merged
    # precision 1/2 (1 of 2 predicted groups exact), recall 1/3 (1 of 3 true groups found)
    assert log_scores.f1_grouping_accuracy(predicted, truth) == pytest.approx(
        2 * 0.5 * (1 / 3) / (0.5 + 1 / 3)
    )
    assert log_scores.grouping_accuracy(predicted, truth) == pytest.approx(0.8)


def test_parsing_accuracy_compares_normalised_templates() -> None:
    truth = ["Connect to <*>:<*>", "User <*> logged  in", "Disk full"]
    predicted = ["Connect to <*>", "User <*> logged in", "Disk <*>"]
    assert log_scores.parsing_accuracy(predicted, truth) == pytest.approx(2 / 3)


def test_metrics_refuse_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 predictions for 3"):
        log_scores.grouping_accuracy([1, 2], ["a", "b", "c"])


@pytest.fixture
def loghub_dir(tmp_path: Path) -> Path:
    """Two tiny systems in the Loghub 2k layout."""
    rows = {
        "Tiny": [
            ("Invalid user admin from 10.0.0.1", "Invalid user <*> from <*>"),
            ("Connection closed by 10.0.0.2", "Connection closed by <*>"),
            ("Invalid user admin from 10.0.0.3", "Invalid user <*> from <*>"),
            ("Connection closed by 10.0.0.4", "Connection closed by <*>"),
        ],
        "Small": [("Started job 1", "Started job <*>"), ("Stopped job 2", "Stopped job <*>")],
    }
    for system, pairs in rows.items():
        folder = tmp_path / system
        folder.mkdir()
        pd.DataFrame(
            {
                "LineId": range(1, len(pairs) + 1),
                "Content": [p[0] for p in pairs],
                "EventTemplate": [p[1] for p in pairs],
            }
        ).to_csv(folder / f"{system}_2k.log_structured_corrected.csv", index=False)
    return tmp_path


def test_eval_command_prints_scores_and_writes_cluster_files(
    loghub_dir: Path, tmp_path: Path, capsys
) -> None:
    parser = argparse.ArgumentParser()
    evaluate.add_loghub_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(["--data", str(loghub_dir), "--out", str(out), "--drain3"])
    assert evaluate.run_loghub(args) == 0
    printed = capsys.readouterr().out
    assert "MEAN" in printed and "drain3" in printed and "GA" in printed
    written = pd.read_csv(out / "Tiny.csv")
    assert list(written.columns) == ["LineId", "cluster_id", "template"]
    assert written["template"].tolist()[:2] == ["Invalid user admin from <*>", "Connection closed by <*>"]
    assert written["cluster_id"].nunique() == 2


def test_eval_command_reports_a_missing_folder(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    evaluate.add_loghub_arguments(parser)
    assert evaluate.run_loghub(parser.parse_args(["--data", str(tmp_path / "nope")])) == 2
    assert "does not exist" in capsys.readouterr().err


def test_results_score_each_system(loghub_dir: Path) -> None:
    results = loghub.evaluate_all(loghub_dir, progress=False)
    assert {r.system: r.ga for r in results} == {"Small": 1.0, "Tiny": 1.0}
    assert all(r.lines_per_second > 0 for r in results)
