"""Writing incidents into the `alerts` outbox: open, update, re-open and resolve by fingerprint.

Producers (detection, pipeline health, run failures, the digest) call these inside a warehouse
transaction; delivery later posts every row whose `revision` is newer than `delivered_revision`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import duckdb

from sreops.alerting.model import Alert, fetch_alerts
from sreops.severity import severity_rank

# Score movements smaller than this update the row silently instead of notifying.
NOTABLE_SCORE_CHANGE = 10.0


def _dumps(details: dict[str, Any]) -> str:
    return json.dumps(details, default=str, sort_keys=True)


def _notable(
    current: Alert, severity: str, summary: str, details: dict[str, Any], score: float | None
) -> bool:
    """Whether an update is worth a message (not just a later last minute)."""
    if severity != current.severity or summary != current.summary:
        return True
    if set(details.get("metrics") or []) - set(current.metrics):
        return True
    moved = (
        score is not None and current.score is not None and abs(score - current.score) >= NOTABLE_SCORE_CHANGE
    )
    return bool(moved)


def open_or_update(
    con: duckdb.DuckDBPyConnection,
    *,
    fingerprint: str,
    kind: str,
    service: str | None,
    severity: str,
    summary: str,
    details: dict[str, Any] | None = None,
    score: float | None = None,
    now: dt.datetime,
    reopen_minutes: int = 60,
) -> str:
    """Fire the incident `fingerprint`: update it if firing, re-open it if just resolved, else open one."""
    severity_rank(severity)
    details = dict(details or {})
    firing = fetch_alerts(con, "fingerprint = ? AND status = 'firing'", [fingerprint], order="opened_at DESC")
    if firing:
        current = firing[0]
        bump = 1 if _notable(current, severity, summary, details, score) else 0
        con.execute(
            "UPDATE alerts SET severity = ?, summary = ?, details = ?, score = ?, updated_at = ?,"
            " revision = revision + ?,"
            " delivery_status = CASE WHEN ? = 1 THEN 'pending' ELSE delivery_status END"
            " WHERE alert_id = ?",
            [severity, summary, _dumps(details), score, now, bump, bump, current.alert_id],
        )
        return current.alert_id
    recent = fetch_alerts(
        con,
        "fingerprint = ? AND status = 'resolved' AND resolved_at >= ?",
        [fingerprint, now - dt.timedelta(minutes=reopen_minutes)],
        order="resolved_at DESC",
    )
    if recent and reopen_minutes > 0:
        previous = recent[0]
        merged = {**previous.details, **details, "reopened_at": now.isoformat()}
        con.execute(
            "UPDATE alerts SET status = 'firing', resolved_at = NULL, severity = ?, summary = ?, details = ?,"
            " score = ?, updated_at = ?, revision = revision + 1, delivery_status = 'pending'"
            " WHERE alert_id = ?",
            [severity, summary, _dumps(merged), score, now, previous.alert_id],
        )
        return previous.alert_id
    alert_id = uuid.uuid4().hex
    con.execute(
        "INSERT INTO alerts (alert_id, fingerprint, kind, service, severity, status, opened_at, updated_at,"
        " summary, details, score, delivery_status, attempts, revision, delivered_revision)"
        " VALUES (?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?, 'pending', 0, 1, 0)",
        [alert_id, fingerprint, kind, service, severity, now, now, summary, _dumps(details), score],
    )
    return alert_id


def resolve(
    con: duckdb.DuckDBPyConnection, fingerprint: str, *, now: dt.datetime, note: str | None = None
) -> list[str]:
    """Resolve every firing incident with this fingerprint; returns their ids."""
    firing = fetch_alerts(con, "fingerprint = ? AND status = 'firing'", [fingerprint])
    for alert in firing:
        details = dict(alert.details)
        if note:
            details["resolution"] = note
        con.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = ?, updated_at = ?, details = ?,"
            " revision = revision + 1, delivery_status = 'pending' WHERE alert_id = ?",
            [now, now, _dumps(details), alert.alert_id],
        )
    return [a.alert_id for a in firing]


def notify(
    con: duckdb.DuckDBPyConnection,
    *,
    kind: str,
    summary: str,
    details: dict[str, Any],
    now: dt.datetime,
    fingerprint: str | None = None,
    service: str | None = None,
    severity: str = "info",
) -> str:
    """Queue a one-shot notice (digest, test message): no lifecycle, posted once."""
    alert_id = uuid.uuid4().hex
    con.execute(
        "INSERT INTO alerts (alert_id, fingerprint, kind, service, severity, status, opened_at, updated_at,"
        " resolved_at, summary, details, delivery_status, attempts, revision, delivered_revision)"
        " VALUES (?, ?, ?, ?, ?, 'resolved', ?, ?, ?, ?, ?, 'pending', 0, 1, 0)",
        [
            alert_id,
            fingerprint or f"{kind}:{alert_id}",
            kind,
            service,
            severity,
            now,
            now,
            now,
            summary,
            _dumps(details),
        ],
    )
    return alert_id


def bump_revision(con: duckdb.DuckDBPyConnection, alert_id: str, now: dt.datetime) -> None:
    """Mark an alert as changed (feedback arrived) so delivery refreshes its message."""
    con.execute(
        "UPDATE alerts SET revision = revision + 1, updated_at = ?, delivery_status = 'pending'"
        " WHERE alert_id = ?",
        [now, alert_id],
    )
