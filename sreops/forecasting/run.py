"""The forecasting stage over the warehouse: refit every scaling series, then advise replicas hour by hour.

`refit` is the daily job (Prophet fits in parallel processes, warm-started from the previous
fit); `advise` is cheap and hourly: it combines the latest fit with the hours observed since,
through the same policy the replay backtest scores (:mod:`sreops.forecasting.policy`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sreops import names, paths, warehouse
from sreops.config import Config
from sreops.forecasting import budget, export, model, plot, policy, store
from sreops.forecasting.recommender import RecommenderSettings, settings_from_config

log = logging.getLogger(__name__)


@dataclass
class RefitReport:
    """What one refit did: fits saved, series skipped (and why), wall time."""

    fits: list[store.StoredFit] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def accuracy(self) -> pd.DataFrame:
        """One row per fit: series, fit time, warm start, training hours, out-of-sample MASE."""
        return pd.DataFrame(
            [
                {
                    "service": s.fit.key[0],
                    "metric": s.fit.key[1],
                    "fitted_at": s.fit.fitted_at,
                    "training_hours": s.fit.training_hours,
                    "fit_seconds": round(s.fit.fit_seconds, 3),
                    "warm_started": s.fit.warm_started,
                    "mase": s.fit.mase,
                }
                for s in self.fits
            ]
        )


@dataclass
class Advice:
    """The recommendations of one service, with what they were computed from."""

    service: str
    metric: str
    limits: policy.Limits
    capacity_source: str
    fit: store.StoredFit
    recommendations: list[policy.Recommendation]
    history: pd.Series


def _settings(cfg: Config, keep_model: bool = True) -> RecommenderSettings:
    settings = settings_from_config(cfg.forecasting)
    return dataclasses.replace(
        settings, forecast=dataclasses.replace(settings.forecast, keep_model=keep_model)
    )


def refit(
    path: str | Path | None,
    cfg: Config,
    wall_clock: pd.Timestamp | None = None,
    workers: int | None = None,
) -> RefitReport:
    """Fit Prophet to every scaling series' trailing window and store the forecasts."""
    started = time.perf_counter()
    settings = _settings(cfg)
    report = RefitReport()
    jobs = []
    with warehouse.connect(path) as con:
        reads = []
        for service, metric in store.scaling_series(con, cfg):
            end = store.data_end(con, service, metric)
            if end is None:
                continue
            now = store.decision_time(end, wall_clock)
            start = now - pd.Timedelta(days=settings.forecast.training_days)
            reads.append(
                (
                    service,
                    metric,
                    now,
                    store.hourly_peaks(con, service, metric, start, now),
                    store.latest_fit(con, service, metric),
                )
            )
    for service, metric, now, peaks, previous in reads:
        jobs.append(
            model.FitJob(
                key=(service, metric),
                peaks=peaks,
                now=now,
                warm_start=previous.fit.params if previous else None,
                previous_forecast=store.previous_forecast(previous),
            )
        )
    for job, result in zip(
        jobs, model.fit_many(jobs, settings.forecast, workers or cfg.forecasting.workers), strict=True
    ):
        if isinstance(result, model.ForecastError):
            report.skipped[f"{job.key[0]}/{job.key[1]}"] = str(result)
            log.warning("%s", result)
            continue
        with warehouse.transaction(path) as con:
            fit_id = store.save_fit(con, result, settings.forecast)
        report.fits.append(store.StoredFit(fit_id, result, None))
    report.seconds = time.perf_counter() - started
    return report


def default_capacity(peaks: pd.Series) -> float | None:
    """A stand-in replica capacity when none is configured: a tenth of the 99th-percentile hourly peak."""
    values = peaks.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    q99 = float(np.quantile(values, 0.99))
    return q99 / 10.0 if q99 > 0 else None


def advise(
    path: str | Path | None,
    cfg: Config,
    wall_clock: pd.Timestamp | None = None,
    mode: str = "advice",
) -> tuple[list[Advice], dict[str, str]]:
    """Recommend replicas for the next `horizon_hours` of every series with a fit; store and return them."""
    settings = _settings(cfg)
    advice: list[Advice] = []
    skipped: dict[str, str] = {}
    with warehouse.connect(path) as con:
        series = store.scaling_series(con, cfg)
    for service, metric in series:
        with warehouse.connect(path) as con:
            item = _advise_one(con, cfg, settings, service, metric, wall_clock)
        if isinstance(item, str):
            skipped[f"{service}/{metric}"] = item
            continue
        with warehouse.transaction(path) as con:
            store.save_recommendations(
                con,
                service,
                metric,
                item.recommendations,
                item.limits,
                item.capacity_source,
                item.fit.fit_id,
                item.recommendations[0].window_start if item.recommendations else pd.Timestamp.now(),
                mode=mode,
            )
        advice.append(item)
    return advice, skipped


def _advise_one(
    con: store.Connection,
    cfg: Config,
    settings: RecommenderSettings,
    service: str,
    metric: str,
    wall_clock: pd.Timestamp | None,
) -> Advice | str:
    """One series' advice from what `con` reads, or why there is none."""
    horizon = cfg.forecasting.horizon_hours
    calibration = settings.policy.calibration_hours + 48
    stored = store.latest_fit(con, service, metric)
    end = store.data_end(con, service, metric)
    if stored is None or end is None:
        return "no forecast yet: materialize `forecasts` first"
    now = store.decision_time(end, wall_clock)
    covered = int((pd.Timestamp(stored.fit.frame["ts"].max()) - now) / model.HOUR) + 1
    hours = min(horizon, covered)
    if now < stored.fit.fitted_at or hours < 1:
        return (
            f"the latest fit (made at {stored.fit.fitted_at}) does not cover {now}: "
            "materialize `forecasts` to refit"
        )
    start = now - calibration * model.HOUR
    if settings.policy.reactive_budget is not None:  # the budgeted rule learns from the hours before the fit
        start = min(start, stored.fit.fitted_at - (settings.policy.budget_training_hours + 1) * model.HOUR)
    peaks = store.hourly_peaks(con, service, metric, start, now)
    svc = cfg.service(service)
    if svc.capacity_per_replica:
        capacity, source = svc.capacity_per_replica, "config"
    else:
        training = store.hourly_peaks(
            con, service, metric, now - pd.Timedelta(days=cfg.forecasting.training_days), now
        )
        capacity = default_capacity(training)
        source = f"assumed: q99/10 of {cfg.forecasting.training_days} days of hourly peaks"
        if capacity is None:
            return f"no load seen; set services.{service}.capacity_per_replica"
    limits = policy.Limits(capacity, svc.min_replicas, svc.max_replicas)
    forecasts = policy.corrected_forecast(stored.fit, peaks, now, hours, settings.policy)
    # the last hour's peak (or the floor's longer window): the reactive cap's load, and the floor's
    # for a series reporting less often than the floor's window (when that window is empty, so is
    # any shorter one)
    last_peak = store.recent_load(con, service, metric, min(end, now), max(60, settings.policy.floor_minutes))
    load = store.recent_load(con, service, metric, min(end, now), settings.policy.floor_minutes)
    if load is None:
        load = last_peak
    budgeted = None
    if forecasts and settings.policy.reactive_budget is not None:
        hours_learnt = budget.learning_hours(stored.fit, settings.policy)
        floors = store.recent_loads(con, service, metric, hours_learnt, settings.policy.floor_minutes)
        # as for the hour now: a series reporting less often than the floor's window floors at its last hour
        floors = floors.fillna(peaks.reindex(hours_learnt - model.HOUR).set_axis(hours_learnt))
        learnt = budget.first_hour_model(stored.fit, peaks, floors, limits, settings.policy)
        budgeted = learnt.need(last_peak, forecasts[0].expected_peak) if learnt else None
    recommendations = policy.recommend(
        forecasts,
        limits,
        settings.policy,
        load,
        previous_replicas=store.previous_replicas(con, service, now),
        budgeted=budgeted,
    )
    distrust = settings.policy.distrust_hours
    advised = store.advised_replicas(con, service, now - distrust * model.HOUR, now)
    if budgeted is None and recommendations and policy.fell_short(advised, peaks, now, capacity, distrust):
        recommendations[0] = policy.distrusted(recommendations[0], load, limits, settings.policy)
    if budgeted is None and recommendations:
        recommendations[0] = policy.capped_at_reactive(recommendations[0], last_peak, limits, settings.policy)
    return Advice(service, metric, limits, source, stored, recommendations, peaks)


def advice_frame(advice: list[Advice]) -> pd.DataFrame:
    """All services' recommendations as one table (what `scaling_recommendations` received)."""
    return pd.DataFrame(
        [
            {
                "service": a.service,
                "window_start": r.window_start,
                "replicas": r.replicas,
                "forecast_peak": round(r.forecast_peak, 3),
                "upper_peak": round(r.upper_peak, 3),
                "capacity_per_replica": round(a.limits.capacity_per_replica, 3),
                "reason": r.reason,
            }
            for a in advice
            for r in a.recommendations
        ]
    )


def refit_due(path: str | Path | None, cfg: Config, wall_clock: pd.Timestamp | None = None) -> bool:
    """True when a scaling series has no fit, or its latest fit is `refit_hours` old (by its data)."""
    with warehouse.connect(path) as con:
        return _refit_due(con, cfg, wall_clock)


def _refit_due(con: store.Connection, cfg: Config, wall_clock: pd.Timestamp | None) -> bool:
    for service, metric in store.scaling_series(con, cfg):
        end = store.data_end(con, service, metric)
        if end is None:
            continue
        stored = store.latest_fit(con, service, metric, with_frame=False)
        if stored is None:
            return True
        now = store.decision_time(end, wall_clock)
        if now - stored.fit.fitted_at >= cfg.forecasting.refit_hours * model.HOUR:
            return True
    return False


def export_dir() -> Path:
    """Where minReplicas schedules are written: `$SREOPS_HOME/exports/hpa/`."""
    return paths.home() / "exports" / "hpa"


def write_exports(advice: list[Advice], folder: Path | None = None) -> list[Path]:
    """One minReplicas schedule YAML per service, replacing the previous one."""
    folder = folder or export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for item in advice:
        windows = [(r.window_start, r.window_end, r.replicas) for r in item.recommendations]
        if not windows:
            continue
        target = names.inside(folder, names.path_component(item.service) + ".yaml")
        target.write_text(export.min_replicas_schedule(item.service, windows, item.limits.max_replicas))
        written.append(target)
    return written


def picture(path: str | Path | None, item: Advice, history_hours: int = 72) -> bytes:
    """The forecast plot of one service: observed peaks, forecast band, advised capacity."""
    frame = item.fit.fit.frame
    future = frame[~frame["in_sample"].astype(bool)]
    now = item.recommendations[0].window_start if item.recommendations else item.fit.fit.fitted_at
    future = future[pd.DatetimeIndex(future["ts"]) < now + max(1, len(item.recommendations)) * model.HOUR]
    with warehouse.connect(path) as con:
        history = store.hourly_peaks(con, item.service, item.metric, now - history_hours * model.HOUR, now)
    return plot.forecast_png(
        f"{item.service} {item.metric}: hourly peak, forecast and advised capacity (UTC)",
        history,
        future,
        item.recommendations,
        item.limits.capacity_per_replica,
        history_hours,
    )


def read_recommendations(path: str | Path | None, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """The `scaling_recommendations` rows (from `since` on)."""
    with warehouse.connect(path) as con:
        return store.read_recommendations(con, since)


def hourly_peaks(
    path: str | Path | None, service: str, metric: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.Series:
    """Hourly peaks of a series from the minute features (see `store.hourly_peaks`)."""
    with warehouse.connect(path) as con:
        return store.hourly_peaks(con, service, metric, start, end)


def scaling_series(path: str | Path | None, cfg: Config) -> list[tuple[str, str]]:
    """Every (service, scaling metric) with minute features."""
    with warehouse.connect(path) as con:
        return store.scaling_series(con, cfg)
