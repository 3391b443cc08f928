"""Detection assets through Dagster: the hourly partition chain, its checks and metadata, the daily schedule."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from assets.detection import (
    DetectionRunConfig,
    TrainingConfig,
    alerts_asset,
    anomalies,
    daily_detector_training,
    detector_models,
)
from assets.resources import ConfigResource, SlackResource, WarehouseResource
from sreops import config, warehouse
from sreops.detection import versions

START = dt.datetime(2026, 11, 16)
SPIKE = dt.datetime(2026, 11, 18, 10, 30)


def write_features(path: Path) -> None:
    """Two services, two metrics each, 2.5 days of minutes; checkout latency spikes at SPIKE for 4 minutes."""
    rng = np.random.default_rng(0)
    minute = pd.date_range(START, periods=60 * 60, freq="min")
    frames = []
    for i, (service, metric) in enumerate(
        [("checkout", "cpu"), ("checkout", "latency"), ("search", "cpu"), ("search", "latency")]
    ):
        value = (
            40
            + 10 * i
            + 8 * np.sin(2 * np.pi * np.arange(len(minute)) / 1440)
            + rng.normal(0, 1, len(minute))
        )
        if (service, metric) == ("checkout", "latency"):
            value[(minute >= SPIKE) & (minute < SPIKE + dt.timedelta(minutes=4))] += 50
        frames.append(
            pd.DataFrame({"minute": minute, "service": service, "metric": metric, "n": 2, "mean": value})
        )
    with warehouse.transaction(path) as con:
        con.register("rows", pd.concat(frames))
        con.execute("INSERT INTO metric_features_1m (minute, service, metric, n, mean) SELECT * FROM rows")
        con.unregister("rows")


def run(selection, path: Path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection,
        resources={"warehouse": WarehouseResource(location=str(path)), "sreops_config": ConfigResource()},
        **kwargs,
    )


def test_hourly_chain_scores_the_hour_and_opens_the_incident(warehouse_path: Path) -> None:
    write_features(warehouse_path)
    trained_by_anomalies = []
    for key in ("2026-11-18-10:00", "2026-11-18-11:00"):
        result = run([anomalies, alerts_asset], warehouse_path, partition_key=key)
        assert result.success
        trained_by_anomalies += [
            m.metadata["trained"].value
            for m in result.asset_materializations_for_node("anomalies")
            if m.asset_key == detector_models.key
        ]
    # the first hour trains the four series' models: detector_models records that, the second reuses them
    assert trained_by_anomalies == [4]
    meta = result.asset_materializations_for_node("anomalies")[0].metadata
    assert meta["rows"].value == 60 * 6 and meta["series"].value == 4
    assert "plot" in meta and "top_scores" in meta
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {
        "scores_in_range": True,
        "one_row_per_series_minute": True,
    }
    with warehouse.connect(warehouse_path) as con:
        alerts = con.execute("SELECT fingerprint, status, severity, details FROM alerts").fetchall()
    assert [(a[0], a[1], a[2]) for a in alerts] == [("anomaly:checkout", "resolved", "critical")]
    assert json.loads(alerts[0][3])["first_minute"] == SPIKE.isoformat()


def test_a_ranged_run_scores_and_groups_every_hour_of_the_range(warehouse_path: Path) -> None:
    # Backfills and the automation sensor launch one run for a range of hours.
    write_features(warehouse_path)
    tags = {
        "dagster/asset_partition_range_start": "2026-11-18-09:00",
        "dagster/asset_partition_range_end": "2026-11-18-11:00",
    }
    result = run([anomalies, alerts_asset], warehouse_path, tags=tags)
    assert result.success
    with warehouse.connect(warehouse_path) as con:
        hours = con.execute(
            "SELECT count(DISTINCT date_trunc('hour', minute)) FROM anomalies WHERE metric <> '*'"
        ).fetchone()[0]
        alerts = con.execute("SELECT fingerprint, status FROM alerts").fetchall()
    assert hours == 3
    assert alerts == [("anomaly:checkout", "resolved")]


def test_a_named_version_scores_under_its_own_name(warehouse_path: Path) -> None:
    write_features(warehouse_path)
    baseline, _ = versions.current(warehouse_path, config.Config())
    candidate = versions.register(warehouse_path, baseline.with_changes(context_points=4))
    result = run(
        [anomalies],
        warehouse_path,
        partition_key="2026-11-18-10:00",
        run_config=dg.RunConfig({"anomalies": DetectionRunConfig(version=candidate)}),
    )
    assert result.success
    with warehouse.connect(warehouse_path) as con:
        versions_scored = con.execute("SELECT DISTINCT version FROM anomalies").fetchall()
    assert versions_scored == [(candidate,)]


def test_detector_models_trains_every_series_and_the_schedule_targets_it(warehouse_path: Path) -> None:
    write_features(warehouse_path)
    result = run(
        [detector_models],
        warehouse_path,
        run_config=dg.RunConfig({"detector_models": TrainingConfig(as_of="2026-11-18T12:00")}),
    )
    meta = result.asset_materializations_for_node("detector_models")[0].metadata
    assert meta["trained"].value + meta["reused"].value == 4
    assert meta["plot"].value.startswith("![models per service](data:image/png;base64,")
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 19, 0, 10))
    request = daily_detector_training(context)
    assert request.run_key == "detector-models-2026-11-19"


def test_a_rebuilt_old_features_hour_requests_its_anomalies() -> None:
    from assets.partitions import hourly_partitions

    @dg.asset(name="metric_features_1m", partitions_def=hourly_partitions)
    def features_stand_in() -> None:
        """Stands in for the real features asset: only its materializations matter here."""

    instance = dg.DagsterInstance.ephemeral()
    defs = dg.Definitions(
        assets=[features_stand_in, anomalies, alerts_asset],
        resources={"warehouse": WarehouseResource(), "sreops_config": ConfigResource()},
    )
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    old_hour = "2026-11-18-10:00"
    assert dg.materialize([features_stand_in], instance=instance, partition_key=old_hour).success
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert result.get_requested_partitions(dg.AssetKey("anomalies")) == {old_hour}


def test_an_incident_in_the_hour_in_progress_fires_and_resolves_only_once_quiet_minutes_are_seen(
    warehouse_path: Path,
) -> None:
    """Live: features exist up to the spike's minutes; the rest of the hour has not happened yet."""
    write_features(warehouse_path)
    with warehouse.transaction(warehouse_path) as con:
        con.execute("DELETE FROM metric_features_1m WHERE minute > ?", [SPIKE + dt.timedelta(minutes=6)])
    result = run([anomalies, alerts_asset], warehouse_path, partition_key="2026-11-18-10:00")
    assert result.success
    with warehouse.connect(warehouse_path) as con:
        alerts = con.execute("SELECT status, resolved_at, revision FROM alerts").fetchall()
    assert alerts == [("firing", None, 1)]  # not "[RESOLVED]": the minutes after the spike are unknown
    meta = result.asset_materializations_for_node("alerts")[0].metadata
    assert meta["open_incidents"].value == 1 and "checkout" in meta["open_incidents_now"].value
    assert meta["plot"].value.startswith("![incident timeline](data:image/png;base64,")
    write_features_after(warehouse_path, SPIKE + dt.timedelta(minutes=6))
    result = run([anomalies, alerts_asset], warehouse_path, partition_key="2026-11-18-10:00")
    assert result.success
    assert result.asset_materializations_for_node("alerts")[0].metadata["open_incidents"].value == 0
    with warehouse.connect(warehouse_path) as con:
        ((status, resolved_at, revision),) = con.execute(
            "SELECT status, resolved_at, revision FROM alerts"
        ).fetchall()
    assert status == "resolved" and resolved_at is not None and revision == 2


def write_features_after(path: Path, after: dt.datetime) -> None:
    """The rest of write_features' rows, as if they had just landed."""
    scratch = path.with_name("scratch.duckdb")
    write_features(scratch)
    with warehouse.connect(scratch) as con:
        rows = con.execute(
            "SELECT minute, service, metric, n, mean FROM metric_features_1m WHERE minute > ?", [after]
        ).df()
    with warehouse.transaction(path) as con:
        con.register("rows", rows)
        con.execute("INSERT INTO metric_features_1m (minute, service, metric, n, mean) SELECT * FROM rows")
        con.unregister("rows")


def land_live_hour(warehouse_path: Path) -> None:
    """History as features, and the spike's hour so far as a landing file (its features removed)."""
    from sreops import paths

    hour = SPIKE.replace(minute=0)
    write_features(warehouse_path)
    with warehouse.connect(warehouse_path) as con:
        live = con.execute(
            "SELECT minute AS timestamp, service, metric, mean AS value FROM metric_features_1m"
            " WHERE minute >= ? AND minute <= ? ORDER BY minute",
            [hour, SPIKE + dt.timedelta(minutes=6)],
        ).df()
    with warehouse.transaction(warehouse_path) as con:
        con.execute("DELETE FROM metric_features_1m WHERE minute >= ?", [hour])
    paths.landing_metrics().mkdir(parents=True, exist_ok=True)
    live.to_csv(paths.landing_metrics() / "live.csv", index=False)


def test_a_live_file_is_scored_and_alerted_in_its_ingest_run_and_nothing_is_requested_after(
    warehouse_path: Path,
) -> None:
    """The real-time path: one ingest run builds the hour's features, scores them, opens the incident."""
    from assets.features import metric_features_1m
    from assets.ingest import metric_samples

    land_live_hour(warehouse_path)
    instance = dg.DagsterInstance.ephemeral()
    resources = {
        "warehouse": WarehouseResource(location=str(warehouse_path)),
        "sreops_config": ConfigResource(),
        "slack": SlackResource(),  # no token: dry-run, which the delivery sensor does, not the run
    }
    defs = dg.Definitions(
        assets=[metric_samples, metric_features_1m, anomalies, alerts_asset], resources=resources
    )
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    result = dg.materialize([metric_samples], instance=instance, resources=resources)
    assert result.success
    reported = {
        (e.event_specific_data.materialization.asset_key.to_user_string(), e.partition)
        for e in result.get_asset_materialization_events()
    }
    assert {("metric_features_1m", "2026-11-18-10:00"), ("anomalies", "2026-11-18-10:00"),
            ("alerts", "2026-11-18-10:00")} <= reported  # fmt: skip
    with warehouse.connect(warehouse_path) as con:
        alerts = con.execute("SELECT fingerprint, status FROM alerts").fetchall()
    assert alerts == [("anomaly:checkout", "firing")]
    # the scores are newer than the features: the automation sensor has nothing left to run
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert after.get_requested_partitions(anomalies.key) == set()
    assert after.get_requested_partitions(alerts_asset.key) == set()
    with warehouse.connect(warehouse_path) as con:  # nothing delivered, not even as a dry run
        assert con.execute("SELECT count(*) FROM alert_deliveries").fetchone()[0] == 0


def ingest_live_posting_to(fake, warehouse_path: Path) -> bool:
    """Materialize `metric_samples` with a bot token for `fake`; whether the run succeeded."""
    from assets.ingest import metric_samples

    resources = {
        "warehouse": WarehouseResource(location=str(warehouse_path)),
        "sreops_config": ConfigResource(),
        "slack": SlackResource(bot_token=fake.token, api_url=fake.url),
    }
    return dg.materialize([metric_samples], resources=resources).success


def delivery_pass(fake, warehouse_path: Path) -> int:
    """One delivery pass (what the sensor's tick runs) against `fake`; how many it delivered."""
    from sreops.alerting.delivery.run import deliver_pending
    from sreops.config import SlackSettings

    slack = SlackSettings(bot_token=fake.token, api_url=fake.url)
    return deliver_pending(warehouse_path, config=config.Config(), slack=slack).delivered


def test_a_live_incident_is_posted_by_its_ingest_run_exactly_once(warehouse_path: Path) -> None:
    """With a bot token the run posts the incident it opened; the sensor's next pass has nothing left."""
    from sreops.devtools.fake_slack import FakeSlack

    land_live_hour(warehouse_path)
    with FakeSlack() as fake:
        assert ingest_live_posting_to(fake, warehouse_path)
        posts = fake.calls_to("chat.postMessage", ok=True)
        assert len(posts) == 1 and "checkout" in str(posts[0])
        assert delivery_pass(fake, warehouse_path) == 0
        assert len(fake.calls_to("chat.postMessage", ok=True)) == 1


def test_a_live_run_leaves_the_outbox_to_a_pass_that_holds_it(warehouse_path: Path) -> None:
    """While another pass holds the outbox lock the run posts nothing; the next pass posts it once."""
    import fcntl

    from sreops.devtools.fake_slack import FakeSlack

    land_live_hour(warehouse_path)
    with FakeSlack() as fake:
        lock = warehouse.lock_file(warehouse_path, "delivery")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert ingest_live_posting_to(fake, warehouse_path)
            assert fake.calls_to("chat.postMessage", ok=True) == []
            fcntl.flock(held, fcntl.LOCK_UN)
        assert delivery_pass(fake, warehouse_path) >= 1
        assert len(fake.calls_to("chat.postMessage", ok=True)) == 1


def test_a_live_run_with_slack_down_still_ingests_and_the_next_pass_posts_once(warehouse_path: Path) -> None:
    """Slack failing during the run's delivery: the run succeeds, nothing is lost or doubled."""
    from sreops.devtools.fake_slack import FakeSlack

    land_live_hour(warehouse_path)
    with FakeSlack() as fake:
        fake.fail(503, methods=("chat.postMessage",))
        assert ingest_live_posting_to(fake, warehouse_path)
        assert fake.calls_to("chat.postMessage", ok=True) == []
        with warehouse.connect(warehouse_path) as con:
            assert con.execute("SELECT status FROM alerts").fetchall() == [("firing",)]
        fake.recover()
        for _ in range(40):  # the failed call paused the outbox for its backoff (about a second)
            if delivery_pass(fake, warehouse_path):
                break
            time.sleep(0.25)
        assert len(fake.calls_to("chat.postMessage", ok=True)) == 1
        assert delivery_pass(fake, warehouse_path) == 0
