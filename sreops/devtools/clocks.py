"""Clocks for tests and benchmarks: time that moves only when told to."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """A clock that moves only when slept or advanced: pacing and backoff without waiting.

    It has the shape of delivery's `Clock` (`now`, `monotonic`, `sleep`), so a `Deliverer` runs
    on it unchanged.
    """

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self.elapsed = 0.0

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(seconds, 0.0)

    advance = sleep

    def epoch(self) -> float:
        """Unix time of `now()` (for the fake Slack server's timestamps)."""
        return self.now().replace(tzinfo=dt.UTC).timestamp()
