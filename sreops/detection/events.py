"""Deploys and maintenance windows: kept out of training, and tagged on the anomalies inside them.

Events come from the config file (`events:`) and from the `events` table (what a CI pipeline or
`record_event` writes). A deploy is usually an instant; it covers `deploy_settle_minutes` after
it, the time a rollout takes to settle. An event without a service covers every service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from sreops import warehouse

KINDS = ("deploy", "maintenance")
NOT_ANOMALY = "not_anomaly"  # windows labelled from Slack; never recorded by hand


class EventError(ValueError):
    """An event that cannot be recorded (unknown kind, end before start)."""


@dataclass(frozen=True)
class Event:
    """One window; `ends_at` is exclusive and already includes a deploy's settle time."""

    kind: str
    service: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    note: str = ""
    source: str = "table"

    def covers(self, service: str) -> bool:
        return self.service is None or self.service == service


def _naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def settled_end(
    kind: str, starts_at: dt.datetime, ends_at: dt.datetime | None, settle: dt.timedelta
) -> dt.datetime:
    """The exclusive end of an event: its own end, at least `settle` after a deploy's start."""
    end = _naive(ends_at) if ends_at is not None else _naive(starts_at)
    if kind == "deploy":
        end = max(end, _naive(starts_at) + settle)
    return end


def record_event(
    warehouse_path: str | Path | None,
    kind: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
    service: str | None = None,
    note: str = "",
    source: str = "api",
) -> int:
    """Insert an event into the `events` table; returns its id."""
    if kind not in KINDS:
        raise EventError(f"event kind {kind!r} is not one of {', '.join(KINDS)}")
    start = _naive(starts_at)
    end = _naive(ends_at) if ends_at is not None else start
    if end < start:
        raise EventError(f"event ends ({end}) before it starts ({start})")
    with warehouse.transaction(warehouse_path) as con:
        return con.execute(
            "INSERT INTO events (kind, service, starts_at, ends_at, note, source, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP) RETURNING event_id",
            [kind, service, start, end, note, source],
        ).fetchone()[0]


def load_events(
    warehouse_path: str | Path | None,
    start: dt.datetime,
    end: dt.datetime,
    config_events: list | None = None,
    settle: dt.timedelta = dt.timedelta(minutes=30),
) -> list[Event]:
    """Every event overlapping [start, end), from the table and the config."""
    start, end = _naive(start), _naive(end)
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT kind, service, starts_at, ends_at, coalesce(note, ''), source FROM events"
            " WHERE starts_at < ? AND ends_at >= ? - to_seconds(?)",
            [end, start, settle.total_seconds()],
        ).fetchall()
    events = [Event(k, s, a, settled_end(k, a, b, settle), n, src) for k, s, a, b, n, src in rows]
    events.extend(_not_anomaly_windows(warehouse_path))
    for item in config_events or []:
        events.append(
            Event(
                item.kind,
                item.service,
                _naive(item.starts_at),
                settled_end(item.kind, item.starts_at, item.ends_at, settle),
                item.note,
                "config",
            )
        )
    return [e for e in events if e.starts_at < end and e.ends_at > start]


def _not_anomaly_windows(warehouse_path: str | Path | None) -> list[Event]:
    """Incidents people labelled "not an anomaly" (alert buttons): kept out of training like maintenance."""
    try:
        from sreops.alerting.feedback import suppressed_windows
    except ImportError:  # the alerting stage is optional
        return []
    try:
        with warehouse.connect(warehouse_path) as con:
            windows = suppressed_windows(con)
    except duckdb.CatalogException:  # a warehouse from before the alerting tables
        return []
    return [
        Event(
            NOT_ANOMALY,
            service,
            _naive(first),
            _naive(last) + dt.timedelta(minutes=1),
            "labelled",
            "feedback",
        )
        for service, first, last in windows
        if first is not None and last is not None
    ]


def event_tags(minutes: np.ndarray, service: str, events: list[Event]) -> np.ndarray:
    """Per minute (datetime64): the kind of the event covering it for this service, else None."""
    minutes = np.asarray(minutes, dtype="datetime64[ns]")
    tags = np.full(len(minutes), None, dtype=object)
    for event in events:
        if not event.covers(service):
            continue
        inside = (minutes >= np.datetime64(event.starts_at, "ns")) & (
            minutes < np.datetime64(event.ends_at, "ns")
        )
        # maintenance outranks deploy when both cover a minute
        tags[inside & ((tags == None) | (event.kind == "maintenance"))] = event.kind  # noqa: E711
    return tags
