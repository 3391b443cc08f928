"""Pipeline health as alerts: a source that stopped sending, a model not retrained, a failed run.

Each check returns findings; :func:`apply_findings` opens an alert per finding and resolves the
alerts of the same check whose problem is gone, so a recovered source clears its own alert.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sreops import paths, warehouse
from sreops.alerting import outbox
from sreops.alerting.model import fetch_alerts, table_exists
from sreops.config import Config
from sreops.timeutil import from_epoch

LIVE_WINDOW = dt.timedelta(hours=24)  # data older than this is history being loaded, not a live source
CADENCE_FACTOR = 10  # silent for this many usual intervals before it counts as stopped
FRESH_LAG = dt.timedelta(hours=1)  # data that arrived within this of its timestamps was sent live
MIN_LIVE_SPREAD = dt.timedelta(minutes=5)  # fresh arrivals this far apart make a stream, not one load
MAX_FILES_SCANNED = 10_000
SOURCE_PREFIX = "source_stale:"
MODEL_PREFIX = "model_stale:"
RUN_PREFIX = "run_failure:"


@dataclass(frozen=True)
class Finding:
    """One health problem, as the alert it becomes."""

    fingerprint: str
    service: str | None
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def _ago(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.0f} days"


def _cadence(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def live_sources(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> set[tuple[str, str]]:
    """(service, source) pairs whose data has been arriving as it happens, not loaded in one go.

    A source is live when fresh data (arriving within `FRESH_LAG` of its own timestamps) came in
    at least two arrivals `MIN_LIVE_SPREAD` apart. One-shot loads (the demo's files, a historical
    file a person drops in) are history, however recent their timestamps: they never go stale.
    Samples inserted without a file (no arrival recorded) count as live.
    """
    window = [now - LIVE_WINDOW, now]
    arrivals = con.execute(
        "WITH per_file AS (SELECT service, source, file_id, max(ts) AS last FROM metric_samples"
        " WHERE ts > ? AND ts <= ? GROUP BY service, source, file_id)"
        " SELECT p.service, p.source, bool_or(p.file_id IS NULL OR f.file_id IS NULL),"
        " min(f.ingested_at) FILTER (WHERE f.ingested_at <= p.last + ?),"
        " max(f.ingested_at) FILTER (WHERE f.ingested_at <= p.last + ?),"
        " count(DISTINCT f.ingested_at) FILTER (WHERE f.ingested_at <= p.last + ?)"
        " FROM per_file AS p LEFT JOIN ingested_files AS f ON f.file_id = p.file_id"
        " GROUP BY p.service, p.source",
        [*window, FRESH_LAG, FRESH_LAG, FRESH_LAG],
    ).fetchall()
    if table_exists(con, "log_lines"):
        arrivals += con.execute(
            "WITH per_batch AS (SELECT service, ingested_at, max(ts) AS last FROM log_lines"
            " WHERE ts > ? AND ts <= ? GROUP BY service, ingested_at)"
            " SELECT service, 'logs', false, min(ingested_at) FILTER (WHERE ingested_at <= last + ?),"
            " max(ingested_at) FILTER (WHERE ingested_at <= last + ?),"
            " count(*) FILTER (WHERE ingested_at <= last + ?) FROM per_batch GROUP BY service",
            [*window, FRESH_LAG, FRESH_LAG, FRESH_LAG],
        ).fetchall()
    return {
        (service, source)
        for service, source, unknown, first, last, count in arrivals
        if unknown or (count >= 2 and last - first >= MIN_LIVE_SPREAD)
    }


def stale_sources(con: duckdb.DuckDBPyConnection, now: dt.datetime, stale_minutes: int) -> list[Finding]:
    """Live series (data in the last 24 h, arriving as it happens) silent for `stale_minutes` and 10 usual intervals."""
    queries = [
        (
            "metric_samples",
            "SELECT service, source, max(ts), min(ts), count(DISTINCT ts) FROM metric_samples"
            " WHERE ts > ? AND ts <= ? GROUP BY service, source",
        )
    ]
    if table_exists(con, "log_lines"):
        queries.append(
            (
                "log_lines",
                "SELECT service, 'logs', max(ts), min(ts), count(DISTINCT ts) FROM log_lines"
                " WHERE ts > ? AND ts <= ? GROUP BY service",
            )
        )
    live = live_sources(con, now)
    findings = []
    for table, sql in queries:
        for service, source, last, first, distinct in con.execute(sql, [now - LIVE_WINDOW, now]).fetchall():
            if (service, source) not in live:
                continue
            usual = (last - first).total_seconds() / (distinct - 1) if distinct > 1 else 60.0
            limit = max(dt.timedelta(minutes=stale_minutes), dt.timedelta(seconds=CADENCE_FACTOR * usual))
            silent = now - last
            if silent <= limit:
                continue
            findings.append(
                Finding(
                    fingerprint=f"{SOURCE_PREFIX}{service}:{source}",
                    service=service,
                    severity="minor",
                    summary=f"{service}: no data from source '{source}' for {_ago(silent)} "
                    f"(usually every {_cadence(usual)})",
                    details={
                        "source": source,
                        "table": table,
                        "last_seen": last.isoformat(),
                        "usual_interval_s": round(usual, 1),
                        "asset": table,
                    },
                )
            )
    return findings


def _newest_file(folder: Path) -> dt.datetime | None:
    newest = None
    for count, (root, _dirs, files) in enumerate(os.walk(folder)):
        if count > MAX_FILES_SCANNED:
            break
        for name in files:
            mtime = os.stat(os.path.join(root, name)).st_mtime
            newest = mtime if newest is None or mtime > newest else newest
    return from_epoch(newest) if newest is not None else None


def stale_models(models_dir: Path, now: dt.datetime, max_age_hours: float) -> list[Finding]:
    """Model families (`$SREOPS_HOME/models/<family>/…`) whose newest artefact is older than the limit."""
    if not models_dir.is_dir():
        return []
    findings = []
    for family in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        trained = _newest_file(family)
        if trained is None:
            continue
        age = now - trained
        if age > dt.timedelta(hours=max_age_hours):
            findings.append(
                Finding(
                    fingerprint=f"{MODEL_PREFIX}{family.name}",
                    service=None,
                    severity="warning",
                    summary=f"model '{family.name}' not retrained for {_ago(age)} "
                    f"(limit {max_age_hours:g} h)",
                    details={"family": family.name, "trained_at": trained.isoformat(), "path": str(family)},
                )
            )
    return findings


def apply_findings(
    con: duckdb.DuckDBPyConnection,
    findings: list[Finding],
    prefix: str,
    now: dt.datetime,
    reopen_minutes: int,
) -> tuple[list[str], list[str]]:
    """Fire an alert per finding; resolve firing alerts of this check (`prefix`) that no finding names."""
    fired = [
        outbox.open_or_update(
            con,
            fingerprint=f.fingerprint,
            kind="pipeline_health",
            service=f.service,
            severity=f.severity,
            summary=f.summary,
            details=f.details,
            now=now,
            reopen_minutes=reopen_minutes,
        )
        for f in findings
    ]
    current = {f.fingerprint for f in findings}
    resolved = []
    for alert in fetch_alerts(con, "status = 'firing' AND starts_with(fingerprint, ?)", [prefix]):
        if alert.fingerprint not in current:
            resolved += outbox.resolve(
                con,
                alert.fingerprint,
                now=now,
                note="data is flowing again" if prefix == SOURCE_PREFIX else "retrained",
            )
    return fired, resolved


@dataclass
class HealthReport:
    """What one health check pass found."""

    firing: list[str]
    resolved: list[str]
    findings: list[Finding]


def check_pipeline(
    warehouse_path: str | os.PathLike[str] | None,
    cfg: Config,
    now: dt.datetime,
    models_dir: Path | None = None,
    patience_s: float | None = None,
) -> HealthReport:
    """Run both checks and update their alerts in one transaction."""
    alerting = cfg.alerting
    models = stale_models(models_dir or paths.models_dir(), now, alerting.model_max_age_hours)
    with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
        sources = stale_sources(con, now, alerting.source_stale_minutes)
        fired_s, resolved_s = apply_findings(con, sources, SOURCE_PREFIX, now, alerting.reopen_minutes)
        fired_m, resolved_m = apply_findings(con, models, MODEL_PREFIX, now, alerting.reopen_minutes)
    return HealthReport(fired_s + fired_m, resolved_s + resolved_m, sources + models)


@dataclass(frozen=True)
class RunFailure:
    """A failed orchestration run, as the run-failure sensor sees it."""

    run_id: str
    job_name: str
    message: str
    failed_steps: tuple[str, ...] = ()
    partition: str | None = None


def record_run_failure(
    warehouse_path: str | os.PathLike[str] | None,
    run: RunFailure,
    now: dt.datetime,
    reopen_minutes: int = 60,
    patience_s: float | None = None,
) -> str:
    """Open (or update) the `run_failure:<job>` alert with a link to this run."""
    first_line = (run.message or "no error message").strip().splitlines()[0][:300]
    where = f" (partition {run.partition})" if run.partition else ""
    steps = f" in {', '.join(run.failed_steps[:3])}" if run.failed_steps else ""
    details = {
        "run_id": run.run_id,
        "job": run.job_name,
        "error": run.message[:2000],
        "failed_steps": list(run.failed_steps),
        "partition": run.partition,
    }
    with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
        return outbox.open_or_update(
            con,
            fingerprint=f"{RUN_PREFIX}{run.job_name}",
            kind="run_failure",
            service=None,
            severity="major",
            summary=f"Run of {run.job_name}{where} failed{steps}: {first_line}",
            details=details,
            now=now,
            reopen_minutes=reopen_minutes,
        )


def record_run_success(
    warehouse_path: str | os.PathLike[str] | None,
    job_name: str,
    run_id: str,
    now: dt.datetime,
    patience_s: float | None = None,
) -> list[str]:
    """Resolve the job's run-failure alert: a later run succeeded."""
    with warehouse.connect(warehouse_path, patience_s=patience_s) as con:
        firing = fetch_alerts(con, "status = 'firing' AND fingerprint = ?", [f"{RUN_PREFIX}{job_name}"])
    if not firing:
        return []
    with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
        return outbox.resolve(con, f"{RUN_PREFIX}{job_name}", now=now, note=f"run {run_id[:8]} succeeded")
