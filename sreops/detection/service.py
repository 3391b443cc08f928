"""How a service-minute is scored from the scores of its series, and the rules measured for it.

The shipped rule is Elastic's influencer level: a service-minute scores the highest of its
series, and its explanation lists the series that drove it. `corroborated` (the evidence of
every series at or above a floor, summed) judges a service's metrics together, so that several
moderately unusual metrics in the same minute add up; `bench_service_rules` measures both on
many-metric services (docs/detection.md: it catches barely more and costs false incidents, so
the maximum stays).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sreops.detection import calibration


def highest(series_scores: pd.DataFrame) -> pd.Series:
    """Per (service, minute): the highest series score."""
    return series_scores.groupby(["service", "minute"], sort=True)["score"].max()


def corroborated(series_scores: pd.DataFrame, floor: float = 50.0) -> pd.Series:
    """Per (service, minute): the summed evidence of the series scoring at least `floor` (or the highest)."""
    score = series_scores["score"].to_numpy(dtype=float)
    evidence = calibration.to_evidence(np.where(score >= floor, score, 0.0))
    keys = [series_scores["service"], series_scores["minute"]]
    total = pd.Series(evidence, index=series_scores.index).groupby(keys, sort=True).sum()
    top = calibration.to_evidence(highest(series_scores).to_numpy())
    return pd.Series(calibration.to_score(np.maximum(total.to_numpy(), top)), index=total.index)


RULES = {"max": highest, "corroborated": corroborated}


def service_scores(series_scores: pd.DataFrame, rule: str = "max") -> pd.Series:
    """Per (service, minute) score under one of `RULES`."""
    if rule not in RULES:
        raise ValueError(f"service rule {rule!r} is not one of {', '.join(RULES)}")
    return RULES[rule](series_scores)
