"""Feedback from the alert buttons: acknowledge, snooze, "not an anomaly", and what they change.

"Not an anomaly" stores the incident's pattern (service, metrics, direction, how far off) so the
same pattern is suppressed from then on, and its minutes are kept out of training. Detection calls
:func:`suppressed_windows` and :func:`not_anomaly_reason` (both Dagster-free) to honour them.
Precision per detector comes from the same labels: acknowledged = real, not an anomaly = false.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from sreops import paths, warehouse
from sreops.alerting import outbox
from sreops.alerting.model import GROUPED_KINDS, Alert, fetch_alerts, get_alert, parse_time

log = logging.getLogger(__name__)

ACTIONS = ("ack", "snooze", "not_anomaly")
# A new incident stays "the same pattern" while it is at most this much further from the
# expected band than the labelled one was (as a fraction of the labelled distance).
PATTERN_TOLERANCE = 0.25


class UnknownAlertError(KeyError):
    """Feedback named an alert the warehouse does not have."""


class UnknownActionError(ValueError):
    """Feedback with an action other than ack, snooze or not_anomaly."""


@dataclass(frozen=True)
class Feedback:
    """One button press on one alert."""

    feedback_id: str
    alert_id: str
    action: str
    user_id: str | None
    user_name: str | None
    created_at: dt.datetime
    snooze_until: dt.datetime | None


@dataclass(frozen=True)
class MetricShape:
    """How one metric deviated in an incident."""

    direction: str | None  # "above" or "below" the expected band
    observed: float | None
    expected_low: float | None
    expected_high: float | None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _shape(observed: Any, low: Any, high: Any) -> MetricShape:
    observed, low, high = _float(observed), _float(low), _float(high)
    direction = None
    if observed is not None and high is not None and observed > high:
        direction = "above"
    elif observed is not None and low is not None and observed < low:
        direction = "below"
    return MetricShape(direction, observed, low, high)


def metric_shapes(alert: Alert) -> dict[str, MetricShape]:
    """Per metric, the deviation of its strongest explanation entry (or the alert's own numbers)."""
    best: dict[str, dict[str, Any]] = {}
    for entry in alert.explanation:
        metric = entry.get("metric")
        if metric and (_float(entry.get("contribution")) or 0) >= (
            _float(best.get(metric, {}).get("contribution")) or -1
        ):
            best[metric] = entry
    shapes = {
        m: _shape(e.get("observed"), e.get("expected_low"), e.get("expected_high")) for m, e in best.items()
    }
    metrics = alert.metrics
    if len(metrics) == 1 and metrics[0] not in shapes:
        d = alert.details
        shapes[metrics[0]] = _shape(d.get("observed"), d.get("expected_low"), d.get("expected_high"))
    for metric in metrics:
        shapes.setdefault(metric, MetricShape(None, None, None, None))
    return shapes


@dataclass(frozen=True)
class Pattern:
    """What a human declared normal: an incident's service, kind, metrics and their deviations."""

    alert_id: str
    service: str | None
    kind: str
    fingerprint: str
    metrics: dict[str, MetricShape]
    labelled_by: str | None
    labelled_at: dt.datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "service": self.service,
                "kind": self.kind,
                "fingerprint": self.fingerprint,
                "metrics": {m: asdict(s) for m, s in self.metrics.items()},
            }
        )

    @classmethod
    def from_row(cls, alert_id: str, text: str, user: str | None, at: dt.datetime) -> Pattern:
        raw = json.loads(text)
        metrics = {m: MetricShape(**s) for m, s in raw.get("metrics", {}).items()}
        return cls(alert_id, raw.get("service"), raw["kind"], raw["fingerprint"], metrics, user, at)

    def matches(self, alert: Alert) -> bool:
        """Whether `alert` is the same pattern: same service and kind, known metrics, no worse."""
        if alert.service != self.service or alert.kind != self.kind:
            return False
        if alert.kind not in GROUPED_KINDS:
            return alert.fingerprint == self.fingerprint
        shapes = metric_shapes(alert)
        if not shapes or not set(shapes) <= set(self.metrics):
            return False
        return all(_no_worse(shapes[m], self.metrics[m]) for m in shapes)


def _no_worse(new: MetricShape, labelled: MetricShape) -> bool:
    if labelled.direction is None or new.direction is None:
        return labelled.direction == new.direction or labelled.direction is None
    if new.direction != labelled.direction or new.observed is None or labelled.observed is None:
        return new.direction == labelled.direction
    edge = labelled.expected_high if labelled.direction == "above" else labelled.expected_low
    distance = abs(labelled.observed - edge) if edge is not None else abs(labelled.observed)
    slack = PATTERN_TOLERANCE * distance
    if labelled.direction == "above":
        return new.observed <= labelled.observed + slack
    return new.observed >= labelled.observed - slack


def feedback_id_for(alert_id: str, action: str, user_id: str | None, action_ts: str) -> str:
    """A stable id for one button press, so a retried delivery of it is stored once."""
    return hashlib.sha256(f"{alert_id}|{action}|{user_id}|{action_ts}".encode()).hexdigest()[:32]


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
    snooze_until = now + dt.timedelta(minutes=snooze_minutes) if action == "snooze" else None
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


def matching_pattern(alert: Alert, patterns: list[Pattern]) -> Pattern | None:
    """The first "not an anomaly" pattern that covers this alert (never the alert's own label)."""
    return next((p for p in patterns if p.alert_id != alert.alert_id and p.matches(alert)), None)


def not_anomaly_reason(con: duckdb.DuckDBPyConnection, alert: Alert) -> str | None:
    """Why this incident should not be raised (a matching "not an anomaly" label), or None."""
    pattern = matching_pattern(alert, not_anomaly_patterns(con, alert.service))
    return pattern_reason(pattern) if pattern is not None else None


def pattern_reason(pattern: Pattern) -> str:
    """The recorded reason an incident matching this label is not posted (starts "not an anomaly")."""
    who = f" by {pattern.labelled_by}" if pattern.labelled_by else ""
    return (
        f"not an anomaly: same pattern as alert {pattern.alert_id[:8]}"
        f" (labelled{who} {pattern.labelled_at:%Y-%m-%d %H:%M})"
    )


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


# ---- the spool: button presses land here first, so a busy warehouse never loses one ----------
def spool_path() -> Path:
    """Where verified interactivity payloads wait to be written into `alert_feedback`."""
    return paths.home() / "alerting" / "feedback-spool.jsonl"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spool(entry: dict[str, Any], path: Path | None = None) -> None:
    """Append one feedback entry durably."""
    target = path or spool_path()
    with _locked(target), open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def drain_spool(
    warehouse_path: str | os.PathLike[str] | None,
    now: dt.datetime,
    path: Path | None = None,
    snooze_minutes: int = 60,
    patience_s: float | None = None,
) -> int:
    """Write spooled feedback into `alert_feedback` in one transaction; returns how many were new."""
    target = path or spool_path()
    if not target.exists():
        return 0
    with _locked(target):
        lines = target.read_text(encoding="utf-8").splitlines()
    if not any(line.strip() for line in lines):
        return 0
    stored = 0
    with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
        for line in lines:
            if not line.strip():
                continue
            entry = json.loads(line)
            try:
                stored += record(
                    con,
                    alert_id=entry["alert_id"],
                    action=entry["action"],
                    user_id=entry.get("user_id"),
                    user_name=entry.get("user_name"),
                    feedback_id=entry["feedback_id"],
                    now=parse_time(entry.get("at")) or now,
                    snooze_minutes=int(entry.get("snooze_minutes") or snooze_minutes),
                )
            except (UnknownAlertError, UnknownActionError) as exc:
                log.warning("dropping spooled feedback %s: %s", entry.get("feedback_id"), exc)
    # Only after the commit: entries appended meanwhile stay for the next drain.
    with _locked(target):
        remaining = target.read_text(encoding="utf-8").splitlines()[len(lines) :] if target.exists() else []
        target.write_text("".join(line + "\n" for line in remaining), encoding="utf-8")
    return stored
