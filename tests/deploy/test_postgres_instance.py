"""Dagster's instance storage on PostgreSQL (`deploy/dagster.postgres.yaml`): a 48-hour backfill and the sensors.

Debian's PostgreSQL runs on loopback (a throwaway cluster); `dagster dev` (webserver and daemon)
keeps runs, event logs, sensor ticks and pool slots there. The backfill is launched through the
GraphQL call the UI makes; meanwhile the daemon ticks every sensor, and a file landed afterwards
goes the sensor way (the landing sensor's ingest run, then that hour's features and scores).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from assets.partitions import hour_key
from sreops import features, warehouse
from sreops.devtools import postgres_server
from sreops.devtools.dagster_dev import dagster_dev, launch_backfill, wait_for_backfill
from sreops.ingest import run as ingest_run

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_YAML = ROOT / "deploy" / "dagster.postgres.yaml"
START = dt.datetime(2026, 11, 10)
HOURS = [START + dt.timedelta(hours=h) for h in range(48)]
SERIES = [(s, m) for s in ("checkout", "search") for m in ("cpu", "latency")]
SPIKE = dt.datetime(2026, 11, 11, 20, 20)
BACKFILLED = ["metric_features_1m", "anomalies", "alerts"]
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def samples(start: dt.datetime, hours: int, series: list[tuple[str, str]], seed: int) -> pd.DataFrame:
    """Minute samples with a daily shape; checkout's latency jumps by 60 for 5 minutes at SPIKE."""
    ts = pd.date_range(start, start + dt.timedelta(hours=hours), freq="1min", inclusive="left")
    rng = np.random.default_rng(seed)
    frames = []
    for service, metric in series:
        value = 50 + 8 * np.sin(2 * np.pi * np.arange(len(ts)) / 1440) + rng.normal(0, 1, len(ts))
        if (service, metric) == ("checkout", "latency"):
            value[(ts >= SPIKE) & (ts < SPIKE + dt.timedelta(minutes=5))] += 60
        frames.append(pd.DataFrame({"timestamp": ts, "service": service, "metric": metric, "value": value}))
    return pd.concat(frames, ignore_index=True)


def wait_until(what: str, check, timeout_s: float, explain=lambda: "", every_s: float = 1.0):
    """Poll `check` until it returns something truthy (bounded); its value."""
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s\n{explain()}")
        time.sleep(every_s)
    return found


# A tick's sensor or schedule name is stored as `job_name` in its serialized body.
def instance_state(url: str) -> str:
    """What the instance recorded, for a failure message: runs and sensor ticks."""
    runs = postgres_server.query(
        url, "SELECT pipeline_name, status, run_body FROM runs ORDER BY create_timestamp"
    )
    lines = [f"run {name} {status} {json.loads(body).get('tags')}" for name, status, body in runs]
    ticks = postgres_server.query(
        url,
        "SELECT tick_body::json ->> 'job_name', status, count(*) FROM job_ticks GROUP BY 1, 2 ORDER BY 1",
    )
    lines += [f"ticks {name} {status} {count}" for name, status, count in ticks]
    return "\n".join(lines)


def test_the_postgres_instance_keeps_the_checkouts_queue_and_pools() -> None:
    """deploy/dagster.postgres.yaml is dagster.yaml plus PostgreSQL storage from $DAGSTER_PG_URL."""
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    deployed = yaml.safe_load(POSTGRES_YAML.read_text())
    assert deployed.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert deployed == local


@pytest.mark.slow
def test_a_48_hour_backfill_and_the_sensors_on_postgres_storage_fail_no_run(
    sreops_home: Path, warehouse_path: Path, tmp_path: Path, postgres: postgres_server.PostgresServer
) -> None:
    history = sreops_home / "history.parquet"
    samples(START, 48, SERIES, seed=7).to_parquet(history, index=False)
    assert ingest_run.ingest_file(history, warehouse_path, move=False).status == "ingested"
    # built once here so that the landing sensor has no marked hours to rebuild: the backfill rebuilds them
    features.build_range(warehouse_path, HOURS[0], HOURS[-1] + dt.timedelta(hours=1))
    landing = sreops_home / "landing" / "metrics"
    landing.mkdir(parents=True)
    keys = [hour_key(h) for h in HOURS]

    settings = {
        "SREOPS_HOME": str(sreops_home),
        "SREOPS_PARTITIONS_START": f"{START:%Y-%m-%d}",
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the installed driver is psycopg2
        "DAGSTER_PG_URL": postgres.dagster_url,
    }
    home = tmp_path / "dagster"
    log = tmp_path / "dagster-dev.log"
    with dagster_dev(home, settings, instance_yaml=POSTGRES_YAML, log_path=log) as port:
        began = time.monotonic()
        backfill = wait_for_backfill(port, launch_backfill(port, BACKFILLED, keys), timeout_s=900)
        backfill_s = time.monotonic() - began
        assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (
            backfill,
            log.read_text()[-4000:],
        )
        assert backfill["numPartitions"] == 48

        # The sensor way: a late file for the last hour, a new service's samples. The landing sensor
        # ingests it, and that hour's features and scores follow (in the ingest run or runs the
        # automation sensor requests, whichever the assets do).
        staged = sreops_home / "billing.parquet"
        samples(HOURS[-1], 1, [("billing", "cpu")], seed=8).to_parquet(staged, index=False)
        staged.rename(landing / staged.name)
        [(after,)] = postgres_server.query(postgres.url, "SELECT coalesce(max(id), 0) FROM event_logs")

        def scored_after_landing() -> int:
            return postgres_server.query(
                postgres.url,
                "SELECT count(*) FROM event_logs WHERE id > %s AND dagster_event_type = "
                "'ASSET_MATERIALIZATION' AND asset_key = %s AND partition = %s",
                (after, json.dumps(["anomalies"]), keys[-1]),
            )[0][0]

        wait_until(
            "anomalies of the landed hour",
            scored_after_landing,
            240,
            lambda: instance_state(postgres.url) + "\n" + log.read_text()[-3000:],
        )
        wait_until(
            "every run finished",
            lambda: (
                not postgres_server.query(
                    postgres.url, "SELECT 1 FROM runs WHERE status NOT IN %s", (TERMINAL,)
                )
            ),
            300,
        )
        # Everything the instance recorded lives in PostgreSQL, none in SQLite under DAGSTER_HOME.
        runs = postgres_server.query(postgres.url, "SELECT pipeline_name, status, run_body FROM runs")
        ticks = postgres_server.query(
            postgres.url,
            "SELECT tick_body::json ->> 'job_name', status, count(*) FROM job_ticks GROUP BY 1, 2",
        )
        sqlite_files = sorted(p.name for p in home.rglob("*.db"))

    statuses = [status for _, status, _ in runs]
    backfill_runs = [r for r in runs if json.loads(r[2]).get("tags", {}).get("dagster/backfill")]
    sensor_runs = [
        r
        for r in runs
        if "landing_metrics" in json.loads(r[2]).get("tags", {}).get("dagster/sensor_name", "")
    ]
    print(  # the numbers docs/deploy.md quotes
        f"\n48-hour backfill on PostgreSQL: {len(backfill_runs)} run(s), {len(runs)} runs in all, "
        f"{statuses.count('FAILURE')} failed, backfill {backfill_s:.0f} s; ticks {sorted(ticks)}"
    )
    assert statuses.count("FAILURE") == 0 and set(statuses) == {"SUCCESS"}, runs
    assert backfill_runs and sensor_runs
    ticked = {name for name, _, _ in ticks}
    assert {"landing_metrics", "sreops_automation"} <= ticked, ticks
    assert [t for t in ticks if t[1] == "FAILURE"] == [], ticks
    assert sqlite_files == []

    with warehouse.connect(warehouse_path) as con:
        per_hour = con.execute(
            "SELECT date_trunc('hour', minute), count(*) FROM metric_features_1m "
            "WHERE service <> 'billing' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        scored = con.execute(
            "SELECT DISTINCT date_trunc('hour', minute) FROM anomalies WHERE metric <> '*' ORDER BY 1"
        ).fetchall()
        billing = con.execute("SELECT count(*) FROM metric_features_1m WHERE service = 'billing'").fetchone()
        alerts = con.execute("SELECT fingerprint FROM alerts WHERE kind = 'anomaly'").fetchall()
    assert per_hour == [(h, len(SERIES) * 60) for h in HOURS]
    assert [h for (h,) in scored] == HOURS
    assert billing == (60,)
    assert ("anomaly:checkout",) in alerts
