"""The streaming detector's behaviour a user relies on: cold start, re-learning, quirks of real data."""

from __future__ import annotations

import numpy as np

from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.streaming import StreamingDetector, fit_times, model_time

from .conftest import MINUTE, START, daily_series

THRESHOLD = AlarmPolicy().threshold


def test_a_new_series_raises_no_alarm_storm_on_its_first_day() -> None:
    times, values = daily_series(1, seed=2, noise=3.0)
    result = StreamingDetector().replay(times, values)
    assert (result.scorer[: 6 * 60] == "baseline").all()
    assert (result.score >= THRESHOLD).sum() == 0


def test_cold_start_baseline_still_flags_a_huge_outlier() -> None:
    times, values = daily_series(0.2, seed=3)
    values[200] = 5000.0
    result = StreamingDetector().replay(times, values)
    assert result.scorer[200] == "baseline"
    assert result.score[200] > 3 * np.max(np.delete(result.score, 200))


def test_a_permanent_level_shift_alarms_then_is_learned() -> None:
    times, values = daily_series(4, seed=5)
    shift_at = 3 * 1440
    values[shift_at:] += 60
    result = StreamingDetector().replay(times, values)
    assert result.score[shift_at] >= THRESHOLD
    after = result.score[shift_at + 60 : shift_at + 600]
    assert (after >= THRESHOLD).sum() == 0  # an hour later the new level is simply the level


def test_alarm_counts_an_ongoing_incident_once_unless_it_escalates() -> None:
    times, values = daily_series(3, seed=6)
    values[2 * 1440 + 100 : 2 * 1440 + 110] += 40
    result = StreamingDetector().replay(times, values)
    window = slice(2 * 1440 + 100, 2 * 1440 + 110)
    assert (result.score[window] >= THRESHOLD).sum() >= 2
    assert (result.alarm[window] > 0).sum() <= (result.score[window] > 0).sum()
    assert result.alarm[2 * 1440 + 100] == result.score[2 * 1440 + 100]


def test_duplicates_gaps_and_missing_values_are_scored_without_errors() -> None:
    times, values = daily_series(2.5, seed=7)
    times = np.concatenate([times[:1000], times[999:1000].repeat(5), times[1000:2000], times[2400:]])
    values = np.concatenate([values[:1000], values[999:1000].repeat(5), values[1000:2000], values[2400:]])
    values[1500] = np.nan
    result = StreamingDetector().replay(times, values)
    assert np.isfinite(result.score).all()
    assert len(result.score) == len(values)


def test_models_are_trained_after_the_cold_start_then_on_the_utc_day_grid() -> None:
    settings = DetectorSettings()
    first = START + 13 * 3600 + 17 * MINUTE
    fits = fit_times(first, first + 3 * 86400, settings)
    assert fits[0] == first + 6 * 3600
    assert all(f % 86400 == 0 for f in fits[1:])
    assert model_time(first, first + 3600, settings) is None
    assert model_time(first, fits[1] + 1, settings) == fits[1]
