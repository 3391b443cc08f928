"""Header patterns (`services.<name>.log_pattern`) checked at load for catastrophic backtracking."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import regex

# A log pattern runs against every line of its service, so one that backtracks catastrophically
# stalls ingestion (the reader gives each line a time limit, but a pattern that needs it is of no
# use). The check: compile with `regex` (the engine the reader uses), then match probe lines
# built from the pattern's own parse tree: each quantifier pumped in turn (the others once), the
# first and then the second branch of every alternation, and one character behind the pumped
# part that is likely to fail (the prefix + pump + suffix of a ReDoS attack string), plus runs of
# each character of the pattern. Two sizes, each with a wide margin on both sides of the limit:
# - short probes (the pump PATTERN_SHORT_PUMP times) expose exponential backtracking ((a|aa)+$
#   needs 2^32 steps), which no time limit can wait out;
# - long probes of PATTERN_LONG_PROBE characters (a long but real line: a JSON blob, a stack
#   trace) expose polynomial blow-ups: (a+)+$, (.*)*x$, \d*\d*\d*$ and .*.*=.* take from 1 s
#   to minutes of CPU on them in `regex`, linear patterns well under 10 ms and the mildest
#   quadratic one seen ((\w+ )*\w+$) about 25 ms. The limit sits in that gap.
# Time is the thread's CPU time (a busy machine stretches the wall clock, not the steps); the
# wall clock only bounds the wait. The reader keeps its own per-line limit for what gets through.
# What the parser behind `re` cannot read (syntax only `regex` has) is probed with the runs alone.
MAX_PATTERN_CHARS = 2000
PATTERN_SHORT_PUMP = 32
PATTERN_LONG_PROBE = 32_000
PATTERN_PROBE_CPU_S = 0.25  # as sreops.logs.patterns.LINE_TIMEOUT_S
PATTERN_PROBE_WALL_S = 2.5
PATTERN_CHECK_BUDGET_S = 3.0
_PROBE_CHARS = "a0 A_-!.:/\t~\x00é"
_SHORT_SUFFIXES = ("", "!", " ", "\x00", "a", "0", "_", "-", ":", "\t", "é", "\n")
_LONG_SUFFIXES = ("", "!", " ", "\x00")
_MAX_PUMPED_REPEATS = 12
_MAX_RUN_CHARS = 16


def check_log_pattern(pattern: str) -> regex.Pattern:
    """`pattern` compiled, or ValueError saying why it cannot be a log pattern.

    Refused: more than MAX_PATTERN_CHARS characters, not a valid regex, no `message` group, or a
    probe line that takes more than PATTERN_PROBE_CPU_S of CPU (catastrophic backtracking).
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"has {len(pattern)} characters; at most {MAX_PATTERN_CHARS} are allowed")
    try:
        compiled = regex.compile(pattern)
    except (regex.error, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{pattern!r} is not a valid regex: {exc}") from None
    if "message" not in compiled.groupindex:
        raise ValueError(
            f"{pattern!r} needs a named group (?P<message>…) (and may have ts and level); it has"
            f" {', '.join(sorted(compiled.groupindex)) or 'none'}"
        )
    spent = 0.0
    for probe in _pattern_probes(pattern):
        used, slow = _probe_time(compiled, probe)
        spent += used
        if slow:
            growth = (
                "exponentially with the line length"
                if len(probe) < PATTERN_LONG_PROBE
                else "with the square (or worse) of the line length"
            )
            raise ValueError(
                f"{pattern!r} backtracks catastrophically: its matching time grows {growth}; a probe"
                f" line of {len(probe)} characters ({_shown_probe(probe)}) took more than"
                f" {PATTERN_PROBE_CPU_S:g} s. Remove nested or overlapping quantifiers"
                " ((a+)+, (a|aa)+, (\\w+\\s?)+, .*.*): let each part match what its neighbours"
                " cannot, and end with (?P<message>.*) for the rest of the line"
            )
        if spent > PATTERN_CHECK_BUDGET_S:
            raise ValueError(
                f"{pattern!r} is too slow: its probe lines took more than {PATTERN_CHECK_BUDGET_S:g} s"
                " in all; simplify it"
            )
    return compiled


def _probe_time(compiled: regex.Pattern, probe: str) -> tuple[float, bool]:
    """CPU seconds one match of `probe` used, and whether it went past PATTERN_PROBE_CPU_S."""
    started = time.thread_time()
    try:
        compiled.match(probe, timeout=PATTERN_PROBE_CPU_S)
        return time.thread_time() - started, False
    except TimeoutError:
        used = time.thread_time() - started
    if used >= 0.8 * PATTERN_PROBE_CPU_S:
        return used, True
    # A busy machine gave this thread little of the wall clock: wait longer, judge by CPU time.
    started = time.thread_time()
    try:
        compiled.match(probe, timeout=PATTERN_PROBE_WALL_S)
    except TimeoutError:
        return time.thread_time() - started, True
    used = time.thread_time() - started
    return used, used > PATTERN_PROBE_CPU_S


def _shown_probe(probe: str) -> str:
    return ascii(probe) if len(probe) <= 40 else f"{ascii(probe[:12])} … {ascii(probe[-6:])}"


def _pattern_probes(pattern: str) -> Iterator[str]:
    """Probe lines for `pattern`, short ones first: parse-tree bodies, then runs of its characters."""
    try:
        short, long = _tree_bodies(pattern)
    except Exception:  # noqa: BLE001 (syntax only `regex` reads, or a tree too deep: runs alone)
        short, long = [], []
    chars = list(dict.fromkeys(c for c in pattern + "a0 " if c.isprintable()))[:_MAX_RUN_CHARS]
    short += [c * PATTERN_SHORT_PUMP for c in chars]
    long += [c * PATTERN_LONG_PROBE for c in chars]
    seen: set[str] = set()
    for bodies, suffixes in ((short, _SHORT_SUFFIXES), (long, _LONG_SUFFIXES)):
        for body in dict.fromkeys(bodies):
            for suffix in suffixes:
                probe = body + suffix
                if probe not in seen:
                    seen.add(probe)
                    yield probe


def _tree_bodies(pattern: str) -> tuple[list[str], list[str]]:
    import re._constants as sre  # the parser behind `re`: a tree of (opcode, argument) pairs
    import re._parser as sre_parse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = sre_parse.parse(pattern)
    repeats: list[int] = []
    _collect_repeats(tree, sre, repeats)
    sizes = ((PATTERN_SHORT_PUMP, 16 * PATTERN_SHORT_PUMP), (PATTERN_LONG_PROBE, PATTERN_LONG_PROBE))
    out: tuple[list[str], list[str]] = ([], [])
    for bodies, (pump, cap) in zip(out, sizes, strict=True):
        for branch in (0, 1):
            for target in (None, *repeats[:_MAX_PUMPED_REPEATS]):
                bodies.append(_ProbeWriter(sre, pump, cap, target, branch).write(tree))
    return out


def _repeat_ops(sre: Any) -> tuple:
    return tuple(
        getattr(sre, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(sre, name)
    )


def _collect_repeats(seq: Any, sre: Any, out: list[int]) -> None:
    for op, av in seq:
        if op in _repeat_ops(sre):
            if av[1] is sre.MAXREPEAT or av[1] > 1:
                out.append(id(av))
            _collect_repeats(av[2], sre, out)
        elif op is sre.SUBPATTERN:
            _collect_repeats(av[3], sre, out)
        elif op is sre.BRANCH:
            for alternative in av[1]:
                _collect_repeats(alternative, sre, out)
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            _collect_repeats(av, sre, out)
        elif op is sre.GROUPREF_EXISTS:
            _collect_repeats(av[1], sre, out)
            if av[2] is not None:
                _collect_repeats(av[2], sre, out)


class _ProbeWriter:
    """One probe body: text the pattern matches, with `target` (or every repeat) pumped `pump` times.

    Writing stops after the target, so the suffix lands right behind the pumped part, where a
    backtracking engine has the most ways to retry.
    """

    def __init__(self, sre: Any, pump: int, cap: int, target: int | None, branch: int) -> None:
        self.sre, self.pump, self.cap, self.target, self.branch = sre, pump, cap, target, branch
        self.repeat_ops = _repeat_ops(sre)
        self.parts: list[str] = []
        self.length = 0
        self.groups: dict[int, str] = {}
        self.done = False

    def write(self, tree: Any) -> str:
        self._seq(tree)
        return "".join(self.parts)[: self.cap]

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        if self.length >= self.cap:
            self.done = True

    def _seq(self, seq: Any) -> None:
        for op, av in seq:
            if self.done:
                return
            self._node(op, av)

    def _node(self, op: Any, av: Any) -> None:
        sre = self.sre
        if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
            self._emit(_probe_char(sre, op, av))
        elif op in self.repeat_ops:
            low, high, body = av
            pumped = self.target is None or id(av) == self.target
            count = self.pump if pumped else 1
            count = max(low, count if high is sre.MAXREPEAT else min(count, high))
            if count > 0:
                start = len(self.parts)
                self._seq(body)  # every further iteration writes the same text
                once = "".join(self.parts[start:])
                if once and not self.done:
                    times = min(count - 1, (self.cap - self.length) // len(once) + 1)
                    self._emit(once * times)
            if id(av) == self.target:
                self.done = True
        elif op is sre.SUBPATTERN:
            start = len(self.parts)
            self._seq(av[3])
            if av[0] is not None:
                self.groups[av[0]] = "".join(self.parts[start:])
        elif op is sre.BRANCH:
            alternatives = av[1]
            self._seq(alternatives[self.branch % len(alternatives)])
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            self._seq(av)
        elif op is sre.GROUPREF:
            self._emit(self.groups.get(av, ""))
        elif op is sre.GROUPREF_EXISTS:
            self._seq(av[1])
        # anchors (AT) and lookarounds (ASSERT, ASSERT_NOT) consume nothing


def _probe_char(sre: Any, op: Any, av: Any) -> str:
    """A character this one-character node matches."""
    if op is sre.LITERAL:
        return chr(av)
    for char in _PROBE_CHARS:
        if (
            (op is sre.NOT_LITERAL and ord(char) != av)
            or (op is sre.ANY and char != "\n")
            or (op is sre.IN and _in_set(sre, av, char))
        ):
            return char
    if op is sre.IN:
        for item, value in av:
            if item is sre.LITERAL:
                return chr(value)
            if item is sre.RANGE:
                return chr(value[0])
    return "a"


def _in_set(sre: Any, items: Any, char: str) -> bool:
    negate, hit = False, False
    code = ord(char)
    for item, value in items:
        if item is sre.NEGATE:
            negate = True
        elif item is sre.LITERAL:
            hit |= code == value
        elif item is sre.RANGE:
            hit |= value[0] <= code <= value[1]
        elif item is sre.CATEGORY:
            hit |= _in_category(sre, value, char)
    return hit != negate


def _in_category(sre: Any, category: Any, char: str) -> bool:
    word = char.isalnum() or char == "_"
    return {
        sre.CATEGORY_DIGIT: char.isdigit(),
        sre.CATEGORY_NOT_DIGIT: not char.isdigit(),
        sre.CATEGORY_SPACE: char.isspace(),
        sre.CATEGORY_NOT_SPACE: not char.isspace(),
        sre.CATEGORY_WORD: word,
        sre.CATEGORY_NOT_WORD: not word,
    }.get(category, False)
