"""Calibration: tail surprise, scores, severities, the alarm stream."""

from __future__ import annotations

import numpy as np
import pytest

from sreops.detection import calibration


def test_surprise_is_minus_log_of_the_empirical_tail_inside_the_sample() -> None:
    calibrator = calibration.TailCalibrator.fit(np.arange(1.0, 100.0))  # 99 values
    # 10 of 99 values are >= 90: p = (10 + 1) / (99 + 1)
    assert calibrator.surprise(np.array([90.0]))[0] == pytest.approx(-np.log(11 / 100))
    assert calibrator.surprise(np.array([-5.0]))[0] == pytest.approx(0.0)


def test_surprise_keeps_growing_beyond_the_largest_value_with_a_heavy_tail() -> None:
    calibrator = calibration.TailCalibrator.fit(np.linspace(0, 10, 1000))
    at_max, just_past, beyond, far = calibrator.surprise(np.array([10.0, 10.0 + 1e-9, 15.0, 1000.0]))
    assert at_max < just_past < beyond < far
    # one span (max - median) past the maximum halves the tail probability
    assert beyond - just_past == pytest.approx(np.log(2), rel=1e-3)
    # polynomial, not exponential: 200 spans out is only ln(200) more surprising
    assert far - just_past == pytest.approx(np.log(1 + 990 / 4.995), rel=1e-3)


def test_too_small_a_sample_gives_no_surprise() -> None:
    assert calibration.TailCalibrator.fit(np.arange(5.0)).surprise(np.array([100.0]))[0] == 0.0


def test_score_is_monotone_bounded_and_invertible() -> None:
    z = np.array([0.0, 0.1, 1.0, 5.0, 50.0])
    scores = calibration.to_score(z)
    assert np.all(np.diff(scores) > 0)
    assert scores[0] == 0.0 and scores[-1] <= 100.0
    assert calibration.to_evidence(scores[:4]) == pytest.approx(z[:4])


def test_evidence_needs_both_rarity_and_size() -> None:
    assert calibration.evidence(np.array([9.0]), np.array([0.0]), 10.0)[0] == 0.0
    assert calibration.evidence(np.array([0.0]), np.array([50.0]), 10.0)[0] == 0.0
    assert calibration.evidence(np.array([9.0]), np.array([2.0]), 10.0)[0] == pytest.approx(1.8)


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "info"), (2.9, "info"), (3, "warning"), (25, "minor"), (60, "major"), (75, "critical")],
)
def test_severity_bands(score: float, band: str) -> None:
    assert calibration.severity(score) == band
    assert calibration.severities(np.array([score]))[0] == band


def test_alarm_fires_on_new_highs_within_the_suppression_window_only() -> None:
    scores = np.array([80, 70, 90, 85, 10, 10, 10, 50, 40], dtype=float)
    alarms = calibration.alarm_scores(scores, suppression_points=3)
    assert alarms.tolist() == [80, 0, 90, 0, 0, 0, 0, 50, 0]
