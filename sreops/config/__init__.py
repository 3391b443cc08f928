"""The typed configuration: one YAML file, validated once on load, with actionable errors.

The file comes from `$SREOPS_CONFIG`, else `sreops.yaml` in the working directory; without
one, the embedded defaults apply (the demo needs nothing else). Secrets and endpoints come
from the environment (`SLACK_BOT_TOKEN`, `SLACK_API_URL`, `SLACK_SIGNING_SECRET`,
`DAGSTER_UI_URL`) through `environment`, never from the file.
Services and metrics are discovered from the data: the file only adds what needs a human.

Whatever the file holds, `load` returns a valid `Config` or raises `ConfigError` naming the
file, the YAML path where it can and what to do: undecodable bytes, YAML syntax, duplicate
keys, nesting deeper than `MAX_YAML_DEPTH`, impossible dates, and values the code could not
use later (every number is finite and bounded so that no timedelta, timestamp or replica count
built from it can overflow). A `services.<name>.log_pattern` is compiled here with the engine
the log reader uses and refused if it backtracks catastrophically (see `check_log_pattern`).

Modules: `bounds` (limits, `ConfigError`), `sections` (the models), `patterns` (the
backtracking check), `loading` (strict YAML, `load`, `current`), `environment` (secrets,
endpoints, host tuning).
"""

from sreops.config.bounds import (
    DAYS_PER_YEAR,
    EARLIEST,
    EARLIEST_PARTITION,
    HOURS_PER_YEAR,
    LATEST,
    MAX_CONFIG_BYTES,
    MAX_CONTEXT_POINTS,
    MAX_PROBLEMS_SHOWN,
    MAX_REPLICAS,
    MAX_SNOOZE_MINUTES,
    MAX_YAML_DEPTH,
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    MINUTES_PER_YEAR,
    ConfigError,
)
from sreops.config.environment import SlackSettings, slack_settings
from sreops.config.loading import config_path, current, load, partitions_start
from sreops.config.patterns import (
    MAX_PATTERN_CHARS,
    PATTERN_CHECK_BUDGET_S,
    PATTERN_LONG_PROBE,
    PATTERN_PROBE_CPU_S,
    PATTERN_PROBE_WALL_S,
    PATTERN_SHORT_PUMP,
    check_log_pattern,
)
from sreops.config.sections import (
    RENAMED_DETECTION_KEYS,
    AlertingConfig,
    Config,
    DetectionConfig,
    EventWindow,
    ForecastingConfig,
    LogsConfig,
    PartitionsConfig,
    PrometheusConfig,
    PrometheusQuery,
    ServiceConfig,
    Silence,
    SlackRoute,
    SourcesConfig,
)

__all__ = [
    "DAYS_PER_YEAR",
    "EARLIEST",
    "EARLIEST_PARTITION",
    "HOURS_PER_YEAR",
    "LATEST",
    "MAX_CONFIG_BYTES",
    "MAX_CONTEXT_POINTS",
    "MAX_PATTERN_CHARS",
    "MAX_PROBLEMS_SHOWN",
    "MAX_REPLICAS",
    "MAX_SNOOZE_MINUTES",
    "MAX_YAML_DEPTH",
    "MINUTES_PER_DAY",
    "MINUTES_PER_WEEK",
    "MINUTES_PER_YEAR",
    "PATTERN_CHECK_BUDGET_S",
    "PATTERN_LONG_PROBE",
    "PATTERN_PROBE_CPU_S",
    "PATTERN_PROBE_WALL_S",
    "PATTERN_SHORT_PUMP",
    "RENAMED_DETECTION_KEYS",
    "AlertingConfig",
    "Config",
    "ConfigError",
    "DetectionConfig",
    "EventWindow",
    "ForecastingConfig",
    "LogsConfig",
    "PartitionsConfig",
    "PrometheusConfig",
    "PrometheusQuery",
    "ServiceConfig",
    "SlackRoute",
    "SlackSettings",
    "Silence",
    "SourcesConfig",
    "check_log_pattern",
    "config_path",
    "current",
    "load",
    "partitions_start",
    "slack_settings",
]
