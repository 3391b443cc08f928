"""The detector over one series as a stream: the score of a point never depends on a later point.

Models are retrained on a UTC-aligned grid (`refit_hours`, daily by default) from the trailing
`training_days` before each grid time, exactly as the `detector_models` asset does; between two
retrainings, the points since the last one count as seen (they join the reference pairs as they
arrive). A series' first model comes `cold_start_hours` after its first point; before that the
robust baseline scores it. `replay` (a whole array) and `update` (one point at a time) run the
same code, so `replay(x)[:i]` equals the scores `update` gave for the first i points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sreops.detection import calibration
from sreops.detection.models import SeriesModel, baseline_scores, fit_series_model, score_block
from sreops.detection.novelty import context_pairs
from sreops.detection.settings import AlarmPolicy, DetectorSettings


def fit_times(first_s: float, last_s: float, settings: DetectorSettings) -> list[float]:
    """When models are trained for a series first seen at `first_s`: after the cold start, then the grid."""
    start = first_s + settings.cold_start_s
    if start > last_s:
        return []
    times = [start]
    grid = math.floor(start / settings.refit_s) * settings.refit_s + settings.refit_s
    while grid <= last_s:
        times.append(grid)
        grid += settings.refit_s
    return times


def model_time(first_s: float, at_s: float, settings: DetectorSettings) -> float | None:
    """The training time of the model that scores a point at `at_s` (the latest fit time <= at_s)."""
    start = first_s + settings.cold_start_s
    if at_s < start:
        return None
    grid = math.floor(at_s / settings.refit_s) * settings.refit_s
    return grid if grid > start else start


@dataclass
class StreamResult:
    """Per point of a replayed series: its score, its alarm, and what the score was made of."""

    times_s: np.ndarray
    values: np.ndarray
    score: np.ndarray  # 0–100, per point
    alarm: np.ndarray  # 0–100 where the score is a new high within the suppression window, else 0
    surprise: np.ndarray
    magnitude: np.ndarray
    scorer: np.ndarray  # "baseline" or the member that scored each point


@dataclass
class StreamingDetector:
    """One series, fed in time order; keeps its history and its models."""

    settings: DetectorSettings = field(default_factory=DetectorSettings)
    policy: AlarmPolicy = field(default_factory=AlarmPolicy)
    times_s: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    keep: list[bool] = field(default_factory=list)
    models: dict[float, SeriesModel | None] = field(default_factory=dict)
    first_s: float | None = None  # when the series was first seen (default: its first point here)
    # (fitted_at, times, values, keep) -> model; default: fit in memory. The warehouse passes a store.
    model_provider: Callable[[float, np.ndarray, np.ndarray, np.ndarray], SeriesModel | None] | None = None
    _alarm_window: list[tuple[float, float]] = field(default_factory=list)

    # ---- the shared core -------------------------------------------------------------------
    def _model_for(
        self, at_s: float, times: np.ndarray, values: np.ndarray, keep: np.ndarray
    ) -> SeriesModel | None:
        """The newest trained model usable at `at_s` (training only ever sees points before its time)."""
        first_seen = float(times[0]) if self.first_s is None else self.first_s
        fitted_at = model_time(first_seen, at_s, self.settings)
        while fitted_at is not None:
            if fitted_at not in self.models:
                if self.model_provider is not None:
                    self.models[fitted_at] = self.model_provider(fitted_at, times, values, keep)
                else:
                    self.models[fitted_at] = fit_series_model(times, values, self.settings, fitted_at, keep)
            if self.models[fitted_at] is not None:
                return self.models[fitted_at]
            first = first_seen + self.settings.cold_start_s
            if fitted_at <= first:
                return None
            previous = fitted_at - self.settings.refit_s
            fitted_at = previous if previous > first else first
        return None

    def score_points(self, times: np.ndarray, values: np.ndarray, keep: np.ndarray, a: int, b: int):
        """(score, surprise, magnitude, scorer) of points a..b-1, which one model scores.

        The arrays hold what is known up to b (a replay passes the whole series: nothing at or
        after b is read). Blocks must not straddle a fit time (see `fit_times`).
        """
        first_seen = float(times[0]) if self.first_s is None else self.first_s
        confidence = self.settings.confidence(times[a:b] - first_seen)
        model = self._model_for(float(times[a]), times, values, keep)
        if model is None:
            scores = calibration.to_score(
                calibration.to_evidence(baseline_scores(values[:a], values[a:b])) * confidence
            )
            zeros = np.zeros(b - a)
            return scores, zeros, zeros, np.full(b - a, "baseline", dtype=object)
        since = int(np.searchsorted(times, model.trained_until_s, side="left"))
        context_lo = int(np.searchsorted(times, times[since] - self.settings.context_s, side="left"))
        pairs = context_pairs(times[context_lo:b], values[context_lo:b], self.settings.context_s)
        pairs = pairs[since - context_lo :]
        recent_values = values[since:b]
        # the value range known before each point: the model's, widened by what arrived since
        finite = np.where(np.isfinite(recent_values), recent_values, np.nan)
        low_so_far = np.fmin.accumulate(np.concatenate([[model.low_], finite]))[:-1]
        high_so_far = np.fmax.accumulate(np.concatenate([[model.high_], finite]))[:-1]
        q = slice(a - since, b - since)
        block = score_block(
            model,
            self.settings,
            pairs[q],
            times[a:b],
            pairs[: b - since],
            times[since:b],
            low_so_far[q],
            high_so_far[q],
        )
        score = calibration.to_score(calibration.to_evidence(block.score) * confidence)
        return score, block.surprise, block.magnitude, np.full(b - a, model.kind, dtype=object)

    # ---- whole series ------------------------------------------------------------------------
    def replay(self, times_s: np.ndarray, values: np.ndarray, keep: np.ndarray | None = None) -> StreamResult:
        """Score a whole series (time-ordered; duplicates and gaps allowed) as if it streamed in."""
        times = np.asarray(times_s, dtype=float)
        vals = np.asarray(values, dtype=float)
        kept = np.ones(len(times), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        if len(times) and np.any(np.diff(times) < 0):
            raise ValueError("replay needs points in time order (equal timestamps are fine)")
        self.times_s, self.values, self.keep = list(times), list(vals), list(kept)
        self.models = {}
        n = len(times)
        score = np.zeros(n)
        surprise = np.zeros(n)
        magnitude = np.zeros(n)
        scorer = np.full(n, "baseline", dtype=object)
        if n:
            bounds = [0]
            first_seen = float(times[0]) if self.first_s is None else self.first_s
            for fitted_at in fit_times(first_seen, float(times[-1]), self.settings):
                cut = int(np.searchsorted(times, fitted_at, side="left"))
                if bounds[-1] < cut < n:
                    bounds.append(cut)
            bounds.append(n)
            for a, b in zip(bounds, bounds[1:], strict=False):
                s, su, m, k = self.score_points(times, vals, kept, a, b)
                score[a:b], surprise[a:b], magnitude[a:b], scorer[a:b] = s, su, m, k
        alarm = calibration.alarm_scores(times, score, self.policy.suppression_hours * 3600.0)
        return StreamResult(times, vals, score, alarm, surprise, magnitude, scorer)

    # ---- one point at a time -----------------------------------------------------------------
    def update(self, time_s: float, value: float, keep: bool = True) -> tuple[float, float]:
        """Add one point (not earlier than the last) and return its (score, alarm)."""
        if self.times_s and time_s < self.times_s[-1]:
            raise ValueError(f"point at {time_s} is earlier than the last one ({self.times_s[-1]})")
        self.times_s.append(float(time_s))
        self.values.append(float(value))
        self.keep.append(bool(keep))
        times = np.asarray(self.times_s)
        n = len(times)
        score = float(
            self.score_points(times, np.asarray(self.values), np.asarray(self.keep), n - 1, n)[0][0]
        )
        window = self._alarm_window
        horizon = time_s - self.policy.suppression_hours * 3600.0
        while window and window[0][0] < horizon:
            window.pop(0)
        recent_max = max((s for _, s in window), default=0.0)
        while window and window[-1][1] <= score:
            window.pop()
        window.append((float(time_s), score))
        return score, (score if score > recent_max else 0.0)
