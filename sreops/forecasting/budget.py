"""Advice for the hour that starts now, within the reactive rule's budget (docs/forecasting.md).

The forecast decides *where* replicas go, the reactive rule *how many* in all: the hour's peak is
predicted by a quantile regression on the last hour's peak and the corrected Prophet forecast
(log space, fitted on this series' own recent hours), and the prediction is shifted by the one
margin whose replica-hours over the last week come to `reactive_budget` × what the reactive rule
("the last hour's peak at 80 %") ran over the same hours. Where the forecast is good, the same
replica-hours sit where the peaks come and breach less; where it is not, the regression leans on
the last hour's peak and the advice becomes the reactive rule's, at no more cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from sreops.forecasting.model import HOUR, Fit, from_model_space
from sreops.forecasting.policy import Limits, PolicySettings, ewm_before, fit_errors

MIN_HOURS = 72  # fewer usable past hours than this: no regression, the band-and-headroom rule decides
SHIFT_RANGE = (-1.0, 1.0)  # log-space margins the budget may choose between


@dataclass(frozen=True)
class BudgetedNeed:
    """The replicas the budgeted rule wants for the hour that starts now, and what they came from."""

    replicas: int
    predicted_peak: float  # the regression's quantile of the hour's peak, shifted
    shift: float  # the budget's log-space margin over the regression
    weights: tuple[float, float, float]  # intercept, last hour's peak, corrected forecast
    hours: int  # past hours the regression was fitted on

    def reason(self, quantile: float, share: float, budget_hours: int) -> str:
        """How the count was reached, for the recommendation's `reason`."""
        _, on_last, on_forecast = self.weights
        return (
            f"budgeted: the {quantile:.2f}-quantile of the hour's peak from the last hour's peak"
            f" (weight {on_last:.2f}) and the corrected forecast (weight {on_forecast:.2f}), shifted"
            f" {self.shift:+.2f} (log) to spend {share:.0%} of the reactive rule's replica-hours over the"
            f" last {budget_hours} h, is {self.predicted_peak:.4g}, needing {self.replicas}"
        )


def past_corrected_forecasts(fit: Fit, peaks: pd.Series, before: pd.Timestamp, halflife: float) -> pd.Series:
    """The corrected forecast (original units) each hour of the fit's grid before `before` had at its start.

    The fit's value plus the exponentially weighted mean of its errors on the hours before that
    one: what :func:`sreops.forecasting.policy.corrected_forecast` advises from at lead 0.
    """
    predicted = fit.model_space("yhat")
    hours = predicted.index[predicted.index < before]
    correction = ewm_before(fit_errors(fit, peaks, hours), halflife)[:-1]
    return pd.Series(from_model_space(predicted[hours].to_numpy() + correction, fit.scale), index=hours)


def quantile_regression(features: np.ndarray, target: np.ndarray, quantile: float) -> np.ndarray | None:
    """Linear coefficients minimising the pinball loss at `quantile` (a linear program; None if it fails)."""
    rows, cols = features.shape
    cost = np.concatenate([np.zeros(cols), np.full(rows, quantile), np.full(rows, 1.0 - quantile)])
    equality = np.hstack([features, np.eye(rows), -np.eye(rows)])
    bounds = [(None, None)] * cols + [(0, None)] * (2 * rows)
    result = linprog(cost, A_eq=equality, b_eq=target, bounds=bounds, method="highs")
    return result.x[:cols] if result.success else None


def _space(values: np.ndarray | float, capacity: float) -> np.ndarray:
    """log1p of a load in replicas' worth: the regression's space (negative and missing loads count 0)."""
    load = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    return np.log1p(np.maximum(load, 0.0) / capacity)


def _replicas(space: np.ndarray, floor: np.ndarray, low: int, high: int) -> np.ndarray:
    """Whole replicas covering `space` (regression space), at least `floor`, within `[low, high]`."""
    need = np.ceil(np.expm1(np.maximum(space, 0.0)) - 1e-9)
    return np.clip(np.maximum(need, floor), max(low, 1), high)


@dataclass(frozen=True)
class BudgetModel:
    """The regression and the budget's margin learnt from one series' hours before a cutoff."""

    weights: tuple[float, float, float]  # intercept, last hour's peak, corrected forecast
    shift: float
    hours: int
    capacity: float

    def need(self, last_peak: float | None, expected_peak: float) -> BudgetedNeed | None:
        """The replicas for the hour after one whose peak was `last_peak` (None when it had no records)."""
        if last_peak is None or not math.isfinite(last_peak) or not math.isfinite(expected_peak):
            return None
        features = np.array([1.0, *_space([last_peak, expected_peak], self.capacity)])
        predicted = float(features @ np.array(self.weights)) + self.shift
        return BudgetedNeed(
            replicas=int(_replicas(np.array([predicted]), np.zeros(1), 1, 10**9)[0]),
            predicted_peak=float(np.expm1(max(predicted, 0.0)) * self.capacity),
            shift=self.shift,
            weights=self.weights,
            hours=self.hours,
        )


def learn(
    peaks: pd.Series,
    corrected: pd.Series,
    floors: pd.Series,
    cutoff: pd.Timestamp,
    limits: Limits,
    settings: PolicySettings,
) -> BudgetModel | None:
    """The budgeted rule learnt from the hours before `cutoff`, or None without enough history.

    `peaks` are hourly peaks (index: hour start), `corrected` the corrected forecast each past hour
    had, `floors` the load of the floor's window before each hour start (missing: no floor).
    Only hours before `cutoff` are read (the fit's time, so the rule changes once per refit).
    """
    capacity, low, high = limits.capacity_per_replica, limits.min_replicas, limits.max_replicas
    hours = pd.date_range(cutoff - settings.budget_training_hours * HOUR, cutoff - HOUR, freq=HOUR)
    peak = peaks.reindex(hours).to_numpy(dtype=float)
    before = peaks.reindex(hours - HOUR).to_numpy(dtype=float)
    forecast = corrected.reindex(hours).to_numpy(dtype=float)
    usable = np.isfinite(peak) & np.isfinite(before) & np.isfinite(forecast)
    if usable.sum() < MIN_HOURS:
        return None
    features = np.column_stack(
        [np.ones(usable.sum()), _space(before[usable], capacity), _space(forecast[usable], capacity)]
    )
    weights = quantile_regression(features, _space(peak[usable], capacity), settings.budget_quantile)
    if weights is None:
        return None
    # The budget: what the reactive rule ran over the last `budget_hours` of the usable hours.
    recent = usable & (hours >= cutoff - settings.budget_hours * HOUR)
    reactive = _replicas(
        _space(before[recent] / settings.reactive_utilization, capacity), np.ones(recent.sum()), low, high
    )
    floor_load = floors.reindex(hours[recent]).to_numpy(dtype=float) / settings.floor_utilization
    floor = np.ceil(np.nan_to_num(floor_load, nan=0.0) / capacity - 1e-9)
    predicted = (features @ weights)[recent[usable]]
    budget = (settings.reactive_budget or 1.0) * reactive.sum()

    def spent(shift: float) -> float:
        return float(_replicas(predicted + shift, floor, low, high).sum())

    lo, hi = SHIFT_RANGE
    if spent(lo) > budget:
        shift = lo
    elif spent(hi) <= budget:
        shift = hi
    else:
        for _ in range(30):
            middle = (lo + hi) / 2
            lo, hi = (middle, hi) if spent(middle) <= budget else (lo, middle)
        shift = lo
    return BudgetModel(
        weights=(float(weights[0]), float(weights[1]), float(weights[2])),
        shift=shift,
        hours=int(usable.sum()),
        capacity=capacity,
    )


def floor_loads(history: pd.Series, hours: pd.DatetimeIndex, minutes: float) -> pd.Series:
    """The peak of the `minutes` before each time in `hours` (NaN where nothing arrived)."""
    stamps = history.index.to_numpy()
    values = history.to_numpy(dtype=float)
    ends = np.searchsorted(stamps, hours.to_numpy(), side="left")
    starts = np.searchsorted(stamps, (hours - pd.Timedelta(minutes=minutes)).to_numpy(), side="left")
    out = np.full(len(hours), np.nan)
    for i, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
        if hi > lo:
            out[i] = values[lo:hi].max()
    return pd.Series(out, index=hours)


def first_hour_model(
    fit: Fit, peaks: pd.Series, floors: pd.Series, limits: Limits, settings: PolicySettings
) -> BudgetModel | None:
    """The budgeted rule learnt from the hours before `fit` (None: the budget is off or history too short)."""
    if settings.reactive_budget is None:
        return None
    corrected = past_corrected_forecasts(fit, peaks, fit.fitted_at, settings.correction_halflife_hours)
    return learn(peaks, corrected, floors, fit.fitted_at, limits, settings)


def learning_hours(fit: Fit, settings: PolicySettings) -> pd.DatetimeIndex:
    """The hour starts whose floor loads :func:`first_hour_model` reads (the budget's hours before the fit)."""
    return pd.date_range(fit.fitted_at - settings.budget_hours * HOUR, fit.fitted_at - HOUR, freq=HOUR)
