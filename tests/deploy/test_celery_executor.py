"""Executors chosen by one setting (`SREOPS_EXECUTOR`): in-process, multiprocess, and Celery on a real broker.

Redis (Debian's redis-server) on loopback is the broker; a `dagster-celery` worker started from
the checkout executes the steps; the instance is PostgreSQL (`deploy/dagster.postgres.yaml`),
as a fleet shares it; the backfill is launched on `dagster dev` through the GraphQL call the UI
makes, and the daemon's run sends its steps to the worker. The in-process and multiprocess
executors run the same range from the shell (`dagster asset materialize`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.executors import run_executor
from assets.partitions import hour_key
from sreops import features, warehouse
from sreops.config import environment
from sreops.devtools import postgres_server, redis_server
from sreops.devtools.celery_worker import celery_worker
from sreops.devtools.dagster_dev import dagster_dev, launch_backfill, wait_for_backfill
from sreops.ingest import run as ingest_run

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_YAML = ROOT / "deploy" / "dagster.postgres.yaml"
START = dt.datetime(2026, 11, 10)
HOURS = [START + dt.timedelta(hours=h) for h in range(6)]
SERIES = [(s, m) for s in ("checkout", "search") for m in ("cpu", "latency")]
STEPS = {"metric_features_1m", "anomalies", "alerts"}


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        (None, "in_process"),
        ("multiprocess", "multiprocess"),
        ("Celery", "celery"),
        ("in-process", "in_process"),
    ],
)
def test_one_setting_picks_the_executor(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, name: str
) -> None:
    if setting is None:
        monkeypatch.delenv("SREOPS_EXECUTOR", raising=False)
    else:
        monkeypatch.setenv("SREOPS_EXECUTOR", setting)
    assert environment.run_executor_name() == name
    assert run_executor(name).name == name


def test_an_unknown_executor_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SREOPS_EXECUTOR", "k8s")
    with pytest.raises(ValueError, match="use in_process, multiprocess or celery"):
        environment.run_executor_name()


def _samples() -> pd.DataFrame:
    """Six hours of noisy minute samples for 2 services × 2 metrics."""
    ts = pd.date_range(HOURS[0], HOURS[-1] + dt.timedelta(hours=1), freq="1min", inclusive="left")
    rng = np.random.default_rng(11)
    return pd.concat(
        pd.DataFrame({"timestamp": ts, "service": s, "metric": m, "value": rng.normal(50, 2, len(ts))})
        for s, m in SERIES
    )


def _history(sreops_home: Path, warehouse_path: Path) -> None:
    history = sreops_home / "history.parquet"
    _samples().to_parquet(history, index=False)
    assert ingest_run.ingest_file(history, warehouse_path, move=False).status == "ingested"


def _materialize(settings: dict[str, str]) -> tuple[subprocess.CompletedProcess, int, float]:
    """`dagster asset materialize` of the three hourly assets over HOURS (one ranged run); its pid and seconds."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "sreops.definitions"]
        + [
            "--select",
            ",".join(sorted(STEPS)),
            "--partition-range",
            f"{hour_key(HOURS[0])}...{hour_key(HOURS[-1])}",
        ],
        env={**os.environ, **settings, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=600)
    return (
        subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
        proc.pid,
        time.monotonic() - began,
    )


def _assert_warehouse_filled(warehouse_path: Path) -> None:
    with warehouse.connect(warehouse_path) as con:
        per_hour = con.execute(
            "SELECT date_trunc('hour', minute), count(*) FROM metric_features_1m GROUP BY 1 ORDER BY 1"
        ).fetchall()
        scored = con.execute(
            "SELECT DISTINCT date_trunc('hour', minute) FROM anomalies WHERE metric <> '*' ORDER BY 1"
        ).fetchall()
    assert per_hour == [(h, len(SERIES) * 60) for h in HOURS]
    assert [h for (h,) in scored] == HOURS


def _step_seconds(events: list[tuple[str, str, float]]) -> float:
    """The summed STEP_START → STEP_SUCCESS time of the steps in (step, event type, timestamp) rows."""
    starts = {step: ts for step, kind, ts in events if kind == "STEP_START"}
    return sum(ts - starts[step] for step, kind, ts in events if kind == "STEP_SUCCESS")


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_a_partition_range_runs_in_the_run_process_or_a_process_per_step(
    sreops_home: Path, warehouse_path: Path, tmp_path: Path, executor: str
) -> None:
    _history(sreops_home, warehouse_path)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    settings = {
        "DAGSTER_HOME": str(dagster_home),
        "SREOPS_HOME": str(sreops_home),
        "SREOPS_PARTITIONS_START": f"{START:%Y-%m-%d}",
        "SREOPS_EXECUTOR": executor,
    }
    run, run_pid, run_s = _materialize(settings)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [record] = instance.get_run_records()
        entries = [r.event_log_entry for r in instance.get_records_for_run(record.dagster_run.run_id).records]
    steps = [e for e in entries if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"]
    pids = {e.step_key: e.dagster_event.pid for e in steps}
    timeline = [
        (e.step_key, e.dagster_event.event_type_value, e.timestamp) for e in entries if e.dagster_event
    ]
    print(
        f"\n{executor}: {len(pids)} steps in {len(set(pids.values()))} processes, run {run_s:.1f} s,"
        f" steps {_step_seconds(timeline):.1f} s"
    )
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert set(pids) == STEPS
    if executor == "in_process":
        assert set(pids.values()) == {run_pid}
    else:
        assert len(set(pids.values())) == len(STEPS) and run_pid not in pids.values()
    _assert_warehouse_filled(warehouse_path)


@pytest.mark.slow
@pytest.mark.skipif(
    not redis_server.available(), reason="needs Debian's redis-server (apt-get install redis-server)"
)
def test_a_backfill_from_the_ui_runs_its_steps_on_a_celery_worker(
    sreops_home: Path, warehouse_path: Path, tmp_path: Path, postgres: postgres_server.PostgresServer
) -> None:
    _history(sreops_home, warehouse_path)
    # built once here so that the landing sensor has no marked hours to rebuild: the backfill rebuilds them
    features.build_range(warehouse_path, HOURS[0], HOURS[-1] + dt.timedelta(hours=1))
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(POSTGRES_YAML, dagster_home / "dagster.yaml")  # the worker reads the instance at start
    settings = {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_URL": postgres.dagster_url,
        "SREOPS_HOME": str(sreops_home),
        "SREOPS_PARTITIONS_START": f"{START:%Y-%m-%d}",
        "SREOPS_EXECUTOR": "celery",
        # `dagster-celery worker start` runs `celery` from PATH, as in an activated virtualenv
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    worker_log, dev_log = tmp_path / "worker.log", tmp_path / "dagster-dev.log"
    with redis_server.redis_server(tmp_path / "redis") as broker:
        settings["SREOPS_CELERY_BROKER"] = broker
        with (
            celery_worker("sreops-test", broker, settings, worker_log) as node,
            dagster_dev(dagster_home, settings, instance_yaml=POSTGRES_YAML, log_path=dev_log) as port,
        ):
            began = time.monotonic()
            backfill = wait_for_backfill(
                port, launch_backfill(port, sorted(STEPS), [hour_key(h) for h in HOURS])
            )
            backfill_s = time.monotonic() - began
            assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (
                backfill,
                dev_log.read_text()[-3000:] + worker_log.read_text()[-3000:],
            )
            deadline = time.monotonic() + 120
            while postgres_server.query(
                postgres.url, "SELECT 1 FROM runs WHERE status NOT IN ('SUCCESS', 'FAILURE', 'CANCELED')"
            ):
                assert time.monotonic() < deadline, "runs still in flight after 120 s"
                time.sleep(1.0)

    events = postgres_server.query(
        postgres.url,
        "SELECT step_key, dagster_event_type, event, extract(epoch FROM timestamp) FROM event_logs"
        " WHERE step_key IS NOT NULL ORDER BY id",
    )
    # The worker reports each step it takes: "[CeleryExecutor] Executing steps X in celery worker",
    # with its node name as metadata.
    on_worker = {
        step: body for step, kind, body, _ in events if kind == "ENGINE_EVENT" and "in celery worker" in body
    }
    succeeded = {step for step, kind, _, _ in events if kind == "STEP_SUCCESS"}
    timeline = [(step, kind, float(ts)) for step, kind, _, ts in events]
    runs = postgres_server.query(postgres.url, "SELECT status, run_body FROM runs")
    print(
        f"\ncelery: backfill of {len(HOURS)} hours, {len(runs)} run(s), {len(succeeded)} steps on {node},"
        f" launch → done {backfill_s:.1f} s, steps {_step_seconds(timeline):.1f} s"
    )
    assert set(on_worker) == STEPS and all(node in where for where in on_worker.values()), on_worker
    assert succeeded == STEPS
    assert [status for status, _ in runs] == ["SUCCESS"] and "dagster/backfill" in runs[0][1]
    log = worker_log.read_text()
    assert log.count("Task execute_plan[") >= 2 * len(STEPS) and "succeeded in" in log  # received, succeeded
    _assert_warehouse_filled(warehouse_path)
