"""The warehouse side of detection: train models as of a time, and score hours into `anomalies`.

`score_hour` scores every minute of every series that has features in the hour, with the model
trained at the latest fit time not after that minute (no look-ahead: that model only saw earlier
minutes), then writes one row per series-minute and one per service-minute (metric `'*'`: the
service score and the series that drove it) under the detector version, replacing what that
version had for the hour. Models missing from the store are trained on the spot from the
warehouse, so a replay of a past hour under a new version needs nothing prepared.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sreops import warehouse
from sreops.detection import calibration, explain
from sreops.detection.events import Event, event_tags
from sreops.detection.models import fit_series_model
from sreops.detection.novelty import context_pairs
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.store import FileModelStore, MemoryModelStore, ModelKey, model_id, register
from sreops.detection.streaming import StreamingDetector, fit_times, model_time

SERVICE_METRIC = "*"
SERVICE_DETECTOR = "service"
HOUR = dt.timedelta(hours=1)
ANOMALY_COLUMNS = (
    "minute",
    "service",
    "metric",
    "detector",
    "version",
    "score",
    "is_anomaly",
    "severity",
    "value",
    "expected_low",
    "expected_high",
    "novelty",
    "explanation",
    "event",
    "model_id",
    "scored_at",
)
Store = FileModelStore | MemoryModelStore


def _epoch(moment: dt.datetime) -> float:
    return (moment - dt.datetime(1970, 1, 1)).total_seconds()


def _from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(seconds))


def _naive_hour(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(minute=0, second=0, microsecond=0)


def first_seen(warehouse_path: str | Path | None, before: dt.datetime) -> dict[tuple[str, str], dt.datetime]:
    """The first feature minute of every series that has one before `before`."""
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT service, metric, min(minute) FROM metric_features_1m WHERE minute < ? GROUP BY ALL",
            [before],
        ).fetchall()
    return {(s, m): first for s, m, first in rows}


def read_values(
    warehouse_path: str | Path | None,
    start: dt.datetime,
    end: dt.datetime,
    series: set[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Minute means of every series (or those named) in [start, end), ordered by series and minute."""
    with warehouse.connect(warehouse_path) as con:
        frame = con.execute(
            "SELECT service, metric, minute, mean AS value FROM metric_features_1m"
            " WHERE minute >= ? AND minute < ? ORDER BY service, metric, minute",
            [start, end],
        ).df()
    if series is not None and not frame.empty:
        wanted = (
            pd.MultiIndex.from_tuples(sorted(series)) if series else pd.MultiIndex.from_tuples([("", "")])
        )
        frame = frame[pd.MultiIndex.from_frame(frame[["service", "metric"]]).isin(wanted)]
    return frame


def _keep_mask(minutes: np.ndarray, service: str, events: list[Event]) -> np.ndarray:
    return np.array([tag is None for tag in event_tags(minutes, service, events)], dtype=bool)


@dataclass
class TrainReport:
    """What `train_models` did."""

    trained: int = 0
    reused: int = 0
    too_short: int = 0
    points: int = 0
    keys: list[ModelKey] = field(default_factory=list)


def train_models(
    warehouse_path: str | Path | None,
    settings: DetectorSettings,
    store: Store,
    fitted_at: dict[tuple[str, str], dt.datetime],
    events: list[Event] = (),
) -> TrainReport:
    """Make sure the model of each series for its fit time exists in the store (train the missing ones)."""
    report = TrainReport()
    missing = {}
    for series, at in fitted_at.items():
        key = (settings.version, series[0], series[1], at)
        if store.load_model(key) is not None:
            report.reused += 1
        else:
            missing[series] = at
    if not missing:
        return report
    span = dt.timedelta(seconds=settings.training_s + settings.context_s)
    frame = read_values(warehouse_path, min(missing.values()) - span, max(missing.values()), set(missing))
    registry = []
    for (service, metric), part in frame.groupby(["service", "metric"], sort=True):
        at = missing.pop((service, metric))
        minutes = part["minute"].to_numpy(dtype="datetime64[ns]")
        times = (minutes - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
        keep = _keep_mask(minutes, service, list(events))
        model = fit_series_model(times, part["value"].to_numpy(dtype=float), settings, _epoch(at), keep)
        key = (settings.version, service, metric, at)
        if model is None:
            report.too_short += 1
            continue
        registry.append((key, model, store.save_model(key, model)))
        report.trained += 1
        report.points += model.points
        report.keys.append(key)
    report.too_short += len(missing)
    register(warehouse_path, registry)
    return report


def train_as_of(
    warehouse_path: str | Path | None,
    at: dt.datetime,
    settings: DetectorSettings,
    store: Store,
    events: list[Event] = (),
) -> TrainReport:
    """The `detector_models` step: the model each series will score with at `at`, trained if missing."""
    first = first_seen(warehouse_path, at)
    fitted = {}
    for series, seen in first.items():
        when = model_time(_epoch(seen), _epoch(at), settings)
        if when is not None:
            fitted[series] = _from_epoch(when)
    return train_models(warehouse_path, settings, store, fitted, events)


@dataclass
class HourScores:
    """What `score_hour` wrote for one hour and version."""

    hour: dt.datetime
    version: str
    series: int
    rows: int
    anomalies: int
    frame: pd.DataFrame  # the rows written


def _series_rows(
    detector: StreamingDetector,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    service: str,
    metric: str,
    part: pd.DataFrame,
    hour: dt.datetime,
    events: list[Event],
    now: dt.datetime,
) -> pd.DataFrame:
    minutes = part["minute"].to_numpy(dtype="datetime64[ns]")
    times = (minutes - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
    values = part["value"].to_numpy(dtype=float)
    keep = _keep_mask(minutes, service, events)
    start = int(np.searchsorted(times, _epoch(hour), side="left"))
    n = len(times)
    cuts = (
        [start]
        + [
            int(np.searchsorted(times, f, side="left"))
            for f in fit_times(detector.first_s, float(times[-1]), settings)
            if _epoch(hour) < f <= float(times[-1])
        ]
        + [n]
    )
    cuts = sorted(set(cuts))
    pieces = [detector.score_points(times, values, keep, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    score = np.concatenate([p[0] for p in pieces])
    magnitude = np.concatenate([p[2] for p in pieces])
    scorer = np.concatenate([p[3] for p in pieces])
    low = np.full(n - start, np.nan)
    high = np.full(n - start, np.nan)
    explanation = np.full(n - start, None, dtype=object)
    model_ids = np.full(n - start, None, dtype=object)
    pairs = context_pairs(times, values, settings.context_s)
    ids: dict[float | None, str | None] = {}
    version = settings.version
    for offset in range(n - start):
        i = start + offset
        model_at = model_time(detector.first_s, times[i], settings)
        model = detector.models.get(model_at) if model_at is not None else None
        if model_at not in ids:
            until = _from_epoch(model.trained_until_s) if model is not None else None
            ids[model_at] = model_id((version, service, metric, until)) if until is not None else None
        model_ids[offset] = ids[model_at]
        if score[offset] < explain.EXPLAIN_FROM_SCORE:
            continue
        if model is not None:
            since = int(np.searchsorted(times, model.trained_until_s, side="left"))
            recent = pairs[since:i][times[since:i] < times[i] - settings.context_s]
            refs = np.vstack([model.refs_, recent]) if len(recent) else model.refs_
        else:
            refs = pairs[:i]
        span = np.nanmax(refs[:, 1]) - np.nanmin(refs[:, 1]) if len(refs) else np.nan
        unit = span / settings.range_units if np.isfinite(span) and span > 0 else 1.0
        low[offset], high[offset] = explain.expected_band(refs, pairs[i, 0], unit)
        explanation[offset] = json.dumps(
            [explain.series_entry(metric, values[i], low[offset], high[offset], score[offset])]
        )
    tags = event_tags(minutes[start:], service, events)
    return pd.DataFrame(
        {
            "minute": part["minute"].to_numpy()[start:],
            "service": service,
            "metric": metric,
            "detector": scorer,
            "version": settings.version,
            "score": np.round(score, 4),
            "is_anomaly": score >= policy.threshold,
            "severity": calibration.severities(score),
            "value": values[start:],
            "expected_low": low,
            "expected_high": high,
            "novelty": np.round(magnitude, 6),
            "explanation": explanation,
            "event": tags,
            "model_id": model_ids,
            "scored_at": now,
        }
    )


def service_rows(
    series_rows: pd.DataFrame, policy: AlarmPolicy, version: str, now: dt.datetime
) -> pd.DataFrame:
    """Per service-minute: the highest series score, and every series that contributed (influencers)."""
    if series_rows.empty:
        return series_rows
    rows = series_rows.reset_index(drop=True)
    top = rows.loc[rows.groupby(["service", "minute"], sort=True)["score"].idxmax()].reset_index(drop=True)
    entries: dict[tuple, list[dict]] = {}
    explained = rows[rows["explanation"].map(lambda e: isinstance(e, str))]
    for service, minute, text in zip(
        explained["service"], explained["minute"], explained["explanation"], strict=True
    ):
        entries.setdefault((service, minute), []).extend(json.loads(text))
    influencers = [
        explain.service_explanation(entries.get((service, minute), []))
        for service, minute in zip(top["service"], top["minute"], strict=True)
    ]
    tagged = rows[rows["event"].map(lambda e: isinstance(e, str))]
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


def score_hour(
    warehouse_path: str | Path | None,
    hour: dt.datetime,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    store: Store,
    events: list[Event] = (),
    now: dt.datetime | None = None,
) -> HourScores:
    """Score every series-minute of one hour under `settings.version` and replace that hour's rows."""
    hour = _naive_hour(hour)
    end = hour + HOUR
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    events = list(events)
    first = first_seen(warehouse_path, end)
    current = read_values(warehouse_path, hour, end)
    series = sorted(set(zip(current["service"], current["metric"], strict=True)))
    # every fit time any minute of the hour may need, trained up front (one read of training data)
    needed: dict[tuple[str, str], list[dt.datetime]] = {}
    for key in series:
        seen = _epoch(first[key])
        when = model_time(seen, _epoch(hour), settings)
        times = [when] if when is not None else []
        times += [f for f in fit_times(seen, _epoch(end), settings) if _epoch(hour) < f < _epoch(end)]
        needed[key] = [_from_epoch(t) for t in times]
    for round_ in range(max((len(v) for v in needed.values()), default=0)):
        batch = {k: v[round_] for k, v in needed.items() if len(v) > round_}
        train_models(warehouse_path, settings, store, batch, events)
    lookback = dt.timedelta(seconds=2 * settings.refit_s + settings.context_s)
    history = read_values(warehouse_path, hour - lookback, end, set(series))
    parts = []
    for (service, metric), part in history.groupby(["service", "metric"], sort=True):
        seen = first[(service, metric)]  # a series in its cold start is read from its first minute

        def provider(fitted_at, _times, _values, _keep, service=service, metric=metric):
            return store.load_model((settings.version, service, metric, _from_epoch(fitted_at)))

        detector = StreamingDetector(settings, policy, first_s=_epoch(seen), model_provider=provider)
        parts.append(_series_rows(detector, settings, policy, service, metric, part, hour, events, now))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    services = service_rows(rows, policy, settings.version, now)
    frame = pd.concat([rows, services], ignore_index=True) if len(services) else rows
    write_hour(warehouse_path, hour, settings.version, frame)
    return HourScores(
        hour,
        settings.version,
        len(series),
        len(frame),
        int(frame["is_anomaly"].sum()) if len(frame) else 0,
        frame,
    )


def write_hour(
    warehouse_path: str | Path | None, hour: dt.datetime, version: str, frame: pd.DataFrame
) -> None:
    """Replace one version's rows of one hour in `anomalies`, atomically."""
    table = (
        frame.reindex(columns=list(ANOMALY_COLUMNS))
        if len(frame)
        else pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    )
    table = table.astype({"explanation": object, "event": object, "model_id": object})
    with warehouse.transaction(warehouse_path) as con:
        con.execute(
            "DELETE FROM anomalies WHERE minute >= ? AND minute < ? AND version = ?",
            [hour, hour + HOUR, version],
        )
        if len(table):
            con.register("scored_rows", table)
            con.execute(
                f"INSERT INTO anomalies ({', '.join(ANOMALY_COLUMNS)}) SELECT {', '.join(ANOMALY_COLUMNS)}"
                " FROM scored_rows"
            )
            con.unregister("scored_rows")


def read_service_scores(
    warehouse_path: str | Path | None, version: str, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Service-minute scores of one version in [start, end): service, minute, score, explanation, event."""
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT service, minute, score, explanation, event FROM anomalies"
            " WHERE version = ? AND metric = ? AND minute >= ? AND minute < ? ORDER BY service, minute",
            [version, SERVICE_METRIC, start, end],
        ).df()


def duplicate_rows(
    warehouse_path: str | Path | None, start: dt.datetime, end: dt.datetime, version: str
) -> int:
    """How many (minute, service, metric) keys of one version appear more than once in [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT count(*) FROM (SELECT minute, service, metric FROM anomalies"
            " WHERE version = ? AND minute >= ? AND minute < ? GROUP BY ALL HAVING count(*) > 1)",
            [version, start, end],
        ).fetchone()[0]
