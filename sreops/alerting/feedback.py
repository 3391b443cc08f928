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
# A snooze holds an alert for at most a week, whatever a button value or the config says: a
# longer one would be a silence (configured, with a reason), and a huge one overflows datetime.
MAX_SNOOZE_MINUTES = 7 * 24 * 60
# A spooled press stamped further ahead of the draining clock than this is not a real one.
MAX_CLOCK_SKEW = dt.timedelta(days=1)
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 512
# A new incident stays "the same pattern" while it is at most this much further from the
# expected band than the labelled one was (as a fraction of the labelled distance).
PATTERN_TOLERANCE = 0.25


class UnknownAlertError(KeyError):
    """Feedback named an alert the warehouse does not have."""


class UnknownActionError(ValueError):
    """Feedback with an action other than ack, snooze or not_anomaly."""


class BadFeedbackRecordError(ValueError):
    """A spooled feedback line that cannot be applied (torn, not an object, wrong types, absurd values)."""


def snooze_length(minutes: Any, default: int = 60) -> int:
    """Snooze minutes clamped to 1 … MAX_SNOOZE_MINUTES (`default` when absent or not a whole number)."""
    if isinstance(minutes, str) and minutes.strip().isascii() and minutes.strip().isdigit():
        text = minutes.strip()
        minutes = int(text) if len(text) <= 12 else MAX_SNOOZE_MINUTES  # no 5000-digit int() parses
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        minutes = default
    return max(1, min(minutes, MAX_SNOOZE_MINUTES))


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
    """The spool's append lock: held for an append or a read, never across a warehouse transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _draining(path: Path) -> Iterator[bool]:
    """One drainer at a time (the endpoint's worker and delivery passes both drain); False if busy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".drain.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spool(entry: dict[str, Any], path: Path | None = None) -> None:
    """Append one feedback entry durably."""
    target = path or spool_path()
    with _locked(target), open(target, "ab") as handle:
        # A writer killed mid-line left a fragment without its newline: end it, so that this
        # entry stays a line of its own and only the fragment is set aside.
        torn = handle.tell() > 0 and _last_byte(target) != b"\n"
        handle.write((b"\n" if torn else b"") + json.dumps(entry, default=str).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def rejected_path(path: Path | None = None) -> Path:
    """Where spooled feedback that cannot be applied is set aside, one JSON object per line with its reason."""
    return (path or spool_path()).with_name("feedback-rejected.jsonl")


@dataclass(frozen=True)
class SpooledPress:
    """One validated spool line, ready for :func:`record`."""

    feedback_id: str
    alert_id: str
    action: str
    user_id: str | None
    user_name: str | None
    at: dt.datetime
    snooze_minutes: int


def _text(entry: dict[str, Any], key: str, limit: int, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadFeedbackRecordError(f"{key} must be a non-empty string of at most {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadFeedbackRecordError(f"{key} is not valid Unicode text") from None
    return value


def parse_spooled(line: bytes, now: dt.datetime, snooze_minutes: int = 60) -> SpooledPress:
    """A spool line as a press, or BadFeedbackRecordError saying what is wrong with it."""
    try:
        entry = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadFeedbackRecordError("not UTF-8 text (a torn write?)") from None
    except (ValueError, RecursionError) as exc:
        raise BadFeedbackRecordError(f"not JSON (a torn write?): {str(exc)[:120]}") from None
    if not isinstance(entry, dict):
        raise BadFeedbackRecordError(f"a JSON {type(entry).__name__}, not an object")
    action = _text(entry, "action", 32, True)
    if action not in ACTIONS:
        raise BadFeedbackRecordError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    try:
        at = parse_time(entry.get("at")) or now
    except (TypeError, ValueError, OverflowError):
        raise BadFeedbackRecordError(f"at {str(entry.get('at'))[:40]!r} is not an ISO timestamp") from None
    if at > now + MAX_CLOCK_SKEW:
        raise BadFeedbackRecordError(f"at {at:%Y-%m-%d %H:%M} is in the future")
    return SpooledPress(
        feedback_id=_text(entry, "feedback_id", MAX_ID_CHARS, True) or "",
        alert_id=_text(entry, "alert_id", MAX_ID_CHARS, True) or "",
        action=action,
        user_id=_text(entry, "user_id", MAX_ID_CHARS, False),
        user_name=_text(entry, "user_name", MAX_NAME_CHARS, False),
        at=at,
        snooze_minutes=snooze_length(entry.get("snooze_minutes"), snooze_length(snooze_minutes)),
    )


def _apply(con: duckdb.DuckDBPyConnection, press: SpooledPress) -> bool:
    return record(
        con,
        alert_id=press.alert_id,
        action=press.action,
        user_id=press.user_id,
        user_name=press.user_name,
        feedback_id=press.feedback_id,
        now=press.at,
        snooze_minutes=press.snooze_minutes,
    )


def drain_spool(
    warehouse_path: str | os.PathLike[str] | None,
    now: dt.datetime,
    path: Path | None = None,
    snooze_minutes: int = 60,
    patience_s: float | None = None,
) -> int:
    """Write spooled feedback into `alert_feedback`; returns how many were new.

    One bad line never holds up the others: a line that cannot be applied (torn, malformed,
    for an unknown alert, or failing in the warehouse on its own) is appended to
    :func:`rejected_path` with its reason and dropped from the spool; the rest are stored. Only a
    warehouse that cannot be opened keeps everything spooled for the next drain.
    """
    target = path or spool_path()
    if not target.exists():
        return 0
    with _draining(target) as mine:
        return _drain(warehouse_path, target, now, snooze_minutes, patience_s) if mine else 0


def _drain(
    warehouse_path: str | os.PathLike[str] | None,
    target: Path,
    now: dt.datetime,
    snooze_minutes: int,
    patience_s: float | None,
) -> int:
    with _locked(target):
        data = target.read_bytes()
    lines = data.split(b"\n")
    rejected: list[tuple[bytes, str]] = []
    good: list[tuple[bytes, SpooledPress]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            good.append((line, parse_spooled(line, now, snooze_minutes)))
        except BadFeedbackRecordError as exc:
            rejected.append((line, str(exc)))
    stored = 0
    if good:
        try:
            stored, failed = _apply_all(warehouse_path, good, patience_s)
        except warehouse.WarehouseLockedError:
            raise
        except duckdb.Error as exc:
            # One statement failed and took the transaction with it: apply the lines one by one.
            log.warning("spooled feedback failed as a batch (%s); applying it line by line", exc)
            stored, failed = _apply_each(warehouse_path, good, patience_s)
        rejected += failed
    # Only after the commit: entries appended meanwhile stay for the next drain.
    with _locked(target):
        if rejected:
            _set_aside(rejected_path(target), rejected, now)
        # Writers only append (under this lock), so what came after the bytes read is new.
        remaining = target.read_bytes()[len(data) :].split(b"\n") if target.exists() else []
        _replace(target, b"".join(line + b"\n" for line in remaining if line.strip()))
    return stored


def _apply_all(
    warehouse_path: str | os.PathLike[str] | None,
    good: list[tuple[bytes, SpooledPress]],
    patience_s: float | None,
) -> tuple[int, list[tuple[bytes, str]]]:
    stored, failed = 0, []
    with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
        for line, press in good:
            try:
                stored += _apply(con, press)
            except (UnknownAlertError, UnknownActionError, OverflowError) as exc:
                failed.append((line, _reason(exc)))
    return stored, failed


def _apply_each(
    warehouse_path: str | os.PathLike[str] | None,
    good: list[tuple[bytes, SpooledPress]],
    patience_s: float | None,
) -> tuple[int, list[tuple[bytes, str]]]:
    stored, failed = 0, []
    for line, press in good:
        try:
            with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
                stored += _apply(con, press)
        except warehouse.WarehouseLockedError:
            raise
        except (UnknownAlertError, UnknownActionError, OverflowError, duckdb.Error) as exc:
            failed.append((line, f"{type(exc).__name__}: {_reason(exc)}"))
    if failed and len(failed) == len(good) > 1:
        # Every line failing alone is the warehouse's problem, not theirs: keep them spooled.
        raise duckdb.Error(f"no spooled feedback could be stored: {failed[0][1]}")
    return stored, failed


def _reason(exc: BaseException) -> str:
    return str(exc.args[0]) if len(exc.args) == 1 else str(exc)  # KeyError's str() adds quotes


def _set_aside(path: Path, rejected: list[tuple[bytes, str]], now: dt.datetime) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for line, reason in rejected:
            text = line.decode("utf-8", errors="backslashreplace")
            handle.write(json.dumps({"set_aside_at": now.isoformat(), "reason": reason, "line": text}) + "\n")
            log.warning("spooled feedback set aside (%s): %s", reason, text[:200])
        handle.flush()
        os.fsync(handle.fileno())


def _replace(path: Path, data: bytes) -> None:
    """Rewrite the spool atomically: a crash leaves the old or the new file, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
