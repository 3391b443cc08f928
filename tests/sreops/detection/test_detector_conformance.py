"""One conformance test for every registered member (as river's estimator checks, over PyOD's contract).

Each member must be a PyOD `BaseDetector` usable from plain PyOD code, score a stream without
look-ahead, deterministically, in the right shapes, survive a pickle round trip (models are kept
as files), and rank injected anomalies above normal points, both on its own and inside the
streaming detector.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from pyod.models.base import BaseDetector
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from sreops.detection import members
from sreops.detection.neighbours import context_pairs
from sreops.detection.settings import DetectorSettings
from sreops.detection.streaming import StreamingDetector

from .conftest import daily_series

SPECS = [*members.names(), "novelty+hbos"]


def task(seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (context, value) of a noisy daily cycle in range-like units: 600 to train, 300 streamed with spikes."""
    rng = np.random.default_rng(seed)
    n = 900
    steps = np.arange(n)
    values = 10 + 1.5 * np.sin(2 * np.pi * steps / 288) + rng.normal(0, 0.3, n)
    spikes = np.sort(rng.choice(np.arange(620, 890, 9), size=12, replace=False))
    values[spikes] += 10
    labels = np.zeros(n, dtype=bool)
    labels[spikes] = True
    rows = context_pairs(values, 2)
    rows[0, 0] = rows[0, 1]
    return rows[:600], rows[600:], labels[600:]


@pytest.fixture(params=SPECS)
def spec(request: pytest.FixtureRequest) -> str:
    return request.param


def test_member_is_a_pyod_detector_with_its_fitted_attributes(spec: str) -> None:
    train, stream, _ = task()
    member = members.create(spec)
    assert isinstance(member, BaseDetector)
    assert member.fit(train) is member
    assert member.decision_scores_.shape == (len(train),)
    assert np.isfinite(member.decision_scores_).all()
    assert np.isscalar(member.threshold_) and set(np.unique(member.labels_)) <= {0, 1}
    assert member.decision_function(stream).shape == (len(stream),)
    assert set(np.unique(member.predict(stream))) <= {0, 1}
    assert type(clone(member)) is type(member)  # sklearn/PyOD parameter handling works


def test_member_streams_without_look_ahead_deterministically(spec: str) -> None:
    train, stream, _ = task()
    first = members.create(spec).fit(train)
    second = members.create(spec).fit(train)
    full = first.score_stream(stream)
    assert full.shape == (len(stream),)
    assert np.array_equal(full, second.score_stream(stream))
    for cut in (1, 57, 200):
        assert np.array_equal(first.score_stream(stream[:cut]), full[:cut])
    # scoring a later block with the earlier rows as history gives the same scores
    assert np.allclose(first.score_stream(stream, start=150), full[150:])


def test_member_survives_a_pickle_round_trip(spec: str) -> None:
    train, stream, _ = task()
    member = members.create(spec).fit(train)
    again = pickle.loads(pickle.dumps(member))
    assert np.array_equal(again.score_stream(stream), member.score_stream(stream))


def test_member_ranks_injected_spikes_above_normal_rows(spec: str) -> None:
    train, stream, labels = task()
    member = members.create(spec).fit(train)
    raw = member.score_stream(stream)
    assert roc_auc_score(labels, raw) > 0.9
    evidence = member.evidence(raw)
    assert (evidence >= 0).all()
    assert np.median(evidence[labels]) > np.quantile(evidence[~labels], 0.9)


def injected(seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three days of minutes, then spikes of +30 at known minutes of the third day."""
    times, values = daily_series(3, seed=seed)
    rng = np.random.default_rng(seed)
    spikes = np.sort(rng.choice(np.arange(2 * 1440 + 60, 3 * 1440 - 60, 97), size=10, replace=False))
    values[spikes] += 30
    labels = np.zeros(len(values), dtype=bool)
    labels[spikes] = True
    return times, values, labels


# ECOD and COPOD score row by row (too slow for three days of minutes); the baseline is the
# cold-start rule, blind to a daily cycle by design (it has no context).
MODEL_MEMBERS = [s for s in SPECS if s not in ("ecod", "copod", "baseline")]


@pytest.mark.parametrize("spec", MODEL_MEMBERS)
def test_streaming_detector_with_member_scores_in_range_and_finds_spikes(spec: str) -> None:
    times, values, labels = injected()
    settings = DetectorSettings(member=spec)
    result = StreamingDetector(settings).replay(times, values)
    assert result.score.shape == values.shape
    assert np.all((result.score >= 0) & (result.score <= 100))
    scored = times >= times[0] + 2 * 86400  # the third day, after a full day of warm-up
    assert roc_auc_score(labels[scored], result.score[scored]) > 0.9
    cut = 2 * 1440 + 7
    prefix = StreamingDetector(settings).replay(times[:cut], values[:cut]).score
    assert np.array_equal(prefix, result.score[:cut])


def test_unknown_members_are_refused_with_the_list_of_known_ones() -> None:
    with pytest.raises(ValueError, match="novelty"):
        DetectorSettings(member="magic")
    assert members.is_known("novelty+knn") and not members.is_known("novelty+magic")
