"""Partition marks and builds: the one writer of `partition_marks` and `partition_builds`.

A mark says an hour's inputs changed, so the derived asset's partition must be rebuilt (the
landing sensors turn marks into runs); a build records what a partition's last rebuild
wrote. Functions take a connection: the caller's transaction holds the mark with the rows
that caused it, and the build with the rows it counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

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


def mark_hours(
    con: duckdb.DuckDBPyConnection,
    asset: str,
    hours: Iterable[dt.datetime],
    reason: str,
    file_id: int | None = None,
) -> int:
    """Mark the distinct hours of `hours` (truncated) of `asset` to rebuild; how many were marked."""
    distinct = sorted({hour.replace(minute=0, second=0, microsecond=0) for hour in hours})
    if distinct:
        ids = warehouse.next_ids(con, "partition_marks_seq", len(distinct))
        con.executemany(
            "INSERT INTO partition_marks VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [[mark_id, asset, hour, reason, file_id] for mark_id, hour in zip(ids, distinct, strict=True)],
        )
    return len(distinct)


def record_build(
    con: duckdb.DuckDBPyConnection, asset: str, hour: dt.datetime, rows: int, inputs: int
) -> None:
    """Record that `asset`'s partition `hour` was rebuilt with `rows` rows from `inputs` input rows.

    Replaces the hour's previous build: a delete and an insert in the caller's transaction (DuckLake
    has no keys to upsert on).
    """
    con.execute("DELETE FROM partition_builds WHERE asset = ? AND hour = ?", [asset, hour])
    con.execute(
        "INSERT INTO partition_builds VALUES (?, ?, ?, ?, now()::TIMESTAMP)", [asset, hour, rows, inputs]
    )


def marks_after(con: duckdb.DuckDBPyConnection, asset: str, after: int) -> list[tuple[int, dt.datetime]]:
    """(mark_id, hour) of every mark for `asset` newer than `after`, oldest first."""
    return [
        (row[0], row[1])
        for row in con.execute(
            "SELECT mark_id, hour FROM partition_marks WHERE asset = ? AND mark_id > ? ORDER BY mark_id",
            [asset, after],
        ).fetchall()
    ]


def built_since_marked(
    con: duckdb.DuckDBPyConnection, asset: str, marks: list[tuple[int, dt.datetime]]
) -> set[int]:
    """The ids among `marks` whose hour was rebuilt after the mark was made: nothing left to do for them.

    Builds and marks are written in separate transactions on one file, so a build that started
    after a mark committed has read the rows behind it.
    """
    if not marks:
        return set()
    ids = [mark_id for mark_id, _ in marks]
    return {
        row[0]
        for row in con.execute(
            "SELECT m.mark_id FROM partition_marks AS m JOIN partition_builds AS b"
            " ON b.asset = m.asset AND b.hour = m.hour AND b.built_at > m.created_at"
            " WHERE m.asset = ? AND list_contains(?, m.mark_id)",
            [asset, ids],
        ).fetchall()
    }


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
