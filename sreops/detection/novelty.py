"""Novelty: how far a value, seen from its recent level, is from everything seen before it.

Each point becomes a pair `(context, value)`: the mean of the `context` points before it, and
the value itself. A pair's novelty is the Euclidean distance to the nearest pair that ended
before its own context began (an exclusion zone, as in a left matrix profile, so a point is never
"explained" by the samples it is made of). A new level, a spike, a dip that never happened from
this level, all sit far from every earlier pair; a daily transition seen every day does not.
This is k-nearest-neighbour outlier detection (PyOD's `KNN` with k = 1) whose reference set grows
with the stream, so what has been seen once is no longer novel.

Positions, not clock times, order the stream: rows are points in arrival order, so duplicate,
irregular or backward-jumping timestamps change nothing here.
"""

from __future__ import annotations

import numpy as np

from sreops.detection.base import StreamMember
from sreops.detection.neighbours import ReferenceIndex, leave_out_distances, nearest_earlier


class NoveltyDetector(StreamMember):
    """Distance to the nearest earlier row beyond an exclusion zone; learns every row it scores.

    Parameters
    ----------
    exclusion : rows this close in order to a query are never its neighbour (the context length).
    surprise_scale, contamination : as `StreamMember`.

    Attributes
    ----------
    refs_ : (n_samples, n_features) the training rows (finite ones), in order.
    order_ : (n_samples,) their stream positions.
    decision_scores_ : (n_samples,) each training row's distance to its nearest other row beyond
        the exclusion zone, in either direction (higher = more novel).
    """

    name = "novelty"

    def __init__(self, exclusion: int = 2, surprise_scale: float = 10.0, contamination: float = 0.01) -> None:
        super().__init__(surprise_scale=surprise_scale, contamination=contamination)
        self.exclusion = exclusion

    def _fit(self, X: np.ndarray, order: np.ndarray) -> None:
        ok = np.isfinite(X).all(axis=1)
        self.refs_, self.order_ = X[ok], order[ok]
        self._training_rows = ok
        self._index = None

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(X))
        finite = leave_out_distances(self.refs_, self.order_, self.exclusion)
        scores[self._training_rows] = np.where(np.isfinite(finite), finite, 0.0)
        return scores

    @property
    def index(self) -> ReferenceIndex:
        """The k-d tree over the training rows (built once, on first use)."""
        if getattr(self, "_index", None) is None:
            last = float(self.order_[-1]) if len(self.order_) else 0.0
            self._index = ReferenceIndex(self.refs_, self.order_, last - self.exclusion)
        return self._index

    def _decision(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        dist, _ = self.index.query(X, np.full(len(X), np.inf), self.exclusion)
        return np.where(np.isfinite(dist), dist, 0.0)

    def neighbours(self, X, start: int = 0, order=None) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
        """(distance, neighbour) of rows `X[start:]`: index into `refs_`, or -2 - i for stream row i."""
        X = self._check(X)
        last = float(self.order_[-1]) if len(self.order_) else -1.0
        order = np.arange(last + 1, last + 1 + len(X)) if order is None else np.asarray(order, dtype=float)
        queries, query_order = X[start:], order[start:]
        dist, idx = self.index.query(queries, query_order, self.exclusion)
        if start > 0 or len(X) > 1:
            d2, i2 = nearest_earlier(queries, query_order, X, order, self.exclusion)
            closer = d2 < dist
            dist = np.where(closer, d2, dist)
            idx = np.where(closer, -2 - i2, idx)
        return dist, idx

    def score_stream(self, X, start: int = 0, order=None) -> np.ndarray:  # noqa: ANN001
        dist, _ = self.neighbours(X, start, order)
        return np.where(np.isfinite(dist), dist, 0.0)

    def magnitude(self, raw: np.ndarray) -> np.ndarray:
        """The distance itself: rows are in range units, so a novelty of 1 is 1/range_units of the range."""
        raw = np.asarray(raw, dtype=float)
        return np.where(np.isfinite(raw), np.clip(raw, 0.0, None), 0.0)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_index"] = None  # the tree is rebuilt on load
        return state
