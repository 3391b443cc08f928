"""What passes between plan, execute and record: the Slack steps of each alert revision, and the report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sreops.alerting import blocks, charts
from sreops.alerting.model import Alert
from sreops.alerting.slack import SlackFailure


@dataclass
class Step:
    """One Slack call for one alert revision."""

    kind: str  # root, notice, reply, update, chart
    key: str
    channel: str  # channel name or id of a new root; the thread's channel id otherwise
    message: blocks.Message | None = None
    chart: charts.ChartData | None = None
    reconcile_keys: list[str] = field(default_factory=list)  # earlier attempts that may have posted
    reconcile_since: dt.datetime | None = None
    state: str = "planned"  # planned → done | uncertain | failed | not_attempted
    message_ts: str | None = None
    error: str | None = None

    @property
    def optional(self) -> bool:
        return self.kind == "chart"


@dataclass
class Work:
    """Everything to deliver one alert revision (and grouped siblings posted in the same root)."""

    alert: Alert
    steps: list[Step]
    covers: list[Alert] = field(default_factory=list)
    thread: tuple[str, str] | None = None  # (channel id, root ts)
    snapshot: dict[str, Any] = field(default_factory=dict)
    failure: SlackFailure | None = None

    @property
    def alerts(self) -> list[Alert]:
        return [self.alert, *self.covers]

    @property
    def pending(self) -> list[Step]:
        return [s for s in self.steps if s.state == "planned"]

    @property
    def complete(self) -> bool:
        return all(s.state == "done" or (s.optional and s.state == "failed") for s in self.steps)

    @property
    def attempted(self) -> bool:
        return any(s.state in ("done", "uncertain", "failed") for s in self.steps)


@dataclass
class DeliveryReport:
    """What one pass did."""

    delivered: int = 0
    withheld: int = 0
    dry_run: int = 0
    retrying: int = 0
    failed: int = 0
    calls: int = 0
    feedback: int = 0
    paused_until: dt.datetime | None = None
    note: str = ""
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{self.delivered} delivered",
            f"{self.withheld} withheld",
            f"{self.dry_run} dry-run",
            f"{self.retrying} retrying",
            f"{self.failed} failed",
            f"{self.calls} Slack calls",
        ]
        if self.feedback:
            parts.append(f"{self.feedback} feedback")
        if self.paused_until:
            parts.append(f"paused until {self.paused_until:%H:%M:%S} UTC")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts)


@dataclass
class PassState:
    """Delivery's global state (`alert_delivery_state`): a pause after failures, and why."""

    paused_until: dt.datetime | None = None
    failures: int = 0
    reason: str = ""
