"""Planning, with no I/O: from a snapshot of the outbox to the Slack steps of each alert revision due.

The snapshot (read by `record.read_snapshot` in a short read-only connection) holds the due
alerts, their delivery history and feedback, the threads they may join and the rules of routing.
`arrange` decides, for each due alert, whether it is withheld, dry-run or delivered, and how:
a new root (with grouped siblings), a reply and update in its own thread, or joining the thread
of a re-fire or of its service's open incident. `finish` completes a draft once its log context
and chart data are read, and decides no more.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sreops.alerting import blocks, charts, replies
from sreops.alerting.context import LogPattern
from sreops.alerting.delivery.work import PassState, Step, Work
from sreops.alerting.feedback.labels import Feedback, Pattern
from sreops.alerting.model import GROUPED_KINDS, NOTICE_KINDS, Alert
from sreops.alerting.routing import Router
from sreops.config import Config

Thread = tuple[str, str]  # (channel id, root ts)


@dataclass
class Snapshot:
    """What planning reads from the warehouse, all of it read at once."""

    now: dt.datetime
    state: PassState
    due: list[Alert] = field(default_factory=list)
    history: dict[str, list[tuple]] = field(default_factory=dict)  # alert_id → delivery rows, oldest first
    hosts: list[Alert] = field(default_factory=list)  # posted alerts a new one may join, newest first
    threads: dict[Thread, list[Alert]] = field(default_factory=dict)  # every posted member of each thread
    feedback: dict[str, list[Feedback]] = field(default_factory=dict)
    snoozes: dict[str, tuple[dt.datetime, str | None]] = field(default_factory=dict)
    patterns: list[Pattern] = field(default_factory=list)
    tables: set[str] = field(default_factory=set)


@dataclass
class Withheld:
    """A revision recorded, not posted (silenced, below the minimum severity)."""

    alert: Alert
    reason: str
    status: str


@dataclass
class DryRun:
    """A revision logged instead of posted (no bot token)."""

    alert: Alert
    channel: str
    message: blocks.Message


@dataclass
class Draft:
    """One alert revision's work, before its log context and chart data are read."""

    work: Work
    lane: str
    view_members: list[Alert] | None = None  # the root message's thread, when a step carries one
    chart_members: list[Alert] | None = None  # the incident charted, when a chart step is planned


@dataclass
class Arrangement:
    """What one planning round decided."""

    withheld: list[Withheld] = field(default_factory=list)
    dry_runs: list[DryRun] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)


def last_snapshot(rows: list[tuple]) -> dict[str, Any] | None:
    """The message snapshot of the last revision delivered, from an alert's delivery rows."""
    for _rev, _kind, _key, state, _at, snap in reversed(rows):
        if state == "done" and snap:
            return json.loads(snap)
    return None


def notice(alert: Alert, now: dt.datetime, config: Config, ui_url: str) -> blocks.Message:
    """The message of a one-shot notice; a test alert is shown exactly as a real one would be."""
    if alert.kind == "test":
        sample = replace(alert, status="firing", resolved_at=None)
        return blocks.root_message(
            blocks.ThreadView([sample]), now, config.alerting.snooze_minutes, ui_url=ui_url
        )
    return blocks.notice_message(alert)


class Planner:
    """The planning rules of one round over one snapshot."""

    def __init__(
        self, snapshot: Snapshot, config: Config, lane: Callable[[str], str], ui_url: str, posting: bool
    ) -> None:
        self.snap = snapshot
        self.config = config
        self.lane = lane
        self.ui_url = ui_url
        self.posting = posting
        self.router = Router(config, snapshot.snoozes, snapshot.patterns)

    def arrange(self) -> Arrangement:
        """Withhold, dry-run or draft every due alert, in order; grouped siblings ride with the first."""
        now = self.snap.now
        arranged = Arrangement()
        consumed: set[str] = set()
        for alert in self.snap.due:
            if alert.alert_id in consumed:
                continue
            decision = self.router.decide(alert, now)
            thread = (alert.slack_channel, alert.slack_ts) if alert.slack_ts and alert.slack_channel else None
            if decision.withheld and not (thread and self._always_told(alert)):
                arranged.withheld.append(Withheld(alert, decision.withheld, decision.status or "suppressed"))
                continue
            if not self.posting:
                if alert.kind in NOTICE_KINDS:
                    message = notice(alert, now, self.config, self.ui_url)
                else:
                    message = blocks.root_message(
                        blocks.ThreadView([alert]),
                        now,
                        self.config.alerting.snooze_minutes,
                        ui_url=self.ui_url,
                    )
                arranged.dry_runs.append(DryRun(alert, decision.channel, message))
                continue
            lane = self.lane(thread[0] if thread else decision.channel)
            arranged.drafts.append(self._draft(alert, decision.channel, thread, consumed, lane))
        return arranged

    def _always_told(self, alert: Alert) -> bool:
        """A posted incident's resolution and new feedback reach its thread even while it is silenced."""
        if not alert.firing:
            return True
        told = set((last_snapshot(self.snap.history.get(alert.alert_id, [])) or {}).get("feedback") or [])
        given = {f.feedback_id for f in self.snap.feedback.get(alert.alert_id, [])}
        return bool(given - told)

    def _members(self, thread: Thread, current: Alert) -> list[Alert]:
        members = [
            current if m.alert_id == current.alert_id else m for m in self.snap.threads.get(thread, [])
        ]
        if all(m.alert_id != current.alert_id for m in members):
            members.append(current)
        return members

    def _joinable(self, alert: Alert) -> Alert | None:
        """The thread this alert belongs to: a re-fire of its fingerprint, or its service's open incident."""
        others = [h for h in self.snap.hosts if h.alert_id != alert.alert_id]
        same = next((h for h in others if h.fingerprint == alert.fingerprint), None)
        if same is not None or alert.kind not in GROUPED_KINDS or not alert.firing:
            return same
        return next(
            (h for h in others if h.kind == alert.kind and h.service == alert.service and h.firing), None
        )

    def _step(self, alert: Alert, kind: str, where: str, **kwargs: Any) -> Step:
        made = Step(kind, f"{alert.alert_id}:{alert.revision}:{kind}", where, **kwargs)
        # Earlier attempts of this kind that may have reached Slack: look before posting again.
        unsure = [
            (key, at)
            for (_rev, k, key, state, at, _snap) in self.snap.history.get(alert.alert_id, [])
            if k == kind and state in ("sending", "uncertain")
        ]
        if unsure and kind in ("root", "notice", "reply", "chart"):
            made.reconcile_keys = [key for key, _ in unsure]
            made.reconcile_since = min(at for _, at in unsure)
        return made

    def _charted(self, draft: Draft, where: str, members: list[Alert]) -> None:
        if draft.work.alert.kind in GROUPED_KINDS:
            draft.work.steps.append(self._step(draft.work.alert, "chart", where))
            draft.chart_members = members

    def _draft(
        self, alert: Alert, channel: str, thread: Thread | None, consumed: set[str], lane: str
    ) -> Draft:
        now = self.snap.now
        own_feedback = self.snap.feedback.get(alert.alert_id, [])
        work = Work(alert, [], thread=thread, snapshot=replies.snapshot(alert, own_feedback))
        draft = Draft(work, lane)
        if alert.kind in NOTICE_KINDS:
            message = notice(alert, now, self.config, self.ui_url)
            work.steps.append(self._step(alert, "notice", channel, message=message))
            return draft
        if thread is None:
            host = self._joinable(alert)
            if host is not None:
                work.thread = (host.slack_channel, host.slack_ts)
                joined = "refire" if host.fingerprint == alert.fingerprint else "grouped"
                reply = replies.change_reply(alert, None, own_feedback, now, joined=joined)
                if reply is not None:
                    work.steps.append(self._step(alert, "reply", host.slack_channel, message=reply))
                draft.view_members = self._members(work.thread, alert)
                work.steps.append(self._step(alert, "update", host.slack_channel))
                self._charted(draft, work.thread[0], [alert])
                return draft
            decision = self.router.decide(alert, now)
            siblings = [
                s
                for s in self.snap.due
                if s.alert_id != alert.alert_id
                and s.alert_id not in consumed
                and s.slack_ts is None
                and alert.kind in GROUPED_KINDS
                and s.kind == alert.kind
                and s.service == alert.service
                and s.firing
                and alert.firing
                and self.router.decide(s, now) == decision
            ]
            consumed.update(s.alert_id for s in siblings)
            work.covers = siblings
            draft.view_members = [alert, *siblings]
            work.steps.append(self._step(alert, "root", channel))
            self._charted(draft, channel, [alert, *siblings])
            return draft
        before = last_snapshot(self.snap.history.get(alert.alert_id, []))
        reply = replies.change_reply(alert, before, own_feedback, now)
        if reply is not None:
            work.steps.append(self._step(alert, "reply", thread[0], message=reply))
        draft.view_members = self._members(thread, alert)
        work.steps.append(self._step(alert, "update", thread[0]))
        if before is not None and before.get("status") == "resolved" and alert.firing:
            self._charted(draft, thread[0], [alert])
        return draft

    def finish(self, draft: Draft, patterns: list[LogPattern], chart: charts.ChartData | None) -> Work:
        """The draft's work with its root message written and its chart attached (or dropped: no data)."""
        work = draft.work
        if draft.view_members is not None:
            members = draft.view_members
            service = self.config.services.get(members[0].service or "")
            view = blocks.ThreadView(
                members,
                [f for m in members for f in self.snap.feedback.get(m.alert_id, [])],
                patterns,
                owners=list(service.owners) if service is not None else [],
            )
            message = blocks.root_message(
                view, self.snap.now, self.config.alerting.snooze_minutes, ui_url=self.ui_url
            )
            for step in work.steps:
                if step.kind in ("root", "update"):
                    step.message = message
        for step in work.steps:
            if step.kind == "chart":
                step.chart = chart
        work.steps = [s for s in work.steps if s.kind != "chart" or s.chart is not None]
        return work
