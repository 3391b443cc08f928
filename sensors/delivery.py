"""The delivery sensor: every few seconds it posts what the `alerts` outbox holds.

It does the work in the tick itself rather than launching a run, because starting a run costs
seconds and an alert should reach Slack within ~10 s of its row appearing. Each tick is bounded
(`DELIVERY_BUDGET_S`) so it finishes inside Dagster's sensor evaluation limit.
"""

import dagster as dg

from assets.resources import ConfigResource, SlackResource, WarehouseResource
from sreops.alerting.delivery.run import deliver_pending
from sreops.warehouse import WarehouseLockedError

# The daemon evaluates sensors every 5 s; a smaller minimum lets every evaluation loop tick.
INTERVAL_S = 3
DELIVERY_BUDGET_S = 40.0
LOCK_PATIENCE_S = 5.0


@dg.sensor(
    name="alert_delivery",
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts pending alerts to Slack (or logs them in dry-run mode): threads, updates, charts, "
    "Retry-After and backoff, exactly once.",
)
def alert_delivery_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    sreops_config: ConfigResource,
    slack: SlackResource,
) -> dg.SkipReason:
    """One bounded delivery pass over the outbox."""
    try:
        report = deliver_pending(
            warehouse.path,
            config=sreops_config.load(),
            slack=slack.settings,
            budget_s=DELIVERY_BUDGET_S,
            patience_s=LOCK_PATIENCE_S,
        )
    except WarehouseLockedError as exc:
        return dg.SkipReason(f"warehouse busy, delivering next tick: {exc}")
    for error in dict.fromkeys(report.errors):
        context.log.warning(error)
    return dg.SkipReason(report.summary())


SENSORS = [alert_delivery_sensor]
