"""Explanations: the typical band from similar contexts, and which series drove a service-minute."""

from __future__ import annotations

import numpy as np
import pytest

from sreops.detection import explain


def test_band_comes_from_references_that_started_at_a_similar_level() -> None:
    rng = np.random.default_rng(0)
    low_level = np.column_stack([rng.normal(10, 0.5, 500), rng.normal(10, 0.5, 500)])
    high_level = np.column_stack([rng.normal(50, 0.5, 500), rng.normal(50, 0.5, 500)])
    refs = np.vstack([low_level, high_level])
    low, high = explain.expected_band(refs, context=50.2, unit=2.0)
    assert 48.5 < low < 50 < high < 51.5


def test_band_falls_back_to_the_nearest_contexts_when_none_is_close() -> None:
    refs = np.column_stack([np.arange(20.0), np.arange(20.0) * 2])
    low, high = explain.expected_band(refs, context=100.0, unit=1.0)
    assert low >= 2 * 10 and high <= 2 * 19  # the ten contexts nearest to 100: 10..19


def test_service_explanation_shares_the_evidence_among_the_series_that_drove_it() -> None:
    entries = [
        explain.series_entry("latency", 900.0, 100.0, 200.0, 95.0),
        explain.series_entry("cpu", 80.0, 30.0, 50.0, 60.0),
        explain.series_entry("memory", 41.0, 40.0, 42.0, 1.0),  # below the warning floor: not a driver
    ]
    drivers = explain.service_explanation(entries)
    assert [d["metric"] for d in drivers] == ["latency", "cpu"]
    assert sum(d["contribution"] for d in drivers) == pytest.approx(1.0, abs=1e-3)
    assert drivers[0]["contribution"] > drivers[1]["contribution"]
    assert drivers[0]["observed"] == 900.0 and drivers[0]["expected_high"] == 200.0
