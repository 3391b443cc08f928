"""The outbox delivery loop: post every alert revision not yet delivered, exactly once, at Slack's pace.

One pass (:meth:`Deliverer.run`) alternates short warehouse transactions with Slack calls made
while no connection is open:

1. plan (in a transaction): drain button feedback, read due alerts, record the withheld ones
   (silenced, below the minimum severity) and dry runs, and write an *intent* row for each Slack
   call about to be made;
2. call Slack with no connection open, at most one message per channel per `pacing_seconds`;
3. record (in the next transaction) each call's outcome, `slack_ts`, attempts and the last error.

A 429 pauses every call for its `Retry-After`; other failures back off exponentially; none drops
an alert. A call whose outcome is unknown (an HTTP 500, a timeout, a crash between posting and
recording) leaves its intent behind, and the next attempt first looks for the message in the
channel (each post carries its step key in Slack message metadata) instead of posting it again.

One pass at a time holds the outbox, through an OS lock on a file beside the warehouse rather
than a lease with an expiry: the kernel releases it the moment its holder dies, so after a crash
the next tick resumes at once (a time lease had to outlast the longest pass, 70 s).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import duckdb
import pandas as pd

from sreops import config as sreops_config
from sreops import warehouse
from sreops.alerting import blocks, charts, context, feedback, mrkdwn
from sreops.alerting.model import GROUPED_KINDS, NOTICE_KINDS, Alert, fetch_alerts
from sreops.alerting.routing import Router
from sreops.alerting.slack import AUTH, PERMANENT, RATE_LIMITED, SlackFailure, SlackPoster, make_client

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 40.0  # a sensor tick must finish well inside Dagster's 60 s evaluation limit
BATCH_S = 5.0  # results are written back at least this often
MAX_BACKOFF_S = 60.0
MAX_AUTH_BACKOFF_S = 900.0
PERMANENT_RETRY = dt.timedelta(hours=1)
RECONCILE_LOOKBACK_S = 120.0


class Clock(Protocol):
    """Time as delivery sees it (a fake one in tests)."""

    def now(self) -> dt.datetime: ...  # naive UTC

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when slept or advanced: pacing and backoff without waiting."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self.elapsed = 0.0

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(seconds, 0.0)

    advance = sleep

    def epoch(self) -> float:
        """Unix time of `now()` (for the fake Slack server's timestamps)."""
        return self.now().replace(tzinfo=dt.UTC).timestamp()


def epoch(moment: dt.datetime) -> float:
    """Unix seconds of a naive-UTC datetime."""
    return moment.replace(tzinfo=dt.UTC).timestamp()


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
class _State:
    paused_until: dt.datetime | None = None
    failures: int = 0
    reason: str = ""


def _read_state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM alert_delivery_state").fetchall())


def _write_state(con: duckdb.DuckDBPyConnection, key: str, value: str, now: dt.datetime) -> None:
    con.execute(
        "INSERT INTO alert_delivery_state VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [key, value, now],
    )


@contextlib.contextmanager
def _outbox_lock(warehouse_path: str | os.PathLike[str] | None) -> Iterator[bool]:
    """Hold the outbox for one pass (True), or learn that another live pass holds it (False)."""
    target = warehouse.resolve(warehouse_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".delivery.lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)


class Deliverer:
    """One delivery pass over the outbox (the sensor makes one per tick)."""

    def __init__(
        self,
        warehouse_path: str | os.PathLike[str] | None = None,
        *,
        poster: SlackPoster | None = None,
        config: sreops_config.Config | None = None,
        clock: Clock | None = None,
        budget_s: float = DEFAULT_BUDGET_S,
        batch_s: float = BATCH_S,
        patience_s: float | None = None,
    ) -> None:
        self.path = warehouse_path
        self.poster = poster
        self.config = config or sreops_config.current()
        self.clock = clock or SystemClock()
        self.budget_s = budget_s
        self.batch_s = batch_s
        self.patience_s = patience_s
        self.pacing_s = self.config.alerting.pacing_seconds
        self._next_free: dict[str, float] = {}
        self._state = _State()
        # Loaded once per plan, so planning costs a few queries rather than a few per alert.
        self._hosts: list[Alert] = []
        self._feedback: dict[str, list] = {}
        self._feedback_loaded: set[str] = set()
        self._tables: set[str] = set()

    @classmethod
    def from_environment(
        cls, warehouse_path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> Deliverer:
        """A deliverer posting with `SLACK_BOT_TOKEN` to `SLACK_API_URL`, or dry-running without a token."""
        client = make_client()
        return cls(warehouse_path, poster=SlackPoster(client) if client else None, **kwargs)

    # ---- the pass --------------------------------------------------------------------------------
    def run(self, only: list[str] | None = None) -> DeliveryReport:
        """Deliver what is due within the time budget; returns what happened."""
        with _outbox_lock(self.path) as held:
            if not held:
                return DeliveryReport(note="another delivery pass holds the outbox")
            return self._run(only)

    def _run(self, only: list[str] | None) -> DeliveryReport:
        report = DeliveryReport()
        deadline = self.clock.monotonic() + self.budget_s
        try:
            report.feedback = feedback.drain_spool(
                self.path,
                self.clock.now(),
                patience_s=self.patience_s,
                snooze_minutes=self.config.alerting.snooze_minutes,
            )
        except (warehouse.WarehouseLockedError, OSError, duckdb.Error) as exc:
            # Bad lines are set aside by the drain itself; this is the warehouse or disk failing.
            log.warning("button feedback stays spooled for the next pass: %s", exc)
        if self.poster is not None:
            self.poster.channel_ids()  # listed now, not while the warehouse is held
        batch: list[Work] = []
        while True:
            with warehouse.transaction(self.path, patience_s=self.patience_s) as con:
                now = self.clock.now()
                if batch:
                    self._record(con, batch, now, report)
                    batch = []
                self._load_state(con)
                stop = self.clock.monotonic() >= deadline
                if self._state.paused_until and self._state.paused_until > now:
                    report.paused_until = self._state.paused_until
                    stop = True
                if not stop:
                    batch = self._plan(con, now, only, report)
                if not batch:
                    break
            self._execute(batch, deadline, report)
        return report

    # ---- global state -----------------------------------------------------------------------------
    def _load_state(self, con: duckdb.DuckDBPyConnection) -> None:
        raw = _read_state(con)
        paused = raw.get("paused_until")
        self._state = _State(
            dt.datetime.fromisoformat(paused) if paused else None,
            int(raw.get("failures", "0")),
            raw.get("pause_reason", ""),
        )

    def _save_state(self, con: duckdb.DuckDBPyConnection, now: dt.datetime) -> None:
        paused = self._state.paused_until.isoformat() if self._state.paused_until else ""
        _write_state(con, "paused_until", paused, now)
        _write_state(con, "failures", str(self._state.failures), now)
        _write_state(con, "pause_reason", self._state.reason, now)

    # ---- planning ---------------------------------------------------------------------------------
    def _plan(
        self, con: duckdb.DuckDBPyConnection, now: dt.datetime, only: list[str] | None, report: DeliveryReport
    ) -> list[Work]:
        router = Router(self.config, feedback.active_snoozes(con, now), feedback.not_anomaly_patterns(con))
        where = "revision > delivered_revision AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        params: list[Any] = [now]
        if only is not None:
            where += " AND list_contains(?, alert_id)"
            params.append(only)
        due = fetch_alerts(con, where, params, order="opened_at, alert_id")
        if not due:
            return []
        history = self._history(con, [a.alert_id for a in due])
        reopen_since = now - dt.timedelta(minutes=self.config.alerting.reopen_minutes)
        self._hosts = fetch_alerts(
            con,
            "slack_ts IS NOT NULL AND (status = 'firing' OR resolved_at >= ?)",
            [reopen_since],
            order="opened_at DESC",
        )
        self._feedback = feedback.feedback_for(con, [a.alert_id for a in due])
        self._feedback_loaded = {a.alert_id for a in due}
        self._tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        capacity = int(self.batch_s / self.pacing_s) + 1 if self.pacing_s > 0 else 10_000
        used: dict[str, int] = {}
        consumed: set[str] = set()
        works: list[Work] = []
        for alert in due:
            if alert.alert_id in consumed:
                continue
            decision = router.decide(alert, now)
            thread = (alert.slack_channel, alert.slack_ts) if alert.slack_ts and alert.slack_channel else None
            if decision.withheld and not (thread and self._always_told(con, alert, history)):
                self._withhold(con, alert, decision.withheld, decision.status or "suppressed", now)
                report.withheld += 1
                continue
            if self.poster is None:
                self._dry_run(con, alert, decision.channel, now)
                report.dry_run += 1
                continue
            lane = self._lane(thread[0] if thread else decision.channel)
            if used.get(lane, 0) >= capacity:
                continue  # this channel's share of the batch is full; it goes in the next batch
            work = self._work_for(con, alert, decision.channel, thread, due, consumed, router, history, now)
            used[lane] = used.get(lane, 0) + len(work.steps)
            works.append(work)
        self._write_intents(con, works, now)
        return works

    def _always_told(
        self, con: duckdb.DuckDBPyConnection, alert: Alert, history: dict[str, list[tuple]]
    ) -> bool:
        """A posted incident's resolution and new feedback reach its thread even while it is silenced."""
        if not alert.firing:
            return True
        told = set((self._last_snapshot(history.get(alert.alert_id, [])) or {}).get("feedback") or [])
        given = {f.feedback_id for f in self._feedback_of(con, [alert.alert_id]).get(alert.alert_id, [])}
        return bool(given - told)

    def _feedback_of(self, con: duckdb.DuckDBPyConnection, alert_ids: list[str]) -> dict[str, list]:
        missing = [a for a in alert_ids if a not in self._feedback_loaded]
        if missing:
            self._feedback.update(feedback.feedback_for(con, missing))
            self._feedback_loaded.update(missing)
        return {a: self._feedback.get(a, []) for a in alert_ids}

    def _history(self, con: duckdb.DuckDBPyConnection, alert_ids: list[str]) -> dict[str, list[tuple]]:
        rows = con.execute(
            "SELECT alert_id, revision, step, step_key, state, attempted_at, snapshot FROM alert_deliveries"
            " WHERE list_contains(?, alert_id) ORDER BY delivery_id",
            [alert_ids],
        ).fetchall()
        found: dict[str, list[tuple]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(row[1:])
        return found

    def _lane(self, channel: str) -> str:
        return self.poster.channel_id(channel) if self.poster is not None else channel

    def _members(
        self, con: duckdb.DuckDBPyConnection, thread: tuple[str, str], current: Alert
    ) -> list[Alert]:
        members = fetch_alerts(con, "slack_channel = ? AND slack_ts = ?", list(thread))
        members = [current if m.alert_id == current.alert_id else m for m in members]
        if all(m.alert_id != current.alert_id for m in members):
            members.append(current)
        return members

    def _joinable(self, alert: Alert) -> Alert | None:
        """The thread this alert belongs to: a re-fire of its fingerprint, or its service's open incident."""
        others = [h for h in self._hosts if h.alert_id != alert.alert_id]
        same = next((h for h in others if h.fingerprint == alert.fingerprint), None)
        if same is not None or alert.kind not in GROUPED_KINDS or not alert.firing:
            return same
        return next(
            (h for h in others if h.kind == alert.kind and h.service == alert.service and h.firing), None
        )

    def _view(self, con: duckdb.DuckDBPyConnection, members: list[Alert]) -> blocks.ThreadView:
        fb = self._feedback_of(con, [m.alert_id for m in members])
        primary = members[0]
        patterns = []
        if primary.kind in GROUPED_KINDS:
            first = min(m.first_minute for m in members)
            last = max(m.last_minute for m in members)
            patterns = context.log_patterns(con, primary.service, first, last, tables=self._tables)
        service = self.config.services.get(primary.service or "")
        return blocks.ThreadView(
            members,
            [f for m in members for f in fb.get(m.alert_id, [])],
            patterns,
            owners=list(service.owners) if service is not None else [],
        )

    def _work_for(
        self,
        con: duckdb.DuckDBPyConnection,
        alert: Alert,
        channel: str,
        thread: tuple[str, str] | None,
        due: list[Alert],
        consumed: set[str],
        router: Router,
        history: dict[str, list[tuple]],
        now: dt.datetime,
    ) -> Work:
        snooze = self.config.alerting.snooze_minutes
        own_feedback = self._feedback_of(con, [alert.alert_id])[alert.alert_id]
        work = Work(alert, [], thread=thread, snapshot=blocks.snapshot(alert, own_feedback))

        def step(kind: str, where: str, **kwargs: Any) -> Step:
            made = Step(kind, f"{alert.alert_id}:{alert.revision}:{kind}", where, **kwargs)
            # Earlier attempts of this kind that may have reached Slack: look before posting again.
            unsure = [
                (key, at)
                for (_rev, k, key, state, at, _snap) in history.get(alert.alert_id, [])
                if k == kind and state in ("sending", "uncertain")
            ]
            if unsure and kind in ("root", "notice", "reply", "chart"):
                made.reconcile_keys = [key for key, _ in unsure]
                made.reconcile_since = min(at for _, at in unsure)
            return made

        if alert.kind in NOTICE_KINDS:
            work.steps.append(step("notice", channel, message=self._notice(alert, now)))
            return work
        if thread is None:
            host = self._joinable(alert)
            if host is not None:
                work.thread = (host.slack_channel, host.slack_ts)
                members = self._members(con, work.thread, alert)
                joined = "refire" if host.fingerprint == alert.fingerprint else "grouped"
                reply = blocks.change_reply(alert, None, own_feedback, now, joined=joined)
                if reply is not None:
                    work.steps.append(step("reply", host.slack_channel, message=reply))
                view = self._view(con, members)
                work.steps.append(
                    step("update", host.slack_channel, message=blocks.root_message(view, now, snooze))
                )
                self._add_chart(con, work, step, [alert], now)
                return work
            siblings = [
                s
                for s in due
                if s.alert_id != alert.alert_id
                and s.alert_id not in consumed
                and s.slack_ts is None
                and alert.kind in GROUPED_KINDS
                and s.kind == alert.kind
                and s.service == alert.service
                and s.firing
                and alert.firing
                and router.decide(s, now) == router.decide(alert, now)
            ]
            consumed.update(s.alert_id for s in siblings)
            work.covers = siblings
            view = self._view(con, [alert, *siblings])
            work.steps.append(step("root", channel, message=blocks.root_message(view, now, snooze)))
            self._add_chart(con, work, step, [alert, *siblings], now)
            return work
        before = self._last_snapshot(history.get(alert.alert_id, []))
        reply = blocks.change_reply(alert, before, own_feedback, now)
        if reply is not None:
            work.steps.append(step("reply", thread[0], message=reply))
        view = self._view(con, self._members(con, thread, alert))
        work.steps.append(step("update", thread[0], message=blocks.root_message(view, now, snooze)))
        if before is not None and before.get("status") == "resolved" and alert.firing:
            self._add_chart(con, work, step, [alert], now)
        return work

    def _notice(self, alert: Alert, now: dt.datetime) -> blocks.Message:
        if alert.kind == "test":  # a sample incident: shown exactly as a real one would be
            sample = replace(alert, status="firing", resolved_at=None)
            return blocks.root_message(blocks.ThreadView([sample]), now, self.config.alerting.snooze_minutes)
        return blocks.notice_message(alert)

    def _add_chart(
        self, con: duckdb.DuckDBPyConnection, work: Work, step: Any, members: list[Alert], now: dt.datetime
    ) -> None:
        if work.alert.kind not in GROUPED_KINDS:
            return
        data = charts.chart_data(con, members, now)
        if data is not None:
            where = work.thread[0] if work.thread else work.steps[0].channel
            work.steps.append(step("chart", where, chart=data))

    @staticmethod
    def _last_snapshot(rows: list[tuple]) -> dict[str, Any] | None:
        for _rev, _kind, _key, state, _at, snap in reversed(rows):
            if state == "done" and snap:
                return json.loads(snap)
        return None

    def _write_intents(self, con: duckdb.DuckDBPyConnection, works: list[Work], now: dt.datetime) -> None:
        rows = [
            (
                work.alert.alert_id,
                work.alert.revision,
                step.kind,
                step.key,
                step.channel,
                work.thread[1] if work.thread else None,
                json.dumps(work.snapshot, default=str),
                now,
            )
            for work in works
            for step in work.steps
        ]
        if not rows:
            return
        intents = pd.DataFrame(
            rows,
            columns=[
                "alert_id",
                "revision",
                "step",
                "step_key",
                "channel",
                "thread_ts",
                "snapshot",
                "attempted_at",
            ],
        )
        con.register("sreops_intents", intents)
        try:
            con.execute(
                "INSERT INTO alert_deliveries (delivery_id, alert_id, revision, step, step_key, channel,"
                " thread_ts, state, snapshot, attempted_at)"
                " SELECT nextval('alert_deliveries_seq'), alert_id, revision, step,"
                " step_key, channel, thread_ts, 'sending', snapshot, attempted_at FROM sreops_intents"
            )
        finally:
            con.unregister("sreops_intents")

    def _withhold(
        self, con: duckdb.DuckDBPyConnection, alert: Alert, reason: str, status: str, now: dt.datetime
    ) -> None:
        con.execute(
            "UPDATE alerts SET delivery_status = ?, delivered_revision = greatest(delivered_revision, ?),"
            " next_attempt_at = NULL WHERE alert_id = ?",
            [status, alert.revision, alert.alert_id],
        )
        self._log_row(con, alert, "suppressed", "done", reason, now)
        log.info("alert %s withheld (%s): %s", alert.alert_id[:8], reason, alert.summary)

    def _dry_run(self, con: duckdb.DuckDBPyConnection, alert: Alert, channel: str, now: dt.datetime) -> None:
        if alert.kind in NOTICE_KINDS:
            message = self._notice(alert, now)
        else:
            message = blocks.root_message(
                blocks.ThreadView([alert]), now, self.config.alerting.snooze_minutes
            )
        con.execute(
            "UPDATE alerts SET delivery_status = 'dry_run',"
            " delivered_revision = greatest(delivered_revision, ?),"
            " slack_channel = coalesce(slack_channel, ?), next_attempt_at = NULL WHERE alert_id = ?",
            [alert.revision, channel, alert.alert_id],
        )
        self._log_row(con, alert, "dry_run", "done", message.text, now, channel)
        log.info("dry run (no SLACK_BOT_TOKEN) → %s: %s", channel, message.text)

    def _log_row(
        self,
        con: duckdb.DuckDBPyConnection,
        alert: Alert,
        step: str,
        state: str,
        note: str,
        now: dt.datetime,
        channel: str | None = None,
    ) -> None:
        con.execute(
            "INSERT INTO alert_deliveries (delivery_id, alert_id, revision, step, step_key, channel, state,"
            " note, attempted_at)"
            " VALUES (nextval('alert_deliveries_seq'), ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                alert.alert_id,
                alert.revision,
                step,
                f"{alert.alert_id}:{alert.revision}:{step}",
                channel,
                state,
                note,
                now,
            ],
        )

    # ---- calling Slack ----------------------------------------------------------------------------
    def _execute(self, works: list[Work], deadline: float, report: DeliveryReport) -> None:
        assert self.poster is not None
        batch_end = min(deadline, self.clock.monotonic() + self.batch_s)
        lanes: dict[str, deque[Work]] = {}
        for work in works:
            lanes.setdefault(self._lane(work.steps[0].channel), deque()).append(work)
        executed = 0
        while lanes:
            lane = min(lanes, key=lambda name: self._next_free.get(name, 0.0))
            ready_at = self._next_free.get(lane, 0.0)
            now = self.clock.monotonic()
            head = lanes[lane][0]
            starting = len(head.pending) == len(head.steps)  # a new alert, not the rest of one begun
            if starting and executed and max(now, ready_at) >= batch_end:
                break  # the batch's time is up: record, then plan again
            if ready_at > now:
                self.clock.sleep(ready_at - now)
            step = head.pending[0]
            self._next_free[lane] = self.clock.monotonic() + self.pacing_s
            executed += 1
            failure = self._call(head, step, report)
            if failure is not None and failure.category != PERMANENT:
                self._pause(failure)
                break
            if failure is not None and not step.optional:
                head.failure = failure
                for rest in head.pending:
                    rest.state = "not_attempted"
            if not head.pending:
                lanes[lane].popleft()
                if not lanes[lane]:
                    del lanes[lane]
        for work in works:
            for step in work.pending:
                step.state = "not_attempted"

    def _call(self, work: Work, step: Step, report: DeliveryReport) -> SlackFailure | None:
        """Make one step's Slack call; marks the step and returns its failure, if any."""
        poster = self.poster
        assert poster is not None
        try:
            report.calls += 1
            if step.kind in ("root", "notice"):
                channel_id = poster.channel_id(step.channel)
                found = self._reconcile(step, channel_id, None)
                assert step.message is not None
                if found:
                    poster.update(channel_id, found, step.message.text, step.message.blocks)
                    step.message_ts = found
                else:
                    channel_id, step.message_ts = poster.post(
                        step.channel, step.message.text, step.message.blocks, step_key=step.key
                    )
                work.thread = (channel_id, step.message_ts)
            elif step.kind == "reply":
                assert work.thread is not None and step.message is not None
                found = self._reconcile(step, work.thread[0], work.thread[1])
                step.message_ts = (
                    found
                    or poster.post(
                        work.thread[0],
                        step.message.text,
                        step.message.blocks,
                        thread_ts=work.thread[1],
                        step_key=step.key,
                    )[1]
                )
            elif step.kind == "update":
                assert work.thread is not None and step.message is not None
                poster.update(work.thread[0], work.thread[1], step.message.text, step.message.blocks)
                step.message_ts = work.thread[1]
            elif step.kind == "chart":
                assert work.thread is not None and step.chart is not None
                title = mrkdwn.escape(
                    f"{step.chart.title} · alert {work.alert.alert_id[:8]} r{work.alert.revision}"
                )
                found = self._reconcile(step, work.thread[0], work.thread[1], title)
                if not found:
                    png = charts.render_png(step.chart)
                    poster.upload_png(
                        work.thread[0],
                        work.thread[1],
                        png,
                        f"{work.alert.alert_id[:8]}.png",
                        title,
                        alt_txt=mrkdwn.escape(charts.alt_text(step.chart)),
                    )
                step.message_ts = found or work.thread[1]
            step.state = "done"
            self._state.failures = 0
            return None
        except SlackFailure as failure:
            step.state = "uncertain" if failure.ambiguous else "failed"
            step.error = failure.message
            work.failure = failure
            log.warning("alert %s %s: %s", work.alert.alert_id[:8], step.kind, failure.message)
            report.errors.append(failure.message)
            return failure

    def _reconcile(
        self, step: Step, channel_id: str, thread_ts: str | None, title: str | None = None
    ) -> str | None:
        if not step.reconcile_keys or self.poster is None:
            return None
        since = epoch(step.reconcile_since or self.clock.now()) - RECONCILE_LOOKBACK_S
        for key in step.reconcile_keys:
            found = self.poster.find_posted(
                channel_id,
                key,
                thread_ts=thread_ts,
                oldest=since,
                file_title=title if step.kind == "chart" else None,
            )
            if found:
                log.info("step %s had reached Slack already (ts %s); not posting it again", key, found)
                return found
        return None

    def _pause(self, failure: SlackFailure) -> None:
        now = self.clock.now()
        if failure.category == RATE_LIMITED:
            delay = float(failure.retry_after_s or 1.0)
        else:
            self._state.failures += 1
            ceiling = MAX_AUTH_BACKOFF_S if failure.category == AUTH else MAX_BACKOFF_S
            base = 60.0 if failure.category == AUTH else 2.0
            delay = min(base * 2 ** (self._state.failures - 1), ceiling) * random.uniform(0.8, 1.0)
        self._state.paused_until = now + dt.timedelta(seconds=delay)
        self._state.reason = failure.message

    # ---- recording --------------------------------------------------------------------------------
    def _record(
        self, con: duckdb.DuckDBPyConnection, works: list[Work], now: dt.datetime, report: DeliveryReport
    ) -> None:
        steps, outcomes, superseded = [], [], []
        for work in works:
            channel, thread_ts = work.thread if work.thread else (None, None)
            snapshot = json.dumps(work.snapshot, default=str)
            for step in work.steps:
                steps.append(
                    (step.key, step.state, channel, thread_ts, step.message_ts, step.error, snapshot)
                )
                if step.state == "done":
                    superseded += step.reconcile_keys
            posted = work.thread is not None and any(s.state == "done" for s in work.steps)
            if work.complete:
                outcome, error, retry_at = "delivered", None, None
                report.delivered += len(work.alerts)
            elif work.attempted and work.failure is not None and work.failure.thread_lost:
                # Someone deleted the incident's message: start a fresh thread on the next pass.
                outcome, error, retry_at = "rethread", work.failure.message, now
                report.retrying += len(work.alerts)
            elif work.attempted and work.failure is not None:
                permanent = work.failure.category == PERMANENT
                outcome, error = ("failed" if permanent else "retrying"), work.failure.message
                retry_at = now + PERMANENT_RETRY if permanent else (self._state.paused_until or now)
                if permanent:
                    report.failed += len(work.alerts)
                else:
                    report.retrying += len(work.alerts)
            else:
                outcome, error, retry_at = "untouched", None, None
            for alert in work.alerts:
                outcomes.append(
                    (
                        alert.alert_id,
                        alert.revision,
                        outcome,
                        error,
                        retry_at,
                        channel if posted else None,
                        thread_ts if posted else None,
                    )
                )
        step_frame = pd.DataFrame(
            steps, columns=["step_key", "state", "channel", "thread_ts", "message_ts", "note", "snapshot"]
        )
        outcome_frame = pd.DataFrame(
            outcomes, columns=["alert_id", "revision", "outcome", "error", "retry_at", "channel", "thread_ts"]
        )
        outcome_frame["retry_at"] = pd.to_datetime(outcome_frame["retry_at"])
        con.register("sreops_steps", step_frame)
        con.register("sreops_outcomes", outcome_frame)
        try:
            con.execute(
                "UPDATE alert_deliveries AS d SET state = s.state, channel = coalesce(s.channel, d.channel),"
                " thread_ts = s.thread_ts, message_ts = s.message_ts, note = s.note, snapshot = s.snapshot"
                " FROM sreops_steps AS s WHERE d.step_key = s.step_key AND d.state = 'sending'"
            )
            if superseded:
                # Earlier uncertain attempts turned out posted (or not): they are settled now.
                con.execute(
                    "UPDATE alert_deliveries SET state = 'superseded' WHERE list_contains(?, step_key)"
                    " AND state IN ('sending', 'uncertain')",
                    [superseded],
                )
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
            con.unregister("sreops_steps")
            con.unregister("sreops_outcomes")
        self._save_state(con, now)
        if self._state.paused_until and self._state.paused_until > now:
            report.paused_until = self._state.paused_until


def deliver_pending(
    warehouse_path: str | os.PathLike[str] | None = None,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    only: list[str] | None = None,
    patience_s: float | None = None,
) -> DeliveryReport:
    """One delivery pass with the environment's Slack settings (what the delivery sensor runs)."""
    return Deliverer.from_environment(warehouse_path, budget_s=budget_s, patience_s=patience_s).run(only)
