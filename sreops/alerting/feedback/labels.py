"""Feedback from the alert buttons, as data: presses, the labelled patterns, and what they mean.

"Not an anomaly" stores the incident's pattern (service, metrics, direction, how far off) so the
same pattern is suppressed from then on, and its minutes are kept out of training. Everything here
is pure; `feedback.store` reads and writes `alert_feedback`, `feedback.spool` buffers presses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from sreops.alerting.model import GROUPED_KINDS, Alert

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


def matching_pattern(alert: Alert, patterns: list[Pattern]) -> Pattern | None:
    """The first "not an anomaly" pattern that covers this alert (never the alert's own label)."""
    return next((p for p in patterns if p.alert_id != alert.alert_id and p.matches(alert)), None)


def pattern_reason(pattern: Pattern) -> str:
    """The recorded reason an incident matching this label is not posted (starts "not an anomaly")."""
    who = f" by {pattern.labelled_by}" if pattern.labelled_by else ""
    return (
        f"not an anomaly: same pattern as alert {pattern.alert_id[:8]}"
        f" (labelled{who} {pattern.labelled_at:%Y-%m-%d %H:%M})"
    )
