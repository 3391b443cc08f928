"""Delivery's reads and writes: the snapshot it plans from, the intents before each call, the outcomes after.

`alerts` is written through `alerting.outbox` only; `alert_deliveries` (one row per Slack step:
its intent, then its outcome) and `alert_delivery_state` (the pause after failures) are
delivery's own tables and written here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import duckdb
import pandas as pd

from sreops import warehouse
from sreops.alerting import charts, context, outbox
from sreops.alerting.delivery.plan import Arrangement, Draft, Snapshot
from sreops.alerting.delivery.work import DeliveryReport, PassState, Work
from sreops.alerting.feedback.store import active_snoozes, feedback_for, not_anomaly_patterns
from sreops.alerting.model import GROUPED_KINDS, Alert, fetch_alerts
from sreops.alerting.slack import PERMANENT
from sreops.config import Config

log = logging.getLogger(__name__)

PERMANENT_RETRY = dt.timedelta(hours=1)


# ---- reading ------------------------------------------------------------------------------------
def read_state(con: duckdb.DuckDBPyConnection) -> PassState:
    """The pause and failure count left by the last pass."""
    raw = dict(con.execute("SELECT key, value FROM alert_delivery_state").fetchall())
    paused = raw.get("paused_until")
    return PassState(
        dt.datetime.fromisoformat(paused) if paused else None,
        int(raw.get("failures", "0")),
        raw.get("pause_reason", ""),
    )


def _history(con: duckdb.DuckDBPyConnection, alert_ids: list[str]) -> dict[str, list[tuple]]:
    rows = con.execute(
        "SELECT alert_id, revision, step, step_key, state, attempted_at, snapshot FROM alert_deliveries"
        " WHERE list_contains(?, alert_id) ORDER BY delivery_id",
        [alert_ids],
    ).fetchall()
    found: dict[str, list[tuple]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row[1:])
    return found


def read_snapshot(
    con: duckdb.DuckDBPyConnection, now: dt.datetime, only: list[str] | None, config: Config
) -> Snapshot:
    """Everything planning needs, read at once: due alerts, their history, threads, feedback, rules."""
    snap = Snapshot(now, read_state(con))
    where = "revision > delivered_revision AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
    params: list[Any] = [now]
    if only is not None:
        where += " AND list_contains(?, alert_id)"
        params.append(only)
    snap.due = fetch_alerts(con, where, params, order="opened_at, alert_id")
    if not snap.due:
        return snap
    snap.snoozes = active_snoozes(con, now)
    snap.patterns = not_anomaly_patterns(con)
    snap.history = _history(con, [a.alert_id for a in snap.due])
    reopen_since = now - dt.timedelta(minutes=config.alerting.reopen_minutes)
    snap.hosts = fetch_alerts(
        con,
        "slack_ts IS NOT NULL AND (status = 'firing' OR resolved_at >= ?)",
        [reopen_since],
        order="opened_at DESC",
    )
    threads = {
        (a.slack_channel, a.slack_ts) for a in [*snap.due, *snap.hosts] if a.slack_ts and a.slack_channel
    }
    if threads:
        members = fetch_alerts(con, "list_contains(?, slack_ts)", [sorted(ts for _, ts in threads)])
        for member in members:
            key = (member.slack_channel, member.slack_ts)
            if key in threads:
                snap.threads.setdefault(key, []).append(member)
    involved = dict.fromkeys(
        a.alert_id for a in [*snap.due, *(m for ms in snap.threads.values() for m in ms)]
    )
    snap.feedback = feedback_for(con, list(involved))
    snap.tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return snap


def read_context(
    con: duckdb.DuckDBPyConnection, draft: Draft, snap: Snapshot
) -> tuple[list[context.LogPattern], charts.ChartData | None]:
    """A draft's log patterns (for its root message) and chart data (for its chart step)."""
    patterns: list[context.LogPattern] = []
    members = draft.view_members
    if members and members[0].kind in GROUPED_KINDS:
        first = min(m.first_minute for m in members)
        last = max(m.last_minute for m in members)
        patterns = context.log_patterns(con, members[0].service, first, last, tables=snap.tables)
    chart = charts.chart_data(con, draft.chart_members, snap.now) if draft.chart_members else None
    return patterns, chart


# ---- writing before the calls -------------------------------------------------------------------
def _log_row(
    con: duckdb.DuckDBPyConnection,
    alert: Alert,
    step: str,
    state: str,
    note: str,
    now: dt.datetime,
    channel: str | None = None,
) -> None:
    delivery_id = warehouse.next_ids(con, "alert_deliveries_seq")[0]
    con.execute(
        "INSERT INTO alert_deliveries (delivery_id, alert_id, revision, step, step_key, channel, state,"
        " note, attempted_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [delivery_id, alert.alert_id, alert.revision, step, f"{alert.alert_id}:{alert.revision}:{step}",
         channel, state, note, now],
    )  # fmt: skip


def write_intents(con: duckdb.DuckDBPyConnection, works: list[Work], now: dt.datetime) -> None:
    """One 'sending' row per step about to be called: what reconciliation looks for after a crash."""
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
    columns = ["alert_id", "revision", "step", "step_key", "channel", "thread_ts", "snapshot", "attempted_at"]
    intents = pd.DataFrame(rows, columns=columns)
    intents["delivery_id"] = warehouse.next_ids(con, "alert_deliveries_seq", len(intents))
    con.register("sreops_intents", intents)
    try:
        con.execute(
            "INSERT INTO alert_deliveries (delivery_id, alert_id, revision, step, step_key, channel,"
            " thread_ts, state, snapshot, attempted_at)"
            " SELECT delivery_id, alert_id, revision, step,"
            " step_key, channel, thread_ts, 'sending', snapshot, attempted_at FROM sreops_intents"
        )
    finally:
        con.unregister("sreops_intents")


def write_plan(
    con: duckdb.DuckDBPyConnection, arranged: Arrangement, works: list[Work], now: dt.datetime
) -> None:
    """Record the withheld and dry-run revisions, and the intents of the calls about to be made."""
    for held in arranged.withheld:
        alert = held.alert
        outbox.mark_withheld(con, alert.alert_id, alert.revision, held.status)
        _log_row(con, alert, "suppressed", "done", held.reason, now)
        log.info("alert %s withheld (%s): %s", alert.alert_id[:8], held.reason, alert.summary)
    for dry in arranged.dry_runs:
        outbox.mark_dry_run(con, dry.alert.alert_id, dry.alert.revision, dry.channel)
        _log_row(con, dry.alert, "dry_run", "done", dry.message.text, now, dry.channel)
        log.info("dry run (no SLACK_BOT_TOKEN) → %s: %s", dry.channel, dry.message.text)
    write_intents(con, works, now)


# ---- writing after the calls --------------------------------------------------------------------
def save_state(con: duckdb.DuckDBPyConnection, state: PassState, now: dt.datetime) -> None:
    """Keep the pause and failure count for the next pass."""
    paused = state.paused_until.isoformat() if state.paused_until else ""
    for key, value in (
        ("paused_until", paused),
        ("failures", str(state.failures)),
        ("pause_reason", state.reason),
    ):
        # A delete and an insert in the caller's transaction: an upsert on a lake, which has no keys.
        con.execute("DELETE FROM alert_delivery_state WHERE key = ?", [key])
        con.execute("INSERT INTO alert_delivery_state VALUES (?, ?, ?)", [key, value, now])


def _outcome(work: Work, now: dt.datetime, state: PassState, report: DeliveryReport) -> tuple:
    if work.complete:
        report.delivered += len(work.alerts)
        return "delivered", None, None
    if work.attempted and work.failure is not None and work.failure.thread_lost:
        # Someone deleted the incident's message: start a fresh thread on the next pass.
        report.retrying += len(work.alerts)
        return "rethread", work.failure.message, now
    if work.attempted and work.failure is not None:
        permanent = work.failure.category == PERMANENT
        if permanent:
            report.failed += len(work.alerts)
        else:
            report.retrying += len(work.alerts)
        retry_at = now + PERMANENT_RETRY if permanent else (state.paused_until or now)
        return ("failed" if permanent else "retrying"), work.failure.message, retry_at
    return "untouched", None, None


def record(
    con: duckdb.DuckDBPyConnection,
    works: list[Work],
    now: dt.datetime,
    state: PassState,
    report: DeliveryReport,
) -> None:
    """Write each step's outcome, each alert's delivery state and the pause, in the caller's transaction."""
    steps, outcomes, superseded = [], [], []
    for work in works:
        channel, thread_ts = work.thread if work.thread else (None, None)
        snapshot = json.dumps(work.snapshot, default=str)
        for step in work.steps:
            steps.append((step.key, step.state, channel, thread_ts, step.message_ts, step.error, snapshot))
            if step.state == "done":
                superseded += step.reconcile_keys
        posted = work.thread is not None and any(s.state == "done" for s in work.steps)
        outcome, error, retry_at = _outcome(work, now, state, report)
        outcomes += [
            outbox.DeliveryOutcome(
                alert.alert_id,
                alert.revision,
                outcome,
                error,
                retry_at,
                channel if posted else None,
                thread_ts if posted else None,
            )
            for alert in work.alerts
        ]
    columns = ["step_key", "state", "channel", "thread_ts", "message_ts", "note", "snapshot"]
    con.register("sreops_steps", pd.DataFrame(steps, columns=columns))
    try:
        con.execute(
            "UPDATE alert_deliveries AS d SET state = s.state, channel = coalesce(s.channel, d.channel),"
            " thread_ts = s.thread_ts, message_ts = s.message_ts, note = s.note, snapshot = s.snapshot"
            " FROM sreops_steps AS s WHERE d.step_key = s.step_key AND d.state = 'sending'"
        )
    finally:
        con.unregister("sreops_steps")
    if superseded:
        # Earlier uncertain attempts turned out posted (or not): they are settled now.
        con.execute(
            "UPDATE alert_deliveries SET state = 'superseded' WHERE list_contains(?, step_key)"
            " AND state IN ('sending', 'uncertain')",
            [superseded],
        )
    outbox.record_outcomes(con, outcomes)
    save_state(con, state, now)
    if state.paused_until and state.paused_until > now:
        report.paused_until = state.paused_until
