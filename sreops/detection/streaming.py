"""The detector over one series as a stream: the score of a point never depends on a later point.

Points are scored in arrival order against the points before them (`timeline.py`: the clock is
the latest timestamp seen, so backward jumps, duplicates and gaps are just points). A series gets
its first model once it has `cold_start_points` points (the robust baseline scores it until
then); later models are retrained on a UTC-aligned grid (`refit_hours`, daily by default) from
the last `training_points` points before each grid time, exactly as the `detector_models` asset
does. Between two retrainings, the points since the last one count as seen for members that
learn online. `replay` (a whole array) and `update` (one point at a time) run the same code, so
`replay(x)[:i]` equals the scores `update` gave for the first i points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sreops.detection import calibration, explain
from sreops.detection.models import SeriesModel, cold_start_evidence, fit_series_model, score_block
from sreops.detection.neighbours import context_pairs
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.timeline import arrival_times, sampling_interval

MAX_FALLBACKS = 7
ModelProvider = Callable[[float, int, np.ndarray, np.ndarray, np.ndarray], SeriesModel | None]


def grid_fit_times(cold_start_s: float, last_s: float, settings: DetectorSettings) -> list[float]:
    """The retraining grid times after a series' first model, up to `last_s`."""
    times = []
    grid = math.floor(cold_start_s / settings.refit_s) * settings.refit_s + settings.refit_s
    while grid <= last_s:
        times.append(grid)
        grid += settings.refit_s
    return times


def model_time(cold_start_s: float | None, at_s: float, settings: DetectorSettings) -> float | None:
    """The fit time of the model that scores a point at `at_s` (after the cold start; None before)."""
    if cold_start_s is None or at_s < cold_start_s:
        return None
    grid = math.floor(at_s / settings.refit_s) * settings.refit_s
    return grid if grid > cold_start_s else cold_start_s


@dataclass
class PointScores:
    """Scores of a block of points and what they were made of, one entry per point."""

    score: np.ndarray  # 0–100
    surprise: np.ndarray
    magnitude: np.ndarray
    scorer: np.ndarray  # "baseline" or the member
    suppression: np.ndarray  # alarm suppression points for the series' interval (per its model)
    model: SeriesModel | None = None  # the one model that scored the block (None: the baseline)


@dataclass
class StreamResult:
    """Per point of a replayed series: its score, its alarm, and what the score was made of."""

    times_s: np.ndarray  # the arrival clock (monotone)
    values: np.ndarray
    score: np.ndarray  # 0–100, per point
    alarm: np.ndarray  # 0–100 where the score is a new high within the suppression window, else 0
    surprise: np.ndarray
    magnitude: np.ndarray
    scorer: np.ndarray  # "baseline" or the member that scored each point


@dataclass
class StreamingDetector:
    """One series, fed in arrival order; keeps its history and its models.

    The warehouse scores a window of a long series: `points_before` is how many points came
    before the arrays it passes, `first_s` when the series was first seen, and `cold_start_s`
    the time of its first model (its `cold_start_points`-th point) when that lies before them.
    """

    settings: DetectorSettings = field(default_factory=DetectorSettings)
    policy: AlarmPolicy = field(default_factory=AlarmPolicy)
    times_s: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    keep: list[bool] = field(default_factory=list)
    models: dict[float, SeriesModel | None] = field(default_factory=dict)
    first_s: float | None = None
    points_before: int = 0
    cold_start_s: float | None = None
    # (fitted_at, boundary, times, values, keep) -> model; default: fit in memory. The warehouse passes a store.
    model_provider: ModelProvider | None = None
    _alarm_window: calibration.AlarmWindow = field(default_factory=calibration.AlarmWindow)

    # ---- where models start ----------------------------------------------------------------
    def cold_start_time(self, times: np.ndarray) -> float | None:
        """When the series' first model takes over (the time of its cold_start_points-th point), if known."""
        if self.cold_start_s is not None:
            return self.cold_start_s
        local = self.settings.cold_start_points - self.points_before
        return float(times[local]) if 0 <= local < len(times) else None

    def _boundary(self, fitted_at: float, cold: float, times: np.ndarray) -> int:
        """Local position of the first point a model fitted at `fitted_at` did not learn from."""
        at = int(np.searchsorted(times, fitted_at, side="left"))
        if fitted_at == cold:
            at = max(at, self.settings.cold_start_points - self.points_before)
        return at

    def _model_for(
        self, fitted_at: float, boundary: int, times: np.ndarray, values: np.ndarray, keep: np.ndarray
    ) -> SeriesModel | None:
        if fitted_at not in self.models:
            if self.model_provider is not None:
                self.models[fitted_at] = self.model_provider(fitted_at, boundary, times, values, keep)
            else:
                self.models[fitted_at] = fit_series_model(
                    times, values, self.settings, boundary, keep, fitted_at_s=fitted_at
                )
        return self.models[fitted_at]

    # ---- the shared core -------------------------------------------------------------------
    def score_points(
        self, times: np.ndarray, values: np.ndarray, keep: np.ndarray, a: int, b: int
    ) -> PointScores:
        """Scores of points a..b-1, which one model (or the baseline) scores.

        The arrays hold what is known up to b (a replay passes the whole series: nothing at or
        after b is read); `times` is the arrival clock. Blocks must not straddle a model boundary.
        """
        settings = self.settings
        first_seen = float(times[0]) if self.first_s is None else self.first_s
        confidence = settings.confidence(
            np.arange(a, b) + self.points_before, np.asarray(times[a:b]) - first_seen
        )
        cold = self.cold_start_time(times)
        fitted_at = model_time(cold, float(times[a]), settings)
        if a + self.points_before < settings.cold_start_points:
            fitted_at = None
        model = None
        if fitted_at is not None:
            boundary = self._boundary(fitted_at, cold, times)
            model = self._model_for(fitted_at, boundary, times, values, keep)
            # a grid model too short to exist: fall back to the one before it (a week at most)
            for _ in range(MAX_FALLBACKS):
                if model is not None or fitted_at <= cold:
                    break
                previous = fitted_at - settings.refit_s
                fitted_at = previous if previous > cold else cold
                boundary = self._boundary(fitted_at, cold, times)
                model = self._model_for(fitted_at, boundary, times, values, keep)
        if model is None:
            evidence = cold_start_evidence(values[:a], values[a:b])
            zeros = np.zeros(b - a)
            return PointScores(
                calibration.to_score(evidence * confidence),
                zeros,
                zeros,
                np.full(b - a, "baseline", dtype=object),
                np.full(b - a, self.policy.suppression_points),
            )
        context_lo = max(0, boundary - model.context_)
        pairs = context_pairs(values[boundary:b], model.context_, values[context_lo:boundary])
        block = score_block(model, pairs, a - boundary)
        return PointScores(
            calibration.to_score(block.evidence * confidence),
            block.surprise,
            block.magnitude,
            np.full(b - a, model.kind, dtype=object),
            np.full(b - a, self.policy.suppression_for(model.interval_s_)),
            model,
        )

    def model_of(self, times: np.ndarray, i: int) -> SeriesModel | None:
        """The model that scored local point i (None where the baseline did), once scored."""
        if i + self.points_before < self.settings.cold_start_points:
            return None
        cold = self.cold_start_time(times)
        fitted_at = model_time(cold, float(times[i]), self.settings)
        for _ in range(MAX_FALLBACKS + 1):
            model = self.models.get(fitted_at) if fitted_at is not None else None
            if model is not None or fitted_at is None or fitted_at <= cold:
                return model
            previous = fitted_at - self.settings.refit_s
            fitted_at = previous if previous > cold else cold
        return None

    def expected_bands(
        self, times: np.ndarray, values: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The 5–95 % band of values that followed a level like each point's context (explanations).

        References are the model's training pairs plus the points since it, outside the point's
        own context; without a model, every earlier point.
        """
        rows = np.asarray(rows, dtype=int)
        low, high = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
        pairs_by_context: dict[int, np.ndarray] = {}
        default_context = self.settings.context_for(sampling_interval(times))
        for j, i in enumerate(rows):
            model = self.model_of(times, int(i))
            context = model.context_ if model is not None else default_context
            if context not in pairs_by_context:
                pairs_by_context[context] = context_pairs(values, context)
            pairs = pairs_by_context[context]
            if model is not None:
                since = int(np.searchsorted(times, model.trained_until_s, side="left"))
                recent = pairs[since : max(since, i - context)]
                refs = np.vstack([model.explain_refs_, recent]) if len(recent) else model.explain_refs_
            else:
                refs = pairs[:i]
            finite = refs[np.isfinite(refs).all(axis=1)] if len(refs) else refs
            span = np.ptp(finite[:, 1]) if len(finite) else np.nan
            unit = span / self.settings.range_units if np.isfinite(span) and span > 0 else 1.0
            low[j], high[j] = explain.expected_band(refs, pairs[i, 0], unit)
        return low, high

    def boundaries(self, times: np.ndarray) -> list[int]:
        """Local positions where a new model (or the first model) takes over, in order."""
        n = len(times)
        cold = self.cold_start_time(times)
        cuts = []
        local = self.settings.cold_start_points - self.points_before
        if cold is not None and 0 < local < n:
            cuts.append(local)
        if cold is not None:
            for fit in grid_fit_times(cold, float(times[-1]), self.settings):
                cut = int(np.searchsorted(times, fit, side="left"))
                if 0 < cut < n:
                    cuts.append(cut)
        return sorted(set(cuts))

    # ---- whole series ------------------------------------------------------------------------
    def replay(self, times_s: np.ndarray, values: np.ndarray, keep: np.ndarray | None = None) -> StreamResult:
        """Score a whole series as if it streamed in, in the order given (any timestamps)."""
        times = arrival_times(times_s)
        vals = np.asarray(values, dtype=float)
        kept = np.ones(len(times), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        self.times_s, self.values, self.keep = list(times), list(vals), list(kept)
        self.models = {}
        n = len(times)
        score = np.zeros(n)
        surprise = np.zeros(n)
        magnitude = np.zeros(n)
        scorer = np.full(n, "baseline", dtype=object)
        suppression = np.zeros(n, dtype=int)
        if n:
            bounds = [0, *self.boundaries(times), n]
            for a, b in zip(bounds, bounds[1:], strict=False):
                block = self.score_points(times, vals, kept, a, b)
                score[a:b], surprise[a:b], magnitude[a:b] = block.score, block.surprise, block.magnitude
                scorer[a:b], suppression[a:b] = block.scorer, block.suppression
        alarm = calibration.alarm_scores(score, suppression)
        return StreamResult(times, vals, score, alarm, surprise, magnitude, scorer)

    # ---- one point at a time -----------------------------------------------------------------
    def update(self, time_s: float, value: float, keep: bool = True) -> tuple[float, float]:
        """Add one point (any timestamp: the clock never runs back) and return its (score, alarm)."""
        if not self.times_s and not np.isfinite(time_s):
            raise ValueError("the first point of a stream needs a timestamp")
        clock = float(time_s) if np.isfinite(time_s) else self.times_s[-1]
        if self.times_s:
            clock = max(clock, self.times_s[-1])
        self.times_s.append(clock)
        self.values.append(float(value))
        self.keep.append(bool(keep))
        times = np.asarray(self.times_s)
        n = len(times)
        block = self.score_points(times, np.asarray(self.values), np.asarray(self.keep), n - 1, n)
        score = float(block.score[0])
        return score, self._alarm_window.push(n - 1, score, int(block.suppression[0]))
