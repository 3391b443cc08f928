"""Detection's entry points, read → compute → write: what the assets and the CLI call.

- `train_as_of` / `train_models`: make sure each series' model for a fit time exists (trained from
  the warehouse, saved as an artefact, registered in `detector_models`);
- `score_hour`: score every series-minute of an hour with the models trained before it (no
  look-ahead: a model only saw earlier minutes) and replace that hour's `anomalies` rows;
- `update_incidents`: rebuild the incidents touching an hour from service-minute scores and
  reconcile them into `alerts`;
- `record_event` / `load_events`: deploys and maintenance windows.

Connections are opened here, short-lived, and never held while models train or hours score.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from sreops import warehouse
from sreops.alerting.model import Alert, fetch_alerts
from sreops.detection import events as events_module
from sreops.detection import incidents as incidents_module
from sreops.detection import store
from sreops.detection.artifacts import FileModelStore, MemoryModelStore, ModelKey
from sreops.detection.events import Event
from sreops.detection.incidents import Incident, ReconcileReport, calm_start, find_incidents, reconcile
from sreops.detection.models import fit_series_model
from sreops.detection.rows import frame_of, keep_mask, seconds, series_rows, service_rows
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.store import ANOMALY_COLUMNS, SeriesState
from sreops.detection.streaming import StreamingDetector, grid_fit_times, model_time
from sreops.timeutil import epoch_seconds, floor_hour, from_epoch, utc_now

HOUR = dt.timedelta(hours=1)
Store = FileModelStore | MemoryModelStore
EVENTS_LOOKBACK = dt.timedelta(days=400)  # events older than any training window cannot matter
SCAN_LIMIT = incidents_module.SCAN_LIMIT


def events_lookback(settings: DetectorSettings) -> float:
    """Seconds of events to load before a window: enough for any training window of any series.

    Training windows count points, so their span in time depends on each series; events are few,
    so a bound far beyond any window costs nothing.
    """
    return EVENTS_LOOKBACK.total_seconds()


def _grid(moment: dt.datetime, settings: DetectorSettings) -> dt.datetime:
    """The retraining grid time at or before `moment`."""
    return from_epoch(np.floor(epoch_seconds(moment) / settings.refit_s) * settings.refit_s)


# ---- events ---------------------------------------------------------------------------------------
def record_event(
    warehouse_path: str | Path | None,
    kind: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    service: str | None = None,
    note: str = "",
    source: str = "api",
) -> int:
    """Insert an event into the `events` table; returns its id."""
    start, end = events_module.new_event(kind, starts_at, ends_at)
    with warehouse.transaction(warehouse_path) as con:
        return store.insert_event(con, kind, service, start, end, note, source)


def load_events(
    warehouse_path: str | Path | None,
    start: dt.datetime,
    end: dt.datetime,
    config_events: list | None = None,
    settle: dt.timedelta = dt.timedelta(minutes=30),
) -> list[Event]:
    """Every event overlapping [start, end), from the table, the config and Slack labels."""
    from sreops.timeutil import naive_utc

    start, end = naive_utc(start), naive_utc(end)
    with warehouse.connect(warehouse_path) as con:
        found = events_module.from_rows(
            store.events_overlapping(con, start, end, settle.total_seconds()), settle
        )
        found.extend(events_module.labelled_windows(_labelled(con)))
    found.extend(events_module.from_config(config_events, settle))
    return [e for e in found if e.starts_at < end and e.ends_at > start]


def _labelled(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    try:
        from sreops.alerting.feedback import suppressed_windows
    except ImportError:  # the alerting stage is optional
        return []
    try:
        return list(suppressed_windows(con))
    except duckdb.CatalogException:  # a warehouse from before the alerting tables
        return []


# ---- training -------------------------------------------------------------------------------------
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
    models: Store,
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
        if models.load_model(key) is not None:
            report.reused += 1
        else:
            missing[series] = at
    if not missing:
        return report
    with warehouse.connect(warehouse_path) as con:
        frame = store.read_last_values(con, missing, settings.training_points + settings.max_context())
    registry = []
    for (service, metric), part in frame.groupby(["service", "metric"], sort=True):
        at = missing.pop((service, metric))
        minutes = part["minute"].to_numpy(dtype="datetime64[ns]")
        keep = keep_mask(minutes, service, list(events))
        model = fit_series_model(
            seconds(minutes),
            part["value"].to_numpy(dtype=float),
            settings,
            len(part),
            keep,
            epoch_seconds(at),
        )
        key = (settings.version, service, metric, at)
        if model is None:
            report.too_short += 1
            continue
        registry.append((key, model, models.save_model(key, model)))
        report.trained += 1
        report.points += model.points
        report.keys.append(key)
    report.too_short += len(missing)
    if registry:
        warehouse.transact(lambda con: store.register_models(con, registry), warehouse_path)
    return report


def fit_time_as_of(state: SeriesState, at: dt.datetime, settings: DetectorSettings) -> dt.datetime | None:
    """The fit time of the model a series scores with at `at` (None during its cold start)."""
    if state.cold_start is None:
        return None
    when = model_time(epoch_seconds(state.cold_start), epoch_seconds(at), settings)
    return from_epoch(when) if when is not None else None


def train_as_of(
    warehouse_path: str | Path | None,
    at: dt.datetime,
    settings: DetectorSettings,
    models: Store,
    events: list[Event] = (),
) -> TrainReport:
    """The `detector_models` step: the model each series will score with at `at`, trained if missing."""
    with warehouse.connect(warehouse_path) as con:
        states = store.series_states(
            con, _grid(at, settings), at + dt.timedelta(microseconds=1), settings.cold_start_points
        )
    fitted = {}
    for series, state in states.items():
        when = fit_time_as_of(state, at, settings)
        if when is not None:
            fitted[series] = when
    return train_models(warehouse_path, settings, models, fitted, events)


# ---- scoring --------------------------------------------------------------------------------------
@dataclass
class HourScores:
    """What `score_hour` wrote for one hour and version."""

    hour: dt.datetime
    version: str
    series: int
    rows: int
    anomalies: int
    frame: pd.DataFrame  # the rows written
    trained: int = 0  # models this hour needed and trained first (the `detector_models` they add to)


def score_hour(
    warehouse_path: str | Path | None,
    hour: dt.datetime,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    models: Store,
    events: list[Event] = (),
    now: dt.datetime | None = None,
) -> HourScores:
    """Score every series-minute of one hour under `settings.version` and replace that hour's rows.

    Each series is read from the boundary of the model that scores the hour's first minute (the
    grid time, or its first point while it is young), plus the context points before it: exactly
    what a replay of the whole series would see for these minutes.
    """
    hour = floor_hour(hour)
    end = hour + HOUR
    now = now or utc_now()
    events = list(events)
    grid = _grid(hour, settings)
    with warehouse.connect(warehouse_path) as con:
        states = store.series_states(con, grid, end, settings.cold_start_points)
        current = store.read_values(con, hour, end)
    series = sorted(set(zip(current["service"], current["metric"], strict=True)))
    # every fit time any minute of the hour may need, trained up front (one read of training data)
    needed: dict[tuple[str, str], list[dt.datetime]] = {}
    for key in series:
        state = states[key]
        if state.cold_start is None:
            continue
        cold = epoch_seconds(state.cold_start)
        times = [t for t in [fit_time_as_of(state, hour, settings)] if t is not None]
        times += [
            from_epoch(f)
            for f in [cold, *grid_fit_times(cold, epoch_seconds(end), settings)]
            if epoch_seconds(hour) < f < epoch_seconds(end)
        ]
        needed[key] = sorted(set(times))
    trained = 0
    for round_ in range(max((len(v) for v in needed.values()), default=0)):
        batch = {k: v[round_] for k, v in needed.items() if len(v) > round_}
        trained += train_models(warehouse_path, settings, models, batch, events).trained
    young = {k for k in series if states[k].before_grid <= settings.cold_start_points}
    mature = set(series) - young
    with warehouse.connect(warehouse_path) as con:
        reads = [
            store.read_values(con, dt.datetime(1970, 1, 1), end, young) if young else None,
            store.read_last_values(con, {k: grid for k in mature}, settings.max_context())
            if mature
            else None,
            store.read_values(con, grid, end, mature) if mature else None,
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
            cold = epoch_seconds(state.cold_start)

        def provider(fitted_at, _boundary, _times, _values, _keep, service=service, metric=metric):
            return models.load_model((settings.version, service, metric, from_epoch(fitted_at)))

        detector = StreamingDetector(
            settings,
            policy,
            first_s=epoch_seconds(state.first),
            points_before=before,
            cold_start_s=cold,
            model_provider=provider,
        )
        parts.append(series_rows(detector, settings, policy, service, metric, part, hour, events, now))
    rows = frame_of(parts, ANOMALY_COLUMNS)
    services = service_rows(rows, policy, settings.version, now)
    frame = pd.concat([rows, services], ignore_index=True) if len(services) else rows
    # run again if another writer's commit conflicts with it (DuckLake; a file never conflicts)
    warehouse.transact(lambda con: store.write_hour(con, hour, settings.version, frame), warehouse_path)
    return HourScores(
        hour,
        settings.version,
        len(series),
        len(frame),
        int(frame["is_anomaly"].sum()) if len(frame) else 0,
        frame,
        trained,
    )


def open_incidents(warehouse_path: str | Path | None) -> list[Alert]:
    """Every anomaly incident still firing, oldest first (what the `alerts` asset shows)."""
    with warehouse.connect(warehouse_path) as con:
        return fetch_alerts(con, "kind = 'anomaly' AND status = 'firing'")


def duplicate_rows(
    warehouse_path: str | Path | None, start: dt.datetime, end: dt.datetime, version: str
) -> int:
    """How many (minute, service, metric) keys of one version appear more than once in [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        return store.duplicate_rows(con, start, end, version)


def read_service_scores(
    warehouse_path: str | Path | None, version: str, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Service-minute scores of one version in [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        return store.read_service_scores(con, version, start, end)


# ---- incidents ------------------------------------------------------------------------------------
def update_incidents(
    warehouse_path: str | Path | None,
    hour_start: dt.datetime,
    hour_end: dt.datetime,
    version: str,
    policy: AlarmPolicy,
    now: dt.datetime | None = None,
    partition: str | None = None,
) -> tuple[list[Incident], ReconcileReport]:
    """Rebuild the incidents touching [hour_start, hour_end) from service scores and reconcile `alerts`.

    Each service is scanned from its latest calm point before the hour (`calm_start`, at most
    `SCAN_LIMIT` back; a service loud for longer than that is scanned from there) to the newest
    scores (at most `SCAN_LIMIT` after the hour), so an incident spanning hours is one incident,
    found with the same first minute and state by every run, in any order of hours.
    """
    now = now or utc_now()
    # scores after the hour count too: a re-run of an old hour (a backfill) must not forget that
    # its incidents resolved later
    scan_end = hour_end + SCAN_LIMIT
    scores = read_service_scores(warehouse_path, version, hour_start - SCAN_LIMIT, scan_end)
    found: list[Incident] = []
    total = ReconcileReport()
    for service, part in scores.groupby("service", sort=True):
        calm = calm_start(part, policy, hour_start)
        start = calm or pd.Timestamp(part["minute"].min()).to_pydatetime()
        scanned = part[pd.to_datetime(part["minute"]) >= start]
        service_incidents = find_incidents(scanned, policy)
        found.extend(
            i
            for i in service_incidents
            if i.first_minute < hour_end and (i.last_minute >= hour_start or not i.resolved)
        )
        report = reconcile(
            warehouse_path,
            service_incidents,
            version,
            start,
            {str(service)},
            now,
            partition,
            scan_end,
            calm_since=calm,
        )
        for name in ("opened", "updated", "escalated", "resolved", "withdrawn", "unchanged"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
    return found, total
