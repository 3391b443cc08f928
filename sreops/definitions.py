"""The composition root: the one place that assembles Dagster `Definitions` (workspace.yaml loads it).

Everything else in `sreops/` is Dagster-free; this module only gathers what `assets/` and
`sensors/` export.
"""

from __future__ import annotations

import importlib
import importlib.util

import dagster as dg

from assets.resources import WarehouseResource

# Stage modules, in flow order. A module exports any of ASSETS, ASSET_CHECKS, JOBS, SCHEDULES, SENSORS.
STAGE_MODULES = (
    "assets.ingest",
    "assets.features",
    "assets.detection",
    "assets.forecasting",
    "assets.logs",
    "sensors.landing",
    "sensors.prometheus",
    "sensors.logs",
    "sensors.delivery",
    "sensors.failures",
    "sensors.digest",
)


def _collect(modules: tuple[str, ...]) -> dict[str, list]:
    found: dict[str, list] = {"ASSETS": [], "ASSET_CHECKS": [], "JOBS": [], "SCHEDULES": [], "SENSORS": []}
    for name in modules:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        for kind, items in found.items():
            items.extend(getattr(module, kind, []))
    return found


def build_definitions() -> dg.Definitions:
    """Assets, checks, jobs, schedules and sensors of every stage, with their resources."""
    parts = _collect(STAGE_MODULES)
    automation = dg.AutomationConditionSensorDefinition(
        "sreops_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=10,
        description="Keeps downstream partitions (anomalies, alerts) in step with new features.",
    )
    return dg.Definitions(
        assets=parts["ASSETS"],
        asset_checks=parts["ASSET_CHECKS"],
        jobs=parts["JOBS"],
        schedules=parts["SCHEDULES"],
        sensors=[*parts["SENSORS"], automation],
        resources={"warehouse": WarehouseResource()},
    )


defs = build_definitions()
