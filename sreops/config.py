"""The typed configuration: one YAML file, validated once on load, with actionable errors.

The file comes from `$SREOPS_CONFIG`, else `sreops.yaml` in the working directory; without
one, the embedded defaults apply (the demo needs nothing else). Secrets and endpoints come
from the environment (`SLACK_BOT_TOKEN`, `SLACK_API_URL`, `DAGSTER_UI_URL`), never from here.
Services and metrics are discovered from the data: the file only adds what needs a human.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Severity = Literal["info", "warning", "minor", "major", "critical"]


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartitionsConfig(_Section):
    """Hourly partitions of the minute-level tables."""

    start: dt.date | None = Field(
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
    step_seconds: int = Field(default=15, ge=1)
    queries: list[PrometheusQuery] = Field(default_factory=list)


class SourcesConfig(_Section):
    landing_dir: Path | None = Field(default=None, description="Default: $SREOPS_HOME/landing.")
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)


class ServiceConfig(_Section):
    """What a human knows about a service that the data cannot say."""

    capacity_per_replica: float | None = Field(default=None, gt=0)
    scaling_metric: str = "request_rate"
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=100, ge=1)
    slack_channel: str | None = None
    owners: list[str] = Field(default_factory=list)
    log_pattern: str | None = Field(default=None, description="Regex with named groups ts, level, message.")


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
    open_minutes: int = Field(default=2, ge=1, description="N of the N-of-M rule that opens an incident.")
    window_minutes: int = Field(default=5, ge=1, description="M of the N-of-M rule that opens an incident.")
    quiet_minutes: int = Field(
        default=15, ge=1, description="Observed minutes below close_threshold that resolve it."
    )
    context_points: int = Field(
        default=2, ge=1, description="Points before a value that give its recent level,"
    )
    context_minutes: float = Field(default=10.0, ge=0, description="and at least this much time of them.")
    training_points: int = Field(default=10080, ge=30, description="Points a model learns from, at most.")
    refit_hours: float = Field(default=24.0, gt=0, description="Models are retrained this often.")
    cold_start_points: int = Field(
        default=72, ge=0, description="Points a series needs before a model replaces the robust baseline."
    )
    warmup_points: int = Field(
        default=288, ge=0, description="Points before a series' evidence counts fully."
    )
    warmup_days: float = Field(default=1.0, ge=0, description="Days before a series' evidence counts fully.")
    deploy_settle_minutes: int = Field(
        default=30, ge=0, description="Minutes after an instantaneous deploy event kept out of training."
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


class Silence(_Section):
    """Alerts matching this are recorded and visible but not posted."""

    service: str | None = None
    kind: str | None = None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str = ""


class EventWindow(_Section):
    """A deploy or maintenance window: kept out of training and tagged on anomalies."""

    kind: Literal["deploy", "maintenance"]
    service: str | None = None
    starts_at: dt.datetime
    ends_at: dt.datetime
    note: str = ""


class AlertingConfig(_Section):
    default_channel: str = "#sre-alerts"
    min_severity: Severity = "warning"
    routes: list[SlackRoute] = Field(default_factory=list)
    silences: list[Silence] = Field(default_factory=list)
    reopen_minutes: int = Field(
        default=60, ge=0, description="A re-fire this soon after resolution re-opens the same thread."
    )
    snooze_minutes: int = Field(default=60, ge=1, description="How long the Snooze button silences an alert.")
    digest_hour_utc: int = Field(default=8, ge=0, le=23)
    digest_channel: str | None = Field(default=None, description="Default: default_channel.")
    source_stale_minutes: int = Field(
        default=10, ge=1, description="A source silent this long (and well past its cadence) raises an alert."
    )
    model_max_age_hours: float = Field(
        default=36.0, gt=0, description="A model family not retrained for this long raises an alert."
    )
    pacing_seconds: float = Field(
        default=1.0, ge=0, description="Least time between two messages to one channel (Slack: ~1/s)."
    )


class ForecastingConfig(_Section):
    """Prophet fits and the scaling policy; defaults chosen by the backtest (docs/forecasting.md)."""

    horizon_hours: int = Field(default=24, ge=1, description="Hours of advice after each decision.")
    training_days: int = Field(default=14, ge=2)
    refit_hours: int = Field(default=24, ge=1, description="Prophet refits this often; advice is hourly.")
    interval_width: float = Field(default=0.8, gt=0, lt=1, description="Prophet's yhat_lower/upper band.")
    band_quantile: float = Field(
        default=0.55, gt=0, lt=1, description="Quantile of the next hour's peak that replicas must cover."
    )
    headroom: float = Field(default=0.15, ge=0, description="Capacity above the upper band (0.15 = 15 %).")
    correction_halflife_hours: float = Field(default=6.0, gt=0)
    calibration_hours: int = Field(default=168, ge=24)
    floor_minutes: int = Field(default=15, ge=1, description="Never below what this recent load needs.")
    scale_in_tolerance: int = Field(default=1, ge=0, description="Ignore scale-ins of at most this many.")
    distrust_hours: int = Field(
        default=6, ge=0, description="After a forecast shortfall, this long never below the reactive rule."
    )
    workers: int | None = Field(default=None, ge=1, description="Parallel fit processes. Default: all CPUs.")


class LogsConfig(_Section):
    """Log ingestion and clustering (one configuration for every service; see docs/logs.md)."""

    similarity_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Cosine the embedding gate needs (see embedding_gate). Default: 0.8.",
    )
    min_distinct_values: int = Field(
        default=4, ge=2, description="Distinct words one position must show before it counts as a variable."
    )
    use_embeddings: bool = Field(
        default=True, description="Embed new patterns (all-MiniLM-L6-v2) to name their nearest known pattern."
    )
    embedding_gate: bool = Field(
        default=False, description="Also require close embeddings before a variable-length merge (slower)."
    )
    new_pattern_alerts: bool = True
    new_pattern_min_level: Literal["warning", "error", "critical"] = "warning"
    max_new_pattern_alerts: int = Field(default=20, ge=0, description="Per service and clustering run.")
    new_pattern_warmup_minutes: int = Field(
        default=60,
        ge=0,
        description="Patterns first seen this soon after a service's first line are its baseline.",
    )
    flush_idle_seconds: float = Field(
        default=2.0, ge=0, description="A file idle this long has its last record (maybe multi-line) read."
    )
    max_bytes_per_file: int = Field(default=64 << 20, ge=1 << 16, description="Read per file and run.")


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
        for name, svc in services.items():
            if svc.min_replicas > svc.max_replicas:
                raise ValueError(f"service {name}: min_replicas > max_replicas")
        return services

    def service(self, name: str) -> ServiceConfig:
        """The configured settings of a service, or defaults for one only seen in the data."""
        return self.services.get(name, ServiceConfig())


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
        raw = yaml.safe_load(target.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {target} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {target}: the top level must be a mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"config file {target} is invalid: {problems}") from exc


@lru_cache(maxsize=1)
def current() -> Config:
    """The config of this process, loaded once."""
    return load()


def partitions_start(cfg: Config, today: dt.date | None = None) -> dt.date:
    """First partition day: `$SREOPS_PARTITIONS_START`, the config, else the previous month's first day."""
    override = os.environ.get("SREOPS_PARTITIONS_START")
    if override:
        try:
            return dt.date.fromisoformat(override)
        except ValueError as exc:
            raise ConfigError(f"SREOPS_PARTITIONS_START={override!r} is not a date (YYYY-MM-DD)") from exc
    if cfg.partitions.start is not None:
        return cfg.partitions.start
    today = today or dt.datetime.now(dt.UTC).date()
    first_this_month = today.replace(day=1)
    return (first_this_month - dt.timedelta(days=1)).replace(day=1)
