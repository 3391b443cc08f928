"""From raw novelty to a score in 0–100 that means the same on every series and detector.

Two questions make a point anomalous: is it *rare* for this series (its novelty sits in the far tail
of what training saw), and is it *large* (far from anything seen before, in units of the series'
range)? Rarity alone alarms on the noise of quiet series; size alone alarms on every burst of a
bursty one. The evidence is their product, `z = surprise / surprise_scale * magnitude`, and the
score `100 * (1 - exp(-z))` is monotone in it, so one threshold fits every series.

Surprise is `-ln p` with `p` the empirical tail probability of the novelty among the training
sample; beyond the largest value seen, `p` keeps falling with a heavy (Pareto, shape 1) tail so
that "twice as far beyond" is more surprising, yet one wild value cannot dominate the scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sreops.severity import SEVERITY_BANDS, severity_of_score

MIN_CALIBRATION_SAMPLE = 10


@dataclass
class TailCalibrator:
    """The sorted training sample of a raw score; `surprise` is -ln of a value's tail probability."""

    sample_: np.ndarray  # shape (n,), ascending, finite

    @classmethod
    def fit(cls, values: np.ndarray) -> TailCalibrator:
        """Keep the finite values, sorted."""
        values = np.asarray(values, dtype=float)
        return cls(np.sort(values[np.isfinite(values)]))

    @property
    def size(self) -> int:
        return len(self.sample_)

    def surprise(self, values: np.ndarray) -> np.ndarray:
        """-ln P(X >= value) under the training sample, with a heavy tail beyond its maximum (nats >= 0)."""
        values = np.asarray(values, dtype=float)
        n = self.size
        if n < MIN_CALIBRATION_SAMPLE:
            return np.zeros_like(values)
        safe = np.where(np.isfinite(values), values, -np.inf)
        at_least = n - np.searchsorted(self.sample_, safe, side="left")
        p = (at_least + 1.0) / (n + 1.0)
        top = self.sample_[-1]
        span = max(top - self.sample_[n // 2], 1e-12)
        beyond = np.clip(safe - top, 0.0, None) / span
        p = np.where(safe > top, (1.0 / (n + 1.0)) / (1.0 + beyond), p)
        return -np.log(np.clip(p, 1e-300, 1.0))


def evidence(surprise: np.ndarray, magnitude: np.ndarray, surprise_scale: float) -> np.ndarray:
    """Rarity times size: how strongly a point argues for an anomaly (>= 0)."""
    return np.clip(np.asarray(surprise) / surprise_scale, 0.0, None) * np.clip(
        np.asarray(magnitude), 0.0, None
    )


def to_score(z: np.ndarray) -> np.ndarray:
    """Evidence → score in [0, 100): monotone, so ranking and thresholds carry across series."""
    return 100.0 * -np.expm1(-np.clip(np.asarray(z, dtype=float), 0.0, None))


def to_evidence(score: np.ndarray) -> np.ndarray:
    """The inverse of `to_score`."""
    return -np.log1p(-np.clip(np.asarray(score, dtype=float), 0.0, 100.0 - 1e-12) / 100.0)


def severity(score: float) -> str:
    """The severity band of one score."""
    return severity_of_score(score)


def severities(scores: np.ndarray) -> np.ndarray:
    """The severity band of each score."""
    scores = np.asarray(scores, dtype=float)
    out = np.full(scores.shape, "info", dtype=object)
    for floor, name in reversed(SEVERITY_BANDS):
        out[scores >= floor] = name
    return out


class AlarmWindow:
    """The highest recent score of a stream, for windows whose length may change from point to point.

    A monotone stack of (position, score): positions ascending, scores descending, so the highest
    score at positions >= i - span is the first entry there (a binary search). Entries older than
    `horizon` points can never be asked for again and are dropped.
    """

    def __init__(self, horizon: int = 1_000_000) -> None:
        self.horizon = horizon
        self.positions: list[int] = []
        self.scores: list[float] = []
        self.start = 0

    def push(self, position: int, score: float, span: int) -> float:
        """Add a point; return its alarm (its score if it beats every score of the `span` before it)."""
        import bisect

        first = bisect.bisect_left(self.positions, position - span, lo=self.start)
        recent_max = self.scores[first] if first < len(self.scores) else 0.0
        while len(self.scores) > self.start and self.scores[-1] <= score:
            self.scores.pop()
            self.positions.pop()
        self.positions.append(position)
        self.scores.append(score)
        while self.start < len(self.positions) and self.positions[self.start] < position - self.horizon:
            self.start += 1
        if self.start > 1024:
            del self.positions[: self.start], self.scores[: self.start]
            self.start = 0
        return score if score > recent_max else 0.0


def alarm_scores(scores: np.ndarray, suppression_points: int | np.ndarray) -> np.ndarray:
    """The alarm stream: a score counts only when it beats every score of the `suppression_points` before it.

    An ongoing incident thus alarms once and again only if it escalates; everything else is 0.
    `suppression_points` may differ per point (it follows the series' interval). Uses only
    earlier points, so it streams.
    """
    scores = np.asarray(scores, dtype=float)
    span = np.broadcast_to(np.asarray(suppression_points, dtype=int), scores.shape)
    window = AlarmWindow(int(span.max()) + 1 if len(span) else 1)
    return np.array([window.push(i, float(s), int(span[i])) for i, s in enumerate(scores)], dtype=float)
