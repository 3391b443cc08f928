"""The checks of `sreops doctor`: is the warehouse whole and usable, can the Slack app post where alerts go?

Every check reports what it found; none reports ok for something it did not look at: the
warehouse is opened, checked for truncation, schema version and a read of every table before
anything migrates it. (The config check, which loads the config, is the command's own:
`sreops.cli.doctor`.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from sreops import config, warehouse
from sreops.alerting.slack import SlackFailure, SlackPoster, make_client
from sreops.integrity import WarehouseUnusableError
from sreops.migrations.runner import MigrationError
from sreops.timeutil import utc_now

OK, WARN, FAIL = "ok", "warn", "FAIL"
REQUIRED_SCOPES = {"chat:write", "files:write", "channels:read"}
# History scopes let delivery check whether a post whose response was lost reached Slack.
RECOMMENDED_SCOPES = {"channels:history", "groups:read", "groups:history"}


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    status: str
    name: str
    detail: str


def check_warehouse(path: str | None) -> list[Check]:
    """The warehouse opens, is whole, is not newer than this code, every table reads; the outbox is not stuck."""
    target = warehouse.location(path)  # a DuckDB file or a DuckLake (shown with its password hidden)
    existed = warehouse.exists(path)
    try:
        # Checked before migrating: a damaged or newer warehouse is reported, never written to.
        found = warehouse.verify(path, patience_s=10.0) if existed else None
        applied = warehouse.migrate(path, patience_s=10.0)
        with warehouse.connect(path, patience_s=10.0) as con:
            version = warehouse.schema_version(con)
            pending, oldest, failed = con.execute(
                "SELECT count(*) FILTER (WHERE revision > delivered_revision),"
                " min(updated_at) FILTER (WHERE revision > delivered_revision),"
                " count(*) FILTER (WHERE delivery_status = 'failed') FROM alerts"
            ).fetchall()[0]
            state = dict(con.execute("SELECT key, value FROM alert_delivery_state").fetchall())
    except (WarehouseUnusableError, warehouse.WarehouseLockedError) as exc:
        return [Check(FAIL, "warehouse", str(exc))]
    except (MigrationError, OSError, duckdb.Error) as exc:
        return [Check(FAIL, "warehouse", f"{target}: {exc}")]
    if found is not None:
        checks_read = f", {found.tables} tables read, {found.size_bytes / 1e6:,.1f} MB"
    else:
        checks_read = ", created now"
    migrated = f", applied {len(applied)} migration(s) now" if applied and existed else ""
    checks = [Check(OK, "warehouse", f"{target} (schema version {version}{migrated}{checks_read})")]
    now = utc_now()
    if pending:
        age = (now - oldest).total_seconds() / 60 if oldest else 0
        status = WARN if age > 5 else OK
        checks.append(
            Check(status, "outbox", f"{pending} alert(s) waiting for delivery, oldest {age:.0f} min")
        )
    else:
        checks.append(Check(OK, "outbox", "nothing waiting for delivery"))
    if failed:
        checks.append(
            Check(WARN, "outbox", f"{failed} alert(s) failed permanently; `sreops alerts list` shows why")
        )
    paused = state.get("paused_until")
    try:
        paused_until = dt.datetime.fromisoformat(paused) if paused else None
    except (TypeError, ValueError):
        checks.append(Check(WARN, "outbox", f"delivery state paused_until={paused!r} is not a time"))
        paused_until = None
    if paused_until is not None and paused_until.replace(tzinfo=None) > now:
        checks.append(
            Check(WARN, "outbox", f"delivery paused until {paused} UTC: {state.get('pause_reason', '')}")
        )
    return checks


def configured_channels(cfg: config.Config) -> list[str]:
    """Every channel alerts may be routed to."""
    alerting = cfg.alerting
    channels = [
        alerting.default_channel,
        alerting.digest_channel,
        *(r.channel for r in alerting.routes),
        *(s.slack_channel for s in cfg.services.values()),
    ]
    return list(dict.fromkeys(c for c in channels if c))


def check_slack(cfg: config.Config, slack: config.SlackSettings) -> list[Check]:
    """The token works (auth.test), has the scopes delivery needs, and the app is in every routed channel."""
    client = make_client(slack.bot_token, slack.api_url)
    checks = []
    if not slack.signing_secret:
        checks.append(
            Check(
                WARN,
                "interactivity",
                "SLACK_SIGNING_SECRET not set: buttons (ack, snooze, not an "
                "anomaly) cannot be verified; see docs/alerting.md",
            )
        )
    else:
        checks.append(Check(OK, "interactivity", "SLACK_SIGNING_SECRET set; run `sreops alerts serve`"))
    if client is None:
        checks.insert(
            0,
            Check(
                WARN,
                "slack",
                "SLACK_BOT_TOKEN not set: dry-run mode (alerts are kept and logged, not posted)",
            ),
        )
        return checks
    poster = SlackPoster(client)
    try:
        who = poster.auth_test()
    except SlackFailure as exc:
        return [Check(FAIL, "slack", f"auth.test against {slack.api_url} failed: {exc}"), *checks]
    checks.insert(
        0, Check(OK, "slack", f"token works: {who.get('user')} in {who.get('team')} ({slack.api_url})")
    )
    scopes = set(who.get("scopes") or [])
    if scopes:
        missing = REQUIRED_SCOPES - scopes
        if missing:
            checks.append(
                Check(
                    FAIL,
                    "slack scopes",
                    f"missing {', '.join(sorted(missing))}; add them under "
                    "OAuth & Permissions and reinstall the app",
                )
            )
        lacking = RECOMMENDED_SCOPES - scopes
        if lacking:
            checks.append(
                Check(
                    WARN,
                    "slack scopes",
                    f"missing {', '.join(sorted(lacking))}: a post whose reply "
                    "was lost cannot be checked before retrying",
                )
            )
    try:
        known = poster.list_channels()
    except SlackFailure as exc:
        checks.append(Check(WARN, "slack channels", f"cannot list channels ({exc}); checking by id only"))
        known = {}
    for channel in configured_channels(cfg):
        channel_id = known.get(channel.lstrip("#"), channel)
        try:
            info = poster.channel_info(channel_id)
        except SlackFailure as exc:
            checks.append(Check(FAIL, "slack channel", f"{channel}: {exc}"))
            continue
        if info.get("is_archived"):
            checks.append(Check(FAIL, "slack channel", f"{channel} is archived; route alerts elsewhere"))
        elif not info.get("is_member", True):
            checks.append(
                Check(FAIL, "slack channel", f"{channel}: the app is not a member; /invite it there")
            )
        else:
            checks.append(Check(OK, "slack channel", f"{channel} ({info.get('id')})"))
    return checks


def check_links(slack: config.SlackSettings) -> list[Check]:
    """Where alert links point, when `DAGSTER_UI_URL` does not say."""
    if slack.ui_url_configured:
        return []
    return [Check(OK, "links", "DAGSTER_UI_URL not set; alert links point at http://127.0.0.1:3000")]
