"""The daily digest: top incidents, detector precision from feedback, capacity advice, new log patterns.

It is queued as a one-shot `digest` notice in the outbox (once per day), so it is delivered, retried
and dry-run like any alert.
"""

from __future__ import annotations

import datetime as dt
import os

import duckdb

from sreops import warehouse
from sreops.alerting import mrkdwn, outbox
from sreops.alerting.blocks import duration, number
from sreops.alerting.feedback.store import precision_by_detector
from sreops.alerting.model import (
    NOTICE_KINDS,
    SEVERITY_EMOJI,
    columns,
    fetch_alerts,
    table_exists,
)
from sreops.config import Config
from sreops.severity import severity_rank

TOP_INCIDENTS = 5


def _incidents(con: duckdb.DuckDBPyConnection, since: dt.datetime, now: dt.datetime) -> list[str]:
    alerts = [
        a
        for a in fetch_alerts(
            con,
            "(opened_at >= ? AND opened_at < ?) OR (status = 'firing' AND opened_at < ?)",
            [since, now, now],
        )
        if a.kind not in NOTICE_KINDS
    ]
    if not alerts:
        return ["*Incidents*\nNone in the last 24 h. :tada:"]
    firing = sum(a.firing for a in alerts)
    services = sorted({a.service or "platform" for a in alerts})
    ranked = sorted(alerts, key=lambda a: (-severity_rank(a.severity), -(a.peak_score or 0)))
    lines = []
    for alert in ranked[:TOP_INCIDENTS]:
        lasted = duration(alert.first_minute, alert.resolved_at or now)
        state = "still firing" if alert.firing else f"resolved after {lasted}"
        score = f", score {number(alert.peak_score)}" if alert.peak_score is not None else ""
        lines.append(
            f"• {SEVERITY_EMOJI.get(alert.severity, '')} *{mrkdwn.escape(alert.service or 'platform')}*: "
            f"{mrkdwn.escape(alert.summary)} ({state}{score})"
        )
    head = (
        f"*Incidents*: {len(alerts)} in the last 24 h across {len(services)} service(s), "
        f"{firing} still firing. Top {min(len(alerts), TOP_INCIDENTS)}:"
    )
    return [head + "\n" + "\n".join(lines)]


def _precision(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = [r for r in precision_by_detector(con) if r["labelled"]]
    if not rows:
        return []
    lines = [
        f"• {mrkdwn.escape(r['detector'])}: {r['precision']:.0%} real ({r['real']} of {r['labelled']} labelled; "
        f"{r['incidents']} incidents)"
        for r in rows
    ]
    return ["*Detector precision from your feedback*\n" + "\n".join(lines)]


def _capacity(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not table_exists(con, "scaling_recommendations"):
        return []
    rows = con.execute(
        "SELECT service, window_start, window_end, recommended_replicas, forecast_peak, reason"
        " FROM scaling_recommendations"
        " QUALIFY row_number() OVER (PARTITION BY service ORDER BY generated_at DESC, window_start) = 1"
        " ORDER BY service LIMIT 10"
    ).fetchall()
    if not rows:
        return []
    lines = [
        f"• *{mrkdwn.escape(svc)}*: {replicas} replicas {start:%a %H:%M}–{end:%H:%M} UTC"
        f" (forecast peak {number(peak)})" + (f": {mrkdwn.escape(reason)}" if reason else "")
        for svc, start, end, replicas, peak, reason in rows
    ]
    return ["*Capacity recommendations*\n" + "\n".join(lines)]


def _log_patterns(con: duckdb.DuckDBPyConnection, since: dt.datetime) -> list[str]:
    if not table_exists(con, "log_clusters"):
        return []
    live = " AND merged_into IS NULL" if "merged_into" in columns(con, "log_clusters") else ""
    rows = con.execute(
        f"SELECT service, template, size FROM log_clusters WHERE first_seen >= ?{live}"
        " ORDER BY size DESC LIMIT 5",
        [since],
    ).fetchall()
    if not rows:
        return []
    lines = [
        f"• *{mrkdwn.escape(svc)}*: {mrkdwn.code(str(template)[:160])} ({size} lines)"
        for svc, template, size in rows
    ]
    return ["*New log patterns*\n" + "\n".join(lines)]


def _delivery(con: duckdb.DuckDBPyConnection, since: dt.datetime) -> str:
    counts = dict(
        con.execute(
            "SELECT delivery_status, count(*) FROM alerts WHERE updated_at >= ? GROUP BY delivery_status",
            [since],
        ).fetchall()
    )
    shown = ", ".join(f"{n} {mrkdwn.escape(status)}" for status, n in sorted(counts.items())) or "nothing"
    return f"Delivery in the last 24 h: {shown}. `sreops alerts list` shows every alert."


def build(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> tuple[str, list[str], str]:
    """(title, sections, footer) of the digest for the 24 hours before `now`."""
    since = now - dt.timedelta(hours=24)
    sections = _incidents(con, since, now) + _precision(con) + _capacity(con) + _log_patterns(con, since)
    return f":newspaper: SRE daily digest, {now:%a %d %b %Y}", sections, _delivery(con, since)


def enqueue(warehouse_path: str | os.PathLike[str] | None, cfg: Config, now: dt.datetime) -> str | None:
    """Queue today's digest once; returns its alert id, or None if today's is already queued."""
    fingerprint = f"digest:{now:%Y-%m-%d}"
    with warehouse.transaction(warehouse_path) as con:
        if con.execute("SELECT count(*) FROM alerts WHERE fingerprint = ?", [fingerprint]).fetchall()[0][0]:
            return None
        title, sections, footer = build(con, now)
        channel = cfg.alerting.digest_channel or cfg.alerting.default_channel
        return outbox.notify(
            con,
            kind="digest",
            summary=title,
            now=now,
            fingerprint=fingerprint,
            details={"sections": sections, "footer": footer, "channel": channel},
        )
