"""The composition root: the one place that assembles Dagster `Definitions` (workspace.yaml loads it).

Everything else in `sreops/` is Dagster-free; this module only gathers what `assets/` and
`sensors/` export. Every stage module is imported by name here, so a missing or misspelt one
fails the load instead of silently dropping a stage.
"""

from __future__ import annotations

from types import ModuleType

import dagster as dg

import assets.detection
import assets.features
import assets.forecasting
import assets.ingest
import assets.logs
import sensors.delivery
import sensors.digest
import sensors.failures
import sensors.landing
import sensors.logs
import sensors.prometheus
from assets.executors import RUN_EXECUTOR
from assets.resources import ConfigResource, SlackResource, WarehouseResource

# Stage modules, in flow order. A module exports any of ASSETS, ASSET_CHECKS, JOBS, SCHEDULES, SENSORS.
STAGE_MODULES: tuple[ModuleType, ...] = (
    assets.ingest,
    assets.features,
    assets.detection,
    assets.forecasting,
    assets.logs,
    sensors.landing,
    sensors.prometheus,
    sensors.logs,
    sensors.delivery,
    sensors.failures,
    sensors.digest,
)
KINDS = ("ASSETS", "ASSET_CHECKS", "JOBS", "SCHEDULES", "SENSORS")


def _collect(modules: tuple[ModuleType, ...]) -> dict[str, list]:
    found: dict[str, list] = {kind: [] for kind in KINDS}
    for module in modules:
        exported = [kind for kind in KINDS if hasattr(module, kind)]
        if not exported:
            raise ImportError(f"{module.__name__} exports none of {', '.join(KINDS)}")
        for kind in exported:
            found[kind].extend(getattr(module, kind))
    return found


def build_definitions() -> dg.Definitions:
    """Assets, checks, jobs, schedules and sensors of every stage, with their resources."""
    parts = _collect(STAGE_MODULES)
    automation = dg.AutomationConditionSensorDefinition(
        "sreops_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=5,
        description="Keeps downstream partitions (anomalies, alerts) in step with new features.",
    )
    return dg.Definitions(
        assets=parts["ASSETS"],
        asset_checks=parts["ASSET_CHECKS"],
        jobs=parts["JOBS"],
        schedules=parts["SCHEDULES"],
        sensors=[*parts["SENSORS"], automation],
        executor=RUN_EXECUTOR,
        resources={
            "warehouse": WarehouseResource(),
            "sreops_config": ConfigResource(),
            "slack": SlackResource.from_environment(),
        },
    )


defs = build_definitions()
