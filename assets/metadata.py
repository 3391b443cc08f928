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
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper left", ncols=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return figures.to_png(fig)
