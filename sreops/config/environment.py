"""What comes from the process environment: secrets, endpoints and per-host tuning.

The one place (with `sreops.paths` and the Dagster resources) that reads environment
variables. Library code receives these values as arguments; only entry points (the CLI, the
Dagster resources) call the functions here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
DEFAULT_LOCK_PATIENCE_S = 300.0


@dataclass(frozen=True)
class SlackSettings:
    """How to reach Slack and where alert links point; no token means dry-run."""

    bot_token: str | None = None
    api_url: str = DEFAULT_SLACK_API_URL
    signing_secret: str | None = None
    ui_url: str = DEFAULT_UI_URL
    ui_url_configured: bool = False

    def __post_init__(self) -> None:
        url = self.api_url or DEFAULT_SLACK_API_URL
        object.__setattr__(self, "api_url", url if url.endswith("/") else url + "/")
        object.__setattr__(self, "ui_url", (self.ui_url or DEFAULT_UI_URL).rstrip("/"))
        object.__setattr__(self, "bot_token", self.bot_token or None)
        object.__setattr__(self, "signing_secret", self.signing_secret or None)


def slack_settings(environ: Mapping[str, str] | None = None) -> SlackSettings:
    """`SLACK_BOT_TOKEN`, `SLACK_API_URL`, `SLACK_SIGNING_SECRET` and `DAGSTER_UI_URL`."""
    env = os.environ if environ is None else environ
    return SlackSettings(
        bot_token=env.get("SLACK_BOT_TOKEN"),
        api_url=env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
        signing_secret=env.get("SLACK_SIGNING_SECRET"),
        ui_url=env.get("DAGSTER_UI_URL") or DEFAULT_UI_URL,
        ui_url_configured=bool(env.get("DAGSTER_UI_URL")),
    )


def lock_patience_s() -> float:
    """How long to wait for another process's warehouse lock (`SREOPS_LOCK_PATIENCE_S`)."""
    value = os.environ.get("SREOPS_LOCK_PATIENCE_S")
    return float(value) if value else DEFAULT_LOCK_PATIENCE_S


def duckdb_memory_limit() -> str | None:
    """DuckDB's memory limit for this host (`SREOPS_DUCKDB_MEMORY`, e.g. `4GB`), if set."""
    return os.environ.get("SREOPS_DUCKDB_MEMORY") or None


def config_file_override() -> str | None:
    """`$SREOPS_CONFIG`: the config file to read, if set."""
    return os.environ.get("SREOPS_CONFIG") or None


def partitions_start_override() -> str | None:
    """`$SREOPS_PARTITIONS_START` (YYYY-MM-DD), if set."""
    return os.environ.get("SREOPS_PARTITIONS_START") or None


def keep_model_hubs_offline() -> None:
    """Tell Hugging Face libraries not to reach the network (`HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE`).

    The embedding model is bundled in a package, so nothing is ever downloaded; a value the
    user set is kept.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of the environment variable `name` that a config setting names for a secret, if set.

    The config file holds only the variable's name (e.g. `sources.prometheus.auth_secret_env`),
    so the secret itself never sits in a file or in the config objects.
    """
    env = os.environ if environ is None else environ
    return env.get(name) or None


def warehouse_setting() -> str | None:
    """`$SREOPS_WAREHOUSE`: the warehouse, a DuckDB file path or a DuckLake `ducklake:postgres:…` location."""
    return os.environ.get("SREOPS_WAREHOUSE") or None


def warehouse_data_path() -> str | None:
    """`$SREOPS_WAREHOUSE_DATA`: where a new DuckLake warehouse keeps its Parquet files (a shared path)."""
    return os.environ.get("SREOPS_WAREHOUSE_DATA") or None


def run_executor_name() -> str:
    """Which Dagster executor runs use (`SREOPS_EXECUTOR`): `in_process` (default), `multiprocess` or `celery`."""
    value = (os.environ.get("SREOPS_EXECUTOR") or "in_process").strip().lower().replace("-", "_")
    if value not in ("in_process", "multiprocess", "celery"):
        raise ValueError(
            f"SREOPS_EXECUTOR={value!r} is not an executor: use in_process, multiprocess or celery"
        )
    return value


def duckdb_threads() -> int | None:
    """DuckDB's worker threads per connection for this host (`SREOPS_DUCKDB_THREADS`), if set."""
    value = os.environ.get("SREOPS_DUCKDB_THREADS")
    return int(value) if value else None
