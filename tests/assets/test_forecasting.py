"""Forecasting assets through Dagster: both assets with their metadata, and the hourly schedule."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.forecasting import forecasts, hourly_scaling_advice, scaling_recommendations
from assets.resources import ConfigResource, WarehouseResource
from sreops import warehouse


def insert_request_rate(path: Path, service: str, end: pd.Timestamp, days: int, level: float) -> None:
    """Minute features of a daily-cycling request rate for the `days` before `end`."""
    minutes = pd.date_range(end - pd.Timedelta(days=days), end - pd.Timedelta(minutes=1), freq="min")
    hours = minutes.hour + minutes.minute / 60
    rng = np.random.default_rng(len(service))
    values = level * (1 + 0.6 * np.cos(2 * np.pi * (hours - 14) / 24)) * rng.lognormal(0, 0.05, len(minutes))
    frame = pd.DataFrame(
        {"minute": minutes, "service": service, "metric": "request_rate", "n": 4, "mean": values * 0.9,
         "min": values * 0.8, "max": values, "std": 1.0, "last": values}
    )  # fmt: skip
    with warehouse.transaction(path) as con:
        con.register("f", frame)
        con.execute(
            "INSERT INTO metric_features_1m (minute, service, metric, n, mean, min, max, std, last)"
            " SELECT minute, service, metric, n, mean, min, max, std, last FROM f"
        )
        con.unregister("f")


@pytest.fixture
def live_warehouse(warehouse_path: Path) -> Path:
    """Eight days of request rates for two services, up to the current hour."""
    end = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("h")
    insert_request_rate(warehouse_path, "api", end, 8, 300.0)
    insert_request_rate(warehouse_path, "web", end, 8, 40.0)
    return warehouse_path


def resources(path: Path) -> dict:
    return {"warehouse": WarehouseResource(location=str(path)), "sreops_config": ConfigResource()}


def test_forecasts_then_recommendations_with_metadata_a_person_can_read(live_warehouse: Path) -> None:
    result = dg.materialize([forecasts, scaling_recommendations], resources=resources(live_warehouse))
    assert result.success
    meta = result.asset_materializations_for_node("forecasts")[0].metadata
    assert meta["fitted"].value == 2 and meta["skipped"].value == 0
    assert "api" in meta["accuracy"].value
    assert meta["plot"].value.startswith("![forecast accuracy](data:image/png;base64,")
    meta = result.asset_materializations_for_node("scaling_recommendations")[0].metadata
    assert meta["rows"].value == 48 and meta["services"].value == 2
    assert meta["plot"].value.startswith("![api forecast](data:image/png;base64,")
    assert "minReplicas" in meta["hpa_schedule"].value
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["within_replica_limits"] and checks[0].passed
    with warehouse.connect(live_warehouse) as con:
        assert con.execute("SELECT count(*) FROM scaling_recommendations").fetchone()[0] == 48
        assert con.execute("SELECT count(DISTINCT service) FROM forecasts").fetchone()[0] == 2


def test_the_hourly_schedule_refits_only_when_due(live_warehouse: Path) -> None:
    tick = pd.Timestamp.now(tz="UTC").floor("h").to_pydatetime()
    with dg.build_schedule_context(
        resources=resources(live_warehouse), scheduled_execution_time=tick
    ) as context:
        request = hourly_scaling_advice(context)
    assert request.asset_selection is None  # no fit yet: refit and advise
    assert dg.materialize([forecasts], resources=resources(live_warehouse)).success
    with dg.build_schedule_context(
        resources=resources(live_warehouse), scheduled_execution_time=tick
    ) as context:
        request = hourly_scaling_advice(context)
    assert request.asset_selection == [scaling_recommendations.key]
