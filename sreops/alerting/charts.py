"""The picture in an alert's thread: each metric around the incident, its expected band, anomalous minutes.

Data is read while a warehouse connection is open (:func:`chart_data`); the PNG is drawn after
it is closed (:func:`render_png`), so matplotlib never holds the warehouse lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from sreops import figures
from sreops.alerting.feedback.labels import metric_shapes
from sreops.alerting.model import Alert, table_exists

MAX_METRICS = 3
CONTEXT_BEFORE = dt.timedelta(minutes=90)
CONTEXT_AFTER = dt.timedelta(minutes=20)


@dataclass
class MetricSeries:
    """One metric's minutes around the incident, with its expected band and anomalous minutes."""

    metric: str
    frame: pd.DataFrame  # minute, value
    band_low: pd.Series | float | None = None
    band_high: pd.Series | float | None = None
    band_source: str = ""
    anomalous: list[dt.datetime] = field(default_factory=list)


@dataclass
class ChartData:
    """Everything needed to draw the chart of one incident."""

    service: str
    first: dt.datetime
    last: dt.datetime
    series: list[MetricSeries]
    title: str


def _anomalous_minutes(
    con: duckdb.DuckDBPyConnection, service: str, metric: str, start: dt.datetime, end: dt.datetime
) -> list[dt.datetime] | None:
    if not table_exists(con, "anomalies"):
        return None
    columns = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'anomalies'"
        ).fetchall()
    }
    if not {"minute", "service", "metric", "is_anomaly"} <= columns:
        return None
    rows = con.execute(
        "SELECT DISTINCT minute FROM anomalies WHERE service = ? AND metric = ? AND is_anomaly"
        " AND minute BETWEEN ? AND ? ORDER BY minute",
        [service, metric, start, end],
    ).fetchall()
    return [r[0] for r in rows]


def chart_data(con: duckdb.DuckDBPyConnection, members: list[Alert], now: dt.datetime) -> ChartData | None:
    """Features of the incident's metrics around its minutes; None when there is nothing to draw."""
    primary = members[0]
    if primary.service is None:
        return None
    metrics = list(dict.fromkeys(m for a in members for m in a.metrics))[:MAX_METRICS]
    if not metrics:
        return None
    first = min(a.first_minute for a in members)
    last = max(a.last_minute for a in members)
    start = first - CONTEXT_BEFORE
    end = min(last + CONTEXT_AFTER, max(now, last))
    frame = con.execute(
        "SELECT minute, metric, mean AS value FROM metric_features_1m"
        " WHERE service = ? AND list_contains(?, metric) AND minute BETWEEN ? AND ? ORDER BY minute",
        [primary.service, metrics, start, end],
    ).df()
    if frame.empty:
        return None
    shapes: dict = {}
    for alert in members:
        shapes.update({m: s for m, s in metric_shapes(alert).items() if s.expected_high is not None})
    series = []
    for metric in metrics:
        part = frame[frame["metric"] == metric][["minute", "value"]].reset_index(drop=True)
        if part.empty:
            continue
        item = MetricSeries(metric, part)
        shape = shapes.get(metric)
        if shape is not None and shape.expected_low is not None:
            item.band_low, item.band_high, item.band_source = (
                shape.expected_low,
                shape.expected_high,
                "expected",
            )
        else:
            baseline = part[part["minute"] < first]["value"]
            if len(baseline) >= 10:
                item.band_low, item.band_high = float(baseline.quantile(0.02)), float(baseline.quantile(0.98))
                item.band_source = "usual range (previous 90 min)"
        marked = _anomalous_minutes(con, primary.service, metric, start, end)
        item.anomalous = marked if marked else [m for m in part["minute"] if first <= m <= last]
        series.append(item)
    if not series:
        return None
    title = f"{primary.service}: {', '.join(s.metric for s in series)}"
    return ChartData(primary.service, first, last, series, title)


def _literal(text: str) -> str:
    """Data text drawn as written: matplotlib reads `$…$` as math (and fails on bad math)."""
    return text.replace("$", r"\$")


def alt_text(data: ChartData) -> str:
    """What the chart shows, for readers who cannot see it (plain data text, unescaped)."""
    return (
        f"Chart of {data.title}, {data.first:%H:%M}–{data.last:%H:%M} UTC: values per minute, the expected "
        "band shaded and anomalous minutes in red"
    )


def render_png(data: ChartData) -> bytes:
    """A small PNG: one panel per metric, band shaded, anomalous minutes in red."""
    plt = figures.pyplot()
    import matplotlib.dates as mdates

    fig, axes = plt.subplots(
        len(data.series), 1, figsize=(7, 1.9 * len(data.series) + 0.5), dpi=90, sharex=True, squeeze=False
    )
    for ax, item in zip(axes[:, 0], data.series, strict=True):
        minutes = pd.to_datetime(item.frame["minute"])
        ax.plot(minutes, item.frame["value"], color="#1f77b4", linewidth=1.1, label=_literal(item.metric))
        if item.band_low is not None and item.band_high is not None:
            ax.fill_between(
                minutes, item.band_low, item.band_high, color="#2ca02c", alpha=0.15, label=item.band_source
            )
        if item.anomalous:
            hits = item.frame[item.frame["minute"].isin(item.anomalous)]
            ax.scatter(
                pd.to_datetime(hits["minute"]),
                hits["value"],
                color="#d62728",
                s=10,
                zorder=3,
                label="anomalous minutes",
            )
        ax.axvspan(data.first, data.last, color="#d62728", alpha=0.06)
        ax.set_ylabel(_literal(item.metric), fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    axes[0, 0].set_title(_literal(f"{data.title} (UTC)"), fontsize=9)
    fig.tight_layout()
    return figures.to_png(fig)
