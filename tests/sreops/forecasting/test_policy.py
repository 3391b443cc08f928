"""The scaling policy: bounds, headroom, the recent-load floor, scale-in stabilization, the correction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sreops.forecasting import model, policy

NOW = pd.Timestamp("2026-05-10 12:00")
HOUR = pd.Timedelta(hours=1)


def hours(values: list[float], start: pd.Timestamp = NOW) -> list[policy.HourForecast]:
    return [policy.HourForecast(start + i * HOUR, v * 0.8, v) for i, v in enumerate(values)]


def test_replicas_cover_the_upper_band_plus_headroom() -> None:
    settings = policy.PolicySettings(headroom=0.25, scale_in_tolerance=0)
    recs = policy.recommend(hours([100.0, 399.0, 400.0]), policy.Limits(50.0), settings, current_load=None)
    # ceil(upper * 1.25 / 50)
    assert [r.replicas for r in recs] == [math.ceil(125 / 50), math.ceil(498.75 / 50), math.ceil(500 / 50)]
    assert [r.window_start for r in recs] == [NOW, NOW + HOUR, NOW + 2 * HOUR]
    assert all(r.window_end == r.window_start + HOUR for r in recs)
    assert "upper band 400" in recs[2].reason and "+25% headroom" in recs[2].reason


def test_replicas_stay_within_min_and_max() -> None:
    settings = policy.PolicySettings(headroom=0.0, scale_in_tolerance=0)
    recs = policy.recommend(
        hours([1.0, 1000.0]), policy.Limits(10.0, min_replicas=3, max_replicas=20), settings, None
    )
    assert [r.replicas for r in recs] == [3, 20]
    assert "min_replicas 3" in recs[0].reason and "max_replicas 20" in recs[1].reason


def test_no_load_still_runs_one_replica() -> None:
    recs = policy.recommend(hours([0.0]), policy.Limits(10.0, min_replicas=0), policy.PolicySettings(), None)
    assert recs[0].replicas == 1


def test_the_recent_load_floor_overrides_a_low_forecast_for_the_first_hour_only() -> None:
    settings = policy.PolicySettings(headroom=0.0, scale_in_tolerance=0)
    recs = policy.recommend(hours([100.0, 100.0]), policy.Limits(10.0), settings, current_load=305.0)
    assert recs[0].replicas == 31  # what 305 needs at full utilisation
    assert "load of the last 15 min" in recs[0].reason
    assert recs[1].replicas == 10 and recs[1].floor_load is None


def test_small_scale_ins_are_held_and_large_ones_followed() -> None:
    settings = policy.PolicySettings(headroom=0.0, scale_in_tolerance=1)
    recs = policy.recommend(hours([100.0, 90.0, 50.0, 60.0]), policy.Limits(10.0), settings, None)
    # 10 → 9 is within the tolerance (held at 10); 10 → 5 is followed; 5 → 6 is a scale-out
    assert [r.replicas for r in recs] == [10, 10, 5, 6]
    assert "held at 10" in recs[1].reason


def test_stabilization_starts_from_the_advice_in_force() -> None:
    settings = policy.PolicySettings(headroom=0.0, scale_in_tolerance=2)
    recs = policy.recommend(hours([80.0]), policy.Limits(10.0), settings, None, previous_replicas=10)
    assert recs[0].replicas == 10
    recs = policy.recommend(hours([80.0]), policy.Limits(10.0), settings, None, previous_replicas=11)
    assert recs[0].replicas == 8


@pytest.mark.parametrize(
    "kwargs",
    [{"band_quantile": 1.0}, {"headroom": -0.1}, {"floor_utilization": 0.0}, {"calibration_hours": 5}],
)
def test_invalid_policy_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        policy.PolicySettings(**kwargs)


def test_limits_refuse_min_above_max() -> None:
    with pytest.raises(ValueError, match="min_replicas 5 > max_replicas 2"):
        policy.Limits(1.0, min_replicas=5, max_replicas=2)


def flat_fit(level: float, start: pd.Timestamp, fitted_at: pd.Timestamp, horizon: int = 24) -> model.Fit:
    """A fit that forecasts `level` for every hour (in-sample and ahead)."""
    ts = pd.date_range(start, fitted_at + (horizon - 1) * HOUR, freq="h")
    frame = pd.DataFrame(
        {
            "ts": ts,
            "yhat": level,
            "yhat_lower": level * 0.5,
            "yhat_upper": level * 2,
            "in_sample": ts < fitted_at,
        }
    )
    return model.Fit(("svc", "m"), fitted_at, 10.0, frame)


def test_correction_carries_a_level_shift_the_fit_has_not_seen() -> None:
    start = NOW - 10 * 24 * HOUR
    fit = flat_fit(100.0, start, NOW - 6 * HOUR)
    rng = np.random.default_rng(1)
    index = pd.date_range(start, NOW - HOUR, freq="h")
    observed = pd.Series(100.0 * rng.lognormal(0, 0.05, len(index)), index=index)
    settings = policy.PolicySettings()
    (steady,) = policy.corrected_forecast(fit, observed, NOW, 1, settings)
    shifted = observed.copy()
    shifted[shifted.index >= NOW - 12 * HOUR] *= 3.0
    (after,) = policy.corrected_forecast(fit, shifted, NOW, 1, settings)
    assert 90 < steady.expected_peak < 110
    assert after.expected_peak > 2 * steady.expected_peak
    assert after.upper_peak >= after.expected_peak


def test_the_band_widens_with_the_series_noise() -> None:
    start = NOW - 10 * 24 * HOUR
    fit = flat_fit(100.0, start, NOW - 2 * HOUR)
    index = pd.date_range(start, NOW - HOUR, freq="h")
    rng = np.random.default_rng(2)
    quiet = pd.Series(100.0 * rng.lognormal(0, 0.02, len(index)), index=index)
    noisy = pd.Series(100.0 * rng.lognormal(0, 0.4, len(index)), index=index)
    settings = policy.PolicySettings(band_quantile=0.9)
    (q,) = policy.corrected_forecast(fit, quiet, NOW, 1, settings)
    (n,) = policy.corrected_forecast(fit, noisy, NOW, 1, settings)
    assert n.upper_peak / n.expected_peak > q.upper_peak / q.expected_peak + 0.2


def test_corrected_forecast_ignores_peaks_from_now_on() -> None:
    start = NOW - 10 * 24 * HOUR
    fit = flat_fit(100.0, start, NOW - 3 * HOUR)
    index = pd.date_range(start, NOW + 5 * HOUR, freq="h")
    observed = pd.Series(np.linspace(80, 120, len(index)), index=index)
    future_spike = observed.copy()
    future_spike[future_spike.index >= NOW] = 1e6
    settings = policy.PolicySettings()
    assert policy.corrected_forecast(fit, observed, NOW, 3, settings) == policy.corrected_forecast(
        fit, future_spike, NOW, 3, settings
    )


def test_decision_off_the_fit_grid_or_beyond_its_horizon_is_refused() -> None:
    fit = flat_fit(100.0, NOW - 48 * HOUR, NOW, horizon=6)
    peaks = pd.Series(dtype=float)
    with pytest.raises(ValueError, match="not on the fit's hourly grid"):
        policy.corrected_forecast(fit, peaks, NOW + pd.Timedelta(minutes=30), 1, policy.PolicySettings())
    with pytest.raises(ValueError, match="refit more often"):
        policy.corrected_forecast(fit, peaks, NOW, 12, policy.PolicySettings())


def test_a_shortfall_in_the_last_hours_is_found_and_raises_the_advice_to_the_reactive_rule() -> None:
    peaks = pd.Series([90.0, 130.0, 80.0], index=[NOW - 3 * HOUR, NOW - 2 * HOUR, NOW - HOUR])
    advised = {NOW - 3 * HOUR: 10, NOW - 2 * HOUR: 12, NOW - HOUR: 10}
    assert policy.fell_short(advised, peaks, NOW, 10.0, hours=3)  # 130 > 12 replicas × 10
    assert not policy.fell_short(advised, peaks, NOW, 10.0, hours=1)
    (rec,) = policy.recommend(hours([50.0]), policy.Limits(10.0), policy.PolicySettings(headroom=0.0), None)
    raised = policy.distrusted(rec, 120.0, policy.Limits(10.0), policy.PolicySettings())
    assert raised.replicas == 15 and "reactive rule" in raised.reason  # 120 at 80 %
    assert policy.distrusted(rec, None, policy.Limits(10.0), policy.PolicySettings()) == rec


def test_a_forecast_expecting_no_rise_never_runs_more_than_the_reactive_rule() -> None:
    limits = policy.Limits(10.0)
    wide = policy.HourForecast(NOW, expected_peak=95.0, upper_peak=180.0)  # a wide band over a flat forecast
    (rec,) = policy.recommend([wide], limits, policy.PolicySettings(), None)
    assert rec.replicas == 21  # ceil(180 × 1.15 / 10)
    capped = policy.capped_at_reactive(rec, 100.0, limits, policy.PolicySettings())
    assert capped.replicas == 13  # the reactive rule: ceil(100 / (0.8 × 10))
    assert "expects no rise" in capped.reason
    # a forecast that expects the peak to rise keeps the replicas its band asks for
    rising = policy.HourForecast(NOW, expected_peak=140.0, upper_peak=180.0)
    (rec,) = policy.recommend([rising], limits, policy.PolicySettings(), None)
    assert policy.capped_at_reactive(rec, 100.0, limits, policy.PolicySettings()) == rec
    # the cap never lowers advice below the reactive rule, and can be switched off
    (low,) = policy.recommend([policy.HourForecast(NOW, 50.0, 60.0)], limits, policy.PolicySettings(), None)
    assert policy.capped_at_reactive(low, 100.0, limits, policy.PolicySettings()) == low
    off = policy.PolicySettings(reactive_cap=False)
    (rec,) = policy.recommend([wide], limits, off, None)
    assert policy.capped_at_reactive(rec, 100.0, limits, off) == rec
    assert policy.capped_at_reactive(rec, None, limits, policy.PolicySettings()) == rec
