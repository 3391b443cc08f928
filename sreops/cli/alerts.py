"""`sreops alerts list|test|serve`: inspect the outbox, post a sample alert, serve Slack's buttons."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from contextlib import ExitStack

from tabulate import tabulate

from sreops import config, warehouse
from sreops.alerting import outbox
from sreops.alerting.delivery.run import deliver_pending
from sreops.alerting.feedback.store import precision_by_detector
from sreops.alerting.listing import alert_rows
from sreops.alerting.model import get_alert
from sreops.devtools import sample_alert
from sreops.timeutil import utc_now

WAREHOUSE_HELP = "warehouse file (default $SREOPS_HOME/warehouse.duckdb)"


# ---- list -----------------------------------------------------------------------------------------
def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sreops alerts list`."""
    parser.add_argument("--status", choices=["firing", "resolved", "all"], default="all")
    parser.add_argument(
        "--hours", type=float, default=24.0, help="alerts updated in the last HOURS (default 24)"
    )
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    parser.add_argument(
        "--precision", action="store_true", help="print detector precision from feedback instead"
    )
    parser.add_argument("--warehouse", default=None, help=WAREHOUSE_HELP)


def run_list(args: argparse.Namespace) -> int:
    """Print recent alerts and their delivery state."""
    path = args.warehouse
    if args.precision:
        with warehouse.connect(path) as con:
            rows = precision_by_detector(con)
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            print(tabulate(rows, headers="keys", floatfmt=".2f") if rows else "no anomaly incidents yet")
        return 0
    with warehouse.connect(path) as con:
        rows = alert_rows(con, args.status, utc_now() - dt.timedelta(hours=args.hours), args.limit)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print(f"no alerts updated in the last {args.hours:g} h")
        return 0
    shown = [
        {**r, "alert_id": r["alert_id"][:8], "summary": r["summary"][:60], "note": r["note"][:50]}
        for r in rows
    ]
    print(tabulate(shown, headers="keys"))
    return 0


# ---- test -----------------------------------------------------------------------------------------
def add_test_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sreops alerts test`."""
    parser.add_argument(
        "--channel", default=None, help="channel to post to (default: alerting.default_channel)"
    )
    parser.add_argument("--severity", default="warning")
    parser.add_argument(
        "--fake",
        action="store_true",
        help="post to a local fake Slack instead (try the message without a workspace)",
    )
    parser.add_argument("--warehouse", default=None, help=WAREHOUSE_HELP)


def run_test(args: argparse.Namespace) -> int:
    """Queue a sample alert and deliver it now; prints where it went."""
    cfg = config.current()
    slack = config.slack_settings()
    channel = args.channel or cfg.alerting.default_channel
    now = utc_now()
    with ExitStack() as stack:
        if args.fake:
            from sreops.devtools.fake_slack import FakeSlack

            fake = stack.enter_context(FakeSlack(channels=(channel.lstrip("#"),)))
            slack = dataclasses.replace(slack, bot_token=fake.token, api_url=fake.url)
        with warehouse.transaction(args.warehouse) as con:
            alert_id = outbox.notify(
                con,
                kind="test",
                severity=args.severity,
                service=sample_alert.SERVICE,
                now=now,
                summary=sample_alert.SUMMARY,
                details=sample_alert.sample_details(now, channel),
            )
        report = deliver_pending(args.warehouse, config=cfg, slack=slack, only=[alert_id], budget_s=30.0)
        with warehouse.connect(args.warehouse) as con:
            alert = get_alert(con, alert_id)
        assert alert is not None
        if alert.delivery_status == "dry_run":
            print(
                f"dry run: no SLACK_BOT_TOKEN, so nothing was posted; the alert would go to {channel}. "
                "`sreops alerts list` shows it."
            )
            return 0
        if alert.delivery_status == "delivered":
            where = " (local fake Slack)" if args.fake else ""
            print(f"posted to {channel}{where}: channel {alert.slack_channel}, ts {alert.slack_ts}")
            return 0
        if alert.delivery_status == "pending" and not alert.last_error and report.note:
            print(f"queued as alert {alert_id[:8]}; {report.note}, which will post it within seconds")
            return 0
        print(
            f"not delivered ({alert.delivery_status}): {alert.last_error or report.summary()}",
            file=sys.stderr,
        )
        return 1


# ---- serve ----------------------------------------------------------------------------------------
def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sreops alerts serve`."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 behind a proxy)")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--warehouse", default=None, help=WAREHOUSE_HELP)


def run_serve(args: argparse.Namespace) -> int:
    """Serve Slack's interactivity endpoint until interrupted."""
    from sreops.alerting.interactivity import InteractivityServer, SigningSecretMissingError, signing_secret

    try:
        secret = signing_secret(config.slack_settings())
    except SigningSecretMissingError as exc:
        print(exc, file=sys.stderr)
        return 2
    server = InteractivityServer(args.host, args.port, secret, args.warehouse)
    print(f"Slack interactivity endpoint: {server.url} (set it as the app's Request URL, behind HTTPS)")
    server.serve_forever()
    return 0
