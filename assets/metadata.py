"""Metadata helpers shared by assets: markdown previews and small PNG plots for the UI."""

import base64

import dagster as dg
import pandas as pd

from sreops import figures


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows of a table, as markdown."""
    if frame.empty:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".4g"))


def png(png_bytes: bytes, alt: str) -> dg.MetadataValue:
    """An inline PNG image (rendered by the UI's markdown viewer)."""
    encoded = base64.b64encode(png_bytes).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def line_plot(frame: pd.DataFrame, x: str, y: str, by: str, title: str, max_lines: int = 6) -> bytes:
    """A small line chart of `y` against `x`, one line per value of `by` (the first few)."""
    plt = figures.pyplot()

    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=80)
    for name in list(dict.fromkeys(frame[by]))[:max_lines]:
        part = frame[frame[by] == name]
        ax.plot(part[x], part[y], label=str(name), linewidth=1)
    ax.legend(fontsize=6, loc="upper left", ncols=2)
    fig.autofmt_xdate()
    return _finish(fig, ax, title)


def bar_plot(labels: list[str], values: list[float], title: str, xlabel: str, max_bars: int = 12) -> bytes:
    """Horizontal bars, largest first (the first `max_bars`; a repeated label's values are summed).

    Says so when there is nothing to show.
    """
    plt = figures.pyplot()

    totals: dict[str, float] = {}
    for label, value in zip(labels, values, strict=True):
        totals[label] = totals.get(label, 0.0) + float(value)
    pairs = sorted(totals.items(), key=lambda p: -p[1])[:max_bars]
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.28 * max(len(pairs), 2)), dpi=80)
    if pairs:
        names = [_short(str(name)) for name, _ in pairs][::-1]
        ax.barh(names, [v for _, v in pairs][::-1], color="#4c72b0")
        ax.set_xlabel(xlabel, fontsize=7)
    else:
        _say(ax, "nothing in this run")
    return _finish(fig, ax, title)


def timeline_plot(incidents: pd.DataFrame, title: str) -> bytes:
    """One bar per incident from its first to last minute, a row per service, red while firing."""
    plt = figures.pyplot()

    services = list(dict.fromkeys(incidents["service"])) if len(incidents) else []
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.3 * max(len(services), 2)), dpi=80)
    if services:
        for row in incidents.itertuples(index=False):
            start = pd.Timestamp(row.first_minute)
            width = pd.Timestamp(row.last_minute) + pd.Timedelta(minutes=1) - start
            color = "#c44e52" if row.status == "firing" else "#8c8c8c"
            ax.barh(services.index(row.service), width, left=start, color=color, height=0.6)
        ax.set_yticks(range(len(services)), [_short(s) for s in services])
        fig.autofmt_xdate()
    else:
        _say(ax, "no incidents in this window")
    return _finish(fig, ax, title)


def _say(ax, text: str) -> None:
    """A chart with nothing to draw says so in its middle."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
    ax.set_axis_off()


def _finish(fig, ax, title: str) -> bytes:
    """Title, small tick labels, a tight layout: the chart as PNG bytes."""
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return figures.to_png(fig)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
