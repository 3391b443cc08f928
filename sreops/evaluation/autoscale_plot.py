"""The picture of one replay (`sreops eval autoscale --plot DIR`): where the advice sits, and where it failed.

Left, the reactive rule's line of cost against breaches (its utilisation targets from 50 % to
100 %), with the protocol's 80 % point, the same rule at the recommender's spend and the
recommender itself: a point below the line places replicas better than persistence. Right, the
three days around the recommender's worst hour (most demand unserved): demand per record, the
capacity the recommender and the reactive rule ran, and the records the recommender did not serve.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sreops import figures
from sreops.evaluation.autoscale import AT_SPEND, RECOMMENDER, TraceResult
from sreops.forecasting import replay

LINE_TARGETS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
WINDOW_HOURS = 72


def worst_hour(trace: replay.Trace, result: TraceResult) -> int:
    """The decision whose hour left the most demand unserved by the recommender (the first on a tie)."""
    plan = result.plan
    unserved = np.maximum(
        replay.scored_demand(trace, plan) - replay.served_per_record(plan, result.replicas[RECOMMENDER]), 0.0
    )
    totals = np.concatenate([[0.0], np.cumsum(unserved)])
    offsets = plan.window_bounds - plan.window_bounds[0, 0]
    return int(np.argmax(totals[offsets[:, 1]] - totals[offsets[:, 0]]))


def replay_png(trace: replay.Trace, result: TraceResult) -> bytes:
    """PNG of one trace's replay: the trade-off panel and the worst three days."""
    plt = figures.pyplot()
    fig, (trade, days) = plt.subplots(1, 2, figsize=(11, 3.4), dpi=80, width_ratios=(1, 2.2))
    _trade_off(trade, trace, result)
    _worst_days(days, trace, result)
    fig.suptitle(result.name, fontsize=9)
    fig.tight_layout()
    return figures.to_png(fig)


def _trade_off(ax: Any, trace: replay.Trace, result: TraceResult) -> None:
    line = replay.reactive_line(trace, result.plan, LINE_TARGETS)
    ax.plot(
        [m.cost_ratio for _, m in line], [m.violation_rate for _, m in line], color="tab:blue", marker="."
    )
    for u, m in line:
        if u in (0.5, 0.8, 1.0):
            ax.annotate(
                f"{u:.0%}",
                (m.cost_ratio, m.violation_rate),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
                color="tab:blue",
            )
    points = (
        ("reactive", "tab:blue", "o", "reactive, 80 % target"),
        (AT_SPEND, "tab:blue", "s", "reactive at the same spend"),
        (RECOMMENDER, "tab:red", "D", "recommender"),
    )
    for name, colour, marker, label in points:
        m = result.measures[name]
        face = "none" if name == AT_SPEND else colour
        ax.scatter(
            [m.cost_ratio],
            [m.violation_rate],
            color=colour,
            marker=marker,
            facecolors=face,
            label=label,
            zorder=3,
        )
    verdict = "yes" if result.beats_reactive() else "no"
    ax.set_title(
        f"beats reactive at 80 %: {verdict}; at the same spend:"
        f" {'yes' if result.beats_reactive_at_spend() else 'no'}",
        fontsize=7,
    )
    ax.set_xlabel("cost ratio (replica-hours / oracle's)", fontsize=7)
    ax.set_ylabel("violation rate (records not served)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6)


def _worst_days(ax: Any, trace: replay.Trace, result: TraceResult) -> None:
    plan = result.plan
    worst = worst_hour(trace, result)
    first = max(0, min(worst - WINDOW_HOURS // 2, len(plan.decision_times) - WINDOW_HOURS))
    last = min(len(plan.decision_times), first + WINDOW_HOURS)
    lo, hi = plan.window_bounds[first, 0], plan.window_bounds[last - 1, 1]
    stamps, demand = trace.timestamps[lo:hi], trace.values[lo:hi]
    ax.plot(stamps, demand, color="0.45", linewidth=0.7, label="demand per record")
    edges = list(plan.decision_times[first:last]) + [plan.decision_times[last - 1] + replay.DECISION_PERIOD]
    for name, colour, label in (
        (RECOMMENDER, "tab:red", "recommender"),
        ("reactive", "tab:blue", "reactive 80 %"),
    ):
        capacity = np.asarray(result.replicas[name][first:last], dtype=float) * plan.capacity
        ax.step(
            edges,
            np.append(capacity, capacity[-1:]),
            where="post",
            color=colour,
            linewidth=1.1,
            label=f"{label} capacity",
        )
    served = replay.served_per_record(plan, result.replicas[RECOMMENDER])
    missed = demand > served[lo - plan.window_bounds[0, 0] : hi - plan.window_bounds[0, 0]]
    ax.scatter(stamps[missed], demand[missed], s=6, color="tab:red", zorder=3, label="not served")
    start = pd.Timestamp(plan.decision_times[first])
    ax.set_title(
        f"{WINDOW_HOURS} h around the recommender's worst hour ({plan.decision_times[worst]:%Y-%m-%d %H:%M}),"
        f" from {start:%Y-%m-%d %H:%M}",
        fontsize=7,
    )
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="upper left", ncols=4)
    ax.figure.autofmt_xdate()
