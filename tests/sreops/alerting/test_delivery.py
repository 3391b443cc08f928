"""Delivery through slack-sdk's real WebClient to a fake Slack: one message per incident, exactly once."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pytest

from sreops import config, warehouse
from sreops.alerting import outbox
from sreops.alerting.delivery.run import Deliverer, deliver_pending
from sreops.config import SlackSettings, slack_settings
from sreops.devtools.fake_slack import FakeSlack


def root_posts(fake: FakeSlack) -> list:
    return [c for c in fake.calls_to("chat.postMessage", ok=True) if not c.params.get("thread_ts")]


def step_keys(fake: FakeSlack) -> Counter:
    """How many stored messages carry each delivery step key (a duplicate post shows as 2)."""
    keys: Counter = Counter()
    for channel in fake.channels.values():
        for message in channel.messages:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("step_key"):
                keys[payload["step_key"]] += 1
    return keys


def test_new_incident_posts_one_root_message_and_records_its_ts(
    fire, deliver, fake_slack, alert_rows
) -> None:
    alert_id = fire("api", ["cpu_utilization"])
    report = deliver()
    assert report.delivered == 1
    [message] = fake_slack.messages("sre-alerts")
    assert "api" in message["text"] and "MAJOR" in message["text"]
    row = alert_rows().iloc[0]
    assert row["alert_id"] == alert_id
    assert row["slack_ts"] == message["ts"]
    assert row["slack_channel"] == fake_slack.channel("sre-alerts").id
    assert (row["delivery_status"], row["delivered_revision"], row["attempts"]) == ("delivered", 1, 1)
    assert deliver().calls == 0  # nothing left to post


def test_metrics_of_one_service_pending_together_are_one_message(
    warehouse_path, clock, deliver, fake_slack, alert_rows
) -> None:
    # A producer that opens one row per metric: delivery still groups them by service.
    for metric in ("cpu_utilization", "latency_p95_ms"):
        with warehouse.transaction(warehouse_path) as con:
            outbox.open_or_update(
                con,
                fingerprint=f"anomaly:api:{metric}",
                kind="anomaly",
                service="api",
                severity="major",
                summary=f"api {metric} high",
                details={"metrics": [metric]},
                score=80,
                now=clock.now(),
            )
    deliver()
    [message] = fake_slack.messages("sre-alerts")
    shown = json.dumps(message["blocks"])
    assert "cpu_utilization" in shown and "latency_p95_ms" in shown
    rows = alert_rows()
    assert set(rows["slack_ts"]) == {message["ts"]}
    assert set(rows["delivery_status"]) == {"delivered"}


def test_a_later_metric_of_the_same_service_joins_the_open_thread(fire, deliver, fake_slack, clock) -> None:
    fire("api", ["cpu_utilization"], fingerprint="anomaly:api:cpu")
    deliver()
    clock.advance(60)
    fire("api", ["memory_utilization"], fingerprint="anomaly:api:memory")
    deliver()
    root = fake_slack.messages("sre-alerts", include_replies=False)
    assert len(root) == 1
    [reply] = fake_slack.replies("sre-alerts", root[0]["ts"])
    assert "memory_utilization" in reply["text"]
    assert "memory_utilization" in json.dumps(root[0]["blocks"])  # the root was edited to include it


def test_update_goes_to_the_thread_and_edits_the_root(fire, deliver, fake_slack, clock) -> None:
    fire("api", ["cpu_utilization"], severity="minor", score=70)
    deliver()
    clock.advance(120)
    fire("api", ["cpu_utilization", "error_rate"], severity="critical", score=95)
    deliver()
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    [reply] = fake_slack.replies("sre-alerts", root["ts"])
    assert "minor → *critical*" in reply["text"]
    assert "error_rate" in reply["text"]
    assert "CRITICAL" in root["text"] and "edited" in root
    assert len(fake_slack.calls_to("chat.update", ok=True)) == 1


def test_resolution_is_posted_in_thread_and_root_marked_resolved(
    fire, resolve, deliver, fake_slack, clock
) -> None:
    fire("api")
    deliver()
    clock.advance(600)
    resolve("anomaly:api")
    deliver()
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    [reply] = fake_slack.replies("sre-alerts", root["ts"])
    assert reply["text"].startswith(":white_check_mark: Resolved after")
    assert root["text"].startswith("[RESOLVED]")
    buttons = [e for b in root["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["sreops_open"]  # no ack/snooze on a resolved incident


def test_refire_shortly_after_resolution_reopens_the_same_thread(
    fire, resolve, deliver, fake_slack, clock, warehouse_path
) -> None:
    fire("api")
    deliver()
    clock.advance(300)
    resolve("anomaly:api")
    deliver()
    clock.advance(600)
    # A producer that inserts a fresh row for the re-fire (rather than re-opening the old one).
    with warehouse.transaction(warehouse_path) as con:
        outbox.open_or_update(
            con,
            fingerprint="anomaly:api",
            kind="anomaly",
            service="api",
            severity="major",
            summary="api: cpu unusual again",
            details={"metrics": ["cpu_utilization"]},
            score=85,
            now=clock.now(),
            reopen_minutes=0,
        )
    deliver()
    roots = fake_slack.messages("sre-alerts", include_replies=False)
    assert len(roots) == 1
    replies = fake_slack.replies("sre-alerts", roots[0]["ts"])
    assert replies[-1]["text"].startswith(":rotating_light: Fired again")
    assert roots[0]["text"].startswith("[MAJOR]")


def test_refire_reopening_the_same_row_reposts_in_its_thread(
    fire, resolve, deliver, fake_slack, clock, alert_rows
) -> None:
    fire("api")
    deliver()
    clock.advance(300)
    resolve("anomaly:api")
    deliver()
    clock.advance(300)
    fire("api")  # within reopen_minutes: outbox re-opens the row
    deliver()
    assert len(alert_rows()) == 1
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    assert fake_slack.replies("sre-alerts", root["ts"])[-1]["text"].startswith(":rotating_light: Re-opened")


def test_chart_is_uploaded_into_the_thread(fire, features, deliver, fake_slack) -> None:
    features("api", "cpu_utilization")
    fire("api", ["cpu_utilization"])
    deliver()
    assert [c.method for c in fake_slack.calls if c.method.startswith(("files", "upload"))] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    [chart] = fake_slack.replies("sre-alerts", root["ts"])
    [file] = chart["files"]
    assert "cpu_utilization" in file["title"]
    data = fake_slack.uploads[file["id"]]["data"]
    assert data.startswith(b"\x89PNG") and len(data) > 5_000


def test_no_features_means_no_chart_and_still_delivered(fire, deliver, fake_slack) -> None:
    fire("api")
    assert deliver().delivered == 1
    assert fake_slack.calls_to("files.getUploadURLExternal") == []


def test_routes_by_service_and_severity(fire, deliver, fake_slack) -> None:
    cfg = config.Config.model_validate(
        {
            "alerting": {
                "routes": [{"service": "api", "min_severity": "critical", "channel": "#api-oncall"}]
            },
            "services": {"payments": {"slack_channel": "#payments"}},
        }
    )
    fire("api", severity="critical", fingerprint="a")
    fire("api", severity="major", fingerprint="b", metrics=["error_rate"])
    fire("payments", severity="major")
    deliver(config_override=cfg)
    assert len(fake_slack.messages("api-oncall")) == 1
    assert len(fake_slack.messages("sre-alerts")) == 1  # the major api alert falls through to the default
    assert len(fake_slack.messages("payments")) == 1


def test_below_minimum_severity_is_recorded_not_posted(fire, deliver, fake_slack, alert_rows) -> None:
    fire("api", severity="info")
    report = deliver()
    assert report.withheld == 1 and fake_slack.calls_to("chat.postMessage") == []
    assert alert_rows().iloc[0]["delivery_status"] == "below_min_severity"


def test_silence_and_maintenance_window_record_but_do_not_post(
    fire, deliver, fake_slack, alert_rows, clock
) -> None:
    cfg = config.Config.model_validate(
        {
            "alerting": {
                "silences": [
                    {
                        "service": "api",
                        "starts_at": "2026-11-20T12:00:00Z",
                        "ends_at": "2026-11-20T14:00:00Z",
                        "reason": "load test",
                    }
                ]
            },
            "events": [
                {
                    "kind": "maintenance",
                    "service": "db",
                    "starts_at": "2026-11-20T12:30:00Z",
                    "ends_at": "2026-11-20T13:30:00Z",
                }
            ],
        }
    )
    fire("api")
    fire("db")
    fire("web")
    report = deliver(config_override=cfg)
    assert report.withheld == 2 and report.delivered == 1
    [posted] = fake_slack.messages("sre-alerts")
    assert "web" in posted["text"]
    rows = alert_rows().set_index("service")
    assert (
        rows.loc["api", "delivery_status"] == "suppressed"
        and rows.loc["db", "delivery_status"] == "suppressed"
    )


def test_silenced_update_of_a_posted_incident_still_posts_its_resolution(
    fire, resolve, deliver, fake_slack, clock
) -> None:
    fire("api")
    deliver()
    silenced = config.Config.model_validate(
        {
            "alerting": {
                "silences": [
                    {"service": "api", "starts_at": "2026-11-20T13:00:00Z", "ends_at": "2026-11-20T18:00:00Z"}
                ]
            }
        }
    )
    clock.advance(60)
    fire("api", severity="critical", score=99)
    deliver(config_override=silenced)
    assert fake_slack.calls_to("chat.update") == []  # held by the silence
    resolve("anomaly:api")
    deliver(config_override=silenced)
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    assert root["text"].startswith("[RESOLVED]")


def test_rate_limit_honours_retry_after_then_delivers_each_once(fire, drain, fake_slack, clock) -> None:
    for i in range(6):
        fire(f"svc{i}")
    fake_slack.fail(429, count=3, methods=("chat.postMessage",), retry_after=7)
    drain()
    posts = fake_slack.calls_to("chat.postMessage")
    limited = [c for c in posts if c.status == 429]
    assert len(limited) == 3
    # each 429 is followed by at least Retry-After seconds of silence
    for call in limited:
        following = [c for c in posts if c.at > call.at]
        assert not following or min(c.at for c in following) - call.at >= 7
    assert len(root_posts(fake_slack)) == 6
    assert set(step_keys(fake_slack).values()) == {1}


@pytest.mark.slow  # 500 incidents through real HTTP and DuckDB (the clock is fake)
def test_outage_with_500s_delays_500_incidents_then_delivers_each_exactly_once(
    warehouse_path, clock, fake_slack, deliver, alert_rows
) -> None:
    services = [f"svc{i:02d}" for i in range(20)]
    cfg = config.Config.model_validate(
        {
            "services": {
                s: {"slack_channel": f"#{c}"}
                for s, c in zip(
                    services, ["sre-alerts", "api-oncall", "payments", "platform"] * 5, strict=True
                )
            }
        }
    )
    fake_slack.fail(500)  # Slack is down
    with warehouse.transaction(warehouse_path) as con:
        for i in range(500):
            service = services[i % 20]
            outbox.open_or_update(
                con,
                fingerprint=f"anomaly:{service}:{i}",
                kind="pipeline_health",
                service=service,
                severity="major",
                summary=f"incident {i}",
                details={},
                now=clock.now(),
            )
    outage_end = clock.monotonic() + 300
    passes = 0
    while clock.monotonic() < outage_end:
        deliver(config_override=cfg)
        clock.advance(5)
        passes += 1
    assert root_posts(fake_slack) == []
    assert len(fake_slack.calls_to("chat.postMessage")) < 3 * passes  # backs off instead of hammering
    fake_slack.recover()
    recovered = clock.monotonic()
    for _ in range(200):
        report = deliver(config_override=cfg)
        if (alert_rows()["revision"] == alert_rows()["delivered_revision"]).all():
            break
        if not report.paused_until:
            clock.advance(5)
        else:
            clock.advance(max((report.paused_until - clock.now()).total_seconds(), 1))
    rows = alert_rows()
    assert (rows["delivery_status"] == "delivered").all()
    assert rows["slack_ts"].notna().all()
    keys = step_keys(fake_slack)
    assert len(keys) == 500 and set(keys.values()) == {1}  # every incident once, none twice
    by_channel: dict[str, list[float]] = {}
    for call in root_posts(fake_slack):
        by_channel.setdefault(call.params["channel"], []).append(call.at)
    for times in by_channel.values():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 1.0  # Slack's 1 message per second per channel
    # four channels at ~1 msg/s drain 500 messages in ~125 s (plus at most one backoff period)
    assert clock.monotonic() - recovered < 125 + 60 + 30


def test_lost_response_is_reconciled_not_posted_twice(fire, drain, fake_slack, alert_rows) -> None:
    fire("api")
    fake_slack.fail(500, count=1, methods=("chat.postMessage",), after_effect=True)  # posted, reply lost
    drain()
    assert len(fake_slack.messages("sre-alerts")) == 1
    row = alert_rows().iloc[0]
    assert row["slack_ts"] == fake_slack.messages("sre-alerts")[0]["ts"]
    assert row["attempts"] == 2 and row["delivery_status"] == "delivered"


def test_crash_between_post_and_record_is_reconciled(
    fire, warehouse_path, poster, clock, fake_slack, cfg, deliver
) -> None:
    fire("api")
    crashing = Deliverer(warehouse_path, poster=poster, clock=clock, config=cfg)
    crashing._record = lambda *args, **kwargs: (_ for _ in ()).throw(
        KeyboardInterrupt()
    )  # dies after posting
    with pytest.raises(KeyboardInterrupt):
        crashing.run()
    assert len(fake_slack.messages("sre-alerts")) == 1
    report = deliver()  # at once: a dead pass leaves no lease to wait out
    assert report.delivered == 1
    assert len(fake_slack.messages("sre-alerts")) == 1
    assert fake_slack.calls_to("conversations.history")  # it looked before posting


def test_permanent_error_marks_failed_with_reason_and_others_still_go(
    fire, deliver, fake_slack, alert_rows
) -> None:
    cfg = config.Config.model_validate({"services": {"ghost": {"slack_channel": "#does-not-exist"}}})
    fire("ghost")
    fire("api")
    report = deliver(config_override=cfg)
    assert report.failed == 1 and report.delivered == 1
    rows = alert_rows().set_index("service")
    assert rows.loc["ghost", "delivery_status"] == "failed"
    assert "channel_not_found" in rows.loc["ghost", "last_error"]
    assert len(fake_slack.messages("sre-alerts")) == 1


def test_without_token_alerts_are_kept_logged_and_not_posted(
    fire, warehouse_path, fake_slack, alert_rows, cfg, caplog
) -> None:
    fire("api")
    with caplog.at_level(logging.INFO, logger="sreops.alerting.delivery"):
        report = deliver_pending(warehouse_path, config=cfg, slack=SlackSettings(api_url=fake_slack.url))
    assert report.dry_run == 1
    assert fake_slack.calls == []
    row = alert_rows().iloc[0]
    assert row["delivery_status"] == "dry_run" and row["slack_channel"] == "#sre-alerts"
    assert any("dry run" in r.message and "api" in r.message for r in caplog.records)


def test_with_token_from_environment_posts_through_slack_api_url(
    fire, warehouse_path, fake_slack, cfg
) -> None:
    slack = slack_settings({"SLACK_BOT_TOKEN": fake_slack.token, "SLACK_API_URL": fake_slack.url})
    fire("api")
    assert deliver_pending(warehouse_path, config=cfg, slack=slack).delivered == 1
    assert len(fake_slack.messages("sre-alerts")) == 1


def test_invalid_token_pauses_delivery_and_keeps_alerts(
    fire, warehouse_path, clock, fake_slack, cfg, alert_rows
) -> None:
    from sreops.alerting.slack import SlackPoster, make_client

    bad = SlackPoster(make_client("xoxb-wrong", fake_slack.url))
    fire("api")
    report = Deliverer(warehouse_path, poster=bad, clock=clock, config=cfg).run()
    assert report.retrying == 1 and report.paused_until is not None
    row = alert_rows().iloc[0]
    assert "invalid_auth" in row["last_error"] and row["delivered_revision"] == 0


def test_notice_is_posted_once_as_is(warehouse_path, clock, deliver, fake_slack) -> None:
    with warehouse.transaction(warehouse_path) as con:
        outbox.notify(
            con,
            kind="digest",
            summary="Daily digest",
            details={"sections": ["*Incidents*\nnone"]},
            now=clock.now(),
        )
    deliver()
    deliver()
    [message] = fake_slack.messages("sre-alerts")
    assert message["text"].startswith("Daily digest")


def test_bounded_pass_leaves_the_rest_for_the_next(
    fire, warehouse_path, poster, clock, cfg, fake_slack
) -> None:
    for i in range(30):
        fire(f"svc{i}")
    report = Deliverer(warehouse_path, poster=poster, clock=clock, config=cfg, budget_s=10).run()
    assert 0 < report.delivered <= 12  # one channel at 1 msg/s for ~10 s
    gaps = [b.at - a.at for a, b in zip(root_posts(fake_slack), root_posts(fake_slack)[1:], strict=False)]
    assert min(gaps) >= 1.0


def test_deleted_incident_message_gets_a_fresh_thread(fire, deliver, fake_slack, clock) -> None:
    fire("api", score=70)
    deliver()
    fake_slack.channel("sre-alerts").messages.clear()  # someone deleted the message in Slack
    clock.advance(60)
    fire("api", severity="critical", score=95)
    report = deliver()
    assert report.retrying == 1 and "thread_not_found" in report.errors[0]
    deliver()
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    assert root["text"].startswith("[CRITICAL]")
