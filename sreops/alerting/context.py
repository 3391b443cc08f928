"""Log context for an incident: the new or surging log patterns of its service in its minutes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from sreops.alerting.model import columns, table_exists

BASELINE_MINUTES = 60
SURGE_RATIO = 3.0
MIN_COUNT = 5


@dataclass(frozen=True)
class LogPattern:
    """A log cluster that stood out during an incident."""

    cluster_id: str
    template: str
    count: int
    new: bool
    ratio: float | None  # per-minute rate during the incident over the baseline's; None when absent before


def log_patterns(
    con: duckdb.DuckDBPyConnection,
    service: str | None,
    first: dt.datetime,
    last: dt.datetime,
    limit: int = 3,
    tables: set[str] | None = None,
) -> list[LogPattern]:
    """Patterns new in [first, last] or at 3x their previous hour's rate; empty without the log tables."""
    needed = {"log_cluster_counts_1m", "log_clusters"}
    present = needed <= tables if tables is not None else all(table_exists(con, t) for t in needed)
    if service is None or not present:
        return []
    start = first - dt.timedelta(minutes=BASELINE_MINUTES)
    minutes = max((last - first).total_seconds() / 60 + 1, 1)
    # Clusters merged into another keep their row with merged_into set; the survivor speaks for them.
    live = "AND k.merged_into IS NULL" if "merged_into" in columns(con, "log_clusters") else ""
    rows = con.execute(
        f"""
        WITH counts AS (
            SELECT cluster_id,
                   sum(count) FILTER (WHERE minute >= $first AND minute <= $last) AS during,
                   sum(count) FILTER (WHERE minute >= $start AND minute < $first) AS before
            FROM log_cluster_counts_1m
            WHERE service = $service AND minute >= $start AND minute <= $last
            GROUP BY cluster_id
        )
        SELECT c.cluster_id, any_value(k.template), any_value(c.during), coalesce(any_value(c.before), 0),
               min(k.first_seen)
        FROM counts c JOIN log_clusters k ON CAST(k.cluster_id AS VARCHAR) = CAST(c.cluster_id AS VARCHAR)
        WHERE c.during >= $min_count {live}
        GROUP BY c.cluster_id
        """,
        {"first": first, "last": last, "start": start, "service": service, "min_count": MIN_COUNT},
    ).fetchall()
    found = []
    for cluster_id, template, during, before, first_seen in rows:
        new = first_seen is not None and first_seen >= start and before == 0
        rate_during = during / minutes
        rate_before = before / BASELINE_MINUTES
        # A pattern silent for the whole baseline hour counts as surging when it returns.
        ratio = rate_during / rate_before if rate_before > 0 else None
        if new or ratio is None or ratio >= SURGE_RATIO:
            found.append(LogPattern(str(cluster_id), str(template), int(during), new, ratio))
    found.sort(key=lambda p: (not p.new, -p.count))
    return found[:limit]
