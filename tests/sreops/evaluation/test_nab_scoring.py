"""The NAB scorer on hand-made cases whose scores are worked out by hand from SCORING.md."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sreops.evaluation import nab

STANDARD, LOW_FP, LOW_FN = nab.PROFILES


def sigma(y: float) -> float:
    """SCORING.md section 4, written out again independently of the module."""
    return -1.0 if y > 3 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def stamps(n: int, duplicate_at: int | None = None) -> pd.Series:
    times = list(pd.date_range("2014-04-01", periods=n, freq="5min"))
    if duplicate_at is not None:
        times.insert(duplicate_at + 1, times[duplicate_at])
        times = times[:n]
    return pd.Series(times)


def labelled(
    n: int = 20, windows: list[tuple[int, int]] = ((10, 13),), name: str = "cat/file.csv"
) -> nab.LabelledFile:
    ts = stamps(n)
    spans = [[str(ts[a]), str(ts[b])] for a, b in windows]
    return nab.LabelledFile(name, ts, nab.window_indices(name, ts, spans))


def normalised(raw: float, windows: int, profile: nab.Profile) -> float:
    null = -profile.fn * windows
    return 100.0 * (raw - null) / (profile.tp * windows - null)


def test_reference_sigmoid_values_match_scoring_md() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.986614, abs=1e-6)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.848284, abs=1e-6)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_probationary_period_is_fifteen_percent_capped_at_750() -> None:
    assert nab.probationary_period(20) == 3
    assert nab.probationary_period(4032) == 604
    assert nab.probationary_period(10_000) == 750.0


def test_detection_on_the_first_window_record_is_perfect() -> None:
    file = labelled()
    scores = np.zeros(20)
    scores[10] = 0.9
    result = nab.score_corpus([file], {file.name: scores}, STANDARD)
    assert result.raw == pytest.approx(1.0)
    assert result.score == pytest.approx(100.0)
    assert result.threshold == pytest.approx(0.9)


def test_late_detection_earns_the_sigmoid_of_its_position() -> None:
    file = labelled()
    scores = np.zeros(20)
    scores[12] = 1.0  # y = -(13 - 12 + 1) / 4 = -0.5
    result = nab.score_corpus([file], {file.name: scores}, STANDARD)
    expected = sigma(-0.5) / sigma(-1.0)
    assert result.raw == pytest.approx(expected)
    assert result.score == pytest.approx(normalised(expected, 1, STANDARD))


def test_false_positive_before_any_window_costs_the_full_weight_and_threshold_keeps_it() -> None:
    file = labelled()
    scores = np.zeros(20)
    scores[5] = 0.95  # detected at every threshold that also catches the window
    scores[10] = 0.9
    standard = nab.score_corpus([file], {file.name: scores}, STANDARD)
    low_fp = nab.score_corpus([file], {file.name: scores}, LOW_FP)
    assert standard.raw == pytest.approx(1.0 - 0.11)
    assert standard.score == pytest.approx(100 * (0.89 + 1) / 2)
    assert low_fp.raw == pytest.approx(1.0 - 0.22)
    assert standard.false_positives == 1


def test_false_positive_after_a_window_is_discounted_by_its_distance() -> None:
    file = labelled()
    scores = np.zeros(20)
    scores[15] = 1.0  # y = (15 - 13) / (4 - 1)
    scores[10] = 1.0
    result = nab.score_corpus([file], {file.name: scores}, STANDARD)
    assert result.raw == pytest.approx(1.0 + 0.11 * sigma(2 / 3))


def test_best_threshold_skips_a_costly_false_positive_above_the_window() -> None:
    file = labelled()
    scores = np.zeros(20)
    scores[4], scores[5], scores[6], scores[7], scores[8], scores[9] = 0.99, 0.98, 0.97, 0.96, 0.95, 0.94
    scores[10] = 0.5
    # six false positives at -0.11 each would be paid to catch the window: 1 - 0.66 = 0.34 > -1
    result = nab.score_corpus([file], {file.name: scores}, STANDARD)
    assert result.raw == pytest.approx(1.0 - 6 * 0.11)
    assert result.threshold == pytest.approx(0.5)


def test_missed_window_costs_the_fn_weight_per_profile() -> None:
    # long files, so that "detect everything" (threshold 0) is never the optimum
    files = [labelled(200, [(100, 103)]), labelled(200, [(150, 153)], name="cat/other.csv")]
    caught = np.zeros(200)
    caught[100] = 1.0
    scores = {files[0].name: caught, files[1].name: np.zeros(200)}
    for profile in (STANDARD, LOW_FN):
        result = nab.score_corpus(files, scores, profile)
        assert result.raw == pytest.approx(1.0 - profile.fn)
        assert result.score == pytest.approx(normalised(1.0 - profile.fn, 2, profile))


def test_detections_in_the_probationary_period_count_for_nothing() -> None:
    file = labelled(200, [(100, 103)])
    scores = np.zeros(200)
    scores[100] = 0.5
    with_early = scores.copy()
    with_early[10] = 1.0  # i = 10 < P = 30
    plain = nab.score_corpus([file], {file.name: scores}, STANDARD)
    early = nab.score_corpus([file], {file.name: with_early}, STANDARD)
    assert early.raw == pytest.approx(plain.raw) == pytest.approx(1.0)
    assert early.false_positives == 0


def test_only_the_earliest_detection_in_a_window_counts_and_ties_change_together() -> None:
    file = labelled()
    scores = np.zeros(20)
    scores[11] = scores[12] = scores[13] = 0.7
    result = nab.score_corpus([file], {file.name: scores}, STANDARD)
    assert result.raw == pytest.approx(sigma(-(13 - 11 + 1) / 4) / sigma(-1))
    assert result.detected_windows == 1


def test_file_without_windows_only_counts_false_positives() -> None:
    quiet = labelled(name="cat/quiet.csv", windows=[])
    busy = labelled()
    scores = {
        quiet.name: np.where(np.arange(20) == 8, 1.0, 0.0),
        busy.name: np.where(np.arange(20) == 10, 1.0, 0.0),
    }
    result = nab.score_corpus([quiet, busy], scores, STANDARD)
    assert result.raw == pytest.approx(1.0 - 0.11)
    assert result.windows == 1


def test_window_edge_is_the_first_occurrence_of_a_duplicated_timestamp() -> None:
    ts = stamps(20, duplicate_at=9)  # records 9 and 10 share a timestamp
    spans = nab.window_indices("cat/dup.csv", ts, [[str(ts[10]), str(ts[14])]])
    assert spans == [(9, 14)]


def test_window_edge_missing_from_the_file_is_an_error() -> None:
    ts = stamps(20)
    with pytest.raises(nab.NabDataError, match="not a timestamp"):
        nab.window_indices("cat/x.csv", ts, [["2020-01-01 00:00:00", str(ts[5])]])


def test_score_count_must_match_the_records() -> None:
    file = labelled()
    with pytest.raises(nab.NabDataError, match="19 anomaly scores for 20 records"):
        nab.score_corpus([file], {file.name: np.zeros(19)}, STANDARD)
