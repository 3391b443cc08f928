"""The online recommender: refit Prophet every `refit_hours`, decide every hour with the scaling policy.

This is what the replay runs and what the assets do on their schedule: one fit per day (warm
started from the previous one) and, every hour in between, the latest fit corrected with the
hours observed since, through :mod:`sreops.forecasting.policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sreops.config import ForecastingConfig
from sreops.forecasting import budget, model, policy


@dataclass(frozen=True)
class RecommenderSettings:
    """Everything that defines a recommender besides the service's limits."""

    forecast: model.ForecastSettings = field(default_factory=model.ForecastSettings)
    policy: policy.PolicySettings = field(default_factory=policy.PolicySettings)
    refit_hours: int = 24

    def __post_init__(self) -> None:
        if self.refit_hours < 1:
            raise ValueError(f"refit_hours must be at least 1, got {self.refit_hours}")
        if self.refit_hours > self.forecast.horizon_hours:
            raise ValueError(
                f"refit_hours ({self.refit_hours}) exceeds horizon_hours ({self.forecast.horizon_hours}): "
                "hours between refits would have no forecast"
            )


def settings_from_config(cfg: ForecastingConfig) -> RecommenderSettings:
    """The recommender the config's `forecasting` section describes."""
    return RecommenderSettings(
        forecast=model.ForecastSettings(
            training_days=cfg.training_days,
            # Every hour until the next refit still needs `horizon_hours` of advice ahead.
            horizon_hours=cfg.refit_hours + cfg.horizon_hours,
            interval_width=cfg.interval_width,
        ),
        policy=policy.PolicySettings(
            band_quantile=cfg.band_quantile,
            correction_halflife_hours=cfg.correction_halflife_hours,
            calibration_hours=cfg.calibration_hours,
            headroom=cfg.headroom,
            floor_minutes=cfg.floor_minutes,
            scale_in_tolerance=cfg.scale_in_tolerance,
            distrust_hours=cfg.distrust_hours,
            reactive_cap=cfg.reactive_cap,
            reactive_budget=cfg.reactive_budget,
            budget_quantile=cfg.budget_quantile,
        ),
        refit_hours=cfg.refit_hours,
    )


def history_hours(settings: RecommenderSettings) -> int:
    """Hours of peaks a decision needs: the training window, the calibration or the budget's window since the fit."""
    budgeted = settings.policy.reactive_budget is not None
    return max(
        settings.forecast.training_days * 24,
        settings.policy.calibration_hours + 48 + settings.refit_hours,
        settings.policy.budget_training_hours + 1 + settings.refit_hours if budgeted else 0,
    )


def current_load(history: pd.Series, now: pd.Timestamp, minutes: float) -> float | None:
    """The peak load of the last `minutes` before `now` (None when nothing arrived)."""
    (peak,) = budget.floor_loads(history, pd.DatetimeIndex([now]), minutes)
    return None if np.isnan(peak) else float(peak)


def sampling_interval(history: pd.Series) -> pd.Timedelta | None:
    """The median positive step between records (gaps and duplicates barely move it)."""
    steps = np.diff(history.index.to_numpy()).astype("timedelta64[ns]").astype(np.int64)
    steps = steps[steps > 0]
    return pd.Timedelta(int(np.median(steps)), "ns") if len(steps) else None


class ForecastRecommender:
    """Decides replicas hour by hour from a demand history, refitting Prophet every `refit_hours`."""

    def __init__(
        self, limits: policy.Limits, settings: RecommenderSettings | None = None, name: str = "demand"
    ):
        self.limits = limits
        self.settings = settings or RecommenderSettings()
        self.key = (name, "demand")
        self.fit_: model.Fit | None = None
        self.fits_: list[model.Fit] = []
        self.previous_: int | None = None
        self.last_: policy.Recommendation | None = None
        self.interval_: pd.Timedelta | None = None
        self.decided_: dict[pd.Timestamp, int] = {}  # hour → replicas advised for it
        self.fallbacks_ = 0  # decisions the reactive rule raised
        self.budget_: budget.BudgetModel | None = None  # the budgeted rule learnt for `budget_fit_`
        self.budget_fit_: model.Fit | None = None

    def _refit_due(self, now: pd.Timestamp) -> bool:
        if self.fit_ is None:
            return True
        return now - self.fit_.fitted_at >= self.settings.refit_hours * model.HOUR

    def decide(self, history: pd.Series, now: pd.Timestamp) -> int:
        """Replicas for `[now, now + 1 h)` from the records before `now`."""
        history = history[history.index < now]  # the contract, enforced: nothing from now on
        peaks = model.hourly_peaks(history, now, history_hours(self.settings))
        if self._refit_due(now):
            previous = None
            if self.fit_ is not None:
                frame = self.fit_.frame.set_index("ts")["yhat"]
                previous = frame[frame.index >= self.fit_.fitted_at]
            try:
                self.fit_ = model.fit(
                    self.key,
                    peaks,
                    now,
                    self.settings.forecast,
                    warm_start=self.fit_.params if self.fit_ else None,
                    previous_forecast=previous,
                )
                self.fits_.append(self.fit_)
            except model.ForecastError:
                if self.fit_ is None:
                    return self._without_forecast(history, now)
        assert self.fit_ is not None
        forecasts = policy.corrected_forecast(self.fit_, peaks, now, 1, self.settings.policy)
        floor_minutes = self._floor_minutes(history)
        load = current_load(history, now, floor_minutes)
        last_peak = current_load(history, now, max(60.0, floor_minutes))
        learnt = self._budget_model(history, peaks, floor_minutes)
        budgeted = learnt.need(last_peak, forecasts[0].expected_peak) if learnt else None
        (recommendation,) = policy.recommend(
            forecasts,
            self.limits,
            self.settings.policy,
            load,
            previous_replicas=self.previous_,
            budgeted=budgeted,
        )
        if budgeted is None:
            recommendation = self._trusted_and_capped(recommendation, peaks, now, load, last_peak)
        self.previous_ = recommendation.replicas
        self.last_ = recommendation
        self.decided_[now] = recommendation.replicas
        return recommendation.replicas

    def _budget_model(
        self, history: pd.Series, peaks: pd.Series, floor_minutes: float
    ) -> budget.BudgetModel | None:
        """The budgeted rule for the latest fit (None when off), learnt once per fit from the hours before it."""
        assert self.fit_ is not None
        if self.settings.policy.reactive_budget is None:
            return None
        if self.budget_fit_ is not self.fit_:
            floors = budget.floor_loads(
                history, budget.learning_hours(self.fit_, self.settings.policy), floor_minutes
            )
            self.budget_ = budget.first_hour_model(
                self.fit_, peaks, floors, self.limits, self.settings.policy
            )
            self.budget_fit_ = self.fit_
        return self.budget_

    def _trusted_and_capped(
        self,
        recommendation: policy.Recommendation,
        peaks: pd.Series,
        now: pd.Timestamp,
        load: float | None,
        last_peak: float | None,
    ) -> policy.Recommendation:
        """The band-and-headroom advice after the trust rule and the reactive cap."""
        capacity = self.limits.capacity_per_replica
        if policy.fell_short(self.decided_, peaks, now, capacity, self.settings.policy.distrust_hours):
            raised = policy.distrusted(recommendation, load, self.limits, self.settings.policy)
            self.fallbacks_ += int(raised.replicas > recommendation.replicas)
            recommendation = raised
        return policy.capped_at_reactive(recommendation, last_peak, self.limits, self.settings.policy)

    def _floor_minutes(self, history: pd.Series) -> float:
        """The floor's window, at least one record of this series (an hourly trace has no 15-minute load)."""
        if self.interval_ is None:
            self.interval_ = sampling_interval(history)
        step = self.interval_.total_seconds() / 60 if self.interval_ is not None else 0.0
        return max(float(self.settings.policy.floor_minutes), step)

    def _without_forecast(self, history: pd.Series, now: pd.Timestamp) -> int:
        """Too little history to fit: hold what the last hour's peak needs."""
        load = current_load(history, now, 60)
        replicas = policy.replicas_for(load or 0.0, self.limits.capacity_per_replica)
        self.previous_ = min(max(replicas, self.limits.min_replicas), self.limits.max_replicas)
        return self.previous_
