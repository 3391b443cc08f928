"""The replay of AUTOSCALING.md: decision times, capacity, baselines, measures, no look-ahead, output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops.forecasting import replay

T0 = pd.Timestamp("2026-02-01 21:42:53")


def trace_of(values: np.ndarray, step: str = "5min", start: pd.Timestamp = T0) -> replay.Trace:
    return replay.Trace("t", pd.date_range(start, periods=len(values), freq=step), np.asarray(values, float))


def test_decisions_start_after_the_warm_up_week_and_stop_when_an_hour_no_longer_fits() -> None:
    # 7 days + 3 h 10 min of 5-minute records: the last record is at t0 + 7 d + 3 h 5 min
    records = 7 * 288 + 3 * 12 + 2
    plan = replay.plan(trace_of(np.ones(records)))
    expected = [T0 + pd.Timedelta(days=7) + pd.Timedelta(hours=k) for k in range(3)]
    assert list(plan.decision_times) == expected
    # each window holds the 12 records of its hour
    assert (plan.window_bounds[:, 1] - plan.window_bounds[:, 0] == 12).all()
    assert plan.window_bounds[0, 0] == 7 * 288


def test_capacity_is_the_warm_up_q99_over_ten_with_linear_interpolation() -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 100, 7 * 288 + 24)
    plan = replay.plan(trace_of(values))
    assert plan.capacity == pytest.approx(np.quantile(values[: 7 * 288], 0.99, method="linear") / 10)


def two_hour_replay() -> tuple[replay.Trace, replay.ReplayPlan]:
    """C = 1; the hours before the two decisions peak at 10 (warm-up) and 5."""
    hour0 = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5.0])
    trace = trace_of(np.concatenate([np.full(7 * 288, 10.0), hour0, np.full(12, 2.0), [0.0]]))
    return trace, replay.plan(trace)


def test_measures_by_hand_on_a_two_hour_replay() -> None:
    trace, plan = two_hour_replay()  # hour 0: eleven 1s then 5; hour 1: twelve 2s
    assert plan.capacity == 1.0 and len(plan.decision_times) == 2
    m = replay.measure(trace, plan, [4, 2])
    assert m.violation_rate == pytest.approx(1 / 24)  # only the 5 > 4
    assert m.unserved_share == pytest.approx(1.0 / (16.0 + 24.0))
    assert m.cost_ratio == pytest.approx(6 / 7)  # oracle: 5 + 2
    assert list(replay.oracle(trace, plan)) == [5, 2]
    # reactive: previous hour's peak / (0.8 C): 10 / 0.8 → 13, then 5 / 0.8 → 7
    assert list(replay.reactive(trace, plan)) == [13, 7]
    assert list(replay.static_peak(trace, plan)) == [10, 10]
    oracle = replay.measure(trace, plan, replay.oracle(trace, plan))
    assert oracle.violation_rate == 0 and oracle.cost_ratio == 1.0


def test_reactive_at_spend_is_the_highest_target_spending_at_least_the_budget() -> None:
    trace, plan = two_hour_replay()
    # 10 / (u C) and 5 / (u C) round up to 13 and 7 for u in [0.8, 10/12), to 12 and 6 from 10/12 on
    target, replicas = replay.reactive_at_spend(trace, plan, 20)
    assert list(replicas) == [13, 7] and 0.8 <= target < 10 / 12
    assert list(replay.reactive(trace, plan, target)) == [13, 7]
    target, replicas = replay.reactive_at_spend(trace, plan, 18)
    assert list(replicas) == [12, 6] and target >= 10 / 12
    # a budget between two steps gets the step above it: the reactive rule never spends less
    _, replicas = replay.reactive_at_spend(trace, plan, 19)
    assert list(replicas) == [13, 7]
    # no rule spends less than one replica an hour; a large budget lowers the target below 1 %
    assert list(replay.reactive_at_spend(trace, plan, 1)[1]) == [1, 1]
    target, replicas = replay.reactive_at_spend(trace, plan, 2000)
    assert replicas.sum() >= 2000 and target < 0.01


def test_reactive_at_its_own_spend_is_the_reactive_rule() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(3, 0.6, 7 * 288 + 5 * 288)
    trace = trace_of(values)
    plan = replay.plan(trace)
    reactive = replay.reactive(trace, plan)
    target, replicas = replay.reactive_at_spend(trace, plan, float(reactive.sum()))
    assert np.array_equal(replicas, reactive) and target >= 0.8
    # maximal: a slightly higher target would spend less than the budget
    for budget in (0.7 * reactive.sum(), 1.3 * reactive.sum()):
        target, replicas = replay.reactive_at_spend(trace, plan, budget)
        assert replicas.sum() >= budget > replay.reactive(trace, plan, target * 1.0001).sum()


def test_the_reactive_line_trades_cost_for_breaches_and_passes_through_the_protocols_point() -> None:
    rng = np.random.default_rng(5)
    trace = trace_of(rng.lognormal(3, 0.7, 7 * 288 + 6 * 288))
    plan = replay.plan(trace)
    line = replay.reactive_line(trace, plan, (0.5, 0.65, 0.8, 1.0))
    costs = [m.cost_ratio for _, m in line]
    breaches = [m.violation_rate for _, m in line]
    assert costs == sorted(costs, reverse=True) and breaches == sorted(breaches)
    assert costs[0] > costs[-1] and breaches[0] < breaches[-1]
    assert line[2][1] == replay.measure(trace, plan, replay.reactive(trace, plan))


class Spy:
    """Records what each decision saw, and answers with one replica per record seen (to be checkable)."""

    def __init__(self) -> None:
        self.seen: list[tuple[pd.Timestamp, pd.Timestamp, int]] = []

    def decide(self, history: pd.Series, now: pd.Timestamp) -> int:
        self.seen.append((now, history.index.max(), len(history)))
        return 1 + len(history) % 3


def test_each_decision_sees_only_the_records_before_it() -> None:
    values = np.arange(7 * 288 + 5 * 12 + 1, dtype=float)
    trace = trace_of(values)
    spy = Spy()
    decisions = replay.replay(trace, spy)
    assert len(spy.seen) == 5
    for now, last_seen, count in spy.seen:
        assert last_seen < now
        assert count == int((trace.timestamps < now).sum())
    assert list(decisions) == [1 + c % 3 for _, _, c in spy.seen]


class Bad:
    def decide(self, history: pd.Series, now: pd.Timestamp) -> int:
        return 0


def test_a_recommender_answering_zero_replicas_is_refused() -> None:
    with pytest.raises(ValueError, match="whole number >= 1"):
        replay.replay(trace_of(np.ones(7 * 288 + 13)), Bad())


def test_decisions_csv_has_the_protocol_format(tmp_path: Path) -> None:
    plan = replay.plan(trace_of(np.ones(7 * 288 + 2 * 12 + 1)))
    out = tmp_path / "recs.csv"
    replay.write_decisions(out, plan.decision_times, [3, 4])
    assert out.read_text().splitlines() == [
        "decision_time,replicas",
        "2026-02-08 21:42:53,3",
        "2026-02-08 22:42:53,4",
    ]


def test_load_trace_sorts_and_reports_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("timestamp,value\n2026-01-01 00:05:00,2\n2026-01-01 00:00:00,1\n")
    trace = replay.load_trace(good)
    assert list(trace.values) == [1.0, 2.0] and trace.name == "good"
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,abc\n")
    with pytest.raises(replay.TraceError, match="row 3"):
        replay.load_trace(bad)
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("ts,v\n2026-01-01 00:00:00,1\n")
    with pytest.raises(replay.TraceError, match="timestamp,value"):
        replay.load_trace(headerless)


def test_a_trace_shorter_than_the_warm_up_cannot_be_replayed() -> None:
    with pytest.raises(replay.TraceError, match="more than 7 days"):
        replay.plan(trace_of(np.ones(6 * 288)))
