"""`sreops doctor`: is the config valid, is the warehouse whole and usable, can the Slack app post where alerts go?

The config is loaded here with every validation the platform applies (log patterns included);
the other checks are `sreops.doctor`'s.
"""

from __future__ import annotations

import argparse

from sreops import config, paths
from sreops.doctor import FAIL, OK, Check, check_links, check_slack, check_warehouse


def check_config() -> tuple[list[Check], config.Config | None]:
    """The config file parses and validates."""
    try:
        cfg = config.load()
    except config.ConfigError as exc:
        return [Check(FAIL, "config", str(exc))], None
    source = config.config_path()
    where = str(source) if source.exists() else "no config file; built-in defaults"
    routes = len(cfg.alerting.routes)
    return [Check(OK, "config", f"{where} ({len(cfg.services)} services, {routes} alert routes)")], cfg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sreops doctor`."""
    parser.add_argument(
        "--warehouse", default=None, help=f"warehouse file (default {paths.warehouse_path()})"
    )


def run(args: argparse.Namespace) -> int:
    """Print one line per check; exit 1 if any failed."""
    slack = config.slack_settings()
    checks, cfg = check_config()
    checks += check_warehouse(args.warehouse)
    if cfg is not None:
        checks += check_slack(cfg, slack)
    checks += check_links(slack)
    width = max(len(c.name) for c in checks)
    for check in checks:
        print(f"{check.status:<4}  {check.name:<{width}}  {check.detail}")
    return 1 if any(c.status == FAIL for c in checks) else 0
