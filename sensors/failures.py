"""Run failures and pipeline health as alerts: failed runs (with a link), stopped sources, stale models."""

import dagster as dg

from assets.resources import ConfigResource, WarehouseResource
from sreops.alerting import health
from sreops.timeutil import utc_now
from sreops.warehouse import WarehouseLockedError

HEALTH_INTERVAL_S = 60
LOCK_PATIENCE_S = 20.0


def run_failure_of(context: dg.RunFailureSensorContext) -> health.RunFailure:
    """The failed run as the alerting library describes it."""
    run = context.dagster_run
    step_errors = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        # Dagster wraps the user's exception; its innermost cause says what went wrong.
        while error is not None and error.cause is not None:
            error = error.cause
        step_errors.append((event.step_key, error.message.strip() if error is not None else ""))
    message = next((text for _, text in step_errors if text), None) or context.failure_event.message or ""
    return health.RunFailure(
        run_id=run.run_id,
        job_name=run.job_name,
        message=message,
        failed_steps=tuple(step for step, _ in step_errors if step),
        partition=run.tags.get("dagster/partition"),
    )


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Raises an alert (with a link to the run) when a run fails; a later success resolves it.",
)
def run_failure_alerts(
    context: dg.RunFailureSensorContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> None:
    """Open or update the job's run-failure alert."""
    failure = run_failure_of(context)
    # A locked warehouse raises: the tick fails and Dagster offers this run again next tick.
    reopen_minutes = sreops_config.load().alerting.reopen_minutes
    health.record_run_failure(warehouse.path, failure, utc_now(), reopen_minutes, patience_s=LOCK_PATIENCE_S)


@dg.run_status_sensor(
    name="run_recovery_alerts",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Resolves a job's run-failure alert when one of its runs succeeds.",
)
def run_recovery_alerts(context: dg.RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    """Resolve the job's run-failure alert, if one is firing."""
    run = context.dagster_run
    health.record_run_success(warehouse.path, run.job_name, run.run_id, utc_now(), patience_s=LOCK_PATIENCE_S)


@dg.sensor(
    name="pipeline_health",
    minimum_interval_seconds=HEALTH_INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts when a live source stops sending or a model family is not retrained in time.",
)
def pipeline_health_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> dg.SkipReason:
    """Check sources and models; open and resolve their alerts."""
    try:
        report = health.check_pipeline(
            warehouse.path, sreops_config.load(), utc_now(), patience_s=LOCK_PATIENCE_S
        )
    except WarehouseLockedError as exc:
        return dg.SkipReason(f"warehouse busy, checking next tick: {exc}")
    problems = "; ".join(f.summary for f in report.findings[:5])
    return dg.SkipReason(
        f"{len(report.findings)} problem(s), {len(report.resolved)} resolved"
        + (f": {problems}" if problems else "")
    )


SENSORS = [run_failure_alerts, run_recovery_alerts, pipeline_health_sensor]
