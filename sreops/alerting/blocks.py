"""Slack messages for incidents: the root (current state, Block Kit) and notices (replies: `replies`).

Rendering is pure: it takes alerts, their feedback and log context, and returns text plus blocks.
Every data-derived string goes through :mod:`sreops.alerting.mrkdwn` on its way in, so a service,
metric, summary or log template can never become a mention or a link.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sreops.alerting import mrkdwn
from sreops.alerting.context import LogPattern
from sreops.alerting.feedback.labels import Feedback
from sreops.alerting.model import SEVERITY_EMOJI, Alert
from sreops.config.environment import DEFAULT_UI_URL
from sreops.severity import severity_rank

HOURLY_KEY_FORMAT = "%Y-%m-%d-%H:%M"
ACTION_ACK = "sreops_ack"
ACTION_SNOOZE = "sreops_snooze"
ACTION_NOT_ANOMALY = "sreops_not_anomaly"
ACTION_OPEN = "sreops_open"
METADATA_EVENT = "sreops_alert"
MAX_SECTION = 2900
MAX_HEADER = 150
MAX_FALLBACK = 3000
ASSET_OF_KIND = {
    "anomaly": "anomalies",
    "new_log_pattern": "log_clusters",
    "pipeline_health": "metric_samples",
}


@dataclass(frozen=True)
class Message:
    """What one Slack call carries."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ThreadView:
    """A root message's content: the incidents in its thread, their feedback and log context."""

    members: list[Alert]
    feedback: list[Feedback] = field(default_factory=list)
    log_patterns: list[LogPattern] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)  # the service's owners from the config

    @property
    def primary(self) -> Alert:
        return self.members[0]

    @property
    def firing(self) -> bool:
        return any(a.firing for a in self.members)

    @property
    def severity(self) -> str:
        return max((a.severity for a in self.members), key=severity_rank)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(m for a in self.members for m in a.metrics))

    @property
    def score(self) -> float | None:
        scores = [a.peak_score for a in self.members if a.peak_score is not None]
        return max(scores) if scores else None

    @property
    def first(self) -> dt.datetime:
        return min(a.first_minute for a in self.members)

    @property
    def resolved_at(self) -> dt.datetime | None:
        if self.firing:
            return None
        return max((a.resolved_at or a.updated_at) for a in self.members)


def dagster_link(alert: Alert, ui_url: str = DEFAULT_UI_URL) -> tuple[str, str]:
    """(label, URL) of the run or asset partition behind an alert, under the Dagster UI at `ui_url`."""
    base = ui_url.rstrip("/")
    details = alert.details
    if details.get("run_id"):
        return "View run in Dagster", f"{base}/runs/{quote(str(details['run_id']), safe='')}"
    asset = details.get("asset") or ASSET_OF_KIND.get(alert.kind)
    if not asset:
        return "Open Dagster", f"{base}/runs"
    partition = details.get("partition") or alert.first_minute.replace(
        minute=0, second=0, microsecond=0
    ).strftime(HOURLY_KEY_FORMAT)
    url = f"{base}/assets/{quote(str(asset))}?view=partitions&partition={quote(str(partition), safe=':')}"
    return f"View {mrkdwn.escape(asset)} in Dagster", url


def number(value: Any) -> str:
    """A measurement, with as many digits as a person reads (Slack-escaped when not a number)."""
    if value is None:
        return "n/a"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return mrkdwn.escape(value)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def band(low: Any, high: Any) -> str:
    """An expected range."""
    return f"{number(low)}–{number(high)}"


def slack_time(moment: dt.datetime) -> str:
    """A timestamp Slack shows in the reader's time zone (UTC text as fallback)."""
    epoch = int(moment.replace(tzinfo=dt.UTC).timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def duration(start: dt.datetime, end: dt.datetime) -> str:
    """A short human duration between two moments."""
    return minutes_text(max(int((end - start).total_seconds() // 60), 0))


def minutes_text(minutes: int) -> str:
    """A short human duration."""
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


_clip = mrkdwn.clip


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(text, MAX_SECTION)}


def observed_line(alert: Alert) -> str:
    """'observed (expected low–high)' for an alert's peak, when known."""
    d = alert.details
    if d.get("observed") is None:
        return "n/a"
    if d.get("expected_low") is None and d.get("expected_high") is None:
        return number(d["observed"])
    return f"{number(d['observed'])} (expected {band(d.get('expected_low'), d.get('expected_high'))})"


def _share(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def explanation_lines(members: list[Alert], limit: int = 5) -> list[str]:
    """The strongest explanation entries of an incident, one line each."""
    entries = [e for a in members for e in a.explanation]
    entries.sort(key=lambda e: -(_share(e.get("contribution")) or 0))
    lines = []
    for entry in entries[:limit]:
        feature = f" {mrkdwn.escape(entry['feature'])}" if entry.get("feature") else ""
        share = _share(entry.get("contribution"))
        share_text = f" · {share:.0%} of the score" if share is not None and share <= 1 else ""
        lines.append(
            f"• {mrkdwn.code(entry.get('metric', '?'))}{feature}: {number(entry.get('observed'))} vs expected "
            f"{band(entry.get('expected_low'), entry.get('expected_high'))}{share_text}"
        )
    return lines


def feedback_line(feedback: list[Feedback], now: dt.datetime) -> str | None:
    """Who acknowledged, snoozed or dismissed this incident."""
    parts = []
    for item in feedback:
        who = mrkdwn.who(item.user_id, item.user_name)
        if item.action == "ack":
            parts.append(f":eyes: acknowledged by {who}")
        elif item.action == "snooze" and item.snooze_until and item.snooze_until > now:
            parts.append(f":zzz: snoozed by {who} until {slack_time(item.snooze_until)}")
        elif item.action == "not_anomaly":
            parts.append(f":no_entry_sign: marked not an anomaly by {who}")
    return " · ".join(dict.fromkeys(parts)) or None


def _buttons(alert: Alert, snooze_minutes: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "button",
            "action_id": ACTION_ACK,
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "style": "primary",
            "value": alert.alert_id,
        },
        {
            "type": "button",
            "action_id": ACTION_SNOOZE,
            "text": {"type": "plain_text", "text": f"Snooze {minutes_text(snooze_minutes)}"},
            "value": f"{alert.alert_id}|{snooze_minutes}",
        },
        {
            "type": "button",
            "action_id": ACTION_NOT_ANOMALY,
            "text": {"type": "plain_text", "text": "Not an anomaly"},
            "style": "danger",
            "value": alert.alert_id,
            "confirm": {
                "title": {"type": "plain_text", "text": "Not an anomaly?"},
                "text": {
                    "type": "mrkdwn",
                    "text": "The same pattern will not alert again, and these "
                    "minutes will be kept out of training.",
                },
                "confirm": {"type": "plain_text", "text": "Not an anomaly"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            },
        },
    ]


def header_text(view: ThreadView) -> str:
    """'🔴 CRITICAL · checkout · anomaly', or the resolved form."""
    primary = view.primary
    subject = mrkdwn.escape(" · ".join(x for x in (primary.service, primary.kind.replace("_", " ")) if x))
    if view.firing:
        return f"{SEVERITY_EMOJI[view.severity]} {view.severity.upper()} · {subject}"
    return f":white_check_mark: RESOLVED · {subject} (was {view.severity})"


def root_message(
    view: ThreadView, now: dt.datetime, snooze_minutes: int = 60, *, ui_url: str = DEFAULT_UI_URL
) -> Message:
    """The incident's root message, showing its current state (its link under the Dagster UI at `ui_url`)."""
    primary = view.primary
    state = "firing" if view.firing else "resolved"
    started = view.first
    ended = view.resolved_at
    lasted = (
        f"{duration(started, ended)} (resolved {slack_time(ended)})"
        if ended
        else f"{duration(started, now)}, ongoing"
    )
    summaries = list(dict.fromkeys(mrkdwn.escape(a.summary) for a in view.members))
    service = mrkdwn.escape(primary.service or "platform")
    fields = [
        f"*Service*\n{service}",
        f"*Severity*\n{view.severity}",
        f"*Metrics*\n{', '.join(mrkdwn.code(m) for m in view.metrics) or 'n/a'}",
        f"*Score*\n{view.score:.0f} / 100" if view.score is not None else "*Score*\nn/a",
        f"*Observed vs expected*\n{observed_line(max(view.members, key=lambda a: a.peak_score or 0))}",
        f"*Started*\n{slack_time(started)}",
        f"*Duration*\n{lasted}",
    ]
    if primary.detector:
        fields.append(f"*Detector*\n{mrkdwn.escape(primary.detector)}")
    if view.owners:
        fields.append(f"*Owners*\n{' '.join(mrkdwn.owner_mention(o) for o in view.owners)}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(header_text(view), MAX_HEADER), "emoji": True},
        },
        {"type": "section", "text": _mrkdwn("\n".join(f"*{s}*" for s in summaries))},
        {"type": "section", "fields": [_mrkdwn(f) for f in fields[:10]]},
    ]
    why = explanation_lines(view.members)
    if why:
        blocks.append({"type": "section", "text": _mrkdwn("*Why*\n" + "\n".join(why))})
    if view.log_patterns:
        lines = []
        for pattern in view.log_patterns:
            tag = (
                "new"
                if pattern.new
                else (f"×{pattern.ratio:.0f} usual rate" if pattern.ratio else "returned")
            )
            lines.append(f"• {mrkdwn.code(_clip(pattern.template, 180))} — {pattern.count} lines ({tag})")
        blocks.append(
            {"type": "section", "text": _mrkdwn("*Log patterns in these minutes*\n" + "\n".join(lines))}
        )
    example = primary.details.get("example")
    if primary.kind == "new_log_pattern" and example:
        blocks.append(
            {
                "type": "section",
                "text": _mrkdwn("*Example line*\n" + mrkdwn.code_block(_clip(str(example), 500))),
            }
        )
    label, url = dagster_link(primary, ui_url)
    actions: list[dict[str, Any]] = _buttons(primary, snooze_minutes) if view.firing else []
    actions.append(
        {
            "type": "button",
            "action_id": ACTION_OPEN,
            "text": {"type": "plain_text", "text": label},
            "url": url,
        }
    )
    blocks.append({"type": "actions", "elements": actions})
    context = [f"{state} · alert {mrkdwn.code(primary.alert_id[:8])} · {mrkdwn.code(primary.fingerprint)}"]
    said = feedback_line(view.feedback, now)
    if said:
        context.insert(0, said)
    blocks.append({"type": "context", "elements": [_mrkdwn(c) for c in context]})
    score = f" (score {view.score:.0f})" if view.score is not None else ""
    text = f"[{view.severity.upper() if view.firing else 'RESOLVED'}] {service}: {summaries[0]}{score}"
    return Message(_clip(text, MAX_FALLBACK), blocks)


def notice_message(alert: Alert) -> Message:
    """A one-shot notice (digest, test): the summary and its prepared sections.

    `sections` and `footer` are mrkdwn their producer wrote, with its data escaped by
    :func:`sreops.alerting.mrkdwn.escape` (as the digest does); the summary is escaped here.
    """
    title = mrkdwn.escape(alert.summary)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(title, MAX_HEADER), "emoji": True},
        }
    ]
    for section in alert.details.get("sections") or []:
        blocks.append({"type": "section", "text": _mrkdwn(str(section))})
    if alert.details.get("footer"):
        blocks.append({"type": "context", "elements": [_mrkdwn(str(alert.details["footer"]))]})
    text = title + "".join(f"\n{s}" for s in alert.details.get("sections") or [])
    return Message(_clip(text, MAX_FALLBACK), blocks[:50])
