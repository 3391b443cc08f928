"""The daily digest: a schedule whose run queues the day's digest (delivery posts it)."""

import dagster as dg

from assets.resources import ConfigResource, WarehouseResource, definition_config
from sreops.alerting import digest
from sreops.timeutil import utc_now


@dg.op(
    pool="warehouse",
    description="Queue today's digest (top incidents, precision, capacity, new log patterns).",
)
def queue_daily_digest(
    context: dg.OpExecutionContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> None:
    """Queue the digest once per day."""
    now = utc_now()
    alert_id = digest.enqueue(warehouse.path, sreops_config.load(), now)
    context.log.info(
        f"digest queued as alert {alert_id}" if alert_id else "today's digest was already queued"
    )


@dg.job(name="alert_digest", description="Queue the daily alert digest for delivery to Slack.")
def alert_digest_job() -> None:
    queue_daily_digest()


daily_digest_schedule = dg.ScheduleDefinition(
    name="daily_alert_digest",
    job=alert_digest_job,
    cron_schedule=f"0 {definition_config().alerting.digest_hour_utc} * * *",  # structure: read at load
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

JOBS = [alert_digest_job]
SCHEDULES = [daily_digest_schedule]
