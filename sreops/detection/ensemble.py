"""An ensemble member: several members fitted on the same rows, their evidence averaged.

Each member's evidence is already calibrated (rarity times size on its own training sample), so
the mean of evidence is a rank-free average in the sense of PyOD's `combination.average` over
standardised scores. Named by joining members with '+', e.g. `novelty+hbos`.
"""

from __future__ import annotations

import numpy as np

from sreops.detection.base import StreamMember


class EnsembleMember(StreamMember):
    """The mean evidence of its members; its raw score *is* that evidence.

    Attributes
    ----------
    members_ : the fitted members, in the order named.
    decision_scores_ : (n_samples,) the mean evidence of the training rows.
    """

    name = "ensemble"

    def __init__(
        self, members: tuple = (), surprise_scale: float = 10.0, contamination: float = 0.01
    ) -> None:
        super().__init__(surprise_scale=surprise_scale, contamination=contamination)
        self.members = tuple(members)

    def _fit(self, X: np.ndarray, order: np.ndarray) -> None:
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        self.members_ = [member.fit(X, order=order) for member in self.members]

    def _training_scores(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.evidence(m.decision_scores_) for m in self.members_], axis=0)

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.evidence(m.decision_function(X)) for m in self.members_], axis=0)

    def score_stream(self, X, start: int = 0, order=None) -> np.ndarray:  # noqa: ANN001
        return np.mean([m.evidence(m.score_stream(X, start, order)) for m in self.members_], axis=0)

    def evidence(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(raw, dtype=float), 0.0, None)
