"""Thread replies: what changed since the revision last delivered, worded for the channel.

Pure, like :mod:`sreops.alerting.blocks`: every data-derived string is Slack-escaped on its way in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sreops.alerting import mrkdwn
from sreops.alerting.blocks import (
    MAX_FALLBACK,
    MAX_SECTION,
    Message,
    duration,
    number,
    observed_line,
    slack_time,
)
from sreops.alerting.feedback.labels import Feedback
from sreops.alerting.model import GROUPED_KINDS, Alert
from sreops.severity import severity_rank


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn.clip(text, MAX_SECTION)}}


def snapshot(alert: Alert, feedback: list[Feedback]) -> dict[str, Any]:
    """What a delivered revision told the channel, to word the next change."""
    return {
        "summary": alert.summary,
        "status": alert.status,
        "severity": alert.severity,
        "score": alert.peak_score,
        "metrics": alert.metrics,
        "feedback": [f.feedback_id for f in feedback],
    }


def change_reply(
    alert: Alert,
    before: dict[str, Any] | None,
    feedback: list[Feedback],
    now: dt.datetime,
    joined: str | None = None,
) -> Message | None:
    """The thread reply for what changed since the last delivered revision; None if nothing notable did.

    `joined` is "grouped" (another incident of the thread's service) or "refire" (its fingerprint again).
    """
    lines = []
    summary = mrkdwn.escape(alert.summary)
    if joined == "grouped":
        metrics = ", ".join(mrkdwn.code(m) for m in alert.metrics) or mrkdwn.escape(alert.kind)
        lines.append(f":heavy_plus_sign: Also {metrics}: {summary}")
    elif joined == "refire":
        lines.append(f":rotating_light: Fired again: {summary}")
    elif before is not None:
        if before.get("status") == "firing" and not alert.firing:
            lasted = duration(alert.first_minute, alert.resolved_at or now)
            note = alert.details.get("resolution")
            lines.append(
                f":white_check_mark: Resolved after {lasted}" + (f": {mrkdwn.escape(note)}" if note else ".")
            )
        elif before.get("status") == "resolved" and alert.firing:
            lines.append(f":rotating_light: Re-opened: {summary}")
        if alert.firing and before.get("severity") != alert.severity:
            direction = (
                "raised" if severity_rank(alert.severity) > severity_rank(before["severity"]) else "lowered"
            )
            lines.append(
                f"Severity {direction}: {mrkdwn.escape(before.get('severity'))} → *{alert.severity}*"
            )
        new_metrics = [m for m in alert.metrics if m not in (before.get("metrics") or [])]
        if alert.firing and new_metrics:
            lines.append("Now also: " + ", ".join(mrkdwn.code(m) for m in new_metrics))
        if (
            alert.firing
            and not lines
            and alert.summary != before.get("summary")
            and alert.kind not in GROUPED_KINDS
        ):
            lines.append(f"Update: {summary}")
        old_score, new_score = before.get("score"), alert.peak_score
        if (
            alert.firing
            and old_score is not None
            and new_score is not None
            and abs(new_score - old_score) >= 10
        ):
            lines.append(f"Score {number(old_score)} → *{number(new_score)}*: {observed_line(alert)}")
    seen = set((before or {}).get("feedback") or [])
    for item in feedback:
        if item.feedback_id in seen:
            continue
        who = mrkdwn.who(item.user_id, item.user_name)
        if item.action == "ack":
            lines.append(f":eyes: Acknowledged by {who}.")
        elif item.action == "snooze" and item.snooze_until:
            lines.append(
                f":zzz: Snoozed by {who} until {slack_time(item.snooze_until)}: updates are held until then."
            )
        elif item.action == "not_anomaly":
            lines.append(
                f":no_entry_sign: Marked not an anomaly by {who}: this pattern will not alert again, "
                "and these minutes stay out of training."
            )
    if not lines:
        return None
    text = "\n".join(lines)
    return Message(mrkdwn.clip(text, MAX_FALLBACK), [_section(text)])
