"""Alerts as `sreops alerts list` shows them: delivery state and, for withheld ones, the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from sreops.alerting.model import fetch_alerts


def alert_rows(
    con: duckdb.DuckDBPyConnection, status: str, since: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """Alerts updated since `since` (`status` firing, resolved or all), newest first, at most `limit`."""
    where = "updated_at >= ?"
    params: list[Any] = [since]
    if status != "all":
        where += " AND status = ?"
        params.append(status)
    alerts = fetch_alerts(con, where, params, order="updated_at DESC")[:limit]
    notes = dict(
        con.execute(
            "SELECT alert_id, arg_max(note, delivery_id) FROM alert_deliveries"
            " WHERE step IN ('suppressed', 'dry_run') AND list_contains(?, alert_id) GROUP BY alert_id",
            [[a.alert_id for a in alerts]],
        ).fetchall()
    )
    rows = []
    for alert in alerts:
        why = alert.last_error or (
            notes.get(alert.alert_id) if alert.delivery_status == "suppressed" else None
        )
        rows.append(
            {
                "alert_id": alert.alert_id,
                "opened_at": f"{alert.opened_at:%Y-%m-%d %H:%M}",
                "service": alert.service or "-",
                "kind": alert.kind,
                "severity": alert.severity,
                "status": alert.status,
                "delivery": alert.delivery_status,
                "channel": alert.slack_channel or "-",
                "attempts": alert.attempts,
                "summary": alert.summary,
                "note": why or "",
            }
        )
    return rows
