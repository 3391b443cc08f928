"""The `alerts` outbox, and its only writer: open, update, re-open and resolve incidents; record delivery.

Producers (detection, log patterns, pipeline health, run failures, the digest) call these inside
their own warehouse transaction; delivery later posts every row whose `revision` is newer than
`delivered_revision`, and records what it did through the delivery-state functions at the end.
A change worth a message bumps `revision`; delivery moves `delivered_revision` up to it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

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


# ---- incidents kept by their producer's own lifecycle (detection's reconcile, log patterns) --------
def insert_incident(
    con: duckdb.DuckDBPyConnection,
    *,
    fingerprint: str,
    kind: str,
    service: str | None,
    severity: str,
    status: str,
    opened_at: dt.datetime,
    resolved_at: dt.datetime | None,
    summary: str,
    details: dict[str, Any],
    score: float | None,
    now: dt.datetime,
) -> str:
    """Insert one incident exactly as its producer found it (open or already resolved); returns its id."""
    severity_rank(severity)
    alert_id = uuid.uuid4().hex
    con.execute(
        "INSERT INTO alerts (alert_id, fingerprint, kind, service, severity, status, opened_at,"
        " updated_at, resolved_at, summary, details, score, delivery_status, revision,"
        " delivered_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 1, 0)",
        [alert_id, fingerprint, kind, service, severity, status, opened_at, now, resolved_at, summary,
         _dumps(details), score],
    )  # fmt: skip
    return alert_id


def rewrite_incident(
    con: duckdb.DuckDBPyConnection,
    alert_id: str,
    *,
    status: str,
    severity: str,
    resolved_at: dt.datetime | None,
    summary: str,
    details: dict[str, Any],
    score: float | None,
    now: dt.datetime,
    notify: bool,
) -> None:
    """Replace an incident's state with its producer's latest view; `notify` bumps the revision."""
    severity_rank(severity)
    con.execute(
        "UPDATE alerts SET status = ?, severity = ?, updated_at = ?, resolved_at = ?, summary = ?,"
        " details = ?, score = ?, revision = revision + ? WHERE alert_id = ?",
        [status, severity, now, resolved_at, summary, _dumps(details), score, int(notify), alert_id],
    )


def resolve_alert(
    con: duckdb.DuckDBPyConnection, alert_id: str, *, now: dt.datetime, resolution: str
) -> None:
    """Resolve one alert by id, noting why under `details.resolution` (a change worth a message)."""
    con.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = ?, updated_at = ?,"
        " details = json_merge_patch(coalesce(details, '{}'), ?), revision = revision + 1"
        " WHERE alert_id = ?",
        [now, now, json.dumps({"resolution": resolution}), alert_id],
    )


def open_once(
    con: duckdb.DuckDBPyConnection,
    *,
    alert_id: str,
    fingerprint: str,
    kind: str,
    service: str | None,
    severity: str,
    summary: str,
    details: dict[str, Any],
    opened_at: dt.datetime,
) -> None:
    """Open a firing alert unless one with this fingerprint was ever written (a one-time discovery)."""
    severity_rank(severity)
    con.execute(
        "INSERT INTO alerts (alert_id, fingerprint, kind, service, severity, status, opened_at,"
        " updated_at, summary, details, delivery_status, attempts, revision, delivered_revision)"
        " SELECT ?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, 'pending', 0, 1, 0"
        " WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE fingerprint = ?)",
        [alert_id, fingerprint, kind, service, severity, opened_at, opened_at, summary, _dumps(details),
         fingerprint],
    )  # fmt: skip


# ---- delivery state: only delivery (its record step) calls these --------------------------------
@dataclass(frozen=True)
class DeliveryOutcome:
    """What one delivery attempt of one alert revision came to."""

    alert_id: str
    revision: int
    outcome: str  # delivered, failed, retrying, rethread, untouched
    error: str | None = None
    retry_at: dt.datetime | None = None
    channel: str | None = None  # the thread it was posted in, when posted
    thread_ts: str | None = None


def mark_withheld(con: duckdb.DuckDBPyConnection, alert_id: str, revision: int, status: str) -> None:
    """A revision delivery decided not to post (silenced, below the minimum severity)."""
    con.execute(
        "UPDATE alerts SET delivery_status = ?, delivered_revision = greatest(delivered_revision, ?),"
        " next_attempt_at = NULL WHERE alert_id = ?",
        [status, revision, alert_id],
    )


def mark_dry_run(con: duckdb.DuckDBPyConnection, alert_id: str, revision: int, channel: str) -> None:
    """A revision shown in the log instead of posted (no bot token)."""
    con.execute(
        "UPDATE alerts SET delivery_status = 'dry_run',"
        " delivered_revision = greatest(delivered_revision, ?),"
        " slack_channel = coalesce(slack_channel, ?), next_attempt_at = NULL WHERE alert_id = ?",
        [revision, channel, alert_id],
    )


def record_outcomes(con: duckdb.DuckDBPyConnection, outcomes: list[DeliveryOutcome]) -> None:
    """Write each attempt's outcome: its thread, delivered revision, attempts, last error, next attempt."""
    if not outcomes:
        return
    frame = pd.DataFrame(
        [(o.alert_id, o.revision, o.outcome, o.error, o.retry_at, o.channel, o.thread_ts) for o in outcomes],
        columns=["alert_id", "revision", "outcome", "error", "retry_at", "channel", "thread_ts"],
    )
    frame["retry_at"] = pd.to_datetime(frame["retry_at"])
    con.register("sreops_outcomes", frame)
    try:
        con.execute(
            "UPDATE alerts AS a SET slack_channel = o.channel, slack_ts = o.thread_ts"
            " FROM sreops_outcomes AS o"
            " WHERE a.alert_id = o.alert_id AND o.thread_ts IS NOT NULL"
            " AND (a.slack_ts IS NULL OR a.delivery_status = 'dry_run')"
        )
        con.execute(
            "UPDATE alerts AS a SET delivered_revision = greatest(a.delivered_revision, o.revision),"
            " delivery_status = CASE WHEN a.revision > o.revision THEN 'pending' ELSE 'delivered' END,"
            " attempts = a.attempts + 1, last_error = NULL, next_attempt_at = NULL"
            " FROM sreops_outcomes AS o WHERE a.alert_id = o.alert_id AND o.outcome = 'delivered'"
        )
        con.execute(
            "UPDATE alerts AS a SET attempts = a.attempts + 1, last_error = o.error,"
            " next_attempt_at = o.retry_at, delivery_status = o.outcome"
            " FROM sreops_outcomes AS o"
            " WHERE a.alert_id = o.alert_id AND o.outcome IN ('failed', 'retrying')"
        )
        con.execute(
            "UPDATE alerts AS a SET slack_channel = NULL, slack_ts = NULL, attempts = a.attempts + 1,"
            " last_error = o.error, next_attempt_at = NULL, delivery_status = 'pending'"
            " FROM sreops_outcomes AS o WHERE a.alert_id = o.alert_id AND o.outcome = 'rethread'"
        )
    finally:
        con.unregister("sreops_outcomes")
