"""User-supplied header patterns, matched with a time limit so that no pattern can stall ingestion.

A `services.<name>.log_pattern` is user input run against every line of that service's logs.
Python's `re` has no way to stop a match, and a pattern with nested quantifiers (`(a|aa)+$`,
`(a+)+$`) backtracks for minutes on one unlucky line. The `regex` package takes a timeout per
call, so a `TimedPattern` gives each line `line_timeout_s` and the whole run `budget_s`, and
raises `PatternTooSlow` when either is spent: the caller then reads that service's lines another
way (and says so) instead of hanging.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import regex

LINE_TIMEOUT_S = 0.25
BUDGET_S = 30.0


class InvalidPattern(ValueError):
    """A pattern that does not compile; the message quotes the regex engine's complaint."""


class PatternTooSlow(RuntimeError):
    """A pattern took longer than its limit on one line, or used up its budget for the run."""


@dataclass
class TimedPattern:
    """A compiled user pattern whose `match` stops after `line_timeout_s` (and after `budget_s` in all)."""

    compiled: regex.Pattern
    line_timeout_s: float = LINE_TIMEOUT_S
    budget_s: float = BUDGET_S
    spent_s: float = 0.0

    @property
    def pattern(self) -> str:
        return self.compiled.pattern

    @property
    def groupindex(self) -> dict[str, int]:
        return dict(self.compiled.groupindex)

    def match(self, line: str) -> regex.Match | None:
        """`compiled.match(line)`, or `PatternTooSlow` once the line's time or the budget is spent."""
        remaining = self.budget_s - self.spent_s
        if remaining <= 0:
            raise PatternTooSlow(f"used up its budget of {self.budget_s:g} s for this run")
        limit = min(self.line_timeout_s, remaining)
        started = time.monotonic()
        try:
            return self.compiled.match(line, timeout=limit)
        except TimeoutError as exc:
            raise PatternTooSlow(
                f"took longer than {limit:g} s on one line ({len(line)} characters)"
            ) from exc
        finally:
            self.spent_s += time.monotonic() - started


def compile_timed(
    text: str, *, line_timeout_s: float | None = None, budget_s: float | None = None
) -> TimedPattern:
    """`text` compiled for time-limited matching; `InvalidPattern` if it is not a valid regex."""
    if not isinstance(text, str):
        raise InvalidPattern(f"a pattern must be text, got {type(text).__name__}")
    try:
        compiled = regex.compile(text)
    except (regex.error, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise InvalidPattern(f"not a valid regex: {exc}") from exc
    return TimedPattern(
        compiled,
        LINE_TIMEOUT_S if line_timeout_s is None else line_timeout_s,
        BUDGET_S if budget_s is None else budget_s,
    )
