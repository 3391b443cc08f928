"""Partition marks: hours whose inputs changed and whose derived tables must be rebuilt."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sreops import warehouse


@dataclass(frozen=True)
class HourRange:
    """Contiguous hours [first, last] (inclusive) to rebuild, and the newest mark behind them."""

    first: dt.datetime
    last: dt.datetime
    newest_mark: int

    @property
    def hours(self) -> int:
        return int((self.last - self.first) / dt.timedelta(hours=1)) + 1


def marks_after(
    warehouse_path: str | Path | None, asset: str, after: int, *, patience_s: float | None = None
) -> list[tuple[int, dt.datetime]]:
    """(mark_id, hour) of every mark for `asset` newer than `after`, oldest first."""
    with warehouse.connect(warehouse_path, patience_s=patience_s) as con:
        return [
            (row[0], row[1])
            for row in con.execute(
                "SELECT mark_id, hour FROM partition_marks WHERE asset = ? AND mark_id > ? ORDER BY mark_id",
                [asset, after],
            ).fetchall()
        ]


def group_hours(marks: list[tuple[int, dt.datetime]], max_hours: int = 24) -> list[HourRange]:
    """Distinct marked hours as contiguous ranges of at most `max_hours` each."""
    newest: dict[dt.datetime, int] = {}
    for mark_id, hour in marks:
        newest[hour] = max(mark_id, newest.get(hour, 0))
    ranges: list[HourRange] = []
    for hour in sorted(newest):
        current = ranges[-1] if ranges else None
        if current and hour - current.last == dt.timedelta(hours=1) and current.hours < max_hours:
            ranges[-1] = HourRange(current.first, hour, max(current.newest_mark, newest[hour]))
        else:
            ranges.append(HourRange(hour, hour, newest[hour]))
    return ranges
