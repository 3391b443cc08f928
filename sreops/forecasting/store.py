"""Forecasting's warehouse I/O: scaling-metric peaks in, fits, forecasts and recommendations out.

Reads go through short connections; each write is one transaction that replaces what it
supersedes (a refit at the same time, advice for hours not yet started), so re-running never
duplicates. Model files live under `$SREOPS_HOME/models/forecasting/`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from sreops import names, paths
from sreops.config import Config
from sreops.forecasting import model, policy

Connection = duckdb.DuckDBPyConnection
STATISTIC = "hourly_peak"
MODEL_FILES_KEPT = 3


def _naive(moment: pd.Timestamp | dt.datetime) -> dt.datetime:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def scaling_series(con: Connection, cfg: Config) -> list[tuple[str, str]]:
    """Every (service, scaling metric) with minute features: each service's configured metric."""
    pairs = con.execute("SELECT DISTINCT service, metric FROM metric_features_1m ORDER BY 1, 2").fetchall()
    return [(service, metric) for service, metric in pairs if metric == cfg.service(service).scaling_metric]


def data_end(con: Connection, service: str, metric: str) -> pd.Timestamp | None:
    """The end (exclusive) of the series' minute features: its last minute plus one."""
    (last,) = con.execute(
        "SELECT max(minute) FROM metric_features_1m WHERE service = ? AND metric = ?", [service, metric]
    ).fetchone()
    return None if last is None else pd.Timestamp(last) + pd.Timedelta(minutes=1)


def decision_time(end: pd.Timestamp, wall_clock: pd.Timestamp | None = None) -> pd.Timestamp:
    """The hour advice starts from: the top of the hour at or after the data's end (or the clock)."""
    wall_clock = pd.Timestamp(_naive(wall_clock or pd.Timestamp.now(tz="UTC")))
    return min(end, wall_clock).ceil("h")


def hourly_peaks(
    con: Connection, service: str, metric: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.Series:
    """Peak of each clock hour in `[start, end)` from the minute features (NaN where an hour has none).

    Equal to :func:`sreops.forecasting.model.hourly_peaks` over the samples when `end` is on the hour.
    """
    rows = con.execute(
        "SELECT date_trunc('hour', minute) AS hour, max(max) FROM metric_features_1m"
        " WHERE service = ? AND metric = ? AND minute >= ? AND minute < ? GROUP BY 1 ORDER BY 1",
        [service, metric, _naive(start), _naive(end)],
    ).fetchall()
    hours = pd.date_range(start, end - model.HOUR, freq=model.HOUR)
    if not rows:
        return pd.Series(np.nan, index=hours, dtype=float)
    observed = pd.Series([r[1] for r in rows], index=pd.DatetimeIndex([r[0] for r in rows]), dtype=float)
    return observed.reindex(hours)


def recent_load(con: Connection, service: str, metric: str, end: pd.Timestamp, minutes: int) -> float | None:
    """The peak of the series over the `minutes` before `end` (None when nothing arrived)."""
    (peak,) = con.execute(
        "SELECT max(max) FROM metric_features_1m"
        " WHERE service = ? AND metric = ? AND minute >= ? AND minute < ?",
        [service, metric, _naive(end - pd.Timedelta(minutes=minutes)), _naive(end)],
    ).fetchone()
    return None if peak is None else float(peak)


def recent_loads(
    con: Connection, service: str, metric: str, hours: pd.DatetimeIndex, minutes: int
) -> pd.Series:
    """For each hour start in `hours`, the peak over the `minutes` before it (NaN when nothing arrived)."""
    if len(hours) == 0:
        return pd.Series(np.nan, index=hours, dtype=float)
    rows = con.execute(
        "SELECT h.hour, max(f.max) FROM (SELECT unnest(?::TIMESTAMP[]) AS hour) h"
        " JOIN metric_features_1m f ON f.service = ? AND f.metric = ?"
        " AND f.minute >= h.hour - to_minutes(?::BIGINT) AND f.minute < h.hour GROUP BY 1",
        [[_naive(h) for h in hours], service, metric, minutes],
    ).fetchall()
    observed = pd.Series({pd.Timestamp(r[0]): float(r[1]) for r in rows if r[1] is not None}, dtype=float)
    return observed.reindex(hours)


@dataclasses.dataclass(frozen=True)
class StoredFit:
    """A fit as the warehouse keeps it: its id and model file, beside the Fit itself."""

    fit_id: str
    fit: model.Fit
    model_path: str | None


def latest_fit(con: Connection, service: str, metric: str, with_frame: bool = True) -> StoredFit | None:
    """The newest fit of a series, with its forecast rows (in-sample hours and horizon)."""
    row = con.execute(
        "SELECT fit_id, fitted_at, scale, params, training_hours, fit_seconds, warm_started, mase,"
        " model_path FROM forecast_fits WHERE service = ? AND metric = ?"
        " ORDER BY fitted_at DESC, created_at DESC LIMIT 1",
        [service, metric],
    ).fetchone()
    if row is None:
        return None
    frame = (
        con.execute(
            "SELECT ts, yhat, yhat_lower, yhat_upper, in_sample FROM forecasts WHERE fit_id = ? ORDER BY ts",
            [row[0]],
        ).df()
        if with_frame
        else pd.DataFrame(columns=["ts", "yhat", "yhat_lower", "yhat_upper", "in_sample"])
    )
    fit_id, fitted_at, scale, params, hours, seconds, warm, mase, model_path = row
    fit = model.Fit(
        key=(service, metric),
        fitted_at=pd.Timestamp(fitted_at),
        scale=float(scale),
        frame=frame,
        params=json.loads(params),
        training_hours=int(hours),
        fit_seconds=float(seconds),
        warm_started=bool(warm),
        mase=None if mase is None or (isinstance(mase, float) and math.isnan(mase)) else float(mase),
    )
    return StoredFit(fit_id, fit, model_path)


def previous_forecast(stored: StoredFit | None) -> pd.Series | None:
    """The horizon part of a stored fit's forecast (`yhat` by hour), to score against what happened."""
    if stored is None or stored.fit.frame.empty:
        return None
    frame = stored.fit.frame
    future = frame[~frame["in_sample"].astype(bool)]
    return pd.Series(future["yhat"].to_numpy(dtype=float), index=pd.DatetimeIndex(future["ts"]))


def _model_dir(service: str, metric: str) -> Path:
    root = paths.models_dir() / "forecasting"
    return names.inside(root, names.path_component(service), names.path_component(metric))


def _write_model_file(fit: model.Fit, fit_id: str) -> str | None:
    """Save the serialized model and keep only the newest few of the series."""
    if not fit.model_json:
        return None
    folder = _model_dir(*fit.key)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{fit.fitted_at:%Y%m%dT%H%M}-{fit_id[:8]}.json"
    target.write_text(fit.model_json)
    for old in sorted(folder.glob("*.json"))[:-MODEL_FILES_KEPT]:
        old.unlink(missing_ok=True)
    return str(target)


def save_fit(con: Connection, fit: model.Fit, settings: model.ForecastSettings) -> str:
    """Record a fit and its forecasts; replaces a fit of the same series at the same time. Returns its id."""
    fit_id = uuid.uuid4().hex
    model_path = _write_model_file(fit, fit_id)
    service, metric = fit.key
    fitted_at = _naive(fit.fitted_at)
    frame = fit.frame.assign(
        ts=pd.DatetimeIndex(fit.frame["ts"]).tz_localize(None) if fit.frame["ts"].dt.tz else fit.frame["ts"],
        service=service,
        metric=metric,
        generated_at=fitted_at,
        fit_id=fit_id,
        statistic=STATISTIC,
    )[
        [
            "ts",
            "service",
            "metric",
            "yhat",
            "yhat_lower",
            "yhat_upper",
            "generated_at",
            "fit_id",
            "in_sample",
            "statistic",
        ]
    ]
    settings_json = json.dumps({k: v for k, v in dataclasses.asdict(settings).items() if k != "keep_model"})
    replaced = [
        r[0]
        for r in con.execute(
            "SELECT fit_id FROM forecast_fits WHERE service = ? AND metric = ? AND fitted_at = ?",
            [service, metric, fitted_at],
        ).fetchall()
    ]
    for old in replaced:
        con.execute("DELETE FROM forecasts WHERE fit_id = ?", [old])
        con.execute("DELETE FROM forecast_fits WHERE fit_id = ?", [old])
    con.execute(
        "INSERT INTO forecast_fits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [
            fit_id,
            service,
            metric,
            fitted_at,
            fit.training_hours,
            fit.scale,
            json.dumps(fit.params),
            fit.warm_started,
            fit.fit_seconds,
            fit.mase,
            settings_json,
            model_path,
        ],
    )
    con.register("new_forecasts", frame)
    con.execute("INSERT INTO forecasts SELECT * FROM new_forecasts")
    con.unregister("new_forecasts")
    # Older fits keep their horizon (accuracy history); only the newest needs in-sample hours.
    con.execute(
        "DELETE FROM forecasts WHERE service = ? AND metric = ? AND in_sample AND fit_id <> ?",
        [service, metric, fit_id],
    )
    return fit_id


def previous_replicas(con: Connection, service: str, window_start: pd.Timestamp) -> int | None:
    """The advice in force for the hour before `window_start` (for scale-in stabilization)."""
    row = con.execute(
        "SELECT recommended_replicas FROM scaling_recommendations WHERE service = ? AND window_start = ?",
        [service, _naive(window_start - model.HOUR)],
    ).fetchone()
    return None if row is None else int(row[0])


def advised_replicas(
    con: Connection, service: str, since: pd.Timestamp, until: pd.Timestamp
) -> dict[pd.Timestamp, int]:
    """The advice that was in force for each hour in [since, until) (for the trust check)."""
    rows = con.execute(
        "SELECT window_start, recommended_replicas FROM scaling_recommendations"
        " WHERE service = ? AND window_start >= ? AND window_start < ?",
        [service, _naive(since), _naive(until)],
    ).fetchall()
    return {pd.Timestamp(start): int(replicas) for start, replicas in rows}


def save_recommendations(
    con: Connection,
    service: str,
    metric: str,
    recommendations: Sequence[policy.Recommendation],
    limits: policy.Limits,
    capacity_source: str,
    fit_id: str,
    generated_at: pd.Timestamp,
    mode: str = "advice",
) -> int:
    """Replace the service's advice for every hour from the first recommended one; returns rows written."""
    if not recommendations:
        return 0
    rows = [
        (
            service,
            metric,
            _naive(rec.window_start),
            _naive(rec.window_end),
            rec.replicas,
            rec.forecast_peak,
            rec.upper_peak,
            rec.floor_load,
            limits.capacity_per_replica,
            capacity_source,
            limits.min_replicas,
            limits.max_replicas,
            rec.reason,
            mode,
            fit_id,
            _naive(generated_at),
        )
        for rec in recommendations
    ]
    con.execute(
        "DELETE FROM scaling_recommendations WHERE service = ? AND window_start >= ?",
        [service, rows[0][2]],
    )
    con.executemany(
        "INSERT INTO scaling_recommendations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def read_recommendations(con: Connection, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Scaling advice from `since` on (every row when None), by service and hour."""
    if since is None:
        return con.execute("SELECT * FROM scaling_recommendations ORDER BY service, window_start").df()
    return con.execute(
        "SELECT * FROM scaling_recommendations WHERE window_start >= ? ORDER BY service, window_start",
        [_naive(since)],
    ).df()
