"""Time as delivery sees it: the `Clock` protocol and the system clock (a fake one: `devtools.clocks`)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

from sreops.timeutil import utc_now


class Clock(Protocol):
    """Time as delivery sees it (a fake one in tests)."""

    def now(self) -> dt.datetime: ...  # naive UTC

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return utc_now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def epoch(moment: dt.datetime) -> float:
    """Unix seconds of a naive-UTC datetime."""
    return moment.replace(tzinfo=dt.UTC).timestamp()
