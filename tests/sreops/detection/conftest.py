"""Synthetic minute series shared by the detection tests (fixed seeds, nothing read from disk)."""

from __future__ import annotations

import numpy as np
import pytest

MINUTE = 60.0
START = 1_794_787_200.0  # 2026-11-16 00:00 UTC, a Monday


def daily_series(
    days: float, seed: int, noise: float = 1.0, level: float = 50.0
) -> tuple[np.ndarray, np.ndarray]:
    """One value a minute: a daily cycle plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    n = int(days * 1440)
    times = START + MINUTE * np.arange(n)
    values = level + 10 * np.sin(2 * np.pi * np.arange(n) / 1440) + rng.normal(0, noise, n)
    return times, values


@pytest.fixture
def three_days() -> tuple[np.ndarray, np.ndarray]:
    return daily_series(3, seed=1)
