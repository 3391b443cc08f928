"""The budgeted rule: a quantile regression placed by the forecast, sized by the reactive rule's spend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sreops.forecasting import budget, policy, recommender, replay

HOUR = pd.Timedelta(hours=1)
BUDGETED = policy.PolicySettings(reactive_budget=0.97)  # the rule is opt-in


@pytest.mark.parametrize("quantile", [0.25, 0.75])
def test_quantile_regression_leaves_the_asked_share_of_points_below_it(quantile: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 4, 400)
    y = 1.0 + 2.0 * x + rng.normal(0, 0.5, 400)
    features = np.column_stack([np.ones_like(x), x])
    weights = budget.quantile_regression(features, y, quantile)
    assert weights is not None
    below = np.mean(y <= features @ weights + 1e-9)
    assert abs(below - quantile) < 0.02
    assert weights[1] == pytest.approx(2.0, abs=0.15)


def _daily_hours(days: int, seed: int = 0) -> pd.Series:
    """Hourly peaks with a daily cycle (peak at 14:00) and lognormal noise."""
    index = pd.date_range("2026-03-02", periods=days * 24, freq=HOUR)
    shape = 1.0 + 0.6 * np.cos(2 * np.pi * (index.hour - 14.0) / 24.0)
    noise = np.random.default_rng(seed).lognormal(0.0, 0.1, len(index))
    return pd.Series(200.0 * shape * noise, index=index)


def _need(peaks: pd.Series, corrected: pd.Series, cutoff: pd.Timestamp, share: float = 0.97):
    settings = policy.PolicySettings(reactive_budget=share)
    learnt = budget.learn(peaks, corrected, pd.Series(dtype=float), cutoff, policy.Limits(20.0), settings)
    return learnt.need(float(peaks[cutoff - HOUR]), float(corrected[cutoff])) if learnt else None


def test_the_budget_is_spent_as_the_reactive_rule_spent_it_over_the_last_week() -> None:
    peaks = _daily_hours(21)
    cutoff = peaks.index[-24]
    corrected = peaks.shift(24).bfill()  # "same as yesterday" as the forecast
    need = _need(peaks, corrected, cutoff)
    assert need is not None and need.hours >= 300
    # replay the chosen margin over the budget's week: no more than 97 % of the reactive rule's spend
    week = pd.date_range(cutoff - 168 * HOUR, cutoff - HOUR, freq=HOUR)
    space = lambda v: np.log1p(np.asarray(v, dtype=float) / 20.0)  # noqa: E731
    w0, w1, w2 = need.weights
    advised = np.ceil(
        np.expm1(w0 + w1 * space(peaks[week - HOUR]) + w2 * space(corrected[week]) + need.shift)
    )
    reactive = np.ceil(peaks[week - HOUR].to_numpy() / (0.8 * 20.0))
    assert advised.sum() <= 0.97 * reactive.sum()
    more = _need(peaks, corrected, cutoff, share=1.2)
    assert more.shift > need.shift and more.replicas >= need.replicas


def test_nothing_at_or_after_the_cutoff_is_learnt_from() -> None:
    peaks = _daily_hours(21)
    corrected = peaks.shift(24).bfill()
    cutoff = peaks.index[-30]
    before = _need(peaks, corrected, cutoff)
    changed = peaks.copy()
    changed[changed.index >= cutoff] *= 5.0
    after = _need(changed, corrected, cutoff)
    assert (after.replicas, after.shift, after.weights) == (before.replicas, before.shift, before.weights)


def test_too_little_history_leaves_the_advice_to_the_band_and_headroom_rule() -> None:
    peaks = _daily_hours(3)
    corrected = peaks.shift(1).bfill()
    assert _need(peaks, corrected, peaks.index[-1]) is None
    forecast = [policy.HourForecast(peaks.index[-1], 100.0, 110.0)]
    (plain,) = policy.recommend(forecast, policy.Limits(20.0), policy.PolicySettings(), current_load=50.0)
    assert "budgeted" not in plain.reason and plain.replicas == 7  # ceil(110 * 1.15 / 20)


def test_the_budgeted_count_is_raised_by_the_floor_and_kept_within_bounds() -> None:
    forecast = [policy.HourForecast(pd.Timestamp("2026-03-10 10:00"), 100.0, 110.0)]
    need = budget.BudgetedNeed(replicas=3, predicted_peak=55.0, shift=0.1, weights=(0.0, 0.5, 0.5), hours=300)
    limits = policy.Limits(20.0, min_replicas=1, max_replicas=8)
    settings = BUDGETED
    (low,) = policy.recommend(
        forecast, limits, settings, current_load=30.0, previous_replicas=4, budgeted=need
    )
    assert low.replicas == 3 and "budgeted" in low.reason  # no scale-in hold: the budget sets the margin
    (floored,) = policy.recommend(forecast, limits, settings, current_load=130.0, budgeted=need)
    assert floored.replicas == 7 and "raised to 7 by the load" in floored.reason
    (capped,) = policy.recommend(forecast, limits, settings, current_load=400.0, budgeted=need)
    assert capped.replicas == 8 and "max_replicas" in capped.reason


@pytest.fixture
def seasonal_trace(make_demand) -> replay.Trace:
    demand = make_demand(
        pd.Timestamp("2026-03-02 00:00"), 10 * 288, "5min", noise=0.15, amplitude=0.8, seed=2
    )
    return replay.Trace("seasonal", demand.index, demand.to_numpy())


def _replay(trace: replay.Trace, **settings) -> tuple[replay.Measures, recommender.ForecastRecommender]:
    plan = replay.plan(trace)
    rec = recommender.ForecastRecommender(
        policy.Limits(plan.capacity),
        recommender.RecommenderSettings(policy=policy.PolicySettings(**settings)),
    )
    return replay.measure(trace, plan, replay.replay(trace, rec, plan)), rec


def test_the_budgeted_rule_breaches_less_than_the_reactive_rule_at_no_more_cost(seasonal_trace) -> None:
    plan = replay.plan(seasonal_trace)
    reactive = replay.measure(seasonal_trace, plan, replay.reactive(seasonal_trace, plan))
    mine, rec = _replay(seasonal_trace, reactive_budget=0.97)
    assert "budgeted" in rec.last_.reason
    assert mine.cost_ratio <= reactive.cost_ratio
    assert mine.violation_rate < reactive.violation_rate
    # a larger budget buys fewer breaches at more cost: the share is the one knob
    richer, _ = _replay(seasonal_trace, reactive_budget=1.3)
    assert richer.cost_ratio > mine.cost_ratio and richer.violation_rate <= mine.violation_rate


def test_a_surge_the_forecast_cannot_know_is_followed_from_its_second_hour(surge_trace: replay.Trace) -> None:
    trace = surge_trace
    plan = replay.plan(trace)
    rec = recommender.ForecastRecommender(
        policy.Limits(plan.capacity), recommender.RecommenderSettings(policy=BUDGETED)
    )
    decisions = replay.replay(trace, rec, plan)
    assert "budgeted" in rec.last_.reason
    within = (plan.decision_times >= pd.Timestamp("2026-03-10 10:00")) & (
        plan.decision_times < pd.Timestamp("2026-03-10 15:00")
    )
    series = trace.series()
    for replicas, now in zip(decisions[within], plan.decision_times[within], strict=True):
        recent = recommender.current_load(series[series.index < now], now, 15)
        assert replicas >= policy.replicas_for(recent, plan.capacity)  # the floor: what is arriving now
    ordinary = decisions[
        (plan.decision_times >= pd.Timestamp("2026-03-09 10:00"))
        & (plan.decision_times < pd.Timestamp("2026-03-09 15:00"))
    ]
    assert decisions[within].mean() > 2.0 * ordinary.mean()
