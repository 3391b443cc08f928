"""What training keeps per series, how it is fitted, and how points are scored against it.

A `SeriesModel` (fitted state with trailing underscores, as PyOD does) holds one fitted member
(`members.py`) and how the series' rows were put in its units: each point becomes a row
`(context, value)` of `novelty.context_pairs`, centred on the training median and divided by
1/`range_units` of the training range, so distances mean the same on every series. Stream
positions are counted from the model's boundary (the first point it did not learn from):
training rows are -n..-1, the points since are 0, 1, 2, …, which is what the exclusion zone of
an online member needs and what the warehouse can reproduce from any window it reads.

Scoring a point needs the model plus the points since its boundary (the caller passes them), so
what was seen after training counts as seen for members that learn online.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sreops.detection import members
from sreops.detection.neighbours import context_pairs
from sreops.detection.settings import DetectorSettings
from sreops.detection.timeline import sampling_interval

EXPLAIN_REFS = 2000  # reference pairs kept (evenly spaced) for the expected band of explanations


class ModelError(RuntimeError):
    """A model file is missing or unreadable; the message names the file."""


def unit_of(low: float, high: float, settings: DetectorSettings) -> float:
    """The size of one novelty unit: 1/range_units of the value range (never zero)."""
    span = high - low
    if not np.isfinite(span) or span <= 0:
        span = max(abs(high), 1.0) * 1e-6 if np.isfinite(high) else 1e-6
    return span / settings.range_units


@dataclass
class SeriesModel:
    """One series' fitted state: a member in the series' range units, and what explanations need."""

    version: str
    kind: str  # settings.member
    trained_until_s: float  # the fit time: learned from the points before it (epoch seconds)
    train_start_s: float
    points: int  # training rows
    context_: int  # context points of its rows (settings.context_for the detected interval)
    interval_s_: float  # the sampling interval detected in its training window (NaN: unknown)
    center_: float  # rows are (pair - center_) / unit_
    unit_: float
    low_: float  # value range of the training window
    high_: float
    member_: object  # the fitted StreamMember
    explain_refs_: np.ndarray  # (<= EXPLAIN_REFS, 2) raw context pairs of the training window

    def rows(self, pairs: np.ndarray) -> np.ndarray:
        """Context pairs in this model's units."""
        return (np.asarray(pairs, dtype=float) - self.center_) / self.unit_

    def save(self, path: Path) -> None:
        """Arrays and metadata in one `.npz`; the fitted member pickled inside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "version": self.version,
            "kind": self.kind,
            "trained_until_s": self.trained_until_s,
            "train_start_s": self.train_start_s,
            "points": self.points,
            "context": self.context_,
            "interval_s": None if not np.isfinite(self.interval_s_) else self.interval_s_,
            "center": self.center_,
            "unit": self.unit_,
            "low": self.low_,
            "high": self.high_,
        }
        partial = path.with_name(path.name + ".part")
        with open(partial, "wb") as handle:
            np.savez_compressed(
                handle,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                member=np.frombuffer(pickle.dumps(self.member_), dtype=np.uint8),
                explain_refs=self.explain_refs_,
            )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> SeriesModel:
        """A model saved by `save` (files under the data directory, written by this code)."""
        try:
            data = np.load(io.BytesIO(Path(path).read_bytes()), allow_pickle=False)
            meta = json.loads(data["meta"].tobytes().decode())
            member = pickle.loads(data["member"].tobytes())
            return cls(
                version=meta["version"],
                kind=meta["kind"],
                trained_until_s=float(meta["trained_until_s"]),
                train_start_s=float(meta["train_start_s"]),
                points=int(meta["points"]),
                context_=int(meta["context"]),
                interval_s_=float("nan") if meta.get("interval_s") is None else float(meta["interval_s"]),
                center_=float(meta["center"]),
                unit_=float(meta["unit"]),
                low_=float(meta["low"]),
                high_=float(meta["high"]),
                member_=member,
                explain_refs_=data["explain_refs"],
            )
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, AttributeError) as exc:
            raise ModelError(
                f"detector model {path} cannot be read ({exc}); retrain with detector_models"
            ) from exc


def fit_series_model(
    times_s: np.ndarray,
    values: np.ndarray,
    settings: DetectorSettings,
    boundary: int,
    keep: np.ndarray | None = None,
    fitted_at_s: float | None = None,
) -> SeriesModel | None:
    """Train on the last `training_points` points before position `boundary`; None when too few.

    `keep` (bool per point) drops points from training, e.g. deploy and maintenance minutes;
    they still serve as context for their neighbours. `times_s` (an arrival clock) gives the
    sampling interval, and with it the model's context length; the points before the training
    window serve as its first points' context. `fitted_at_s` names the model (default: the time
    of the boundary point).
    """
    times_s = np.asarray(times_s, dtype=float)
    values = np.asarray(values, dtype=float)
    hi = min(int(boundary), len(values))
    lo = max(0, hi - settings.training_points)
    interval = sampling_interval(times_s[lo:hi])
    context = settings.context_for(interval)
    context_lo = max(0, lo - context)
    pairs = context_pairs(values[lo:hi], context, values[context_lo:lo])
    usable = np.isfinite(pairs).all(axis=1)
    if keep is not None:
        usable &= np.asarray(keep[lo:hi], dtype=bool)
    if usable.sum() < settings.min_points:
        return None
    refs = pairs[usable]
    order = (np.arange(lo, hi) - hi)[usable].astype(float)
    low, high = float(np.min(refs[:, 1])), float(np.max(refs[:, 1]))
    center = float(np.median(refs[:, 1]))
    unit = unit_of(low, high, settings)
    member = members.create(settings.member, context, settings.surprise_scale)
    member.fit((refs - center) / unit, order=order)
    keep_rows = np.unique(np.linspace(0, len(refs) - 1, min(len(refs), EXPLAIN_REFS)).round().astype(int))
    if fitted_at_s is None:
        fitted_at_s = float(times_s[hi]) if hi < len(times_s) else float(times_s[hi - 1]) + 1.0
    return SeriesModel(
        version=settings.version,
        kind=settings.member,
        trained_until_s=float(fitted_at_s),
        train_start_s=float(times_s[lo:hi][usable][0]),
        points=int(len(refs)),
        context_=int(context),
        interval_s_=float(interval) if interval else float("nan"),
        center_=center,
        unit_=unit,
        low_=low,
        high_=high,
        member_=member,
        explain_refs_=refs[keep_rows],
    )


@dataclass
class BlockScores:
    """What scores of a block of points were made of, one entry per point."""

    evidence: np.ndarray  # >= 0, before the warm-up's confidence
    surprise: np.ndarray  # nats (0 where the member has no training sample)
    magnitude: np.ndarray  # the member's size of the deviation (novelty: range units)


def score_block(model: SeriesModel, pairs_since: np.ndarray, start: int) -> BlockScores:
    """Score rows `start:` of the context pairs of the points since the model's boundary.

    Rows before `start` arrived earlier; an online member counts them as seen. The value range
    known before each point (the model's, widened by what arrived since) scales the evidence down
    when the series has since spread out, so one wild value does not make every later one loud.
    """
    member = model.member_
    X = model.rows(pairs_since)
    order = np.arange(len(X), dtype=float)
    raw = member.score_stream(X, start, order)
    recent = np.asarray(pairs_since[:, 1], dtype=float)
    finite = np.where(np.isfinite(recent), recent, np.nan)
    low_before = np.fmin.accumulate(np.concatenate([[model.low_], finite]))[:-1][start:]
    high_before = np.fmax.accumulate(np.concatenate([[model.high_], finite]))[:-1][start:]
    widening = (model.high_ - model.low_) / np.maximum(high_before - low_before, 1e-300)
    widening = np.where(np.isfinite(widening) & (widening > 0), np.minimum(widening, 1.0), 1.0)
    calibrator = getattr(member, "calibrator_", None)
    surprise = calibrator.surprise(raw) if calibrator is not None else np.zeros(len(raw))
    return BlockScores(
        evidence=member.evidence(raw) * widening,
        surprise=surprise,
        magnitude=member.magnitude(raw) * widening,
    )


def cold_start_evidence(history: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Evidence of points before a series' first model: the robust baseline over all history so far.

    `history` holds the values before the first of `values`; each value also sees the ones before it.
    """
    baseline = members.create(members.COLD_START)
    empty = np.zeros((0, 2))
    baseline.fit(empty)
    history = np.asarray(history, dtype=float)
    values = np.asarray(values, dtype=float)
    rows = np.column_stack([np.zeros(len(history) + len(values)), np.concatenate([history, values])])
    return baseline.evidence(baseline.score_stream(rows, start=len(history)))
