"""The typed configuration: one YAML file, validated once on load, with actionable errors.

The file comes from `$SREOPS_CONFIG`, else `sreops.yaml` in the working directory; without
one, the embedded defaults apply (the demo needs nothing else). Secrets and endpoints come
from the environment (`SLACK_BOT_TOKEN`, `SLACK_API_URL`, `DAGSTER_UI_URL`), never from here.
Services and metrics are discovered from the data: the file only adds what needs a human.

Whatever the file holds, `load` returns a valid `Config` or raises `ConfigError` naming the
file, the YAML path where it can and what to do: undecodable bytes, YAML syntax, duplicate
keys, nesting deeper than `MAX_YAML_DEPTH`, impossible dates, and values the code could not
use later (every number is finite and bounded so that no timedelta, timestamp or replica count
built from it can overflow). A `services.<name>.log_pattern` is compiled here with the engine
the log reader uses and refused if it backtracks catastrophically (see `check_log_pattern`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import regex
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.constructor import SafeConstructor

Severity = Literal["info", "warning", "minor", "major", "critical"]

# Bounds of the numbers below, chosen from how the code uses them: a datetime plus a timedelta
# of a year cannot leave the range of datetime, pandas or DuckDB for any date allowed here.
MINUTES_PER_YEAR = 366 * 24 * 60
HOURS_PER_YEAR = 366 * 24
DAYS_PER_YEAR = 366
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# sreops.alerting.feedback.MAX_SNOOZE_MINUTES: a button press never snoozes longer than a week.
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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _in_date_range(value: dt.datetime) -> dt.datetime:
    # Compared as written (a zone moves it by hours, not years), so no conversion can overflow.
    if not EARLIEST <= value.replace(tzinfo=None) < LATEST:
        raise ValueError(
            f"{value.isoformat()} is outside {EARLIEST:%Y-%m-%d} … {LATEST:%Y-%m-%d} (UTC);"
            f" for 'forever' write a date such as {LATEST.year - 1}-12-31"
        )
    return value


Timestamp = Annotated[dt.datetime, AfterValidator(_in_date_range)]


def _partition_day(value: dt.date) -> dt.date:
    if not EARLIEST_PARTITION <= value < LATEST.date():
        raise ValueError(
            f"{value.isoformat()} is outside {EARLIEST_PARTITION} … {LATEST:%Y-%m-%d}: hourly partitions"
            " from further back would be hundreds of thousands of keys; start at your oldest data"
        )
    return value


class PartitionsConfig(_Section):
    """Hourly partitions of the minute-level tables."""

    start: Annotated[dt.date, AfterValidator(_partition_day)] | None = Field(
        default=None,
        description="First day of hourly partitions (UTC). Default: the first day of the previous month.",
    )


class PrometheusQuery(_Section):
    """One PromQL query whose series become metric samples."""

    query: str
    metric: str = Field(description="Metric name the samples are stored under.")
    service_label: str = "service"


class PrometheusConfig(_Section):
    url: str | None = None
    step_seconds: int = Field(default=15, ge=1, le=3600)
    queries: list[PrometheusQuery] = Field(default_factory=list)


class SourcesConfig(_Section):
    landing_dir: Path | None = Field(default=None, description="Default: $SREOPS_HOME/landing.")
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)


class ServiceConfig(_Section):
    """What a human knows about a service that the data cannot say."""

    # At least 1e-6: the replicas for a load are ceil(load / capacity), which must stay finite.
    capacity_per_replica: float | None = Field(default=None, ge=1e-6, le=1e12)
    scaling_metric: str = "request_rate"
    min_replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    max_replicas: int = Field(default=100, ge=1, le=MAX_REPLICAS)
    slack_channel: str | None = None
    owners: list[str] = Field(default_factory=list)
    log_pattern: str | None = Field(default=None, description="Regex with named groups ts, level, message.")

    @field_validator("log_pattern")
    @classmethod
    def _usable_pattern(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            check_log_pattern(pattern)
        return pattern


class DetectionConfig(_Section):
    """Detector settings (scales in points of each series, so any sampling interval) and the alarm policy."""

    member: str = Field(default="novelty", description="Detector member, or a '+'-joined ensemble.")
    threshold: float = Field(default=75.0, ge=0, le=100)
    close_threshold: float = Field(
        default=50.0,
        ge=0,
        le=100,
        description="An incident resolves once scores stay below this (hysteresis).",
    )
    open_minutes: int = Field(
        default=2, ge=1, le=MINUTES_PER_DAY, description="N of the N-of-M rule that opens an incident."
    )
    window_minutes: int = Field(
        default=5, ge=1, le=MINUTES_PER_DAY, description="M of the N-of-M rule that opens an incident."
    )
    quiet_minutes: int = Field(
        default=15,
        ge=1,
        le=MINUTES_PER_WEEK,
        description="Observed minutes below close_threshold that resolve it.",
    )
    context_points: int = Field(
        default=2,
        ge=1,
        le=MAX_CONTEXT_POINTS,
        description="Points before a value that give its recent level,",
    )
    context_minutes: float = Field(
        default=10.0, ge=0, le=MINUTES_PER_DAY, description="and at least this much time of them."
    )
    training_points: int = Field(
        default=10080, ge=30, le=1_000_000, description="Points a model learns from, at most."
    )
    # At least an hour: models are fitted on a grid of this step, walked point by point.
    refit_hours: float = Field(
        default=24.0, ge=1, le=HOURS_PER_YEAR, description="Models are retrained this often."
    )
    cold_start_points: int = Field(
        default=72,
        ge=0,
        le=1_000_000,
        description="Points a series needs before a model replaces the robust baseline.",
    )
    warmup_points: int = Field(
        default=288, ge=0, le=1_000_000, description="Points before a series' evidence counts fully."
    )
    warmup_days: float = Field(
        default=1.0, ge=0, le=DAYS_PER_YEAR, description="Days before a series' evidence counts fully."
    )
    deploy_settle_minutes: int = Field(
        default=30,
        ge=0,
        le=MINUTES_PER_WEEK,
        description="Minutes after an instantaneous deploy event kept out of training.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in RENAMED_DETECTION_KEYS.items():
                if old in data:
                    raise ValueError(
                        f"detection.{old} is gone: scales now count points of each series, so one setting"
                        f" serves any sampling interval; use detection.{new} (see docs/detection.md)"
                    )
        return data

    @field_validator("member")
    @classmethod
    def _known_member(cls, member: str) -> str:
        from sreops.detection import members  # a table of names; imports no detector

        if not members.is_known(member):
            raise ValueError(
                f"{member!r} is not a detector member; use one of {', '.join(members.names())}"
                " or a '+'-joined ensemble of them"
            )
        return member

    @model_validator(mode="after")
    def _hysteresis(self) -> DetectionConfig:
        if self.close_threshold > self.threshold:
            raise ValueError(
                f"close_threshold {self.close_threshold:g} is above threshold {self.threshold:g}:"
                " an incident must close below the score that opens it"
            )
        return self


RENAMED_DETECTION_KEYS = {
    "training_days": "training_points",
    "cold_start_hours": "cold_start_points",
    "warmup_hours": "warmup_points",
}


class SlackRoute(_Section):
    """First matching route wins: service and kind match (None matches any), severity at least min."""

    channel: str
    service: str | None = None
    kind: str | None = None
    min_severity: Severity = "warning"


def _ordered(window: Any, what: str) -> None:
    start, end = (_naive_utc(v) for v in (window.starts_at, window.ends_at))
    if end <= start:
        raise ValueError(f"this {what} ends ({window.ends_at}) before it starts ({window.starts_at})")


class Silence(_Section):
    """Alerts matching this are recorded and visible but not posted."""

    service: str | None = None
    kind: str | None = None
    starts_at: Timestamp
    ends_at: Timestamp
    reason: str = ""

    @model_validator(mode="after")
    def _order(self) -> Silence:
        _ordered(self, "silence")
        return self


class EventWindow(_Section):
    """A deploy or maintenance window: kept out of training and tagged on anomalies."""

    kind: Literal["deploy", "maintenance"]
    service: str | None = None
    starts_at: Timestamp
    ends_at: Timestamp
    note: str = ""

    @model_validator(mode="after")
    def _order(self) -> EventWindow:
        # A deploy may be an instant (ends_at == starts_at); it then covers deploy_settle_minutes.
        if self.ends_at != self.starts_at:
            _ordered(self, f"{self.kind} window")
        return self


class AlertingConfig(_Section):
    default_channel: str = "#sre-alerts"
    min_severity: Severity = "warning"
    routes: list[SlackRoute] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    reopen_minutes: int = Field(
        default=60,
        ge=0,
        le=MINUTES_PER_YEAR,
        description="A re-fire this soon after resolution re-opens the same thread.",
    )
    snooze_minutes: int = Field(
        default=60,
        ge=1,
        le=MAX_SNOOZE_MINUTES,
        description="How long the Snooze button silences an alert (at most a week).",
    )
    digest_hour_utc: int = Field(default=8, ge=0, le=23)
    digest_channel: str | None = Field(default=None, description="Default: default_channel.")
    source_stale_minutes: int = Field(
        default=10,
        ge=1,
        le=MINUTES_PER_YEAR,
        description="A source silent this long (and well past its cadence) raises an alert.",
    )
    model_max_age_hours: float = Field(
        default=36.0,
        gt=0,
        le=HOURS_PER_YEAR,
        description="A model family not retrained for this long raises an alert.",
    )
    pacing_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Least time between two messages to one channel (Slack: ~1/s).",
    )


class ForecastingConfig(_Section):
    """Prophet fits and the scaling policy; defaults chosen by the backtest (docs/forecasting.md)."""

    horizon_hours: int = Field(
        default=24, ge=1, le=HOURS_PER_YEAR, description="Hours of advice after each decision."
    )
    training_days: int = Field(default=14, ge=2, le=DAYS_PER_YEAR)
    refit_hours: int = Field(
        default=24,
        ge=1,
        le=HOURS_PER_YEAR,
        description="Prophet refits this often; advice is hourly.",
    )
    interval_width: float = Field(default=0.8, gt=0, lt=1, description="Prophet's yhat_lower/upper band.")
    band_quantile: float = Field(
        default=0.55, gt=0, lt=1, description="Quantile of the next hour's peak that replicas must cover."
    )
    headroom: float = Field(
        default=0.15, ge=0, le=10, description="Capacity above the upper band (0.15 = 15 %)."
    )
    correction_halflife_hours: float = Field(default=6.0, ge=0.01, le=HOURS_PER_YEAR)
    calibration_hours: int = Field(default=168, ge=24, le=HOURS_PER_YEAR)
    floor_minutes: int = Field(
        default=15, ge=1, le=MINUTES_PER_DAY, description="Never below what this recent load needs."
    )
    scale_in_tolerance: int = Field(
        default=1, ge=0, le=MAX_REPLICAS, description="Ignore scale-ins of at most this many."
    )
    distrust_hours: int = Field(
        default=6,
        ge=0,
        le=HOURS_PER_YEAR,
        description="After a forecast shortfall, this long never below the reactive rule.",
    )
    workers: int | None = Field(
        default=None, ge=1, le=256, description="Parallel fit processes. Default: all CPUs."
    )


class LogsConfig(_Section):
    """Log ingestion and clustering (one configuration for every service; see docs/logs.md)."""

    similarity_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Cosine the embedding gate needs (see embedding_gate). Default: 0.8.",
    )
    min_distinct_values: int = Field(
        default=4,
        ge=2,
        le=1000,
        description="Distinct words one position must show before it counts as a variable.",
    )
    use_embeddings: bool = Field(
        default=True, description="Embed new patterns (all-MiniLM-L6-v2) to name their nearest known pattern."
    )
    embedding_gate: bool = Field(
        default=False, description="Also require close embeddings before a variable-length merge (slower)."
    )
    new_pattern_alerts: bool = True
    new_pattern_min_level: Literal["warning", "error", "critical"] = "warning"
    max_new_pattern_alerts: int = Field(
        default=20, ge=0, le=1000, description="Per service and clustering run."
    )
    new_pattern_warmup_minutes: int = Field(
        default=60,
        ge=0,
        le=MINUTES_PER_YEAR,
        description="Patterns first seen this soon after a service's first line are its baseline.",
    )
    flush_idle_seconds: float = Field(
        default=2.0,
        ge=0,
        le=86_400,
        description="A file idle this long has its last record (maybe multi-line) read.",
    )
    max_bytes_per_file: int = Field(
        default=64 << 20, ge=1 << 16, le=1 << 30, description="Read per file and run."
    )


class Config(_Section):
    """The whole file. Every section is optional."""

    partitions: PartitionsConfig = Field(default_factory=PartitionsConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    forecasting: ForecastingConfig = Field(default_factory=ForecastingConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    events: list[EventWindow] = Field(default_factory=list)

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, ServiceConfig]) -> dict[str, ServiceConfig]:
        from sreops import names

        for name, svc in services.items():
            try:
                names.check_name(name, "service name")
            except names.UnsafeName as exc:
                raise ValueError(f"{exc}; no data could ever carry it") from exc
            if svc.min_replicas > svc.max_replicas:
                raise ValueError(f"service {name}: min_replicas > max_replicas")
        return services

    def service(self, name: str) -> ServiceConfig:
        """The configured settings of a service, or defaults for one only seen in the data."""
        return self.services.get(name, ServiceConfig())


# -- log patterns ----------------------------------------------------------------------------
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


# -- loading ---------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: nesting at most MAX_YAML_DEPTH deep, impossible dates as text."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 (PyYAML's node types)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_timestamp(self, node: Any) -> Any:  # noqa: ANN401
        # 2026-13-45 looks like a timestamp but is none: as text, validation names its field.
        try:
            return SafeConstructor.construct_yaml_timestamp(self, node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


class _DuplicateKey(Exception):
    """A mapping key that appears twice; the message names its YAML path and both lines."""


def _refuse_duplicate_keys(root: Any) -> None:
    """Raise `_DuplicateKey` for the first mapping key that appears twice (PyYAML keeps the last)."""
    stack: list[tuple[Any, str]] = [(root, "")]
    seen: set[int] = set()
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                label = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                path = f"{where}.{label}" if where else label
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    ident = (key.tag, key.value)
                    if ident in first_line:
                        raise _DuplicateKey(
                            f"{path}: the key {key.value!r} appears twice (lines {first_line[ident]} and"
                            f" {key.start_mark.line + 1}); keep one"
                        )
                    first_line[ident] = key.start_mark.line + 1
                stack.append((value, path))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, f"{where}.{i}" if where else str(i)))


def _parse(target: Path, text: str) -> Any:  # noqa: ANN401 (whatever the YAML holds)
    loader = _StrictLoader(text)
    loader.name = str(target)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, str | int | float) and repr(value) not in message:
        shown = repr(value)
        message += f" (got {shown[:60]}{'…' if len(shown) > 60 else ''})"
    return f"{where}: {message}"


def config_path() -> Path:
    """`$SREOPS_CONFIG`, else `./sreops.yaml`."""
    return Path(os.environ.get("SREOPS_CONFIG") or "sreops.yaml")


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file; the embedded defaults when there is none."""
    explicit = path is not None or bool(os.environ.get("SREOPS_CONFIG"))
    target = Path(path) if path is not None else config_path()
    if not target.exists():
        if explicit:
            raise ConfigError(f"config file {target} does not exist (set SREOPS_CONFIG or create it)")
        return Config()
    try:
        if target.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {target} has {target.stat().st_size:,} bytes; a config file has at most"
                f" {MAX_CONFIG_BYTES:,}: is SREOPS_CONFIG pointing at the right file?"
            )
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {target} cannot be read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"config file {target} is not UTF-8 text: byte {data[exc.start]:#04x} at line {line},"
            f" column {column}; save it as UTF-8"
        ) from None
    try:
        raw = _parse(target, text)
    except _DuplicateKey as exc:
        raise ConfigError(f"config file {target} is invalid: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {target} is not valid YAML: {exc}") from None
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
        # PyYAML's explicit tags (!!int abc, !!bool maybe) fail with plain Python errors.
        raise ConfigError(
            f"config file {target} is not valid YAML: a tagged value cannot be read"
            f" ({type(exc).__name__}: {exc}); remove the !! tag or fix the value"
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {target}: the top level must be a mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_problem(err) for err in errors[:MAX_PROBLEMS_SHOWN])
        if len(errors) > MAX_PROBLEMS_SHOWN:
            problems += f"; and {len(errors) - MAX_PROBLEMS_SHOWN} more"
        raise ConfigError(f"config file {target} is invalid: {problems}") from None


@lru_cache(maxsize=1)
def current() -> Config:
    """The config of this process, loaded once."""
    return load()


def partitions_start(cfg: Config, today: dt.date | None = None) -> dt.date:
    """First partition day: `$SREOPS_PARTITIONS_START`, the config, else the previous month's first day."""
    override = os.environ.get("SREOPS_PARTITIONS_START")
    if override:
        try:
            return _partition_day(dt.date.fromisoformat(override))
        except ValueError as exc:
            raise ConfigError(
                f"SREOPS_PARTITIONS_START={override!r} is not a usable date (YYYY-MM-DD): {exc}"
            ) from exc
    if cfg.partitions.start is not None:
        return cfg.partitions.start
    today = today or dt.datetime.now(dt.UTC).date()
    first_this_month = today.replace(day=1)
    return (first_this_month - dt.timedelta(days=1)).replace(day=1)
