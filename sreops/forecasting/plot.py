"""The forecast picture a person checks: demand history, forecast band, and the capacity advised."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sreops import figures
from sreops.forecasting.model import HOUR
from sreops.forecasting.policy import Recommendation


def forecast_png(
    title: str,
    history: pd.Series,
    forecast: pd.DataFrame,
    recommendations: Sequence[Recommendation] = (),
    capacity_per_replica: float | None = None,
    history_hours: int = 72,
) -> bytes:
    """PNG: hourly peaks observed, the forecast (`yhat` and its band) and replicas × capacity as steps."""
    plt = figures.pyplot()

    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=80)
    recent = history.dropna()
    if len(recent):
        recent = recent[recent.index >= recent.index[-1] - (history_hours - 1) * HOUR]
        ax.step(
            recent.index, recent.to_numpy(), where="post", color="0.3", linewidth=1, label="observed peak"
        )
    if not forecast.empty:
        ts = pd.DatetimeIndex(forecast["ts"])
        ax.fill_between(
            ts, forecast["yhat_lower"], forecast["yhat_upper"], step="post", alpha=0.2, label="forecast band"
        )
        ax.step(ts, forecast["yhat"], where="post", linewidth=1, label="forecast")
    if recommendations and capacity_per_replica:
        starts = [r.window_start for r in recommendations] + [recommendations[-1].window_end]
        capacity = [r.replicas * capacity_per_replica for r in recommendations]
        ax.step(
            starts,
            capacity + capacity[-1:],
            where="post",
            color="tab:red",
            linewidth=1.2,
            label="advised capacity",
        )
        ax.axvline(recommendations[0].window_start, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_ylim(bottom=0)
    if np.isfinite(ax.get_ylim()[1]):
        ax.legend(fontsize=6, loc="upper left", ncols=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    return figures.to_png(fig)
