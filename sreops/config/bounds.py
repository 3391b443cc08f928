"""Limits every configured number and date stays within, and the base of every section."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
)

# Bounds of the numbers below, chosen from how the code uses them: a datetime plus a timedelta
# of a year cannot leave the range of datetime, pandas or DuckDB for any date allowed here.
MINUTES_PER_YEAR = 366 * 24 * 60
HOURS_PER_YEAR = 366 * 24
DAYS_PER_YEAR = 366
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# sreops.alerting.feedback.labels.MAX_SNOOZE_MINUTES: a button press never snoozes longer than a week.
MAX_SNOOZE_MINUTES = MINUTES_PER_WEEK
# sreops.detection.settings.MAX_CONTEXT: more context points than this are never used.
MAX_CONTEXT_POINTS = 1000
MAX_REPLICAS = 10_000
# Dates in the file: pandas timestamps end in 2262, so nothing later than EARLIEST..LATEST
# (plus a year) can reach a DataFrame; hourly partitions from before 2000 would be ~250,000 keys.
EARLIEST = dt.datetime(1970, 1, 1)
LATEST = dt.datetime(2200, 1, 1)
EARLIEST_PARTITION = dt.date(2000, 1, 1)

MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_DEPTH = 32
MAX_PROBLEMS_SHOWN = 20


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def in_date_range(value: dt.datetime) -> dt.datetime:
    # Compared as written (a zone moves it by hours, not years), so no conversion can overflow.
    if not EARLIEST <= value.replace(tzinfo=None) < LATEST:
        raise ValueError(
            f"{value.isoformat()} is outside {EARLIEST:%Y-%m-%d} … {LATEST:%Y-%m-%d} (UTC);"
            f" for 'forever' write a date such as {LATEST.year - 1}-12-31"
        )
    return value


Timestamp = Annotated[dt.datetime, AfterValidator(in_date_range)]


def partition_day(value: dt.date) -> dt.date:
    if not EARLIEST_PARTITION <= value < LATEST.date():
        raise ValueError(
            f"{value.isoformat()} is outside {EARLIEST_PARTITION} … {LATEST:%Y-%m-%d}: hourly partitions"
            " from further back would be hundreds of thousands of keys; start at your oldest data"
        )
    return value
