"""The real-time benchmark's accounting: each incident's runs, in chain order, and the gaps between them."""

from sreops.devtools.bench.realtime import latency_rows, stage_of


def run(job: str, what: str, created: float, started: float, ended: float) -> dict:
    return {
        "job": job,
        "what": what,
        "created": created,
        "started": started,
        "ended": ended,
        "status": "SUCCESS",
    }


def test_time_from_landing_to_message_is_split_into_sensor_gaps_launches_and_runs() -> None:
    # landed at 100, posted at 130; a run of another incident (at 200) must not be counted
    runs = [
        run("ingest_metrics", "ingest_metrics", 105, 109, 110),
        run("build_features", "build_features", 114, 118, 119),
        run("__ASSET_JOB", "alerts,anomalies", 122, 126, 128),
        run("ingest_metrics", "ingest_metrics", 205, 209, 210),
    ]
    rows = {r["name"]: r["value"] for r in latency_rows([30.0], [(100.0, 130.0)], runs, startup=4.0)}
    assert rows["landing → Slack p50"] == rows["landing → Slack p95"] == 30.0
    assert rows["ingest: until its run is created (mean)"] == 5
    assert rows["features: until its run is created (mean)"] == 4  # after ingest ended at 110
    assert rows["detection: run queued → started (mean)"] == 4
    assert rows["detection: run started → ended (mean)"] == 2
    assert rows["delivery: last run ended → message (mean)"] == 2
    # every second accounted for: gaps + launches + runs + delivery = the latency
    parts = [v for k, v in rows.items() if k.split(":")[0] in ("ingest", "features", "detection", "delivery")]
    assert sum(parts) == 30


def test_runs_are_told_apart_by_job_and_assets() -> None:
    assert stage_of(run("ingest_metrics", "ingest_metrics", 0, 0, 0)) == "ingest"
    assert stage_of(run("__ASSET_JOB", "metric_features_1m", 0, 0, 0)) == "features"
    assert stage_of(run("score_anomalies", "alerts,anomalies", 0, 0, 0)) == "detection"
    assert stage_of(run("ingest_logs", "log_clusters,log_lines", 0, 0, 0)) == "ingest_logs"
