"""Deploys and maintenance windows: kept out of training, and tagged on the anomalies inside them.

Events come from the config file (`events:`), the `events` table (what a CI pipeline or
`detection.run.record_event` writes) and incidents labelled "not an anomaly" in Slack. A deploy is usually an instant; it covers `deploy_settle_minutes` after
it, the time a rollout takes to settle. An event without a service covers every service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sreops.timeutil import naive_utc

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


def settled_end(
    kind: str, starts_at: dt.datetime, ends_at: dt.datetime | None, settle: dt.timedelta
) -> dt.datetime:
    """The exclusive end of an event: its own end, at least `settle` after a deploy's start."""
    end = naive_utc(ends_at) if ends_at is not None else naive_utc(starts_at)
    if kind == "deploy":
        end = max(end, naive_utc(starts_at) + settle)
    return end


def new_event(
    kind: str, starts_at: dt.datetime, ends_at: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """A window to record, checked: its naive-UTC (start, end); `EventError` says what is wrong."""
    if kind not in KINDS:
        raise EventError(f"event kind {kind!r} is not one of {', '.join(KINDS)}")
    start = naive_utc(starts_at)
    end = naive_utc(ends_at) if ends_at is not None else start
    if end < start:
        raise EventError(f"event ends ({end}) before it starts ({start})")
    return start, end


def from_rows(rows: list[tuple], settle: dt.timedelta) -> list[Event]:
    """Events of `(kind, service, starts_at, ends_at, note, source)` rows, a deploy's settle time added."""
    return [Event(k, s, a, settled_end(k, a, b, settle), n, src) for k, s, a, b, n, src in rows]


def from_config(items: list | None, settle: dt.timedelta) -> list[Event]:
    """Events of the config file's `events:` section."""
    return [
        Event(
            item.kind,
            item.service,
            naive_utc(item.starts_at),
            settled_end(item.kind, item.starts_at, item.ends_at, settle),
            item.note,
            "config",
        )
        for item in items or []
    ]


def labelled_windows(windows: list[tuple]) -> list[Event]:
    """Incidents people labelled "not an anomaly" (`(service, first, last)`): kept out like maintenance."""
    return [
        Event(
            NOT_ANOMALY,
            service,
            naive_utc(first),
            naive_utc(last) + dt.timedelta(minutes=1),
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
