"""The `alert_feedback` table: storing button presses, and the labels detection and delivery read.

Functions take a connection, so callers keep their own transaction. Storing a press refreshes the
alert's message through `alerting.outbox`. Detection calls :func:`suppressed_windows` and
:func:`not_anomaly_reason` to honour the labels; precision per detector comes from the same
labels: acknowledged = real, not an anomaly = false.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from sreops.alerting import outbox
from sreops.alerting.feedback.labels import (
    ACTIONS,
    Feedback,
    Pattern,
    UnknownActionError,
    UnknownAlertError,
    feedback_id_for,
    matching_pattern,
    metric_shapes,
    pattern_reason,
    snooze_length,
)
from sreops.alerting.model import Alert, fetch_alerts, get_alert


def record(
    con: duckdb.DuckDBPyConnection,
    *,
    alert_id: str,
    action: str,
    now: dt.datetime,
    user_id: str | None = None,
    user_name: str | None = None,
    feedback_id: str | None = None,
    snooze_minutes: int = 60,
    source: str = "slack",
) -> bool:
    """Store one piece of feedback and refresh the alert's message; False if it was already stored."""
    if action not in ACTIONS:
        raise UnknownActionError(f"feedback action {action!r} is not one of {', '.join(ACTIONS)}")
    alert = get_alert(con, alert_id)
    if alert is None:
        raise UnknownAlertError(f"feedback for alert {alert_id!r}, which is not in the alerts table")
    feedback_id = feedback_id or feedback_id_for(alert_id, action, user_id, now.isoformat())
    exists = con.execute(
        "SELECT count(*) FROM alert_feedback WHERE feedback_id = ?", [feedback_id]
    ).fetchall()[0][0]
    if exists:
        return False
    snooze_until = now + dt.timedelta(minutes=snooze_length(snooze_minutes)) if action == "snooze" else None
    pattern = None
    if action == "not_anomaly":
        pattern = Pattern(
            alert_id, alert.service, alert.kind, alert.fingerprint, metric_shapes(alert), user_name, now
        ).to_json()
    con.execute(
        "INSERT INTO alert_feedback (feedback_id, alert_id, fingerprint, kind, service, detector, action,"
        " user_id, user_name, created_at, snooze_until, first_minute, last_minute, pattern, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            feedback_id,
            alert_id,
            alert.fingerprint,
            alert.kind,
            alert.service,
            alert.detector,
            action,
            user_id,
            user_name,
            now,
            snooze_until,
            alert.first_minute,
            alert.last_minute,
            pattern,
            source,
        ],
    )
    outbox.bump_revision(con, alert_id, now)
    return True


def feedback_for(con: duckdb.DuckDBPyConnection, alert_ids: list[str]) -> dict[str, list[Feedback]]:
    """Feedback of these alerts, oldest first."""
    if not alert_ids:
        return {}
    rows = con.execute(
        "SELECT feedback_id, alert_id, action, user_id, user_name, created_at, snooze_until"
        " FROM alert_feedback"
        " WHERE list_contains(?, alert_id) ORDER BY created_at",
        [alert_ids],
    ).fetchall()
    found: dict[str, list[Feedback]] = {}
    for row in rows:
        found.setdefault(row[1], []).append(Feedback(*row))
    return found


def active_snoozes(
    con: duckdb.DuckDBPyConnection, now: dt.datetime
) -> dict[str, tuple[dt.datetime, str | None]]:
    """Fingerprints snoozed at `now`: until when, and by whom."""
    rows = con.execute(
        "SELECT fingerprint, max(snooze_until), arg_max(user_name, snooze_until) FROM alert_feedback"
        " WHERE action = 'snooze' AND snooze_until > ? GROUP BY fingerprint",
        [now],
    ).fetchall()
    return {fingerprint: (until, user) for fingerprint, until, user in rows}


def not_anomaly_patterns(con: duckdb.DuckDBPyConnection, service: str | None = None) -> list[Pattern]:
    """Every pattern labelled "not an anomaly" (of one service, when given)."""
    rows = con.execute(
        "SELECT alert_id, pattern, user_name, created_at FROM alert_feedback"
        " WHERE action = 'not_anomaly' AND pattern IS NOT NULL AND (? IS NULL OR service = ?)"
        " ORDER BY created_at",
        [service, service],
    ).fetchall()
    return [Pattern.from_row(*row) for row in rows]


def not_anomaly_reason(con: duckdb.DuckDBPyConnection, alert: Alert) -> str | None:
    """Why this incident should not be raised (a matching "not an anomaly" label), or None."""
    pattern = matching_pattern(alert, not_anomaly_patterns(con, alert.service))
    return pattern_reason(pattern) if pattern is not None else None


def suppressed_windows(
    con: duckdb.DuckDBPyConnection, service: str | None = None
) -> list[tuple[str | None, dt.datetime, dt.datetime]]:
    """(service, first, last minute) of "not an anomaly" incidents (labelled or matched): not for training."""
    windows = {
        (svc, first, last)
        for svc, first, last in con.execute(
            "SELECT service, first_minute, last_minute FROM alert_feedback"
            " WHERE action = 'not_anomaly' AND first_minute IS NOT NULL AND (? IS NULL OR service = ?)",
            [service, service],
        ).fetchall()
    }
    suppressed = fetch_alerts(
        con,
        "(? IS NULL OR service = ?) AND alert_id IN (SELECT alert_id FROM alert_deliveries"
        " WHERE step = 'suppressed' AND note LIKE 'not an anomaly%')",
        [service, service],
    )
    windows |= {(a.service, a.first_minute, a.last_minute) for a in suppressed}
    return sorted(windows, key=lambda w: (w[0] or "", w[1]))


def precision_by_detector(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per detector: incidents, labelled real (acknowledged), labelled not an anomaly, and precision."""
    label_rows = con.execute(
        "SELECT alert_id, arg_max(action, created_at) FROM alert_feedback"
        " WHERE action IN ('ack', 'not_anomaly') GROUP BY alert_id"
    ).fetchall()
    labels = dict(label_rows)
    stats: dict[str, dict[str, Any]] = {}
    for alert in fetch_alerts(con, "kind = 'anomaly'"):
        detector = alert.detector or "unknown"
        row = stats.setdefault(detector, {"detector": detector, "incidents": 0, "real": 0, "not_anomaly": 0})
        row["incidents"] += 1
        label = labels.get(alert.alert_id)
        if label == "ack":
            row["real"] += 1
        elif label == "not_anomaly":
            row["not_anomaly"] += 1
    for row in stats.values():
        labelled = row["real"] + row["not_anomaly"]
        row["labelled"] = labelled
        row["precision"] = row["real"] / labelled if labelled else None
    return sorted(stats.values(), key=lambda r: r["detector"])
