"""Checks every detector member passes (as river's estimator checks): shape, determinism, direction, AUC, no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sreops.detection.settings import DetectorSettings
from sreops.detection.streaming import StreamingDetector

from .conftest import daily_series

MEMBERS = ["novelty", "hbos", "knn", "iforest", "loda"]


def injected(seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three days, then spikes of +30 at known minutes of the third day."""
    times, values = daily_series(3, seed=seed)
    rng = np.random.default_rng(seed)
    spikes = np.sort(rng.choice(np.arange(2 * 1440 + 60, 3 * 1440 - 60, 97), size=10, replace=False))
    values[spikes] += 30
    labels = np.zeros(len(values), dtype=bool)
    labels[spikes] = True
    return times, values, labels


@pytest.mark.parametrize("member", MEMBERS)
def test_member_scores_every_point_in_range_and_deterministically(member: str) -> None:
    times, values, _ = injected()
    first = StreamingDetector(DetectorSettings(member=member)).replay(times, values)
    second = StreamingDetector(DetectorSettings(member=member)).replay(times, values)
    assert first.score.shape == values.shape
    assert np.all((first.score >= 0) & (first.score <= 100))
    assert np.array_equal(first.score, second.score)


@pytest.mark.parametrize("member", MEMBERS)
def test_member_ranks_injected_spikes_above_normal_minutes(member: str) -> None:
    times, values, labels = injected()
    result = StreamingDetector(DetectorSettings(member=member)).replay(times, values)
    scored = times >= times[0] + 2 * 86400  # the third day, after a full day of warm-up
    assert roc_auc_score(labels[scored], result.score[scored]) > 0.9
    assert np.median(result.score[labels]) > np.quantile(result.score[scored & ~labels], 0.99)


@pytest.mark.parametrize("member", MEMBERS)
def test_member_score_of_a_point_ignores_later_points(member: str) -> None:
    times, values, _ = injected()
    settings = DetectorSettings(member=member)
    full = StreamingDetector(settings).replay(times, values).score
    for cut in (1500, 2 * 1440 + 7, 3 * 1440 - 100):
        prefix = StreamingDetector(settings).replay(times[:cut], values[:cut]).score
        assert np.array_equal(prefix, full[:cut])


def test_one_point_at_a_time_equals_replay() -> None:
    times, values = daily_series(0.6, seed=9)
    values[700] += 25
    settings = DetectorSettings(cold_start_hours=2, refit_hours=3)
    replayed = StreamingDetector(settings).replay(times, values)
    online = StreamingDetector(settings)
    stepped = np.array([online.update(t, v) for t, v in zip(times, values, strict=True)])
    assert np.allclose(stepped[:, 0], replayed.score)
    assert np.allclose(stepped[:, 1], replayed.alarm)
