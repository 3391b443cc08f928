"""The delivery sensor: an alert row reaches (fake) Slack on the next tick, often enough for ≤ 10 s."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from assets.resources import ConfigResource, SlackResource, WarehouseResource
from sensors.delivery import INTERVAL_S, alert_delivery_sensor
from sreops import warehouse
from sreops.alerting import outbox
from sreops.devtools.fake_slack import FakeSlack


def queue_incident(path: Path) -> str:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.transaction(path) as con:
        return outbox.open_or_update(
            con,
            fingerprint="anomaly:api",
            kind="anomaly",
            service="api",
            severity="major",
            summary="api: cpu_utilization unusual",
            details={"metrics": ["cpu_utilization"], "score": 91},
            score=91,
            now=now,
        )


def tick(path: Path, slack: SlackResource | None = None) -> dg.SkipReason:
    resources = {
        "warehouse": WarehouseResource(location=str(path)),
        "sreops_config": ConfigResource(),
        "slack": slack or SlackResource(),
    }
    return alert_delivery_sensor(dg.build_sensor_context(resources=resources))


def test_tick_posts_pending_alert_and_records_it(warehouse_path: Path) -> None:
    with FakeSlack(channels=("sre-alerts",)) as fake:
        slack = SlackResource(bot_token=fake.token, api_url=fake.url)
        alert_id = queue_incident(warehouse_path)
        result = tick(warehouse_path, slack)
        assert "1 delivered" in result.skip_message
        [message] = fake.messages("sre-alerts")
        assert "api" in message["text"]
        with warehouse.connect(warehouse_path) as con:
            status, ts = con.execute(
                "SELECT delivery_status, slack_ts FROM alerts WHERE alert_id = ?", [alert_id]
            ).fetchall()[0]
        assert (status, ts) == ("delivered", message["ts"])
        assert "0 delivered" in tick(warehouse_path, slack).skip_message  # nothing posted twice
        assert len(fake.messages("sre-alerts")) == 1


def test_tick_without_token_dry_runs(warehouse_path: Path) -> None:
    queue_incident(warehouse_path)
    assert "1 dry-run" in tick(warehouse_path).skip_message


def test_sensor_runs_by_default_and_ticks_within_the_latency_budget() -> None:
    assert alert_delivery_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # The daemon evaluates sensors every 5 s; with a smaller minimum interval every loop ticks, so
    # an alert row waits at most ~5 s plus one tick's work before it is posted.
    assert alert_delivery_sensor.minimum_interval_seconds == INTERVAL_S <= 5


def test_definitions_with_the_alerting_sensors_load() -> None:
    from sensors import delivery, digest, failures

    defs = dg.Definitions(
        sensors=[*delivery.SENSORS, *failures.SENSORS],
        jobs=digest.JOBS,
        schedules=digest.SCHEDULES,
        resources={
            "warehouse": WarehouseResource(),
            "sreops_config": ConfigResource(),
            "slack": SlackResource(),
        },
    )
    dg.Definitions.validate_loadable(defs)
    names = {s.name for s in defs.get_repository_def().sensor_defs}
    assert {"alert_delivery", "run_failure_alerts", "run_recovery_alerts", "pipeline_health"} <= names
