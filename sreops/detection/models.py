"""What training keeps per series, how it is fitted, and how a point is scored against it.

A `SeriesModel` (fitted state with trailing underscores, as PyOD does) holds the reference pairs
of the training window, the value range they span, and the calibration sample: the novelty of
every training pair against the others. Scoring a point needs the model plus the points since
training (the caller passes them), so what was seen after the model was trained counts as seen.

The default member is `novelty` (nearest earlier context pair). The PyOD members (`hbos`,
`iforest`, `knn`, `lof`, `ecod`, `copod`, `loda`) are fitted on the same pairs (plus their
difference), calibrated the same way, and exist so the choice between them is measured: see
`docs/detection.md`. Series with too little history get `baseline_scores` (a robust median/MAD
rule) until their first model.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sreops.detection import calibration
from sreops.detection.novelty import ReferenceIndex, context_pairs, leave_out_distances, nearest_earlier
from sreops.detection.settings import DetectorSettings

BASELINE_FLOOR_Z = 5.0  # robust z below this is noise for a series we barely know
BASELINE_Z_PER_EVIDENCE = 5.0  # each further 5 robust z adds one unit of evidence
MAX_PYOD_TRAIN = 4000  # PyOD members are fitted on at most this many (most recent) points


class ModelError(RuntimeError):
    """A model file is missing or unreadable; the message names the file."""


def _pyod_detector(name: str):
    """A PyOD detector with the defaults used in the measurements (heavy import kept here)."""
    if name == "hbos":
        from pyod.models.hbos import HBOS

        return HBOS()
    if name == "iforest":
        from pyod.models.iforest import IForest

        return IForest(n_estimators=100, max_samples=256, random_state=0)
    if name == "knn":
        from pyod.models.knn import KNN

        return KNN(n_neighbors=5)
    if name == "lof":
        from pyod.models.lof import LOF

        return LOF(n_neighbors=20)
    if name == "ecod":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "copod":
        from pyod.models.copod import COPOD

        return COPOD()
    if name == "loda":
        from pyod.models.loda import LODA

        return LODA(random_state=0) if "random_state" in LODA.__init__.__code__.co_varnames else LODA()
    raise ValueError(f"no PyOD member named {name!r}")


def _pyod_scores(detector, rows: np.ndarray) -> np.ndarray:
    """Raw scores of new rows, one at a time for detectors whose batch scoring mixes rows (ECOD, COPOD)."""
    if type(detector).__name__ in {"ECOD", "COPOD"}:
        return np.array([detector.decision_function(rows[i : i + 1])[0] for i in range(len(rows))])
    return detector.decision_function(rows)


@dataclass
class SeriesModel:
    """One series' fitted state: reference pairs, value range and calibration sample."""

    version: str
    kind: str  # settings.member
    trained_until_s: float  # learned from points strictly before this (epoch seconds)
    train_start_s: float
    refs_: np.ndarray  # (n, 2) context pairs of the training window
    ref_times_: np.ndarray  # (n,) their times, ascending
    low_: float  # value range of the training window
    high_: float
    calibration_: np.ndarray  # sorted raw scores of the training points (novelty in range units)
    pyod_: object | None = None  # fitted PyOD detector (PyOD members only)
    pyod_center_: np.ndarray | None = None
    pyod_spread_: float = 1.0  # training raw score spread (q99 - q50), the PyOD magnitude unit
    _index: ReferenceIndex | None = field(default=None, repr=False)
    _calibrator: calibration.TailCalibrator | None = field(default=None, repr=False)

    @property
    def points(self) -> int:
        return len(self.ref_times_)

    def index(self, context_s: float) -> ReferenceIndex:
        """The k-d tree over the reference pairs (built once)."""
        if self._index is None:
            self._index = ReferenceIndex(self.refs_, self.ref_times_, self.trained_until_s - context_s)
        return self._index

    @property
    def calibrator(self) -> calibration.TailCalibrator:
        if self._calibrator is None:
            self._calibrator = calibration.TailCalibrator(np.asarray(self.calibration_, dtype=float))
        return self._calibrator

    def save(self, path: Path) -> None:
        """Arrays and metadata in one `.npz`; a PyOD detector, if any, pickled inside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "version": self.version,
            "kind": self.kind,
            "trained_until_s": self.trained_until_s,
            "train_start_s": self.train_start_s,
            "low": self.low_,
            "high": self.high_,
            "pyod_spread": self.pyod_spread_,
        }
        extra = {}
        if self.pyod_ is not None:
            extra["pyod"] = np.frombuffer(pickle.dumps(self.pyod_), dtype=np.uint8)
            extra["pyod_center"] = np.asarray(self.pyod_center_, dtype=float)
        partial = path.with_name(path.name + ".part")
        with open(partial, "wb") as handle:
            np.savez_compressed(
                handle,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                refs=self.refs_,
                ref_times=self.ref_times_,
                calibration=self.calibration_,
                **extra,
            )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> SeriesModel:
        """A model saved by `save`."""
        try:
            data = np.load(io.BytesIO(Path(path).read_bytes()), allow_pickle=False)
            meta = json.loads(data["meta"].tobytes().decode())
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(
                f"detector model {path} cannot be read ({exc}); retrain with detector_models"
            ) from exc
        model = cls(
            version=meta["version"],
            kind=meta["kind"],
            trained_until_s=float(meta["trained_until_s"]),
            train_start_s=float(meta["train_start_s"]),
            refs_=data["refs"],
            ref_times_=data["ref_times"],
            low_=float(meta["low"]),
            high_=float(meta["high"]),
            calibration_=data["calibration"],
            pyod_spread_=float(meta.get("pyod_spread", 1.0)),
        )
        if "pyod" in data.files:
            model.pyod_ = pickle.loads(data["pyod"].tobytes())
            model.pyod_center_ = data["pyod_center"]
        return model


def _unit(low: float, high: float, settings: DetectorSettings) -> float:
    """The size of one novelty unit: 1/range_units of the value range (never zero)."""
    span = high - low
    if not np.isfinite(span) or span <= 0:
        span = max(abs(high), 1.0) * 1e-6 if np.isfinite(high) else 1e-6
    return span / settings.range_units


def _pyod_rows(pairs: np.ndarray, center: np.ndarray, unit: float) -> np.ndarray:
    rows = np.column_stack([pairs[:, 0], pairs[:, 1], pairs[:, 1] - pairs[:, 0]])
    return (rows - center) / unit


def fit_series_model(
    times_s: np.ndarray,
    values: np.ndarray,
    settings: DetectorSettings,
    until_s: float,
    keep: np.ndarray | None = None,
) -> SeriesModel | None:
    """Train on the points in [until_s - training window, until_s); None when there are too few.

    `keep` (bool per point) drops points from training, e.g. deploy and maintenance minutes;
    they still serve as context for their neighbours.
    """
    times_s = np.asarray(times_s, dtype=float)
    values = np.asarray(values, dtype=float)
    lo = int(np.searchsorted(times_s, until_s - settings.training_s, side="left"))
    hi = int(np.searchsorted(times_s, until_s, side="left"))
    context_lo = (
        int(np.searchsorted(times_s, times_s[lo] - settings.context_s, side="left")) if hi > lo else lo
    )
    pairs = context_pairs(times_s[context_lo:hi], values[context_lo:hi], settings.context_s)[
        lo - context_lo :
    ]
    times = times_s[lo:hi]
    usable = np.isfinite(pairs).all(axis=1)
    if keep is not None:
        usable &= np.asarray(keep[lo:hi], dtype=bool)
    if usable.sum() < settings.min_points:
        return None
    refs, ref_times = pairs[usable], times[usable]
    low, high = float(np.min(refs[:, 1])), float(np.max(refs[:, 1]))
    unit = _unit(low, high, settings)
    model = SeriesModel(
        version=settings.version,
        kind=settings.member,
        trained_until_s=float(until_s),
        train_start_s=float(ref_times[0]),
        refs_=refs,
        ref_times_=ref_times,
        low_=low,
        high_=high,
        calibration_=np.empty(0),
    )
    if settings.member == "novelty":
        model.calibration_ = np.sort(leave_out_distances(refs, ref_times, settings.context_s) / unit)
        model.calibration_ = model.calibration_[np.isfinite(model.calibration_)]
        return model
    recent = slice(max(0, len(refs) - MAX_PYOD_TRAIN), len(refs))
    center = np.median(np.column_stack([refs[:, 0], refs[:, 1], refs[:, 1] - refs[:, 0]]), axis=0)
    rows = _pyod_rows(refs[recent], center, unit)
    detector = _pyod_detector(settings.member).fit(rows)
    raw = np.asarray(detector.decision_scores_, dtype=float)
    q50, q99 = np.quantile(raw, [0.5, 0.99])
    model.pyod_, model.pyod_center_ = detector, center
    model.pyod_spread_ = float(max(q99 - q50, 1e-12))
    model.calibration_ = np.sort(raw)
    return model


@dataclass
class BlockScores:
    """Raw material of scores for a block of points, one entry per point."""

    score: np.ndarray  # 0–100
    surprise: np.ndarray  # nats
    magnitude: np.ndarray  # range units (novelty) or training spreads (PyOD)
    neighbour: np.ndarray  # index into the model's refs, or -len(recent)-1.. for recent refs (-1 = none)


def score_block(
    model: SeriesModel,
    settings: DetectorSettings,
    pairs: np.ndarray,
    times_s: np.ndarray,
    recent_pairs: np.ndarray,
    recent_times_s: np.ndarray,
    running_low: np.ndarray,
    running_high: np.ndarray,
) -> BlockScores:
    """Score points after `model.trained_until_s` given the points since then (`recent_*`, time-ordered).

    `running_low/high` are the value range known before each point (model range plus recent values).
    """
    unit = (running_high - running_low) / settings.range_units
    unit = np.where(unit > 0, unit, _unit(model.low_, model.high_, settings))
    if model.kind == "novelty":
        dist, idx = model.index(settings.context_s).query(pairs, times_s, settings.context_s)
        if len(recent_pairs):
            d2, i2 = nearest_earlier(pairs, times_s, recent_pairs, recent_times_s, settings.context_s)
            closer = d2 < dist
            dist = np.where(closer, d2, dist)
            idx = np.where(closer, -2 - i2, idx)
        magnitude = np.where(np.isfinite(dist), dist / unit, 0.0)
        surprise = model.calibrator.surprise(magnitude)
    else:
        rows = _pyod_rows(pairs, model.pyod_center_, _unit(model.low_, model.high_, settings))
        ok = np.isfinite(rows).all(axis=1)
        raw = np.full(len(rows), -np.inf)
        if ok.any():
            raw[ok] = _pyod_scores(model.pyod_, rows[ok])
        q50 = float(np.quantile(model.calibration_, 0.5)) if len(model.calibration_) else 0.0
        magnitude = np.where(ok, np.clip(raw - q50, 0.0, None) / model.pyod_spread_, 0.0)
        surprise = model.calibrator.surprise(raw)
        idx = np.full(len(rows), -1, dtype=np.int64)
    z = calibration.evidence(surprise, magnitude, settings.surprise_scale)
    return BlockScores(calibration.to_score(z), surprise, magnitude, idx)


def baseline_scores(history: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cold start: a robust z-score rule over all history so far, deliberately slow to alarm.

    `history` holds the values before the first of `values`; each value also sees the ones before it.
    """
    values = np.asarray(values, dtype=float)
    seen = list(np.asarray(history, dtype=float)[np.isfinite(history)])
    out = np.zeros(len(values))
    for i, value in enumerate(values):
        if len(seen) >= 5 and np.isfinite(value):
            sample = np.asarray(seen)
            median = float(np.median(sample))
            spread = 1.4826 * float(np.median(np.abs(sample - median)))
            spread = max(spread, 0.01 * abs(median), 1e-9)
            robust_z = abs(value - median) / spread
            out[i] = float(calibration.to_score((robust_z - BASELINE_FLOOR_Z) / BASELINE_Z_PER_EVIDENCE))
        if np.isfinite(value):
            seen.append(value)
    return out
