"""The cold-start member: a robust z-score of the value against all of the series' history so far.

A series we barely know is scored by how many robust standard deviations (MAD) its value lies
from the median of everything seen before it, and the rule is deliberately slow to alarm: below
|z| = 5 it is noise, each further 5 adds one unit of evidence. No training sample to calibrate
against exists yet, so `evidence` is this fixed rule rather than rarity times size.
"""

from __future__ import annotations

import numpy as np

from sreops.detection.base import StreamMember

FLOOR_Z = 5.0  # robust z below this is noise for a series we barely know
Z_PER_EVIDENCE = 5.0  # each further 5 robust z adds one unit of evidence
MIN_HISTORY = 5


def _robust_z(sample: np.ndarray, value: float) -> float:
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    spread = max(spread, 0.01 * abs(median), 1e-9)
    return abs(value - median) / spread


class RobustBaseline(StreamMember):
    """|value - median| / MAD over the history (column 1 of the rows); every scored row joins it.

    Attributes
    ----------
    history_ : (n,) the finite training values.
    decision_scores_ : (n,) each training value's robust z against the values before it (0 with
        fewer than 5 before it).
    """

    name = "baseline"

    def __init__(self, surprise_scale: float = 10.0, contamination: float = 0.01) -> None:
        super().__init__(surprise_scale=surprise_scale, contamination=contamination)

    def _fit(self, X: np.ndarray, order: np.ndarray) -> None:
        values = X[:, 1]
        self.history_ = values[np.isfinite(values)]

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        return self._sequential(np.zeros(0), X[:, 1])

    def _decision(self, X: np.ndarray) -> np.ndarray:
        values = X[:, 1]
        if len(self.history_) < MIN_HISTORY:
            return np.zeros(len(values))
        return np.array([_robust_z(self.history_, v) if np.isfinite(v) else 0.0 for v in values])

    @staticmethod
    def _sequential(history: np.ndarray, values: np.ndarray) -> np.ndarray:
        seen = list(history)
        out = np.zeros(len(values))
        for i, value in enumerate(values):
            if len(seen) >= MIN_HISTORY and np.isfinite(value):
                out[i] = _robust_z(np.asarray(seen), value)
            if np.isfinite(value):
                seen.append(value)
        return out

    def score_stream(self, X, start: int = 0, order=None) -> np.ndarray:  # noqa: ANN001
        X = self._check(X)
        earlier = X[:start, 1]
        history = np.concatenate([self.history_, earlier[np.isfinite(earlier)]])
        return self._sequential(history, X[start:, 1])

    def evidence(self, raw: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(raw, dtype=float) - FLOOR_Z) / Z_PER_EVIDENCE, 0.0, None)
