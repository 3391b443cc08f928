"""PyOD's detectors as members: the same rows, schedule, calibration and alarm as `novelty`.

Each member fits one PyOD detector on the rows `(context, value, value - context)` of the
training window and scores new rows with it until the next
retraining: they do not learn between retrainings, which is why `novelty` exists. ECOD and COPOD
score a batch transductively (a row's score depends on the others in the batch), so a stream is
scored one row at a time. They exist so the choice of member is measured (docs/detection.md).
"""

from __future__ import annotations

import numpy as np

from sreops.detection.base import StreamMember


class PyODMember(StreamMember):
    """A fitted PyOD detector behind the stream contract; subclasses say which one (`build`)."""

    transductive = False  # batch scores depend on each other: score a stream row by row

    def build(self):  # noqa: ANN201 (a PyOD detector)
        raise NotImplementedError

    @staticmethod
    def _rows(X: np.ndarray) -> np.ndarray:
        return np.column_stack([X[:, 0], X[:, 1], X[:, 1] - X[:, 0]])

    def _fit(self, X: np.ndarray, order: np.ndarray) -> None:
        rows = self._rows(X)
        self._finite_rows = np.isfinite(rows).all(axis=1)
        if self._finite_rows.sum() < 2:
            raise ValueError(
                f"{self.name} needs at least 2 finite training rows, got {self._finite_rows.sum()}"
            )
        self.detector_ = self.build().fit(rows[self._finite_rows])

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.detector_.decision_scores_, dtype=float)
        out = np.full(len(X), float(np.min(scores)))
        out[self._finite_rows] = scores
        return out

    def _decision(self, X: np.ndarray) -> np.ndarray:
        rows = self._rows(X)
        ok = np.isfinite(rows).all(axis=1)
        out = np.full(len(rows), -np.inf)
        if ok.any():
            if self.transductive:
                out[ok] = [self.detector_.decision_function(rows[i : i + 1])[0] for i in np.flatnonzero(ok)]
            else:
                out[ok] = self.detector_.decision_function(rows[ok])
        return out


class KNNMember(PyODMember):
    """PyOD `KNN` (k = 5, largest distance)."""

    name = "knn"

    def build(self):  # noqa: ANN201
        from pyod.models.knn import KNN

        return KNN(n_neighbors=5)


class HBOSMember(PyODMember):
    """PyOD `HBOS` (histogram-based)."""

    name = "hbos"

    def build(self):  # noqa: ANN201
        from pyod.models.hbos import HBOS

        return HBOS()


class IForestMember(PyODMember):
    """PyOD `IForest` (100 trees of min(256, n) samples, seeded)."""

    name = "iforest"

    def build(self):  # noqa: ANN201
        from pyod.models.iforest import IForest

        return IForest(n_estimators=100, max_samples="auto", random_state=0)


class LOFMember(PyODMember):
    """PyOD `LOF` (k = 20)."""

    name = "lof"

    def build(self):  # noqa: ANN201
        from pyod.models.lof import LOF

        return LOF(n_neighbors=20)


class ECODMember(PyODMember):
    """PyOD `ECOD` (empirical-CDF tails), scored row by row."""

    name = "ecod"
    transductive = True

    def build(self):  # noqa: ANN201
        from pyod.models.ecod import ECOD

        return ECOD()


class COPODMember(PyODMember):
    """PyOD `COPOD` (copula tails), scored row by row."""

    name = "copod"
    transductive = True

    def build(self):  # noqa: ANN201
        from pyod.models.copod import COPOD

        return COPOD()


class LODAMember(PyODMember):
    """PyOD `LODA` (random projections; seeded)."""

    name = "loda"

    def build(self):  # noqa: ANN201
        from pyod.models.loda import LODA

        return LODA(random_state=0)
