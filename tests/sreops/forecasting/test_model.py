"""Prophet fits of hourly peaks: resampling, transform, a known daily shape, warm starts, parallelism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sreops.forecasting import model

HOUR = pd.Timedelta(hours=1)


def test_hourly_peaks_bins_end_at_the_given_time_and_leave_empty_hours_nan() -> None:
    index = pd.DatetimeIndex(["2026-01-01 09:30", "2026-01-01 09:50", "2026-01-01 10:29", "2026-01-01 10:31"])
    series = pd.Series([1.0, 7.0, 3.0, 99.0], index=index)
    peaks = model.hourly_peaks(series, pd.Timestamp("2026-01-01 10:30"), 3)
    # bins: [07:30, 08:30) empty, [08:30, 09:30) empty, [09:30, 10:30) holds 1, 7, 3; 10:31 is after the end
    assert list(peaks.index) == list(pd.date_range("2026-01-01 07:30", periods=3, freq="h"))
    assert np.isnan(peaks.iloc[0]) and np.isnan(peaks.iloc[1])
    assert peaks.iloc[2] == 7.0


def test_model_space_round_trips_and_clips_negative_demand() -> None:
    values = np.array([0.0, 0.5, 10.0, 12345.0])
    assert np.allclose(model.from_model_space(model.to_model_space(values, 3.0), 3.0), values)
    assert model.from_model_space(model.to_model_space(-5.0, 3.0), 3.0) == 0.0


def test_mase_is_zero_for_a_perfect_forecast_and_one_for_seasonal_naive() -> None:
    rng = np.random.default_rng(0)
    history = rng.uniform(0, 10, 24 * 5)
    actual = history[-24:]
    assert model.seasonal_naive_mase(actual, actual, history) == 0.0
    naive = history[-48:-24]
    expected = np.mean(np.abs(actual - naive)) / np.mean(np.abs(history[24:] - history[:-24]))
    assert model.seasonal_naive_mase(actual, naive, history) == pytest.approx(expected)


def test_fit_recovers_a_known_daily_shape(make_demand) -> None:
    demand = make_demand(pd.Timestamp("2026-03-02"), 15 * 24 * 12, "5min", level=100.0, noise=0.03)
    now = pd.Timestamp("2026-03-16")
    peaks = model.hourly_peaks(demand, now, 14 * 24)
    fit = model.fit(("svc", "request_rate"), peaks, now, model.ForecastSettings(horizon_hours=24))
    future = fit.frame[~fit.frame["in_sample"]].set_index("ts")
    truth = model.hourly_peaks(demand, now + 24 * HOUR, 24)
    assert list(future.index) == list(truth.index)
    error = np.abs(future["yhat"].to_numpy() - truth.to_numpy()) / truth.to_numpy()
    assert error.mean() < 0.08
    assert future["yhat"].idxmax().hour in (13, 14, 15)
    assert future["yhat"].idxmin().hour in (1, 2, 3)
    assert (future["yhat_lower"] <= future["yhat"]).all() and (future["yhat"] <= future["yhat_upper"]).all()
    assert fit.frame["in_sample"].sum() == fit.training_hours == 14 * 24


def test_fit_uses_nothing_at_or_after_now(make_demand) -> None:
    demand = make_demand(pd.Timestamp("2026-03-02"), 10 * 24 * 12, "5min")
    now = pd.Timestamp("2026-03-09")
    peaks = model.hourly_peaks(demand, now + 48 * HOUR, 9 * 24)
    tampered = peaks.copy()
    tampered[tampered.index >= now] = 1e9
    a = model.fit(("s", "m"), peaks, now, model.ForecastSettings(uncertainty_samples=0))
    b = model.fit(("s", "m"), tampered, now, model.ForecastSettings(uncertainty_samples=0))
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_too_little_history_raises_an_actionable_error(make_demand) -> None:
    demand = make_demand(pd.Timestamp("2026-03-02"), 24 * 12, "5min")
    now = pd.Timestamp("2026-03-03")
    with pytest.raises(model.ForecastError, match="fewer than the 48 needed"):
        model.fit(("svc", "m"), model.hourly_peaks(demand, now, 24), now)


def test_warm_start_reuses_the_previous_parameters_and_scores_the_previous_forecast(make_demand) -> None:
    demand = make_demand(pd.Timestamp("2026-03-02"), 12 * 24 * 12, "5min")
    first_now = pd.Timestamp("2026-03-12")
    first = model.fit(("s", "m"), model.hourly_peaks(demand, first_now, 240), first_now)
    now = first_now + 24 * HOUR
    previous = first.frame[~first.frame["in_sample"]].set_index("ts")["yhat"]
    second = model.fit(
        ("s", "m"),
        model.hourly_peaks(demand, now, 264),
        now,
        warm_start=first.params,
        previous_forecast=previous,
    )
    cold = model.fit(("s", "m"), model.hourly_peaks(demand, now, 264), now)
    assert second.warm_started and not cold.warm_started
    assert second.mase is not None and 0 < second.mase < 1  # a good forecast beats seasonal-naive
    assert np.allclose(second.frame["yhat"], cold.frame["yhat"], rtol=0.02)


def test_fit_many_keeps_job_order_and_reports_errors_per_series(make_demand) -> None:
    now = pd.Timestamp("2026-03-12")
    long = model.hourly_peaks(make_demand(pd.Timestamp("2026-03-02"), 10 * 24 * 12, "5min"), now, 240)
    short = long[-10:]
    jobs = [
        model.FitJob(("a", "m"), long, now),
        model.FitJob(("b", "m"), short, now),
        model.FitJob(("c", "m"), long * 2, now),
    ]
    results = list(model.fit_many(jobs, model.ForecastSettings(), workers=2))
    assert isinstance(results[0], model.Fit) and results[0].key == ("a", "m")
    assert isinstance(results[1], model.ForecastError) and "b/m" in str(results[1])
    assert isinstance(results[2], model.Fit) and results[2].key == ("c", "m")
    ratio = results[2].frame["yhat"].to_numpy() / results[0].frame["yhat"].to_numpy()
    assert np.allclose(ratio, 2.0, rtol=0.05)  # the log transform is scale-free
