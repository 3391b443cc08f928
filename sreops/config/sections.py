"""The sections of the config file, each a validated pydantic model; `Config` holds them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from sreops.config.bounds import (
    DAYS_PER_YEAR,
    HOURS_PER_YEAR,
    MAX_CONTEXT_POINTS,
    MAX_REPLICAS,
    MAX_SNOOZE_MINUTES,
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    MINUTES_PER_YEAR,
    Section,
    Timestamp,
    partition_day,
)
from sreops.config.patterns import check_log_pattern
from sreops.config.prometheus import PrometheusConfig
from sreops.config.prometheus import PrometheusQuery as PrometheusQuery
from sreops.severity import Severity
from sreops.timeutil import naive_utc


class PartitionsConfig(Section):
    """Hourly partitions of the minute-level tables."""

    start: Annotated[dt.date, AfterValidator(partition_day)] | None = Field(
        default=None,
        description="First day of hourly partitions (UTC). Default: the first day of the previous month.",
    )


class SourcesConfig(Section):
    landing_dir: Path | None = Field(default=None, description="Default: $SREOPS_HOME/landing.")
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)


class ServiceConfig(Section):
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


class DetectionConfig(Section):
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


class SlackRoute(Section):
    """First matching route wins: service and kind match (None matches any), severity at least min."""

    channel: str
    service: str | None = None
    kind: str | None = None
    min_severity: Severity = "warning"


def _ordered(window: Any, what: str) -> None:
    start, end = (naive_utc(v) for v in (window.starts_at, window.ends_at))
    if end <= start:
        raise ValueError(f"this {what} ends ({window.ends_at}) before it starts ({window.starts_at})")


class Silence(Section):
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


class EventWindow(Section):
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


class AlertingConfig(Section):
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


class ForecastingConfig(Section):
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
    reactive_cap: bool = Field(
        default=True,
        description="When the forecast expects no peak above the last hour's, never above the reactive rule.",
    )
    reactive_budget: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="Opt-in: the next hour spends this share (e.g. 0.97) of the reactive rule's last-week"
        " replica-hours, placed by the forecast, instead of band + headroom, trust rule and cap.",
    )
    budget_quantile: float = Field(
        default=0.75, gt=0, lt=1, description="Quantile of the hour's peak the budgeted rule regresses."
    )
    workers: int | None = Field(
        default=None, ge=1, le=256, description="Parallel fit processes. Default: all CPUs."
    )


class LogsConfig(Section):
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


class Config(Section):
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
