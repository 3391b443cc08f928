"""Prophet fits of hourly demand peaks: resampling, the log transform, warm starts, parallel fits.

What a replica count must cover is the peak of the hour, not its mean, so every series is
resampled to hourly peaks (bins aligned on the decision time) and modelled as
`log1p(peak / scale)`: demand is multiplicative (the daily cycle scales with the level) and
bursty, and the log keeps one burst from dragging the whole fit. `scale` is a tenth of the
training window's 99th-percentile peak, so the transform does not depend on the metric's unit.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)
# Prophet's stan parameters; a warm start passes the previous fit's values of these.
PARAM_NAMES = ("k", "m", "delta", "beta", "sigma_obs")


class ForecastError(ValueError):
    """A series cannot be forecast (too short, empty, not numeric); the message says which and why."""


@dataclass(frozen=True)
class ForecastSettings:
    """How each series is fitted; the defaults are the ones the backtest chose (docs/forecasting.md)."""

    training_days: int = 14
    horizon_hours: int = 48
    interval_width: float = 0.8
    changepoint_prior_scale: float = 0.05
    seasonality_prior_scale: float = 10.0
    # Weekly seasonality needs two weeks of data to be told apart from a trend.
    weekly_min_days: int = 14
    uncertainty_samples: int = 200
    min_training_hours: int = 48
    keep_model: bool = False

    def __post_init__(self) -> None:
        if self.training_days < 2:
            raise ValueError(f"training_days must be at least 2, got {self.training_days}")
        if self.horizon_hours < 1:
            raise ValueError(f"horizon_hours must be at least 1, got {self.horizon_hours}")
        if not 0 < self.interval_width < 1:
            raise ValueError(f"interval_width must be in (0, 1), got {self.interval_width}")


@dataclass
class Fit:
    """One fitted series: hourly forecasts (in-sample hours, then the horizon) and what refits reuse.

    `frame` has columns `ts` (start of each hour), `yhat`, `yhat_lower`, `yhat_upper` (original
    units, hourly peak) and `in_sample` (the hour was in the training window).
    """

    key: tuple[str, str]
    fitted_at: pd.Timestamp
    scale: float
    frame: pd.DataFrame
    params: dict[str, list[float]] = field(default_factory=dict)
    training_hours: int = 0
    fit_seconds: float = 0.0
    warm_started: bool = False
    # out-of-sample MASE of the previous fit over the hours since it (None on a first fit)
    mase: float | None = None
    # the fitted Prophet model, serialized (prophet.serialize.model_to_json)
    model_json: str | None = None

    def model_space(self, column: str = "yhat") -> pd.Series:
        """One forecast column in the model's log space, indexed by hour."""
        return pd.Series(to_model_space(self.frame[column].to_numpy(), self.scale), index=self.frame["ts"])


def to_model_space(values: np.ndarray | float, scale: float) -> np.ndarray:
    """Demand → the log space Prophet is fitted in."""
    return np.log1p(np.maximum(np.asarray(values, dtype=float), 0.0) / scale)


def from_model_space(values: np.ndarray | float, scale: float) -> np.ndarray:
    """The log space → demand (never negative)."""
    return np.maximum(np.expm1(np.asarray(values, dtype=float)), 0.0) * scale


def series_scale(peaks: np.ndarray) -> float:
    """The transform's scale: a tenth of the 99th-percentile peak (1.0 for an all-zero series)."""
    finite = peaks[np.isfinite(peaks)]
    q99 = float(np.quantile(finite, 0.99)) if len(finite) else 0.0
    return q99 / 10.0 if q99 > 0 else 1.0


def hourly_peaks(series: pd.Series, end: pd.Timestamp, hours: int) -> pd.Series:
    """Peak of each of the `hours` hours before `end` (bins `[end-(i+1)h, end-ih)`), NaN where empty."""
    edges = pd.date_range(end=end, periods=hours + 1, freq=HOUR)
    stamps = series.index.to_numpy()
    bounds = np.searchsorted(stamps, edges.to_numpy(), side="left")
    values = series.to_numpy(dtype=float)
    peaks = np.full(hours, np.nan)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if hi > lo:
            peaks[i] = values[lo:hi].max()
    return pd.Series(peaks, index=edges[:-1])


def seasonal_naive_mase(
    actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season: int = 24
) -> float:
    """MASE: mean absolute error of `forecast`, over that of the seasonal-naive forecast on `history`."""
    history = history[np.isfinite(history)]
    if len(history) <= season:
        return float("nan")
    naive_error = float(np.mean(np.abs(history[season:] - history[:-season])))
    mask = np.isfinite(actual) & np.isfinite(forecast)
    if naive_error == 0 or not mask.any():
        return float("nan")
    return float(np.mean(np.abs(actual[mask] - forecast[mask])) / naive_error)


def _quiet_stan() -> None:
    """Silence Stan's per-fit chatter (cmdstanpy installs its own INFO handler unless one exists)."""
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logger = logging.getLogger(name)
        # prophet.plot reports a missing plotly (interactive plots only) as an error at import
        logger.setLevel(logging.CRITICAL if name == "prophet.plot" else logging.ERROR)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def _warm_init(params: Mapping[str, list[float]]) -> dict | None:
    """Stan init from a previous fit's parameters (None when they are incomplete)."""
    try:
        init = {name: np.asarray(params[name], dtype=float).ravel() for name in PARAM_NAMES}
    except (KeyError, TypeError, ValueError):
        return None
    return {
        "k": float(init["k"][0]),
        "m": float(init["m"][0]),
        "sigma_obs": float(max(init["sigma_obs"][0], 1e-6)),
        "delta": init["delta"],
        "beta": init["beta"],
    }


def fit(
    key: tuple[str, str],
    peaks: pd.Series,
    now: pd.Timestamp,
    settings: ForecastSettings = ForecastSettings(),
    warm_start: Mapping[str, list[float]] | None = None,
    previous_forecast: pd.Series | None = None,
) -> Fit:
    """Fit Prophet to the hourly `peaks` before `now` and forecast `settings.horizon_hours` from `now`.

    `previous_forecast` (the last fit's `yhat` by hour) is scored against the peaks observed since
    it was made: the out-of-sample MASE recorded with this fit.
    """
    _quiet_stan()
    from prophet import Prophet

    window = peaks[(peaks.index < now) & (peaks.index >= now - pd.Timedelta(days=settings.training_days))]
    window = window[np.isfinite(window.to_numpy(dtype=float))]
    if len(window) < settings.min_training_hours:
        raise ForecastError(
            f"series {key[0]}/{key[1]}: {len(window)} hours with data before {now}, fewer than the "
            f"{settings.min_training_hours} needed to fit; wait for more history or lower min_training_hours"
        )
    scale = series_scale(window.to_numpy())
    span_days = (window.index[-1] - window.index[0]) / pd.Timedelta(days=1)
    model = Prophet(
        growth="linear",
        daily_seasonality=True,
        weekly_seasonality=bool(span_days >= settings.weekly_min_days - 1),
        yearly_seasonality=False,
        interval_width=settings.interval_width,
        changepoint_prior_scale=settings.changepoint_prior_scale,
        seasonality_prior_scale=settings.seasonality_prior_scale,
        uncertainty_samples=settings.uncertainty_samples,
    )
    train = pd.DataFrame({"ds": window.index, "y": to_model_space(window.to_numpy(), scale)})
    init = _warm_init(warm_start) if warm_start else None
    started = time.perf_counter()
    # Prophet itself falls back to its default init for a parameter whose shape changed.
    fitted = model.fit(train, init=init) if init else model.fit(train)
    warm_started = init is not None and all(
        np.shape(init[name]) == np.shape(np.ravel(fitted.params[name])) for name in ("delta", "beta")
    )
    # Seed the interval sampling so the same data gives the same bands.
    np.random.seed(zlib.crc32(f"{key}|{now.isoformat()}".encode()))
    hours = pd.date_range(window.index[0], now + (settings.horizon_hours - 1) * HOUR, freq=HOUR)
    predicted = fitted.predict(pd.DataFrame({"ds": hours}))
    frame = pd.DataFrame(
        {
            "ts": hours,
            "yhat": from_model_space(predicted["yhat"].to_numpy(), scale),
            # without uncertainty samples Prophet gives no band: it collapses onto yhat
            "yhat_lower": from_model_space(predicted.get("yhat_lower", predicted["yhat"]).to_numpy(), scale),
            "yhat_upper": from_model_space(predicted.get("yhat_upper", predicted["yhat"]).to_numpy(), scale),
            "in_sample": hours < now,
        }
    )
    elapsed = time.perf_counter() - started
    params = {name: np.asarray(fitted.params[name], dtype=float).ravel().tolist() for name in PARAM_NAMES}
    mase = float("nan")
    if previous_forecast is not None and len(previous_forecast):
        since = window[window.index >= previous_forecast.index.min()]
        mase = seasonal_naive_mase(
            since.to_numpy(), previous_forecast.reindex(since.index).to_numpy(dtype=float), window.to_numpy()
        )
    model_json = None
    if settings.keep_model:
        from prophet.serialize import model_to_json

        model_json = model_to_json(fitted)
    return Fit(
        key=key,
        fitted_at=now,
        scale=scale,
        frame=frame,
        params=params,
        training_hours=len(window),
        fit_seconds=elapsed,
        warm_started=warm_started,
        mase=None if not np.isfinite(mase) else mase,
        model_json=model_json,
    )


@dataclass(frozen=True)
class FitJob:
    """One series to fit: its key, its hourly peaks, the fit time and an optional warm start."""

    key: tuple[str, str]
    peaks: pd.Series
    now: pd.Timestamp
    warm_start: Mapping[str, list[float]] | None = None
    previous_forecast: pd.Series | None = None


def _fit_job(job: FitJob, settings: ForecastSettings) -> Fit | ForecastError:
    try:
        return fit(job.key, job.peaks, job.now, settings, job.warm_start, job.previous_forecast)
    except ForecastError as exc:
        return exc


def default_workers() -> int:
    """Processes for parallel fits: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def fit_many(
    jobs: Iterable[FitJob],
    settings: ForecastSettings = ForecastSettings(),
    workers: int | None = None,
) -> Iterator[Fit | ForecastError]:
    """Fit every job in parallel processes; yields each Fit (or its ForecastError) in job order."""
    jobs = list(jobs)
    workers = min(workers or default_workers(), max(1, len(jobs)))
    if workers == 1:
        for job in jobs:
            yield _fit_job(job, settings)
        return
    # Chunks amortize pickling and keep every worker's Prophet/Stan start-up to one.
    chunksize = max(1, len(jobs) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, initializer=_quiet_stan) as pool:
        yield from pool.map(_fit_job, jobs, [settings] * len(jobs), chunksize=chunksize)
