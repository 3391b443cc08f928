"""The log stage's entry points, read → compute → write: what the assets and the sensor call.

- `ingest`: every record appended to the files under `landing/logs/<service>/` into `log_lines`,
  written together with the new `log_offsets` (`sreops.ingest.logfiles` reads, `formats` parses);
- `cluster_pending`: the lines not clustered yet → their cluster ids, relabelled lines of merged
  clusters, `log_clusters`, new embedding-cache rows, `new_log_pattern` alerts, and marks for
  the hours of `log_cluster_counts_1m` to rebuild (`sreops.logs.batch` computes, per service);
- `build_counts_hour` / `recount_hours`: rebuild hours of `log_cluster_counts_1m`;
- `counts_match_lines`, `read_counts`, `top_clusters`: what the assets report and check.

Connections are opened here, short-lived, and never held while files are read and parsed, lines
clustered or texts embedded. Each write is one transaction: ingestion first checks that no other
run moved the offsets (else it reads again), clustering that no other run moved a service's
state version (`store.ConcurrentClusteringError`), so a crash or a second run never loses or
repeats a line.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import time
from pathlib import Path

import duckdb
import pandas as pd

from sreops import config as config_module
from sreops import marks, paths, warehouse
from sreops.alerting import outbox
from sreops.ingest import logfiles
from sreops.ingest.logfiles import LogIngestResult
from sreops.logs import store
from sreops.logs.batch import ALERT_KIND, ClusterRun, cluster_service, clustering_config
from sreops.logs.embedding import Embedder
from sreops.logs.slots import embedding_text
from sreops.logs.store import CountsBuild
from sreops.timeutil import utc_now

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 3
MAX_LINES_PER_RUN = 2_000_000


class LogIngestConflict(RuntimeError):
    """Another log ingestion kept moving the offsets while this one read the files."""


# -- ingestion -------------------------------------------------------------------------------
def _stored_offsets(warehouse_path: str | os.PathLike[str] | None) -> list[tuple]:
    with warehouse.connect(warehouse_path) as con:
        return store.read_offsets(con)


def ingest(
    warehouse_path: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    *,
    cfg: config_module.Config,
    now: dt.datetime | None = None,
    clock: float | None = None,
) -> LogIngestResult:
    """Read every appended record under `root` into `log_lines`; offsets and rows commit together.

    Files are opened, read and parsed with no warehouse connection held; the transaction then
    checks that `log_offsets` is still what the run started from (else it reads again, up to
    COMMIT_ATTEMPTS times) and writes the rows and the new offsets. `now` stamps records without
    a readable time (naive UTC); `clock` is the wall time used to decide whether a file is idle
    (both default to the present).
    """
    root = root or paths.landing_logs()
    now = now or utc_now()
    clock = time.time() if clock is None else clock
    if not root.is_dir():
        return LogIngestResult()
    for _ in range(COMMIT_ATTEMPTS):
        plan = logfiles.read(root, functools.partial(_stored_offsets, warehouse_path), cfg, now, clock)
        if plan.snapshot is None:
            return plan.result
        with warehouse.transaction(warehouse_path) as con:
            if store.read_offsets(con) != plan.snapshot:
                continue  # another run moved the offsets meanwhile: read again from its offsets
            store.write_ingest(con, plan.rows, plan.offsets, now)
        return plan.result
    raise LogIngestConflict(
        f"log_offsets changed while this run read the log files, {COMMIT_ATTEMPTS} times in a row: "
        "another log ingestion is running at the same time; let one finish (runs of ingest_logs "
        "share the warehouse pool) and run it again"
    )


# -- clustering ------------------------------------------------------------------------------
def default_embedder(cfg: config_module.Config) -> Embedder | None:
    """The sentence-embedding model, unless the config turns embeddings off."""
    if not cfg.logs.use_embeddings:
        return None
    from sreops.logs.embedding import MiniLMEmbedder

    return MiniLMEmbedder()


def cluster_pending(
    warehouse_path: str | os.PathLike[str] | None = None,
    *,
    cfg: config_module.Config,
    embedder: Embedder | None = None,
    limit: int = MAX_LINES_PER_RUN,
    now: dt.datetime | None = None,
) -> ClusterRun:
    """Cluster every pending line (up to `limit`, oldest first) and write the results.

    One connection reads the lines, each service's stored clusters and the cached vectors; the
    lines are clustered with none held (embeddings can take seconds); one transaction writes.
    """
    from sreops.logs.embedding import CachedEmbedder

    now = now or utc_now()
    settings = clustering_config(cfg)
    model = embedder if embedder is not None else default_embedder(cfg)
    with warehouse.connect(warehouse_path) as con:
        pending = store.pending_lines(con, limit)
        states = {s: store.load_state(con, s) for s in sorted(pending["service"].unique())}
        service_start = store.service_starts(con, list(states))
        cache = None
        if model is not None:
            known = [
                embedding_text(c.origin) for st in states.values() for c in st.clusters if not c.merged_into
            ]
            cache = CachedEmbedder(model, store.load_vectors(con, model.model_name, known))
    run = ClusterRun()
    if pending.empty:
        return run

    batches = []
    for service, lines in pending.groupby("service", sort=True):
        batch = cluster_service(
            service, lines, states[service], settings, cache, cfg.logs, service_start[service], now
        )
        batches.append(batch)
        run.services.append(batch.outcome)
        run.hours.update(batch.hours)
    if cache is not None:
        run.embedded = len(cache.fresh)

    with warehouse.transaction(warehouse_path) as con:
        for service, state in states.items():
            store.claim_version(con, service, state.version, now)
        store.assign_clusters(con, pd.concat([b.assignments for b in batches], ignore_index=True))
        for service, absorbed, into in (r for b in batches for r in b.relabels):
            run.hours.update(store.relabel(con, service, absorbed, into))
        for batch in batches:
            store.save_clusters(con, batch.outcome.service, batch.clusters, batch.stats, now)
        if cache is not None:
            store.save_vectors(con, cache.model_name, cache.take_fresh(), now)
        _write_new_pattern_alerts(con, [row for b in batches for row in b.alerts])
        marks.mark_hours(con, store.COUNTS_ASSET, run.hours, "log lines clustered")
    log.info("clustered %d log lines: %d new clusters, %d alerts", run.lines, run.new_clusters, run.alerts)
    return run


def _write_new_pattern_alerts(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """Open a `new_log_pattern` alert for each row (`batch._alert_row`) whose fingerprint is new.

    The log stage's only write of `alerts` (through the outbox), inside the clustering transaction.
    """
    for row in rows:
        outbox.open_once(
            con,
            alert_id=row["alert_id"],
            fingerprint=row["fingerprint"],
            kind=ALERT_KIND,
            service=row["service"],
            severity="warning",
            summary=row["summary"],
            details=json.loads(row["details"]),
            opened_at=row["opened_at"],
        )


# -- per-minute counts -----------------------------------------------------------------------
def build_counts_hour(warehouse_path: str | os.PathLike[str] | None, hour: dt.datetime) -> CountsBuild:
    """Rebuild one hour of per-minute cluster counts atomically (idempotent; run again on a DuckLake conflict)."""
    return warehouse.transact(lambda con: store.build_counts_hour(con, hour), warehouse_path)


def recount_hours(
    warehouse_path: str | os.PathLike[str] | None, start: dt.datetime, end: dt.datetime
) -> list[CountsBuild]:
    """Rebuild every hour of [start, end), each in its own transaction."""
    builds = []
    hour = start
    while hour < end:
        builds.append(build_counts_hour(warehouse_path, hour))
        hour += dt.timedelta(hours=1)
    return builds


def counts_match_lines(
    warehouse_path: str | os.PathLike[str] | None, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(lines counted in the counts table, clustered lines in log_lines) over [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        return store.counts_match_lines(con, start, end)


def read_counts(
    warehouse_path: str | os.PathLike[str] | None, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Counts of [start, end) with each cluster's template, largest first."""
    with warehouse.connect(warehouse_path) as con:
        return store.read_counts(con, start, end)


def top_clusters(warehouse_path: str | os.PathLike[str] | None, limit: int = 10) -> pd.DataFrame:
    """The largest live clusters of every service."""
    with warehouse.connect(warehouse_path) as con:
        return store.top_clusters(con, limit)
