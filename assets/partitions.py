"""Hourly partitions shared by every minute-level table (UTC, Dagster's `%Y-%m-%d-%H:%M` keys)."""

import datetime as dt

import dagster as dg

from assets.resources import definition_config
from sreops import config

HOURLY_KEY_FORMAT = "%Y-%m-%d-%H:%M"


def _start() -> dt.datetime:
    day = config.partitions_start(definition_config())
    return dt.datetime(day.year, day.month, day.day)


# end_offset=1 includes the hour in progress, so real-time runs can target it.
hourly_partitions = dg.HourlyPartitionsDefinition(
    start_date=_start(), timezone="UTC", end_offset=1, fmt=HOURLY_KEY_FORMAT
)


def hour_key(hour: dt.datetime) -> str:
    """The partition key of the hour that contains `hour` (naive datetimes are UTC)."""
    return hour.replace(minute=0, second=0, microsecond=0, tzinfo=None).strftime(HOURLY_KEY_FORMAT)


def hour_of_key(key: str) -> dt.datetime:
    """The naive-UTC start of the hour named by a partition key."""
    return dt.datetime.strptime(key, HOURLY_KEY_FORMAT)
