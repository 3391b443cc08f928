"""The online recommender: refit cadence, warm starts, beating the reactive baseline on seasonal demand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sreops import config
from sreops.forecasting import policy, recommender, replay


@pytest.fixture(params=[0, 1])
def seasonal_trace(request: pytest.FixtureRequest, make_demand) -> replay.Trace:
    """Ten days of 5-minute demand with a strong daily cycle: reactive scaling lags every morning ramp."""
    demand = make_demand(
        pd.Timestamp("2026-03-02 00:00"), 10 * 288, "5min", noise=0.15, amplitude=0.8, seed=request.param
    )
    return replay.Trace("seasonal", demand.index, demand.to_numpy())


def test_recommender_refits_daily_warm_starts_and_beats_reactive(seasonal_trace: replay.Trace) -> None:
    plan = replay.plan(seasonal_trace)
    rec = recommender.ForecastRecommender(policy.Limits(plan.capacity))
    decisions = replay.replay(seasonal_trace, rec, plan)
    assert len(decisions) == len(plan.decision_times) == 3 * 24 - 1
    assert [f.fitted_at for f in rec.fits_] == [plan.decision_times[k] for k in (0, 24, 48)]
    assert [f.warm_started for f in rec.fits_] == [False, True, True]
    mine = replay.measure(seasonal_trace, plan, decisions)
    reactive = replay.measure(seasonal_trace, plan, replay.reactive(seasonal_trace, plan))
    # the forecast sees each morning ramp coming; the reactive baseline only follows it
    assert mine.violation_rate < 0.5 * reactive.violation_rate
    assert mine.unserved_share < 0.5 * reactive.unserved_share
    assert mine.cost_ratio <= reactive.cost_ratio


def test_refit_cadence_follows_the_setting(seasonal_trace: replay.Trace) -> None:
    plan = replay.plan(seasonal_trace)
    settings = recommender.RecommenderSettings(refit_hours=12)
    rec = recommender.ForecastRecommender(policy.Limits(plan.capacity), settings)
    replay.replay(seasonal_trace, rec, plan)
    assert len(rec.fits_) == 6


def test_settings_come_from_the_config_section() -> None:
    section = config.ForecastingConfig(horizon_hours=36, refit_hours=6, band_quantile=0.7, headroom=0.3)
    settings = recommender.settings_from_config(section)
    assert settings.refit_hours == 6
    assert settings.forecast.horizon_hours == 42  # advice 36 h ahead from every hour until the next refit
    assert settings.policy.band_quantile == 0.7 and settings.policy.headroom == 0.3


def test_refit_hours_beyond_the_horizon_are_refused() -> None:
    from sreops.forecasting.model import ForecastSettings

    with pytest.raises(ValueError, match="would have no forecast"):
        recommender.RecommenderSettings(forecast=ForecastSettings(horizon_hours=12), refit_hours=24)


def test_current_load_is_the_peak_of_the_last_minutes_only() -> None:
    index = pd.date_range("2026-01-01 00:00", periods=6, freq="5min")
    history = pd.Series([9.0, 1.0, 2.0, 3.0, 4.0, 5.0], index=index)
    now = pd.Timestamp("2026-01-01 00:30")
    assert recommender.current_load(history, now, 15) == 5.0
    assert recommender.current_load(history, now, 60) == 9.0
    assert recommender.current_load(history.iloc[:0], now, 15) is None
    assert np.isfinite(recommender.current_load(history, now, 5))


def test_an_hourly_trace_gets_the_last_record_as_its_floor(make_demand) -> None:
    """Records an hour apart: the 15-minute floor would be empty, so it covers one record."""
    demand = make_demand(pd.Timestamp("2026-03-02 00:00"), 10 * 24, "1h", noise=0.1, amplitude=0.5, seed=4)
    trace = replay.Trace("hourly", demand.index, demand.to_numpy())
    plan = replay.plan(trace)
    rec = recommender.ForecastRecommender(policy.Limits(plan.capacity))
    decisions = replay.replay(trace, rec, plan)
    assert rec.interval_ == pd.Timedelta(hours=1)
    previous = demand.to_numpy()[np.searchsorted(demand.index, plan.decision_times) - 1]
    assert all(d >= policy.replicas_for(p, plan.capacity) for d, p in zip(decisions, previous, strict=True))


def test_after_the_forecast_falls_short_a_surge_is_met_as_a_reactive_autoscaler_would(
    surge_trace: replay.Trace,
) -> None:
    """A flash crowd the forecast cannot know: once an hour breaks the advice, the advice follows the load."""
    trace = surge_trace
    plan = replay.plan(trace)
    settings = recommender.RecommenderSettings()
    rec = recommender.ForecastRecommender(policy.Limits(plan.capacity), settings)
    decisions = replay.replay(trace, rec, plan)
    during = (plan.decision_times > pd.Timestamp("2026-03-10 09:00")) & (
        plan.decision_times < pd.Timestamp("2026-03-10 15:00")
    )
    reactive = replay.reactive(trace, plan)
    assert rec.fallbacks_ > 0
    assert all(d >= 0.8 * r for d, r in zip(decisions[during], reactive[during], strict=True))
    blind = recommender.ForecastRecommender(
        policy.Limits(plan.capacity),
        recommender.RecommenderSettings(policy=policy.PolicySettings(distrust_hours=0)),
    )
    unaware = replay.measure(trace, plan, replay.replay(trace, blind, plan))
    assert replay.measure(trace, plan, decisions).violation_rate < unaware.violation_rate


def test_advice_above_the_reactive_rule_comes_only_with_a_forecast_rise(make_demand) -> None:
    """Cost is never spent over the reactive rule's in an hour the forecast expects no higher than the last."""
    demand = make_demand(pd.Timestamp("2026-03-02 00:00"), 10 * 288, "5min", noise=0.3, amplitude=0.5, seed=7)
    trace = replay.Trace("noisy", demand.index, demand.to_numpy())
    plan = replay.plan(trace)
    rec = recommender.ForecastRecommender(policy.Limits(plan.capacity), recommender.RecommenderSettings())
    reactive = replay.reactive(trace, plan)
    series = trace.series()
    lowered = 0
    for k, now in enumerate(plan.decision_times):
        replicas = rec.decide(series[series.index < now], now)
        last_peak = recommender.current_load(series, now, 60)
        if rec.last_.forecast_peak <= last_peak:
            assert replicas <= reactive[k]
        lowered += "expects no rise" in rec.last_.reason
    assert lowered > 0  # on a noisy series the band alone would have run more
