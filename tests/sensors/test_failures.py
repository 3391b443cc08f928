"""Run-failure and pipeline-health sensors, and the daily digest job."""

import datetime as dt
from pathlib import Path

import dagster as dg

from assets.resources import ConfigResource, WarehouseResource
from sensors.digest import alert_digest_job
from sensors.failures import pipeline_health_sensor, run_failure_alerts, run_recovery_alerts
from sreops import warehouse
from sreops.alerting.model import fetch_alerts


class StepConfig(dg.Config):
    fail: bool = True


@dg.op
def flaky_step(config: StepConfig) -> None:
    if config.fail:
        raise ValueError("feature table has no column 'mean'")


@dg.job
def flaky_job() -> None:
    flaky_step()


def resources(path: Path) -> dict:
    return {"warehouse": WarehouseResource(location=str(path)), "sreops_config": ConfigResource()}


def alerts(path: Path, where: str = "true") -> list:
    with warehouse.connect(path) as con:
        return fetch_alerts(con, where)


def test_failed_run_becomes_an_alert_with_a_link_and_success_resolves_it(
    warehouse_path: Path,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    failed = flaky_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_instance=instance,
        dagster_run=failed.dagster_run,
        dagster_event=failed.get_run_failure_event(),
        resources=resources(warehouse_path),
    ).for_run_failure()
    run_failure_alerts(context)
    [alert] = alerts(warehouse_path)
    assert alert.kind == "run_failure" and alert.status == "firing"
    assert "flaky_job" in alert.summary and "feature table has no column 'mean'" in alert.summary
    assert alert.details["run_id"] == failed.run_id and alert.details["failed_steps"] == ["flaky_step"]

    from sreops.alerting.blocks import dagster_link

    assert (
        dagster_link(alert, "https://dagster.example.com")[1]
        == f"https://dagster.example.com/runs/{failed.run_id}"
    )

    ok = flaky_job.execute_in_process(
        instance=instance, run_config={"ops": {"flaky_step": {"config": {"fail": False}}}}
    )
    success = dg.build_run_status_sensor_context(
        sensor_name="run_recovery_alerts",
        dagster_instance=instance,
        dagster_run=ok.dagster_run,
        dagster_event=ok.get_run_success_event(),
        resources=resources(warehouse_path),
    )
    run_recovery_alerts(success)
    [alert] = alerts(warehouse_path)
    assert alert.status == "resolved"


def test_health_sensor_raises_for_a_silent_source(warehouse_path: Path) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.transaction(warehouse_path) as con:
        for minutes_ago in range(180, 30, -1):
            con.execute(
                "INSERT INTO metric_samples_extra (ts, service, metric, value, source) VALUES (?, 'api', 'cpu', 1,"
                " 'landing')",
                [now - dt.timedelta(minutes=minutes_ago)],
            )
    result = pipeline_health_sensor(dg.build_sensor_context(resources=resources(warehouse_path)))
    assert result.skip_message.startswith("1 problem(s)")
    [alert] = alerts(warehouse_path)
    assert alert.fingerprint == "source_stale:api:landing" and alert.kind == "pipeline_health"


def test_digest_job_queues_one_digest_per_day(warehouse_path: Path) -> None:
    for _ in range(2):
        result = alert_digest_job.execute_in_process(resources=resources(warehouse_path))
        assert result.success
    assert [a.kind for a in alerts(warehouse_path)] == ["digest"]
