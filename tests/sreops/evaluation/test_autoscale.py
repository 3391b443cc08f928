"""`sreops eval autoscale`: the command a user runs on a demand trace, end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sreops.cli import evaluate


def write_trace(path: Path, days: int = 9, seed: int = 0) -> Path:
    """A 5-minute demand trace with a daily cycle and noise (timestamps without zone, as the protocol)."""
    index = pd.date_range("2026-03-02 21:42:53", periods=days * 288, freq="5min")
    hours = index.hour + index.minute / 60
    rng = np.random.default_rng(seed)
    values = np.round(
        100 * (1 + 0.8 * np.cos(2 * np.pi * (hours - 14) / 24)) * rng.lognormal(0, 0.15, len(index))
    )
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "value": values.astype(int)}).to_csv(
        path, index=False
    )
    return path


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate.add_autoscale_arguments(parser)
    return evaluate.run_autoscale(parser.parse_args(argv))


@pytest.mark.usefixtures("sreops_home")
def test_replay_writes_one_decision_per_hour_and_prints_every_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "demand.csv")
    out = tmp_path / "recs.csv"
    schedule = tmp_path / "hpa.yaml"
    report = tmp_path / "report.json"
    assert run([str(trace), "--out", str(out), "--hpa-yaml", str(schedule), "--json", str(report)]) == 0
    decisions = pd.read_csv(out)
    assert list(decisions.columns) == ["decision_time", "replicas"]
    # 9 days: 7 of warm-up, then decisions while t_k + 1 h <= the last record (t0 + 9 d - 5 min)
    assert len(decisions) == 47
    assert decisions["decision_time"].iloc[0] == "2026-03-09 21:42:53"
    assert decisions["decision_time"].iloc[1] == "2026-03-09 22:42:53"
    assert (decisions["replicas"] >= 1).all()
    printed = capsys.readouterr().out
    for policy in ("recommender", "oracle", "reactive", "static_peak", "reactive@spend"):
        assert policy in printed
    assert "violation rate" in printed and "cost ratio" in printed and "unserved share" in printed
    payload = json.loads(report.read_text())
    measures = payload["traces"]["demand"]
    assert measures["oracle"]["violation_rate"] == 0.0 and measures["oracle"]["cost_ratio"] == 1.0
    # the reactive rule retargeted to spend at least what the recommender spent
    assert measures["reactive@spend"]["replica_hours"] >= measures["recommender"]["replica_hours"]
    at_spend = payload["reactive_at_spend"]["demand"]
    assert at_spend["utilization"] > 0 and isinstance(at_spend["beaten"], bool)
    scaled, plain = yaml.safe_load_all(schedule.read_text())
    assert scaled["kind"] == "ScaledObject"
    assert sum(1 for _ in plain["schedule"]) <= len(decisions)


@pytest.mark.usefixtures("sreops_home")
def test_several_traces_write_a_folder_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = [write_trace(tmp_path / f"t{seed}.csv", days=8, seed=seed) for seed in (1, 2)]
    out = tmp_path / "out"
    assert run([str(t) for t in traces] + ["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["t1.csv", "t2.csv"]
    printed = capsys.readouterr().out
    assert "average over 2 traces" in printed and "beats reactive on" in printed


@pytest.mark.usefixtures("sreops_home")
def test_a_trace_too_short_to_replay_is_an_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "short.csv", days=5)
    assert run([str(trace), "--out", str(tmp_path / "x.csv")]) == 2
    assert "more than 7 days" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.usefixtures("sreops_home")
def test_the_sreops_command_runs_it(tmp_path: Path) -> None:
    from sreops import cli

    trace = write_trace(tmp_path / "demand.csv", days=8, seed=3)
    out = tmp_path / "recs.csv"
    assert cli.main(["eval", "autoscale", str(trace), "--out", str(out)]) == 0
    assert out.read_text().startswith("decision_time,replicas\n")


@pytest.mark.usefixtures("sreops_home")
def test_the_budgeted_rule_is_switched_on_from_the_command_line(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    evaluate.add_autoscale_arguments(parser)
    trace = str(write_trace(tmp_path / "demand.csv"))
    assert evaluate.recommender_settings(parser.parse_args([trace])).policy.reactive_budget is None
    settings = evaluate.recommender_settings(parser.parse_args([trace, "--reactive-budget", "0.97"]))
    assert settings.policy.reactive_budget == 0.97
    report = tmp_path / "report.json"
    assert run([trace, "--reactive-budget", "0.97", "--json", str(report)]) == 0
    measures = json.loads(report.read_text())
    assert measures["settings"]["policy"]["reactive_budget"] == 0.97


@pytest.mark.usefixtures("sreops_home")
def test_plot_writes_one_readable_chart_per_trace_under_a_safe_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    plain = write_trace(tmp_path / "checkout.csv", days=8, seed=4)
    odd = write_trace(tmp_path / "..;$(rm -rf x) <b>.csv", days=8, seed=5)
    charts = tmp_path / "charts"
    assert run([str(plain), str(odd), "--plot", str(charts)]) == 0
    written = sorted(p.name for p in charts.iterdir())
    assert len(written) == 2 and "checkout.png" in written
    odd_chart = next(name for name in written if name != "checkout.png")
    assert "/" not in odd_chart and not odd_chart.startswith(".") and "<" not in odd_chart
    for name in written:
        image = matplotlib.image.imread(charts / name)
        assert image.shape[0] > 200 and image.shape[1] > 600  # drawn, not an empty file
    assert capsys.readouterr().out.count("chart written to") == 2


@pytest.mark.usefixtures("sreops_home")
def test_plot_into_a_file_is_refused_before_any_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = write_trace(tmp_path / "demand.csv", days=8)
    taken = tmp_path / "charts"
    taken.write_text("not a folder")
    assert run([str(trace), "--plot", str(taken), "--out", str(tmp_path / "recs.csv")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    assert taken.read_text() == "not a folder" and not (tmp_path / "recs.csv").exists()


def test_the_worst_hour_is_the_one_that_left_the_most_demand_unserved() -> None:
    from sreops.evaluation.autoscale import RECOMMENDER, TraceResult
    from sreops.evaluation.autoscale_plot import worst_hour
    from sreops.forecasting import replay

    index = pd.date_range("2026-03-02 00:00", periods=7 * 288 + 3 * 12 + 1, freq="5min")
    values = np.full(len(index), 10.0)  # C = 1
    values[7 * 288 + 12 : 7 * 288 + 24] = 14.0  # hour 1 peaks at 14 for twelve records
    values[7 * 288 + 24 + 5] = 30.0  # hour 2: one record at 30
    trace = replay.Trace("t", index, values)
    plan = replay.plan(trace)
    result = TraceResult("t", plan, {RECOMMENDER: [10, 10, 10]}, {}, fits=0, spend_utilization=0.8)
    # hour 1 leaves 12 x 4 = 48 unserved, hour 2 leaves 20: hour 1 is the worst
    assert worst_hour(trace, result) == 1
    result.replicas[RECOMMENDER] = [10, 14, 10]
    assert worst_hour(trace, result) == 2
