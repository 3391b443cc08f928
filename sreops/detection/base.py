"""The detector contract: PyOD's `BaseDetector`, plus what scoring a stream needs.

Every member is a `pyod.models.base.BaseDetector` subclass, so it works in plain PyOD code
(`fit`, `decision_function`, `decision_scores_`, `threshold_`, `labels_`, `predict`). Rows are
feature vectors in time order; the first two columns are the context level and the value of a
point, in units of 1/`range_units` of the series' training range (`models.feature_rows`).

What a stream adds to PyOD:
- `score_stream(X, start)` scores rows `X[start:]`, which arrived after the fitted ones; row i
  may use the fitted state and rows `X[:i]`, never a later row (a member that learns online,
  like `novelty`, counts them as seen);
- `evidence(raw)` turns raw scores into evidence >= 0 that means the same on every series:
  by default the tail surprise of a raw score among `decision_scores_` times its size
  (`magnitude`), so one threshold serves every series and member (`calibration.py`).

Raw scores follow PyOD: higher is more anomalous. Heavy libraries (PyOD, sklearn) are imported
by this module, so only the members and the model code import it, never the code location.
"""

from __future__ import annotations

import numpy as np
from pyod.models.base import BaseDetector

from sreops.detection import calibration


class StreamMember(BaseDetector):
    """A PyOD detector that can also score a stream without look-ahead and calibrate its scores."""

    name = "member"  # the registry name (`members.REGISTRY`)

    def __init__(self, surprise_scale: float = 10.0, contamination: float = 0.01) -> None:
        super().__init__(contamination=contamination)
        self.surprise_scale = surprise_scale

    # ---- PyOD ---------------------------------------------------------------------------------
    def fit(self, X, y=None, order=None):  # noqa: ANN001 (PyOD's signature)
        """Learn from rows in time order (`order`: their stream positions, default 0..n-1)."""
        X = self._check(X)
        self._fit(X, self._order(order, len(X)))
        self.decision_scores_ = np.asarray(self._training_scores(X), dtype=float)
        if len(self.decision_scores_):
            self._process_decision_scores()
        else:  # nothing to learn from yet (a cold start): nothing is an outlier by the threshold
            self.threshold_, self.labels_ = np.inf, np.zeros(0, dtype=int)
        self.calibrator_ = calibration.TailCalibrator.fit(self.decision_scores_)
        finite = self.decision_scores_[np.isfinite(self.decision_scores_)]
        low, high = np.quantile(finite, [0.5, 0.99]) if len(finite) else (0.0, 1.0)
        self.median_score_ = float(low)
        self.score_spread_ = float(max(high - low, 1e-12))
        return self

    def decision_function(self, X) -> np.ndarray:  # noqa: ANN001
        """Raw score of each row, each on its own against the fitted state (PyOD semantics)."""
        X = self._check(X)
        return np.asarray(self._decision(X), dtype=float)

    # ---- streams ------------------------------------------------------------------------------
    def score_stream(self, X, start: int = 0, order=None) -> np.ndarray:  # noqa: ANN001
        """Raw scores of rows `X[start:]`; rows `X[:start]` arrived earlier (after the fitted ones).

        Row i sees the fitted state and rows before i only. `order` holds the stream positions of
        the rows (default: following the fitted rows). Members that do not learn online ignore
        the earlier rows.
        """
        X = self._check(X)
        return np.asarray(self._decision(X[start:]), dtype=float)

    def magnitude(self, raw: np.ndarray) -> np.ndarray:
        """The size of a deviation, comparable across series: training spreads above the median."""
        raw = np.asarray(raw, dtype=float)
        out = (raw - self.median_score_) / self.score_spread_
        return np.where(np.isfinite(out), np.clip(out, 0.0, None), 0.0)

    def evidence(self, raw: np.ndarray) -> np.ndarray:
        """Rarity times size (>= 0): how strongly each raw score argues for an anomaly."""
        raw = np.asarray(raw, dtype=float)
        return calibration.evidence(self.calibrator_.surprise(raw), self.magnitude(raw), self.surprise_scale)

    # ---- what a member implements ---------------------------------------------------------------
    def _fit(self, X: np.ndarray, order: np.ndarray) -> None:
        raise NotImplementedError

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores of the training rows (the calibration sample); default: the fitted model's own."""
        return self._decision(X)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _check(X) -> np.ndarray:  # noqa: ANN001
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise ValueError(f"expected rows of features (n_samples, n_features), got shape {X.shape}")
        return X

    @staticmethod
    def _order(order, n: int) -> np.ndarray:  # noqa: ANN001
        return np.arange(n, dtype=float) if order is None else np.asarray(order, dtype=float)
