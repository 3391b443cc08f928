"""Why a point scored high: the observed value against the band of values typical from its context.

For a series-minute, the band is the 5–95 % range of the values that followed a similar recent
level in the references (model training window plus the points since): "from a level of ~40, the
next value is usually 38–43; it was 97". For a service-minute, the explanation lists the series
that drove the score with their share of the evidence (Elastic's influencers).
"""

from __future__ import annotations

import numpy as np

from sreops.detection import calibration

BAND_QUANTILES = (0.05, 0.95)
MIN_NEIGHBOURS = 10
EXPLAIN_FROM_SCORE = 25.0  # bands are computed for points at least this anomalous (minor and up)


def expected_band(refs: np.ndarray, context: float, unit: float) -> tuple[float, float]:
    """The 5–95 % band of reference values whose context lies within one unit of `context`.

    With fewer than `MIN_NEIGHBOURS` such references, the nearest `MIN_NEIGHBOURS` by context.
    """
    refs = np.asarray(refs, dtype=float)
    refs = refs[np.isfinite(refs).all(axis=1)] if len(refs) else refs
    if len(refs) == 0 or not np.isfinite(context):
        return float("nan"), float("nan")
    gap = np.abs(refs[:, 0] - context)
    near = refs[gap <= unit, 1]
    if len(near) < MIN_NEIGHBOURS:
        near = refs[np.argsort(gap, kind="stable")[:MIN_NEIGHBOURS], 1]
    low, high = np.quantile(near, BAND_QUANTILES)
    return float(low), float(high)


def series_entry(metric: str, observed: float, low: float, high: float, score: float) -> dict:
    """One explanation entry (the contract of `alerts.details.explanation`)."""
    return {
        "metric": metric,
        "feature": "value",
        "observed": _clean(observed),
        "expected_low": _clean(low),
        "expected_high": _clean(high),
        "score": round(float(score), 2),
        "contribution": 1.0,
    }


def service_explanation(
    entries: list[dict], min_score: float = calibration.SEVERITY_BANDS[-2][0]
) -> list[dict]:
    """Series entries of one service-minute, as shares of the evidence, strongest first."""
    strong = [e for e in entries if e["score"] >= min_score]
    if not strong:
        return []
    weights = np.array([float(calibration.to_evidence(e["score"])) for e in strong])
    total = float(weights.sum()) or 1.0
    out = [dict(e, contribution=round(float(w / total), 3)) for e, w in zip(strong, weights, strict=True)]
    return sorted(out, key=lambda e: (-e["contribution"], e["metric"]))


def _clean(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None
