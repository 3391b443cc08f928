"""Resources: what every asset and sensor is given instead of reading the process environment.

- `WarehouseResource`: where the DuckDB warehouse lives.
- `ConfigResource`: the sreops config file, loaded and validated (cached until the file changes).
- `SlackResource`: the bot token, API URL, signing secret and UI URL; secrets come in through
  `dg.EnvVar`, so the Dagster UI shows which variable holds them, never their values.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg

from sreops import config, paths
from sreops.config.environment import DEFAULT_SLACK_API_URL, DEFAULT_UI_URL, SlackSettings


class WarehouseResource(dg.ConfigurableResource):
    """Where the warehouse lives: a DuckDB file or a `ducklake:` location; empty means `$SREOPS_WAREHOUSE`
    (unset: `$SREOPS_HOME/warehouse.duckdb`)."""

    location: str = ""

    @property
    def path(self) -> str:
        """The warehouse location: the configured one, else the environment's (docs/warehouse.md)."""
        return self.location or paths.warehouse_location()


@functools.lru_cache(maxsize=8)
def _load(path: str, stamp: tuple[int, int] | None) -> config.Config:
    return config.load(path or None)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


class ConfigResource(dg.ConfigurableResource):
    """The sreops config file; empty `path` means `$SREOPS_CONFIG`, else `./sreops.yaml`, else the defaults."""

    path: str = ""

    def load(self) -> config.Config:
        """The validated config (read again only when the file changed); `ConfigError` says what is wrong."""
        target = Path(self.path) if self.path else config.config_path()
        return _load(self.path, _stamp(target))


def definition_config() -> config.Config:
    """The config that shapes the definitions themselves (partition start, digest hour).

    Read once, when the code location loads: these settings are structure, not run-time values,
    so changing them takes a reload of the code location (as in the Dagster UI's "Reload").
    """
    return ConfigResource().load()


class SlackResource(dg.ConfigurableResource):
    """How to reach Slack; no bot token means dry-run (alerts are recorded, not posted)."""

    bot_token: str = ""
    api_url: str = DEFAULT_SLACK_API_URL
    signing_secret: str = ""
    ui_url: str = DEFAULT_UI_URL

    @classmethod
    def from_environment(cls) -> SlackResource:
        """Each field from its variable (`SLACK_BOT_TOKEN`, `SLACK_API_URL`, `SLACK_SIGNING_SECRET`,
        `DAGSTER_UI_URL`) through `dg.EnvVar` when it is set, else the default."""
        fields = {
            "bot_token": "SLACK_BOT_TOKEN",
            "api_url": "SLACK_API_URL",
            "signing_secret": "SLACK_SIGNING_SECRET",
            "ui_url": "DAGSTER_UI_URL",
        }
        return cls(**{field: dg.EnvVar(name) for field, name in fields.items() if os.environ.get(name)})

    @property
    def settings(self) -> SlackSettings:
        """The settings the alerting library takes."""
        return SlackSettings(
            bot_token=self.bot_token or None,
            api_url=self.api_url,
            signing_secret=self.signing_secret or None,
            ui_url=self.ui_url,
            ui_url_configured=self.ui_url != DEFAULT_UI_URL,
        )
