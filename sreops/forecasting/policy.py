"""The scaling policy: forecast + recent observations → replicas per hour, with a floor and stabilization.

Between daily refits the latest fit is combined with what was observed since:

1. *Short-term correction.* The fit's hourly forecast (log space) is shifted by an exponentially
   weighted mean of its recent errors, so a level change the fit has not seen yet (a news burst,
   a traffic migration) carries into the next hours.
2. *Calibrated upper band.* The band above the corrected forecast is the `band_quantile` of the
   corrected forecast's own errors over the last `calibration_hours`, one quantile per lead
   time: a conformal band, as wide as the series has recently needed, not as Prophet assumed.
3. *Replicas.* `ceil(upper × (1 + headroom) / capacity)`, never below the Crane-style floor (the
   load observed in the last `floor_minutes` at full utilisation) for the hour that starts now,
   within `[min_replicas, max_replicas]`.
4. *Scale-in stabilization.* A drop of at most `scale_in_tolerance` replicas is ignored, so the
   count does not flap by one between hours; scale-out is never delayed.
5. *Trust.* After an hour whose load broke the advised capacity (`fell_short`), the next
   `distrust_hours` never run fewer replicas than the reactive rule would for the recent load
   (`distrusted`): a forecast that has just failed is not followed into a surge.
6. *Cost cap.* When the corrected forecast expects the hour's peak to be no higher than the last
   hour's, the advice never runs more replicas than the reactive rule does on that peak
   (`capped_at_reactive`): margin beyond persistence is bought only where a rise is expected.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sreops.forecasting.model import HOUR, Fit, from_model_space, to_model_space

if TYPE_CHECKING:
    from sreops.forecasting.budget import BudgetedNeed


@dataclass(frozen=True)
class PolicySettings:
    """Knobs of the policy; the defaults are the ones the backtest chose (docs/forecasting.md)."""

    band_quantile: float = 0.55
    correction_halflife_hours: float = 6.0
    calibration_hours: int = 168
    headroom: float = 0.15
    floor_minutes: int = 15
    floor_utilization: float = 1.0
    scale_in_tolerance: int = 1
    # Trust: for `distrust_hours` after an hour whose load broke the capacity that was advised
    # for it, the advice never falls below what the recent load (the floor's window) needs at
    # `reactive_utilization`, the reactive rule's target: a surge or a regime change the
    # forecast did not see is met as a reactive autoscaler would meet it.
    distrust_hours: int = 6
    reactive_utilization: float = 0.8
    # Cost: when the corrected forecast expects the hour's peak to be no higher than the last
    # hour's, the advice never runs more replicas than the reactive rule does on that peak.
    reactive_cap: bool = True
    # Budget (opt-in): the hour that starts now gets the replicas a quantile regression of its peak
    # on the last hour's peak and the corrected forecast needs, shifted so that the last
    # `budget_hours` would have cost `reactive_budget` x the reactive rule's replica-hours; the
    # trust rule and the cap then do not apply. None (default): band + headroom, trust and cap.
    # Won on every development trace, lost on validation (docs/forecasting.md).
    reactive_budget: float | None = None
    budget_quantile: float = 0.75
    budget_training_hours: int = 336
    budget_hours: int = 168

    def __post_init__(self) -> None:
        if not 0 < self.band_quantile < 1:
            raise ValueError(f"band_quantile must be in (0, 1), got {self.band_quantile}")
        if self.correction_halflife_hours <= 0:
            raise ValueError("correction_halflife_hours must be positive")
        if self.calibration_hours < 24:
            raise ValueError(f"calibration_hours must be at least 24, got {self.calibration_hours}")
        if self.headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {self.headroom}")
        if not 0 < self.floor_utilization <= 1:
            raise ValueError(f"floor_utilization must be in (0, 1], got {self.floor_utilization}")
        if self.scale_in_tolerance < 0:
            raise ValueError("scale_in_tolerance must be >= 0")
        if self.distrust_hours < 0:
            raise ValueError("distrust_hours must be >= 0")
        if not 0 < self.reactive_utilization <= 1:
            raise ValueError(f"reactive_utilization must be in (0, 1], got {self.reactive_utilization}")
        if self.reactive_budget is not None and not 0 < self.reactive_budget <= 10:
            raise ValueError(f"reactive_budget must be in (0, 10] or None, got {self.reactive_budget}")
        if not 0 < self.budget_quantile < 1:
            raise ValueError(f"budget_quantile must be in (0, 1), got {self.budget_quantile}")
        if not 24 <= self.budget_hours <= self.budget_training_hours:
            raise ValueError(
                f"budget_hours ({self.budget_hours}) must be at least 24 and at most"
                f" budget_training_hours ({self.budget_training_hours})"
            )


@dataclass(frozen=True)
class Limits:
    """What one replica serves and how many replicas a service may run."""

    capacity_per_replica: float
    min_replicas: int = 1
    max_replicas: int = 10_000

    def __post_init__(self) -> None:
        if not self.capacity_per_replica > 0:
            raise ValueError(f"capacity_per_replica must be positive, got {self.capacity_per_replica}")
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}")


@dataclass(frozen=True)
class HourForecast:
    """The corrected forecast of one hour's peak and its calibrated upper band (original units)."""

    start: pd.Timestamp
    expected_peak: float
    upper_peak: float


@dataclass(frozen=True)
class Recommendation:
    """Replicas to run in `[window_start, window_end)` and why."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    replicas: int
    forecast_peak: float
    upper_peak: float
    floor_load: float | None
    reason: str


def ewm_before(errors: np.ndarray, halflife: float) -> np.ndarray:
    """At each hour, the exponentially weighted mean of the errors of the hours before it (0 if none)."""
    decay = 0.5 ** (1.0 / halflife)
    out = np.zeros(len(errors) + 1)
    weighted = total = 0.0
    for i, error in enumerate(errors):
        if np.isfinite(error):
            weighted = decay * weighted + error
            total = decay * total + 1.0
        else:
            weighted *= decay
            total *= decay
        out[i + 1] = weighted / total if total > 0 else 0.0
    return out


def fit_errors(fit: Fit, peaks: pd.Series, hours: pd.DatetimeIndex) -> np.ndarray:
    """The fit's errors (observed minus predicted, model space) on `hours`; NaN where no peak was observed."""
    observed = peaks.reindex(hours).to_numpy(dtype=float)
    errors = to_model_space(observed, fit.scale) - fit.model_space("yhat").reindex(hours).to_numpy()
    errors[~np.isfinite(observed)] = np.nan
    return errors


def corrected_forecast(
    fit: Fit, peaks: pd.Series, now: pd.Timestamp, hours: int, settings: PolicySettings
) -> list[HourForecast]:
    """The fit's forecast for the `hours` hours from `now`, corrected and banded with the peaks before `now`.

    `peaks` are observed hourly peaks on the same hour grid as the fit (bins ending at `now`);
    only those before `now` are used.
    """
    predicted = fit.model_space("yhat")
    grid_start = predicted.index[0]
    offset = (now - grid_start) / HOUR
    if offset != int(offset):
        raise ValueError(f"decision time {now} is not on the fit's hourly grid (which starts {grid_start})")
    last_needed = now + (hours - 1) * HOUR
    if predicted.index[-1] < last_needed:
        raise ValueError(
            f"the fit made at {fit.fitted_at} forecasts until {predicted.index[-1]}, not {last_needed}; "
            "refit more often or raise horizon_hours"
        )
    # The hours whose errors feed the correction and the calibration.
    first = max(grid_start, now - (settings.calibration_hours + 48) * HOUR)
    past_hours = pd.date_range(first, now - HOUR, freq=HOUR) if first < now else pd.DatetimeIndex([])
    errors = fit_errors(fit, peaks, past_hours)
    correction = ewm_before(errors, settings.correction_halflife_hours)  # correction[i]: before hour i
    future = predicted.reindex(pd.date_range(now, periods=hours, freq=HOUR)).to_numpy()
    result = []
    for lead in range(hours):
        # Errors of corrections made `lead` hours before each calibration hour.
        idx = np.arange(lead, len(errors))
        idx = idx[idx >= len(errors) - settings.calibration_hours]
        residual = errors[idx] - correction[idx - lead]
        residual = residual[np.isfinite(residual)]
        band = float(np.quantile(residual, settings.band_quantile)) if len(residual) >= 24 else None
        center = future[lead] + correction[-1]
        if band is None:
            # Too little history to calibrate: fall back on Prophet's own band.
            upper_col = fit.model_space("yhat_upper").reindex([now + lead * HOUR]).to_numpy()[0]
            band = float(upper_col - future[lead])
        band = max(band, 0.0)
        result.append(
            HourForecast(
                start=now + lead * HOUR,
                expected_peak=float(from_model_space(center, fit.scale)),
                upper_peak=float(from_model_space(center + band, fit.scale)),
            )
        )
    return result


def fell_short(
    advised: Mapping[pd.Timestamp, int], peaks: pd.Series, now: pd.Timestamp, capacity: float, hours: int
) -> bool:
    """Whether, in the `hours` before `now`, an hour's peak broke the capacity advised for it."""
    for hour in pd.date_range(now - hours * HOUR, now - HOUR, freq=HOUR) if hours > 0 else []:
        peak = peaks.get(hour, np.nan)
        if hour in advised and np.isfinite(peak) and peak > advised[hour] * capacity:
            return True
    return False


def distrusted(
    recommendation: Recommendation, load: float | None, limits: Limits, settings: PolicySettings
) -> Recommendation:
    """The advice for an hour after the forecast fell short: at least what the reactive rule runs on `load`."""
    if load is None:
        return recommendation
    reactive = min(
        replicas_for(load / settings.reactive_utilization, limits.capacity_per_replica), limits.max_replicas
    )
    if reactive <= recommendation.replicas:
        return recommendation
    return dataclasses.replace(
        recommendation,
        replicas=reactive,
        reason=recommendation.reason
        + f"; raised to {reactive} as the reactive rule would ({load:.4g} at {settings.reactive_utilization:.0%}):"
        f" the forecast fell short within the last {settings.distrust_hours} h",
    )


def capped_at_reactive(
    recommendation: Recommendation, last_peak: float | None, limits: Limits, settings: PolicySettings
) -> Recommendation:
    """The advice, at most what the reactive rule runs on `last_peak` when the forecast expects no rise.

    The forecast earns replicas above the reactive rule's only by expecting a peak above the last
    hour's; otherwise its band would buy margin that persistence already gives, at a cost the
    reactive rule does not pay. The floor and the trust rule never exceed this cap (their loads
    are within the last hour and their utilisation is not below the reactive rule's).
    """
    if not settings.reactive_cap or last_peak is None or recommendation.forecast_peak > last_peak:
        return recommendation
    reactive = replicas_for(last_peak / settings.reactive_utilization, limits.capacity_per_replica)
    reactive = min(max(reactive, limits.min_replicas, 1), limits.max_replicas)
    if reactive >= recommendation.replicas:
        return recommendation
    return dataclasses.replace(
        recommendation,
        replicas=reactive,
        reason=recommendation.reason
        + f"; lowered to {reactive}, what the reactive rule runs on the last hour's peak ({last_peak:.4g} at"
        f" {settings.reactive_utilization:.0%}): the forecast expects no rise above it",
    )


def replicas_for(load: float, capacity: float) -> int:
    """Whole replicas (at least 1) whose capacity covers `load`."""
    if not math.isfinite(load) or load <= 0:
        return 1
    return max(1, math.ceil(load / capacity))


def recommend(
    forecasts: list[HourForecast],
    limits: Limits,
    settings: PolicySettings,
    current_load: float | None,
    previous_replicas: int | None = None,
    unit: str = "",
    budgeted: BudgetedNeed | None = None,
) -> list[Recommendation]:
    """Replicas per forecast hour: band + headroom, the floor (first hour), bounds, stabilization.

    With `budgeted`, the first hour's count is the budgeted rule's instead of band + headroom, and
    it is not held against a scale-in (the budget already decides how much margin it carries).
    """
    capacity = limits.capacity_per_replica
    out = []
    previous = previous_replicas
    suffix = f" {unit}" if unit else ""
    for lead, hour in enumerate(forecasts):
        need = hour.upper_peak * (1.0 + settings.headroom)
        replicas = replicas_for(need, capacity)
        why = [
            f"forecast peak {hour.expected_peak:.4g}{suffix} (upper band {hour.upper_peak:.4g}"
            + (f", +{settings.headroom:.0%} headroom" if settings.headroom else "")
            + f") at {capacity:.4g} per replica needs {replicas}"
        ]
        if lead == 0 and budgeted is not None:
            replicas = budgeted.replicas
            why = [
                f"forecast peak {hour.expected_peak:.4g}{suffix}; "
                + budgeted.reason(
                    settings.budget_quantile, settings.reactive_budget or 1.0, settings.budget_hours
                )
            ]
        floor_load = current_load if lead == 0 else None
        if floor_load is not None:
            floor = replicas_for(floor_load / settings.floor_utilization, capacity)
            if floor > replicas:
                replicas = floor
                why.append(
                    f"raised to {floor} by the load of the last {settings.floor_minutes} min "
                    f"({floor_load:.4g}{suffix})"
                )
        held = lead > 0 or budgeted is None
        if held and previous is not None and previous - settings.scale_in_tolerance <= replicas < previous:
            why.append(f"held at {previous}: a scale-in of {previous - replicas} is within the tolerance")
            replicas = previous
        bounded = min(max(replicas, limits.min_replicas, 1), limits.max_replicas)
        if bounded != replicas:
            which = "min_replicas" if bounded > replicas else "max_replicas"
            why.append(f"clamped to {which} {bounded}")
        out.append(
            Recommendation(
                window_start=hour.start,
                window_end=hour.start + HOUR,
                replicas=bounded,
                forecast_peak=hour.expected_peak,
                upper_peak=hour.upper_peak,
                floor_load=floor_load,
                reason="; ".join(why),
            )
        )
        previous = bounded
    return out
