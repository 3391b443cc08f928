"""The plots assets attach to their materializations: real PNGs a person can read, also when empty."""

from __future__ import annotations

import base64
import io

import matplotlib.image
import pandas as pd

from assets.metadata import bar_plot, png, timeline_plot


def _pixels(data: bytes):
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def test_bars_grow_with_their_rows_and_repeated_labels_are_summed() -> None:
    few = _pixels(bar_plot(["a", "b"], [3, 1], "rows", "rows"))
    many = _pixels(bar_plot([f"s{i}" for i in range(10)] + ["s0"], [1.0] * 11, "rows", "rows"))
    assert many.shape[0] > few.shape[0]  # one row of the chart per label, so a taller image
    summed = _pixels(bar_plot(["a", "a", "b"], [1, 2, 1], "rows", "rows"))
    assert summed.shape == few.shape  # two labels, not three


def test_empty_inputs_still_give_an_image_that_says_so() -> None:
    assert _pixels(bar_plot([], [], "nothing", "rows")).size > 0
    empty = pd.DataFrame(columns=["service", "first_minute", "last_minute", "status"])
    assert _pixels(timeline_plot(empty, "incidents")).size > 0


def test_the_incident_timeline_marks_firing_incidents_red() -> None:
    incidents = pd.DataFrame(
        {
            "service": ["api", "db"],
            "first_minute": pd.to_datetime(["2026-11-20 10:05", "2026-11-20 10:20"]),
            "last_minute": pd.to_datetime(["2026-11-20 10:15", "2026-11-20 10:40"]),
            "status": ["firing", "resolved"],
        }
    )
    image = _pixels(timeline_plot(incidents, "incidents"))
    rgb = image[..., :3]
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.4) & (rgb[..., 2] < 0.4)
    assert red.sum() > 50
    calm = timeline_plot(incidents.assign(status="resolved"), "incidents")
    calm_rgb = _pixels(calm)[..., :3]
    assert ((calm_rgb[..., 0] > 0.7) & (calm_rgb[..., 1] < 0.4) & (calm_rgb[..., 2] < 0.4)).sum() == 0


def test_png_metadata_is_an_inline_markdown_image() -> None:
    value = png(bar_plot(["a"], [1], "t", "x"), "alt text").value
    head, encoded = value.split("base64,", 1)
    assert head == "![alt text](data:image/png;"
    assert base64.b64decode(encoded.rstrip(")")).startswith(b"\x89PNG")
