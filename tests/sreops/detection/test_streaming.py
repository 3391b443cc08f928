"""The streaming detector's behaviour a user relies on: cold start, re-learning, any timestamps, any interval."""

from __future__ import annotations

import numpy as np
import pytest

from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.streaming import StreamingDetector, grid_fit_times, model_time
from sreops.detection.timeline import arrival_times, out_of_order, sampling_interval

from .conftest import MINUTE, START, daily_series

THRESHOLD = AlarmPolicy().threshold


def test_a_new_series_raises_no_alarm_storm_on_its_first_day() -> None:
    times, values = daily_series(1, seed=2, noise=3.0)
    result = StreamingDetector().replay(times, values)
    assert (result.scorer[: DetectorSettings().cold_start_points] == "baseline").all()
    assert (result.score >= THRESHOLD).sum() == 0


def test_cold_start_baseline_still_flags_a_huge_outlier() -> None:
    times, values = daily_series(0.04, seed=3)
    values[50] = 5000.0
    result = StreamingDetector().replay(times, values)
    assert result.scorer[50] == "baseline"
    assert result.score[50] > 3 * np.max(np.delete(result.score, 50))


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
    assert (result.alarm[window] > 0).sum() < (result.score[window] > 0).sum()
    assert result.alarm[2 * 1440 + 100] == result.score[2 * 1440 + 100]


def test_models_are_trained_after_the_cold_start_then_on_the_utc_day_grid() -> None:
    settings = DetectorSettings()
    times, values = daily_series(3, seed=8)
    times = times + 13 * 3600 + 17 * MINUTE
    detector = StreamingDetector(settings)
    cuts = detector.boundaries(times)
    assert cuts[0] == settings.cold_start_points
    assert all(times[c] % 86400 == 0 for c in cuts[1:]) and len(cuts) == 4  # cold start, three midnights
    cold = detector.cold_start_time(times)
    assert model_time(cold, cold - 1, settings) is None
    first_grid = grid_fit_times(cold, float(times[-1]), settings)[0]
    assert model_time(cold, first_grid + 1, settings) == first_grid


# ---- timestamps as feeds deliver them -------------------------------------------------------------
def quirky(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Two and a half days of minutes with a backward jump of an hour, duplicates, a gap and missing values."""
    times, values = daily_series(2.5, seed=seed)
    times = times.copy()
    times[2000:] -= 3600  # the clock jumps back an hour (a DST change) and carries on
    times = np.concatenate([times[:1000], times[999:1000].repeat(5), times[1000:2600], times[3000:]])
    values = np.concatenate([values[:1000], values[999:1000].repeat(5), values[1000:2600], values[3000:]])
    values[1500] = np.nan
    times[1700] = np.nan  # a row without a usable timestamp
    return times, values


def test_backward_jumps_duplicates_gaps_and_missing_values_are_all_scored() -> None:
    times, values = quirky()
    result = StreamingDetector().replay(times, values)
    assert np.isfinite(result.score).all() and len(result.score) == len(values)
    assert np.all(np.diff(result.times_s) >= 0)  # scored in arrival order on a clock that never runs back
    assert out_of_order(times) > 0


def test_with_any_timestamps_a_score_never_depends_on_later_rows() -> None:
    times, values = quirky(seed=9)
    values[2300] += 40
    full = StreamingDetector().replay(times, values).score
    for cut in (900, 1003, 2001, 2300, 2650):
        prefix = StreamingDetector().replay(times[:cut], values[:cut]).score
        assert np.array_equal(prefix, full[:cut])
    assert full[2300] >= THRESHOLD


def test_one_point_at_a_time_equals_replay_whatever_the_timestamps() -> None:
    times, values = quirky(seed=10)
    times, values = times[:900], values[:900]
    times[400:] -= 1800  # another backward jump, early enough to land in the stepped part
    values[700] += 25
    settings = DetectorSettings(cold_start_points=60, refit_hours=3)
    replayed = StreamingDetector(settings).replay(times, values)
    online = StreamingDetector(settings)
    stepped = np.array([online.update(t, v) for t, v in zip(times, values, strict=True)])
    assert np.allclose(stepped[:, 0], replayed.score)
    assert np.allclose(stepped[:, 1], replayed.alarm)


def test_arrival_clock_and_sampling_interval_are_robust_to_quirks() -> None:
    times = np.array([0.0, 300.0, 600.0, 600.0, np.nan, 300.0, 900.0, 4500.0, 4800.0])
    assert arrival_times(times).tolist() == [0, 300, 600, 600, 600, 600, 900, 4500, 4800]
    assert sampling_interval(times) == 300.0


# ---- one set of defaults for any sampling interval ------------------------------------------------
@pytest.mark.parametrize("interval_s", [10.0, 300.0, 3600.0])
def test_the_same_shape_at_any_interval_scores_the_same(interval_s: float) -> None:
    """Scales count points: stretching the clock (and the retraining grid with it) changes nothing.

    (With the wall-clock floors off: they exist to stretch scales on fine-grained data.)
    """
    _, values = daily_series(3, seed=12)
    values[3000] += 30
    stretch = interval_s / MINUTE
    base = DetectorSettings(warmup_days=0, context_minutes=0)
    minute = StreamingDetector(base).replay(START + MINUTE * np.arange(len(values)), values)
    settings = base.with_changes(refit_hours=base.refit_hours * stretch)
    other = StreamingDetector(settings).replay(START * stretch + interval_s * np.arange(len(values)), values)
    assert np.allclose(other.score, minute.score)
    assert other.score[3000] >= THRESHOLD


def test_context_follows_the_detected_interval_with_a_floor_in_points_and_in_time() -> None:
    settings = DetectorSettings()
    assert settings.context_for(10.0) == 60  # 10 minutes of 10-second data
    assert settings.context_for(60.0) == 10
    assert settings.context_for(300.0) == settings.context_for(3600.0) == 2
    assert AlarmPolicy().suppression_for(60.0) == 360 and AlarmPolicy().suppression_for(3600.0) == 72
    times, values = daily_series(2, seed=4)
    gappy = np.delete(np.arange(len(times)), np.arange(100, len(times), 7))  # one point in 7 missing
    result = StreamingDetector(settings).replay(times[gappy], values[gappy])
    assert sampling_interval(times[gappy]) == MINUTE
    assert np.isfinite(result.score).all()


@pytest.mark.parametrize("interval_s", [10.0, 3600.0])
def test_default_settings_find_a_spike_and_stay_quiet_at_any_interval(interval_s: float) -> None:
    rng = np.random.default_rng(3)
    n = 3000
    steps = np.arange(n)
    values = 50 + 10 * np.sin(2 * np.pi * steps / 288) + rng.normal(0, 1, n)
    values[2500] += 40
    result = StreamingDetector().replay(START + interval_s * steps, values)
    assert result.alarm[2500] >= THRESHOLD
    assert (result.alarm[1000:2490] >= THRESHOLD).sum() == 0
