"""Detection's entry points, read → compute → write: what the assets and the CLI call.

- `train_as_of` / `train_models` (from `training`): make sure each series' model for a fit time
  exists (trained from the warehouse, saved as an artefact, registered in `detector_models`);
- `score_hour`: score every series-minute of an hour with the models trained before it (no
  look-ahead: a model only saw earlier minutes) and replace that hour's `anomalies` rows;
  `score_range`: the same for a range, a window of hours at a time (one read per window);
- `update_incidents`: rebuild the incidents touching an hour from service-minute scores and
  reconcile them into `alerts`;
- `record_event` / `load_events`: deploys and maintenance windows.

Connections are opened here, short-lived, and never held while models train or hours score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sreops import warehouse
from sreops.alerting.model import Alert, fetch_alerts
from sreops.detection import events as events_module
from sreops.detection import incidents as incidents_module
from sreops.detection import store
from sreops.detection.artifacts import FileModelStore
from sreops.detection.events import Event
from sreops.detection.incidents import Incident, ReconcileReport, calm_start, find_incidents, reconcile
from sreops.detection.rows import frame_of, series_rows, service_rows
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.store import ANOMALY_COLUMNS, SeriesState
from sreops.detection.streaming import StreamingDetector, grid_fit_times
from sreops.detection.training import Store, fit_time_as_of, grid_time, train_models
from sreops.detection.training import TrainReport as TrainReport
from sreops.detection.training import train_as_of as train_as_of
from sreops.timeutil import epoch_seconds, floor_hour, from_epoch, utc_now

HOUR = dt.timedelta(hours=1)
# The most a ranged run scores at once: one history read per window instead of per hour (2–3×
# faster), while a window's rows in memory stay bounded (about 1 GB at 1,000 series for 6 h).
WINDOW = dt.timedelta(hours=6)
EVENTS_LOOKBACK = dt.timedelta(days=400)  # events older than any training window cannot matter
SCAN_LIMIT = incidents_module.SCAN_LIMIT


def events_lookback(settings: DetectorSettings) -> float:
    """Seconds of events to load before a window: enough for any training window of any series.

    Training windows count points, so their span in time depends on each series; events are few,
    so a bound far beyond any window costs nothing.
    """
    return EVENTS_LOOKBACK.total_seconds()


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


# ---- scoring --------------------------------------------------------------------------------------
@dataclass
class HourScores:
    """What `score_hour` (or `score_window`, from `hour` on) wrote for one version."""

    hour: dt.datetime
    version: str
    series: int
    rows: int
    anomalies: int
    frame: pd.DataFrame  # the rows written
    trained: int = 0  # models this hour needed and trained first (the `detector_models` they add to)
    end: dt.datetime | None = None  # the end of the window scored (`hour` + 1 h for an hour)


def _series_blocks(history: pa.Table) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """`(service, metric, minutes, values)` per series of a table sorted by service, metric, minute.

    Slices of two arrays, not a frame per series (which costs more than scoring a series' hour).
    """
    n = history.num_rows
    if n == 0:
        return
    services, metrics = history["service"], history["metric"]
    changed = pc.or_(
        pc.not_equal(services.slice(1), services.slice(0, n - 1)),
        pc.not_equal(metrics.slice(1), metrics.slice(0, n - 1)),
    )
    starts = np.concatenate([[0], np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1])
    ends = np.append(starts[1:], n)
    minutes = history["minute"].to_numpy().astype("datetime64[ns]")
    values = history["value"].to_numpy().astype(float)
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        yield services[lo].as_py(), metrics[lo].as_py(), minutes[lo:hi], values[lo:hi]


def _fit_times_needed(
    series: list[tuple[str, str]],
    states: dict[tuple[str, str], SeriesState],
    hour: dt.datetime,
    end: dt.datetime,
    settings: DetectorSettings,
) -> dict[tuple[str, str], list[dt.datetime]]:
    """Per series, every fit time a minute of [hour, end) may score with (its cold start, grid refits)."""
    hour_s, end_s = epoch_seconds(hour), epoch_seconds(end)
    needed = {}
    for key in series:
        state = states[key]
        if state.cold_start is None:
            continue
        cold = epoch_seconds(state.cold_start)
        times = [t for t in [fit_time_as_of(state, hour, settings)] if t is not None]
        times += [from_epoch(f) for f in [cold, *grid_fit_times(cold, end_s, settings)] if hour_s < f < end_s]
        needed[key] = sorted(set(times))
    return needed


def score_hour(
    warehouse_path: str | Path | None,
    hour: dt.datetime,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    models: Store,
    events: list[Event] = (),
    now: dt.datetime | None = None,
) -> HourScores:
    """Score every series-minute of one hour under `settings.version` and replace that hour's rows."""
    hour = floor_hour(hour)
    return score_window(warehouse_path, hour, hour + HOUR, settings, policy, models, events, now)


def range_windows(
    start: dt.datetime, end: dt.datetime, settings: DetectorSettings
) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut into whole-hour windows that each lie inside one retraining period, at most `WINDOW`.

    What a ranged run scores at once: one read of each series' history per window instead of
    one per hour, and at most a window of rows in memory however long the range.
    """
    windows = []
    at = floor_hour(start)
    while at < end:
        next_grid = grid_time(at, settings) + dt.timedelta(seconds=settings.refit_s)
        stop = min(end, next_grid, at + WINDOW)
        stop = max(floor_hour(stop), at + HOUR) if stop < end else end
        windows.append((at, stop))
        at = stop
    return windows


def score_range(
    warehouse_path: str | Path | None,
    start: dt.datetime,
    end: dt.datetime,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    models: Store,
    events: list[Event] = (),
    now: dt.datetime | None = None,
) -> Iterator[HourScores]:
    """Score [start, end) a window at a time (`range_windows`), yielding what each window wrote.

    As the range moves past a retraining time, the models fitted before it leave the file
    store's cache (they stay on file), so memory stays flat however long the range.
    """
    for window_start, window_end in range_windows(start, end, settings):
        yield score_window(warehouse_path, window_start, window_end, settings, policy, models, events, now)
        if isinstance(models, FileModelStore):
            models.forget_before(grid_time(window_end, settings))


def score_window(
    warehouse_path: str | Path | None,
    start: dt.datetime,
    end: dt.datetime,
    settings: DetectorSettings,
    policy: AlarmPolicy,
    models: Store,
    events: list[Event] = (),
    now: dt.datetime | None = None,
) -> HourScores:
    """Score every series-minute of [start, end) (whole hours) and replace those rows, in one read and one write.

    Each series is read from the boundary of the model that scores the window's first minute (the
    grid time, or its first point while it is young), plus the context points before it: exactly
    what a replay of the whole series would see for these minutes, so a window of many hours
    writes what its hours scored one by one would. Cut ranges with `range_windows`.
    """
    now = now or utc_now()
    events = list(events)
    grid = grid_time(start, settings)
    with warehouse.connect(warehouse_path) as con:
        states = store.series_states(con, grid, end, settings.cold_start_points)
        series = store.series_between(con, start, end)
        needed = _fit_times_needed(series, states, start, end, settings)
        young = {k for k in series if states[k].before_grid <= settings.cold_start_points}
        mature = set(series) - young
        untrained = any(
            models.load_model((settings.version, *key, at)) is None
            for key, times in needed.items()
            for at in times
        )
        # the usual live run has every model already: one connection reads everything
        history = (
            None if untrained else store.read_history(con, young, mature, grid, end, settings.max_context())
        )
    trained = 0
    if history is None:
        # every fit time any minute of the window may need, trained up front (one read of training data)
        for round_ in range(max((len(v) for v in needed.values()), default=0)):
            batch = {k: v[round_] for k, v in needed.items() if len(v) > round_}
            trained += train_models(warehouse_path, settings, models, batch, events).trained
        with warehouse.connect(warehouse_path) as con:
            history = store.read_history(con, young, mature, grid, end, settings.max_context())
    parts = []
    grid64 = np.datetime64(grid, "ns")
    for service, metric, minutes, values in _series_blocks(history):
        state = states[(service, metric)]
        if (service, metric) in young:
            before, cold = 0, None  # read from its first point: the detector finds its cold start
        else:
            before = state.before_grid - int(np.searchsorted(minutes, grid64, side="left"))
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
        parts.append(
            series_rows(detector, settings, policy, service, metric, minutes, values, start, events, now)
        )
    rows = frame_of(parts, ANOMALY_COLUMNS)
    services = service_rows(rows, policy, settings.version, now)
    frame = pd.concat([rows, services], ignore_index=True) if len(services) else rows
    # run again if another writer's commit conflicts with it (DuckLake; a file never conflicts)
    warehouse.transact(lambda con: store.write_hour(con, start, settings.version, frame, end), warehouse_path)
    return HourScores(
        start,
        settings.version,
        len(series),
        len(frame),
        int(frame["is_anomaly"].sum()) if len(frame) else 0,
        frame,
        trained,
        end,
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
