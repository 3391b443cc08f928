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
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.store import FileModelStore, MemoryModelStore, ModelKey, model_id, register
from sreops.detection.streaming import StreamingDetector, grid_fit_times, model_time

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


EVENTS_LOOKBACK = dt.timedelta(days=400)  # events older than any training window cannot matter


def events_lookback(settings: DetectorSettings) -> float:
    """Seconds of events to load before a window: enough for any training window of any series.

    Training windows count points, so their span in time depends on each series; events are few,
    so a bound far beyond any window costs nothing.
    """
    return EVENTS_LOOKBACK.total_seconds()


def _grid(moment: dt.datetime, settings: DetectorSettings) -> dt.datetime:
    """The retraining grid time at or before `moment`."""
    return _from_epoch(np.floor(_epoch(moment) / settings.refit_s) * settings.refit_s)


@dataclass(frozen=True)
class SeriesState:
    """Where a series stands at a grid time: when first seen, points before the grid, its first model."""

    first: dt.datetime
    before_grid: int  # points strictly before the grid time
    cold_start: dt.datetime | None  # the time of its cold_start_points-th point (its first model)


def series_states(
    warehouse_path: str | Path | None, grid: dt.datetime, end: dt.datetime, settings: DetectorSettings
) -> dict[tuple[str, str], SeriesState]:
    """Every series with features before `end`: first minute, points before `grid`, cold-start time.

    The cold-start time is looked up only for series young at the grid (at most
    `cold_start_points` points before it); for the others it lies before the grid and only that
    matters, so it is reported as their first minute.
    """
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT service, metric, min(minute), count(*) FILTER (WHERE minute < ?)"
            " FROM metric_features_1m WHERE minute < ? GROUP BY ALL",
            [grid, end],
        ).fetchall()
        young = pd.DataFrame(
            [(s, m) for s, m, _, before in rows if before <= settings.cold_start_points],
            columns=["service", "metric"],
        )
        cold: dict[tuple[str, str], dt.datetime] = {}
        if len(young):
            con.register("young_series", young)
            cold = {
                (s, m): minute
                for s, m, minute in con.execute(
                    "SELECT service, metric, minute FROM (SELECT f.service, f.metric, f.minute,"
                    " row_number() OVER (PARTITION BY f.service, f.metric ORDER BY f.minute) - 1 AS position"
                    " FROM metric_features_1m f JOIN young_series USING (service, metric)"
                    " WHERE f.minute < ?) WHERE position = ?",
                    [end, settings.cold_start_points],
                ).fetchall()
            }
            con.unregister("young_series")
    return {
        (s, m): SeriesState(
            first, int(before), cold.get((s, m)) if before <= settings.cold_start_points else first
        )
        for s, m, first, before in rows
    }


def read_values(
    warehouse_path: str | Path | None,
    start: dt.datetime,
    end: dt.datetime,
    series: set[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Minute means of every series (or those named) in [start, end), ordered by series and minute."""
    with warehouse.connect(warehouse_path) as con:
        if series is None:
            return con.execute(
                "SELECT service, metric, minute, mean AS value FROM metric_features_1m"
                " WHERE minute >= ? AND minute < ? ORDER BY service, metric, minute",
                [start, end],
            ).df()
        wanted = pd.DataFrame(sorted(series), columns=["service", "metric"])
        con.register("wanted_series", wanted)
        frame = con.execute(
            "SELECT f.service, f.metric, f.minute, f.mean AS value FROM metric_features_1m f"
            " JOIN wanted_series USING (service, metric)"
            " WHERE f.minute >= ? AND f.minute < ? ORDER BY f.service, f.metric, f.minute",
            [start, end],
        ).df()
        con.unregister("wanted_series")
    return frame


def read_last_values(
    warehouse_path: str | Path | None, before: dict[tuple[str, str], dt.datetime], count: int
) -> pd.DataFrame:
    """The last `count` minute means of each named series before its own time, ordered by series and minute."""
    if not before or count <= 0:
        return pd.DataFrame(columns=["service", "metric", "minute", "value"])
    wanted = pd.DataFrame(
        [(s, m, at) for (s, m), at in sorted(before.items())], columns=["service", "metric", "until"]
    )
    query = (
        "SELECT service, metric, minute, value FROM (SELECT f.service, f.metric, f.minute, f.mean AS value,"
        " row_number() OVER (PARTITION BY f.service, f.metric ORDER BY f.minute DESC) AS back"
        " FROM metric_features_1m f JOIN wanted_series w ON f.service = w.service AND f.metric = w.metric"
        " AND f.minute < w.until {bound}) WHERE back <= ? ORDER BY service, metric, minute"
    )
    with warehouse.connect(warehouse_path) as con:
        con.register("wanted_series", wanted)
        # most series are dense: a bounded read finds their points; the rest are read unbounded
        span = dt.timedelta(minutes=count) * 1.25 + dt.timedelta(days=1)
        frame = con.execute(
            query.format(bound="AND f.minute >= w.until - to_seconds(?)"), [span.total_seconds(), count]
        ).df()
        found = frame.groupby(["service", "metric"]).size() if len(frame) else pd.Series(dtype=int)
        short = [key for key in before if found.get(key, 0) < count]
        con.unregister("wanted_series")
        if short:
            con.register(
                "wanted_series",
                pd.DataFrame(
                    [(s, m, before[(s, m)]) for s, m in sorted(short)], columns=["service", "metric", "until"]
                ),
            )
            rest = con.execute(query.format(bound=""), [count]).df()
            con.unregister("wanted_series")
            keys = pd.MultiIndex.from_frame(frame[["service", "metric"]]) if len(frame) else None
            if keys is not None:
                frame = frame[~keys.isin(short)]
            frame = pd.concat([frame, rest], ignore_index=True).sort_values(
                ["service", "metric", "minute"], kind="stable"
            )
    return frame.reset_index(drop=True)


def _keep_mask(minutes: np.ndarray, service: str, events: list[Event]) -> np.ndarray:
    return np.array([tag is None for tag in event_tags(minutes, service, events)], dtype=bool)


def _seconds(minutes: np.ndarray) -> np.ndarray:
    return (np.asarray(minutes, dtype="datetime64[ns]") - np.datetime64(0, "ns")) / np.timedelta64(1, "s")


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
    """Make sure the model of each series for its fit time exists in the store (train the missing ones).

    A model fitted at time `at` learns from the last `training_points` points before `at`.
    """
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
    frame = read_last_values(warehouse_path, missing, settings.training_points + settings.max_context())
    registry = []
    for (service, metric), part in frame.groupby(["service", "metric"], sort=True):
        at = missing.pop((service, metric))
        minutes = part["minute"].to_numpy(dtype="datetime64[ns]")
        keep = _keep_mask(minutes, service, list(events))
        model = fit_series_model(
            _seconds(minutes), part["value"].to_numpy(dtype=float), settings, len(part), keep, _epoch(at)
        )
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


def fit_time_as_of(state: SeriesState, at: dt.datetime, settings: DetectorSettings) -> dt.datetime | None:
    """The fit time of the model a series scores with at `at` (None during its cold start)."""
    if state.cold_start is None:
        return None
    when = model_time(_epoch(state.cold_start), _epoch(at), settings)
    return _from_epoch(when) if when is not None else None


def train_as_of(
    warehouse_path: str | Path | None,
    at: dt.datetime,
    settings: DetectorSettings,
    store: Store,
    events: list[Event] = (),
) -> TrainReport:
    """The `detector_models` step: the model each series will score with at `at`, trained if missing."""
    states = series_states(warehouse_path, _grid(at, settings), at + dt.timedelta(microseconds=1), settings)
    fitted = {}
    for series, state in states.items():
        when = fit_time_as_of(state, at, settings)
        if when is not None:
            fitted[series] = when
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
    times = _seconds(minutes)
    values = part["value"].to_numpy(dtype=float)
    keep = _keep_mask(minutes, service, events)
    start = int(np.searchsorted(times, _epoch(hour), side="left"))
    n = len(times)
    cuts = sorted({start, n, *(c for c in detector.boundaries(times) if start < c < n)})
    pieces = [detector.score_points(times, values, keep, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    score = np.concatenate([p.score for p in pieces])
    magnitude = np.concatenate([p.magnitude for p in pieces])
    scorer = np.concatenate([p.scorer for p in pieces])
    explanation = np.full(n - start, None, dtype=object)
    model_ids = np.full(n - start, None, dtype=object)
    ids: dict[float | None, str | None] = {}
    for offset in range(n - start):
        model = detector.model_of(times, start + offset) if scorer[offset] != "baseline" else None
        until = model.trained_until_s if model is not None else None
        if until not in ids:
            ids[until] = model_id((settings.version, service, metric, _from_epoch(until))) if until else None
        model_ids[offset] = ids[until]
    explained = np.flatnonzero(score >= explain.EXPLAIN_FROM_SCORE)
    low = np.full(n - start, np.nan)
    high = np.full(n - start, np.nan)
    if len(explained):
        low[explained], high[explained] = detector.expected_bands(times, values, start + explained)
    for offset in explained:
        explanation[offset] = json.dumps(
            [explain.series_entry(metric, values[start + offset], low[offset], high[offset], score[offset])]
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
    # the shipped rule (service.highest): the series with the highest score gives the service's
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
    """Score every series-minute of one hour under `settings.version` and replace that hour's rows.

    Each series is read from the boundary of the model that scores the hour's first minute (the
    grid time, or its first point while it is young), plus the context points before it: exactly
    what a replay of the whole series would see for these minutes.
    """
    hour = _naive_hour(hour)
    end = hour + HOUR
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    events = list(events)
    grid = _grid(hour, settings)
    states = series_states(warehouse_path, grid, end, settings)
    current = read_values(warehouse_path, hour, end)
    series = sorted(set(zip(current["service"], current["metric"], strict=True)))
    # every fit time any minute of the hour may need, trained up front (one read of training data)
    needed: dict[tuple[str, str], list[dt.datetime]] = {}
    for key in series:
        state = states[key]
        if state.cold_start is None:
            continue
        cold = _epoch(state.cold_start)
        times = [t for t in [fit_time_as_of(state, hour, settings)] if t is not None]
        times += [
            _from_epoch(f)
            for f in [cold, *grid_fit_times(cold, _epoch(end), settings)]
            if _epoch(hour) < f < _epoch(end)
        ]
        needed[key] = sorted(set(times))
    for round_ in range(max((len(v) for v in needed.values()), default=0)):
        batch = {k: v[round_] for k, v in needed.items() if len(v) > round_}
        train_models(warehouse_path, settings, store, batch, events)
    young = {k for k in series if states[k].before_grid <= settings.cold_start_points}
    mature = set(series) - young
    reads = [
        read_values(warehouse_path, dt.datetime(1970, 1, 1), end, young) if young else None,
        read_last_values(warehouse_path, {k: grid for k in mature}, settings.max_context())
        if mature
        else None,
        read_values(warehouse_path, grid, end, mature) if mature else None,
    ]
    reads = [r for r in reads if r is not None and len(r)]
    history = (
        pd.concat(reads, ignore_index=True).sort_values(["service", "metric", "minute"], kind="stable")
        if reads
        else pd.DataFrame(columns=["service", "metric", "minute", "value"])
    )
    parts = []
    for (service, metric), part in history.groupby(["service", "metric"], sort=True):
        state = states[(service, metric)]
        if (service, metric) in young:
            before, cold = 0, None  # read from its first point: the detector finds its cold start
        else:
            before = state.before_grid - int((part["minute"] < grid).sum())
            cold = _epoch(state.cold_start)

        def provider(fitted_at, _boundary, _times, _values, _keep, service=service, metric=metric):
            return store.load_model((settings.version, service, metric, _from_epoch(fitted_at)))

        detector = StreamingDetector(
            settings,
            policy,
            first_s=_epoch(state.first),
            points_before=before,
            cold_start_s=cold,
            model_provider=provider,
        )
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
