"""The clustering stage over the warehouse: ids on lines, merges relabel, counts, new-pattern alerts."""

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from sreops import config, paths, warehouse
from sreops.logs import run as logs_run
from sreops.logs import store
from sreops.logs.embedding import TokenHashEmbedder

HOUR = dt.datetime(2026, 11, 20, 13)
CFG = config.Config()


def write(lines: list[tuple[str, str]], at: dt.datetime = HOUR, service: str = "api") -> None:
    """Append records one minute apart from `at`."""
    folder = paths.landing_logs() / service
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "app.log").open("a") as fh:
        for minute, (level, text) in enumerate(lines):
            fh.write(f"{at + dt.timedelta(minutes=minute):%Y-%m-%d %H:%M:%S},000 {level} {text}\n")


def ingest_and_cluster(warehouse_path: Path) -> logs_run.ClusterRun:
    logs_run.ingest(warehouse_path, cfg=CFG, clock=time.time() + 10)
    return logs_run.cluster_pending(warehouse_path, cfg=CFG, embedder=TokenHashEmbedder())


def rows(warehouse_path: Path, sql: str) -> list[tuple]:
    with warehouse.connect(warehouse_path) as con:
        return con.execute(sql).fetchall()


def test_every_line_gets_a_cluster_and_counts_add_up(warehouse_path: Path) -> None:
    write(
        [("INFO", f"request {i} served in {i * 3} ms") for i in range(20)]
        + [("ERROR", "disk /dev/sda1 full")]
    )
    run = ingest_and_cluster(warehouse_path)
    assert run.lines == 21 and run.new_clusters == 2 and run.alerts == 0  # first run: a baseline, no alerts
    assert rows(warehouse_path, "SELECT count(*) FROM log_lines WHERE cluster_id IS NULL") == [(0,)]
    build = logs_run.build_counts_hour(warehouse_path, HOUR)
    assert build.lines == 21 and build.unclustered == 0
    assert logs_run.counts_match_lines(warehouse_path, HOUR, HOUR + dt.timedelta(hours=1)) == (21, 21)
    templates = dict(rows(warehouse_path, "SELECT template, size FROM log_clusters"))
    assert templates == {"request <*> served in <*>": 20, "disk <*> full": 1}
    assert logs_run.build_counts_hour(warehouse_path, HOUR).rows == build.rows  # rebuilding is idempotent


def test_a_new_warning_pattern_raises_one_alert_with_a_similar_known_pattern(warehouse_path: Path) -> None:
    write([("INFO", f"request {i} served in {i} ms") for i in range(5)] + [("ERROR", "payment 42 declined")])
    ingest_and_cluster(warehouse_path)
    later = HOUR + dt.timedelta(hours=2)
    write(
        [("ERROR", "payment 43 declined by bank"), ("INFO", "cache warmed in 5 ms"),
         ("WARN", "payment 44 declined by bank")],
        at=later,
    )  # fmt: skip
    run = ingest_and_cluster(warehouse_path)
    assert run.alerts == 1  # the INFO pattern is new too, but below warning
    (kind, severity, status, summary, details, revision, delivered) = rows(
        warehouse_path,
        "SELECT kind, severity, status, summary, details, revision, delivered_revision FROM alerts",
    )[0]
    assert (kind, severity, status, revision, delivered) == ("new_log_pattern", "warning", "firing", 1, 0)
    assert "payment <*> declined by bank" in summary
    details = json.loads(details)
    assert details["level"] == "error" and details["count"] == 2
    assert details["similar_template"] == "payment <*> declined"
    assert details["first_minute"] == str(later)
    # Seeing the pattern again raises nothing new.
    write([("ERROR", "payment 45 declined by bank")], at=later + dt.timedelta(minutes=30))
    assert ingest_and_cluster(warehouse_path).alerts == 0
    assert rows(warehouse_path, "SELECT count(*) FROM alerts") == [(1,)]


def test_patterns_of_the_first_hour_are_a_baseline_even_in_one_import(warehouse_path: Path) -> None:
    write([("ERROR", "disk /dev/sda1 full")] + [("INFO", f"tick {i}") for i in range(3)])
    write([("ERROR", "kernel panic on cpu 3")], at=HOUR + dt.timedelta(minutes=90))
    run = ingest_and_cluster(warehouse_path)  # one run reads both: only the late pattern is new
    assert run.alerts == 1
    assert "kernel panic" in rows(warehouse_path, "SELECT summary FROM alerts")[0][0]


def test_a_later_merge_relabels_lines_already_stored(warehouse_path: Path) -> None:
    write([("INFO", "session opened for user alice"), ("INFO", "session opened for user bob")])
    ingest_and_cluster(warehouse_path)
    assert rows(warehouse_path, "SELECT count(DISTINCT cluster_id) FROM log_lines") == [(2,)]
    write([("INFO", "session opened for user carol"), ("INFO", "session opened for user dave")])
    run = ingest_and_cluster(warehouse_path)
    assert run.services[0].merges == 2  # bob and carol into alice; dave arrived as the fourth value
    assert rows(warehouse_path, "SELECT count(DISTINCT cluster_id) FROM log_lines") == [(1,)]
    live = rows(warehouse_path, "SELECT template, size FROM log_clusters WHERE merged_into IS NULL")
    assert live == [("session opened for user <*>", 4)]
    assert HOUR in run.hours


def test_clusters_survive_a_restart_with_the_same_ids(warehouse_path: Path) -> None:
    write([("INFO", f"GET /api/items/{i} 200") for i in range(3)])
    ingest_and_cluster(warehouse_path)
    before = rows(warehouse_path, "SELECT DISTINCT cluster_id FROM log_lines")
    write([("INFO", "GET /api/items/99 200")])
    ingest_and_cluster(warehouse_path)  # a new run loads the stored state
    assert rows(warehouse_path, "SELECT DISTINCT cluster_id FROM log_lines") == before


def test_a_concurrent_run_is_detected_and_nothing_is_written(warehouse_path: Path, monkeypatch) -> None:
    write([("INFO", "hello 1")])
    logs_run.ingest(warehouse_path, cfg=CFG, clock=time.time() + 10)
    real = store.load_state

    def read_then_someone_else_writes(con, service):
        state = real(con, service)
        state.version -= 1  # as if another run claimed the state after this one read it
        return state

    with warehouse.transaction(warehouse_path) as con:
        store.claim_version(con, "api", 0, HOUR)
    monkeypatch.setattr(store, "load_state", read_then_someone_else_writes)
    with pytest.raises(store.ConcurrentClusteringError):
        logs_run.cluster_pending(warehouse_path, cfg=CFG, embedder=TokenHashEmbedder())
    assert rows(warehouse_path, "SELECT count(*) FROM log_lines WHERE cluster_id IS NULL") == [(1,)]


def test_embeddings_are_cached_in_the_warehouse(warehouse_path: Path) -> None:
    write([("INFO", "job 1 started"), ("INFO", "job 1 finished")])
    assert ingest_and_cluster(warehouse_path).embedded == 0  # a first import embeds nothing
    write([("WARN", "job 2 retried")])
    assert ingest_and_cluster(warehouse_path).embedded == 3  # the new pattern and those it is compared to
    write([("ERROR", "disk /dev/sda1 full")])
    assert ingest_and_cluster(warehouse_path).embedded == 1  # only the new one: the rest come from the cache
    assert rows(warehouse_path, "SELECT count(*) FROM log_embeddings") == [(4,)]
