"""Synthetic demand with a known shape, as traces and as minute features in a warehouse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops import warehouse

START = pd.Timestamp("2026-11-02 00:00:00")


def seasonal_demand(
    start: pd.Timestamp,
    periods: int,
    step: str,
    level: float = 100.0,
    noise: float = 0.05,
    seed: int = 3,
    amplitude: float = 0.6,
) -> pd.Series:
    """Demand that peaks at 14:00 and bottoms at 02:00 every day, times lognormal noise."""
    index = pd.date_range(start, periods=periods, freq=step)
    hours = index.hour + index.minute / 60.0
    shape = 1.0 + amplitude * np.cos(2 * np.pi * (hours - 14.0) / 24.0)
    rng = np.random.default_rng(seed)
    return pd.Series(level * shape * rng.lognormal(0.0, noise, len(index)), index=index)


def insert_features(path: Path, service: str, metric: str, values: pd.Series) -> None:
    """Minute features whose max is the given per-minute value (the columns forecasting reads)."""
    frame = pd.DataFrame(
        {
            "minute": values.index,
            "service": service,
            "metric": metric,
            "n": 2,
            "mean": values.to_numpy() * 0.9,
            "min": values.to_numpy() * 0.8,
            "max": values.to_numpy(),
            "std": 1.0,
            "last": values.to_numpy() * 0.9,
        }
    )
    with warehouse.transaction(path) as con:
        con.register("new_features", frame)
        con.execute(
            "INSERT INTO metric_features_1m (minute, service, metric, n, mean, min, max, std, last)"
            " SELECT minute, service, metric, n, mean, min, max, std, last FROM new_features"
        )
        con.unregister("new_features")


@pytest.fixture
def fleet_warehouse(warehouse_path: Path) -> Path:
    """Ten days of minute features: two services' request_rate (the scaling metric) and a CPU metric."""
    minutes = 10 * 24 * 60
    insert_features(warehouse_path, "checkout", "request_rate", seasonal_demand(START, minutes, "min", 400.0))
    insert_features(
        warehouse_path, "search", "request_rate", seasonal_demand(START, minutes, "min", 90.0, seed=4)
    )
    insert_features(
        warehouse_path, "checkout", "cpu_utilization", seasonal_demand(START, minutes, "min", 0.5)
    )
    return warehouse_path


@pytest.fixture
def make_demand():
    """The `seasonal_demand` generator, for tests that need their own trace."""
    return seasonal_demand


@pytest.fixture
def add_features():
    """The `insert_features` helper, for tests that write their own series."""
    return insert_features


SURGE = (pd.Timestamp("2026-03-10 09:00"), pd.Timestamp("2026-03-10 15:00"))


@pytest.fixture
def surge_trace():
    """Ten days of 5-minute demand and, on the last days, a 4x flash crowd in `SURGE` no forecast can know."""
    from sreops.forecasting import replay

    demand = seasonal_demand(
        pd.Timestamp("2026-03-02 00:00"), 10 * 288, "5min", noise=0.1, amplitude=0.5, seed=5
    )
    values = demand.to_numpy().copy()
    values[(demand.index >= SURGE[0]) & (demand.index < SURGE[1])] *= 4.0
    return replay.Trace("surge", demand.index, values)
