"""The rows of `anomalies` for a scored hour: pure functions from a detector's output to a frame.

One row per series-minute (score, severity, the expected band of minutes scoring at least minor,
the explanation entry, the event tag, the model that scored it) and one per service-minute
(metric `'*'`: the highest series score and the series that drove it, Elastic's influencer level).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from sreops.detection import calibration, explain
from sreops.detection.artifacts import model_id
from sreops.detection.events import Event, event_tags
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.store import SERVICE_METRIC
from sreops.detection.streaming import StreamingDetector
from sreops.timeutil import from_epoch

SERVICE_DETECTOR = "service"


def seconds(minutes: np.ndarray) -> np.ndarray:
    """Epoch seconds of datetime64 minutes."""
    return (np.asarray(minutes, dtype="datetime64[ns]") - np.datetime64(0, "ns")) / np.timedelta64(1, "s")


def keep_mask(minutes: np.ndarray, service: str, events: list[Event]) -> np.ndarray:
    """True for the minutes no deploy, maintenance or labelled window covers (those train)."""
    return np.array([tag is None for tag in event_tags(minutes, service, events)], dtype=bool)


def series_rows(
    detector: StreamingDetector,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    service: str,
    metric: str,
    minutes: np.ndarray,
    values: np.ndarray,
    hour: dt.datetime,
    events: list[Event],
    now: dt.datetime,
) -> dict[str, np.ndarray]:
    """The series-minute rows of `hour` for one series, as columns.

    `minutes` (datetime64[ns], ascending) and `values` are the series' points read for the hour:
    its context and the points since its model, then the hour's. Columns, not a frame: a frame
    per series costs more than scoring its hour; `frame_of` joins every series' columns at the end.
    """
    times = seconds(minutes)
    keep = keep_mask(minutes, service, events)
    start = int(np.searchsorted(times, (hour - dt.datetime(1970, 1, 1)).total_seconds(), side="left"))
    n = len(times)
    cuts = sorted({start, n, *(c for c in detector.boundaries(times) if start < c < n)})
    pieces = [detector.score_points(times, values, keep, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    score = np.concatenate([p.score for p in pieces])
    magnitude = np.concatenate([p.magnitude for p in pieces])
    scorer = np.concatenate([p.scorer for p in pieces])
    explanation = np.full(n - start, None, dtype=object)
    # one model scores each piece (pieces never straddle a model boundary)
    model_ids = np.concatenate(
        [
            np.full(
                len(p.score),
                model_id((settings.version, service, metric, from_epoch(p.model.trained_until_s)))
                if p.model is not None and p.model.trained_until_s
                else None,
                dtype=object,
            )
            for p in pieces
        ]
    )
    explained = np.flatnonzero(score >= explain.EXPLAIN_FROM_SCORE)
    low = np.full(n - start, np.nan)
    high = np.full(n - start, np.nan)
    if len(explained):
        low[explained], high[explained] = detector.expected_bands(times, values, start + explained)
    for offset in explained:
        explanation[offset] = json.dumps(
            [explain.series_entry(metric, values[start + offset], low[offset], high[offset], score[offset])]
        )
    tags = np.array(event_tags(minutes[start:], service, events), dtype=object)
    count = n - start
    return {
        "minute": minutes[start:],
        "service": np.full(count, service, dtype=object),
        "metric": np.full(count, metric, dtype=object),
        "detector": np.asarray(scorer, dtype=object),
        "version": np.full(count, settings.version, dtype=object),
        "score": np.round(score, 4),
        "is_anomaly": score >= policy.threshold,
        "severity": np.asarray(calibration.severities(score), dtype=object),
        "value": values[start:],
        "expected_low": low,
        "expected_high": high,
        "novelty": np.round(magnitude, 6),
        "explanation": explanation,
        "event": tags,
        "model_id": model_ids,
        "scored_at": np.full(count, np.datetime64(now, "us")),
    }


def frame_of(parts: list[dict[str, np.ndarray]], columns: tuple[str, ...]) -> pd.DataFrame:
    """One frame of every series' row columns (`series_rows`), in `columns` order; empty when none."""
    if not parts:
        return pd.DataFrame(columns=list(columns))
    return pd.DataFrame({name: np.concatenate([p[name] for p in parts]) for name in columns})


def service_rows(
    series_rows: pd.DataFrame, policy: AlarmPolicy, version: str, now: dt.datetime
) -> pd.DataFrame:
    """Per service-minute: the highest series score, and every series that contributed (influencers)."""
    if series_rows.empty:
        return series_rows
    rows = series_rows.reset_index(drop=True)
    # the shipped rule (service.highest): the series with the highest score gives the service's
    top = rows.loc[rows.groupby(["service", "minute"], sort=True)["score"].idxmax()].reset_index(drop=True)
    entries: dict[tuple, list[dict]] = {}
    explained = rows[rows["explanation"].notna()]
    for service, minute, text in zip(
        explained["service"], explained["minute"], explained["explanation"], strict=True
    ):
        entries.setdefault((service, minute), []).extend(json.loads(text))
    influencers = [
        explain.service_explanation(entries.get((service, minute), []))
        for service, minute in zip(top["service"], top["minute"], strict=True)
    ]
    tagged = rows[rows["event"].notna()]
    events: dict[tuple, str] = {}
    for service, minute, tag in zip(tagged["service"], tagged["minute"], tagged["event"], strict=True):
        if events.get((service, minute)) != "maintenance":
            events[(service, minute)] = tag
    return pd.DataFrame(
        {
            "minute": top["minute"],
            "service": top["service"],
            "metric": SERVICE_METRIC,
            "detector": SERVICE_DETECTOR,
            "version": version,
            "score": top["score"].astype(float),
            "is_anomaly": top["score"] >= policy.threshold,
            "severity": calibration.severities(top["score"].to_numpy(dtype=float)),
            "value": np.nan,
            "expected_low": np.nan,
            "expected_high": np.nan,
            "novelty": top["novelty"].astype(float),
            "explanation": [json.dumps(i) if i else None for i in influencers],
            "event": [events.get((s, m)) for s, m in zip(top["service"], top["minute"], strict=True)],
            "model_id": None,
            "scored_at": now,
        }
    )
