"""Where an alert goes, and whether it is withheld: routes, minimum severity, silences, snoozes, labels.

A withheld alert is still recorded (and shown by `sreops alerts list`); it is just not posted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sreops.alerting.feedback.labels import Pattern, matching_pattern, pattern_reason
from sreops.alerting.model import NOTICE_KINDS, Alert
from sreops.config import Config
from sreops.severity import severity_rank
from sreops.timeutil import naive_utc

BELOW_MIN_SEVERITY = "below_min_severity"
SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Decision:
    """The channel an alert belongs to, and why it is withheld (None when it is posted)."""

    channel: str
    withheld: str | None = None
    status: str | None = None  # delivery status recorded when withheld


def _utc(moment: dt.datetime) -> dt.datetime:
    return naive_utc(moment)


@dataclass
class Router:
    """Routing and silencing rules of one delivery pass."""

    config: Config
    snoozes: dict[str, tuple[dt.datetime, str | None]] = field(default_factory=dict)
    patterns: list[Pattern] = field(default_factory=list)

    def channel(self, alert: Alert) -> str:
        """First matching route; else the service's channel; else the default channel."""
        alerting = self.config.alerting
        if alert.kind in NOTICE_KINDS:
            return (
                alerting.digest_channel or alerting.default_channel
                if alert.kind == "digest"
                else (alert.details.get("channel") or alerting.default_channel)
            )
        for route in alerting.routes:
            if route.service not in (None, alert.service) or route.kind not in (None, alert.kind):
                continue
            if severity_rank(alert.severity) >= severity_rank(route.min_severity):
                return route.channel
        service = self.config.services.get(alert.service or "")
        if service is not None and service.slack_channel:
            return service.slack_channel
        return alerting.default_channel

    def silence(self, alert: Alert, now: dt.datetime) -> str | None:
        """Why the alert is silenced now (silence, maintenance, snooze, not-an-anomaly label), or None."""
        for silence in self.config.alerting.silences:
            if silence.service not in (None, alert.service) or silence.kind not in (None, alert.kind):
                continue
            if _utc(silence.starts_at) <= now < _utc(silence.ends_at):
                reason = f": {silence.reason}" if silence.reason else ""
                return f"silenced until {_utc(silence.ends_at):%Y-%m-%d %H:%M} UTC{reason}"
        for event in self.config.events:
            if event.kind != "maintenance" or event.service not in (None, alert.service):
                continue
            start, end = _utc(event.starts_at), _utc(event.ends_at)
            if start <= now < end or start <= alert.first_minute < end:
                note = f": {event.note}" if event.note else ""
                return f"maintenance window {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC{note}"
        snoozed = self.snoozes.get(alert.fingerprint)
        if snoozed is not None and snoozed[0] > now:
            who = f" by {snoozed[1]}" if snoozed[1] else ""
            return f"snoozed{who} until {snoozed[0]:%Y-%m-%d %H:%M} UTC"
        pattern = matching_pattern(alert, self.patterns)
        return pattern_reason(pattern) if pattern is not None else None

    def decide(self, alert: Alert, now: dt.datetime) -> Decision:
        """Route the alert and apply the minimum severity and silences."""
        channel = self.channel(alert)
        if alert.kind in NOTICE_KINDS:
            return Decision(channel)
        minimum = self.config.alerting.min_severity
        if severity_rank(alert.severity) < severity_rank(minimum):
            return Decision(channel, f"below the minimum severity ({minimum})", BELOW_MIN_SEVERITY)
        reason = self.silence(alert, now)
        if reason:
            return Decision(channel, reason, SUPPRESSED)
        return Decision(channel)
