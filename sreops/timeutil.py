"""Time as the warehouse keeps it: naive datetimes in UTC, written once.

DuckDB `TIMESTAMP` columns hold naive UTC; every boundary between zoned input, epoch seconds and
those columns goes through these helpers.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

EPOCH = dt.datetime(1970, 1, 1)
HOUR = dt.timedelta(hours=1)


def naive_utc(moment: dt.datetime | pd.Timestamp) -> dt.datetime:
    """A moment as naive UTC (a zoned one converted, a naive one taken as UTC already)."""
    if isinstance(moment, pd.Timestamp):
        moment = moment.to_pydatetime()
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def utc_now() -> dt.datetime:
    """Now, as naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def floor_hour(moment: dt.datetime | pd.Timestamp) -> dt.datetime:
    """The start of the UTC hour holding `moment`."""
    return naive_utc(moment).replace(minute=0, second=0, microsecond=0)


def epoch_seconds(moment: dt.datetime) -> float:
    """Seconds since 1970-01-01 of a naive-UTC moment."""
    return (naive_utc(moment) - EPOCH).total_seconds()


def from_epoch(seconds: float) -> dt.datetime:
    """The naive-UTC moment `seconds` after 1970-01-01."""
    return EPOCH + dt.timedelta(seconds=float(seconds))
