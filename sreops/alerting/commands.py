"""`sreops alerts list|test|serve`: inspect the outbox, post a sample alert, serve Slack's buttons."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from contextlib import ExitStack
from typing import Any

from tabulate import tabulate

from sreops import config, warehouse
from sreops.alerting import delivery, feedback, outbox
from sreops.alerting.model import fetch_alerts, get_alert

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


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
    parser.add_argument(
        "--warehouse", default=None, help="warehouse file (default $SREOPS_HOME/warehouse.duckdb)"
    )


def list_rows(
    warehouse_path: str | None, status: str, since: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """Alerts with their delivery state and, for withheld ones, the reason."""
    where = "updated_at >= ?"
    params: list[Any] = [since]
    if status != "all":
        where += " AND status = ?"
        params.append(status)
    with warehouse.connect(warehouse_path) as con:
        alerts = fetch_alerts(con, where, params, order="updated_at DESC")[:limit]
        notes = dict(
            con.execute(
                "SELECT alert_id, arg_max(note, delivery_id) FROM alert_deliveries"
                " WHERE step IN ('suppressed', 'dry_run') AND list_contains(?, alert_id) GROUP BY alert_id",
                [[a.alert_id for a in alerts]],
            ).fetchall()
        )
    rows = []
    for alert in alerts:
        why = alert.last_error or (
            notes.get(alert.alert_id) if alert.delivery_status == "suppressed" else None
        )
        rows.append(
            {
                "alert_id": alert.alert_id,
                "opened_at": f"{alert.opened_at:%Y-%m-%d %H:%M}",
                "service": alert.service or "-",
                "kind": alert.kind,
                "severity": alert.severity,
                "status": alert.status,
                "delivery": alert.delivery_status,
                "channel": alert.slack_channel or "-",
                "attempts": alert.attempts,
                "summary": alert.summary,
                "note": why or "",
            }
        )
    return rows


def run_list(args: argparse.Namespace) -> int:
    """Print recent alerts and their delivery state."""
    path = args.warehouse
    if args.precision:
        with warehouse.connect(path) as con:
            rows = feedback.precision_by_detector(con)
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            print(tabulate(rows, headers="keys", floatfmt=".2f") if rows else "no anomaly incidents yet")
        return 0
    rows = list_rows(path, args.status, _now() - dt.timedelta(hours=args.hours), args.limit)
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
    parser.add_argument(
        "--warehouse", default=None, help="warehouse file (default $SREOPS_HOME/warehouse.duckdb)"
    )


def sample_details(now: dt.datetime, channel: str) -> dict[str, Any]:
    """Details of a made-up incident that shows every part of an alert message."""
    return {
        "channel": channel,
        "metrics": ["latency_p95_ms", "error_rate"],
        "score": 88.0,
        "observed": 742.0,
        "expected_low": 120.0,
        "expected_high": 310.0,
        "detector": "sample",
        "first_minute": (now - dt.timedelta(minutes=12)).isoformat(),
        "last_minute": now.isoformat(),
        "explanation": [
            {
                "metric": "latency_p95_ms",
                "feature": "mean",
                "observed": 742.0,
                "expected_low": 120.0,
                "expected_high": 310.0,
                "contribution": 0.64,
            },
            {
                "metric": "error_rate",
                "feature": "max",
                "observed": 0.081,
                "expected_low": 0.0,
                "expected_high": 0.012,
                "contribution": 0.36,
            },
        ],
    }


def run_test(args: argparse.Namespace) -> int:
    """Queue a sample alert and deliver it now; prints where it went."""
    cfg = config.current()
    channel = args.channel or cfg.alerting.default_channel
    now = _now()
    with ExitStack() as stack:
        if args.fake:
            from sreops.devtools.fake_slack import FakeSlack

            fake = stack.enter_context(FakeSlack(channels=(channel.lstrip("#"),)))
            os.environ["SLACK_API_URL"] = fake.url
            os.environ["SLACK_BOT_TOKEN"] = fake.token
        with warehouse.transaction(args.warehouse) as con:
            alert_id = outbox.notify(
                con,
                kind="test",
                severity=args.severity,
                service="sreops-test",
                now=now,
                summary="Test alert from sreops: latency and errors up together (sample data)",
                details=sample_details(now, channel),
            )
        report = delivery.deliver_pending(args.warehouse, only=[alert_id], budget_s=30.0)
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
    parser.add_argument(
        "--warehouse", default=None, help="warehouse file (default $SREOPS_HOME/warehouse.duckdb)"
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve Slack's interactivity endpoint until interrupted."""
    from sreops.alerting.interactivity import InteractivityServer, SigningSecretMissingError, signing_secret

    try:
        secret = signing_secret()
    except SigningSecretMissingError as exc:
        print(exc, file=sys.stderr)
        return 2
    server = InteractivityServer(args.host, args.port, secret, args.warehouse)
    print(f"Slack interactivity endpoint: {server.url} (set it as the app's Request URL, behind HTTPS)")
    server.serve_forever()
    return 0
