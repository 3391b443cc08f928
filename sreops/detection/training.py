"""Training detector models from the warehouse: the `detector_models` step, and what scoring trains on demand.

- `train_as_of`: the model each series will score with at a moment, trained if missing;
- `train_models`: make sure each series' model for a fit time exists (trained from the
  warehouse, saved as an artefact, registered in `detector_models`);
- `grid_time`, `fit_time_as_of`: which fit time a minute scores with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sreops import warehouse
from sreops.detection import store
from sreops.detection.artifacts import FileModelStore, MemoryModelStore, ModelKey
from sreops.detection.events import Event
from sreops.detection.models import fit_series_model
from sreops.detection.rows import keep_mask, seconds
from sreops.detection.settings import DetectorSettings
from sreops.detection.store import SeriesState
from sreops.detection.streaming import model_time
from sreops.timeutil import epoch_seconds, from_epoch

Store = FileModelStore | MemoryModelStore


def grid_time(moment: dt.datetime, settings: DetectorSettings) -> dt.datetime:
    """The retraining grid time at or before `moment`."""
    return from_epoch(np.floor(epoch_seconds(moment) / settings.refit_s) * settings.refit_s)


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
            con, grid_time(at, settings), at + dt.timedelta(microseconds=1), settings.cold_start_points
        )
    fitted = {}
    for series, state in states.items():
        when = fit_time_as_of(state, at, settings)
        if when is not None:
            fitted[series] = when
    return train_models(warehouse_path, settings, models, fitted, events)
