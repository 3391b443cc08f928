"""Message content: what an on-call engineer reads in the root message and the thread."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from sreops import warehouse
from sreops.alerting import blocks, context, replies
from sreops.alerting.feedback.labels import Feedback
from sreops.alerting.model import Alert
from sreops.config import slack_settings

NOW = dt.datetime(2026, 11, 20, 13, 0)


def incident(**overrides) -> Alert:
    details = {
        "metrics": ["latency_p95_ms", "error_rate"],
        "score": 92.4,
        "observed": 812.0,
        "expected_low": 110.0,
        "expected_high": 290.0,
        "first_minute": "2026-11-20T12:41:00",
        "last_minute": "2026-11-20T12:59:00",
        "detector": "ecod",
        "explanation": [
            {
                "metric": "latency_p95_ms",
                "feature": "mean",
                "observed": 812.0,
                "expected_low": 110.0,
                "expected_high": 290.0,
                "contribution": 0.7,
            },
            {
                "metric": "error_rate",
                "feature": "max",
                "observed": 0.09,
                "expected_low": 0.0,
                "expected_high": 0.01,
                "contribution": 0.3,
            },
        ],
    }
    values = dict(
        alert_id="a1b2c3d4e5f6",
        fingerprint="anomaly:checkout",
        kind="anomaly",
        service="checkout",
        severity="critical",
        status="firing",
        opened_at=NOW - dt.timedelta(minutes=19),
        updated_at=NOW,
        resolved_at=None,
        summary="checkout: latency and errors up together",
        details=details,
        score=92.4,
    )
    values.update(overrides)
    return Alert(**values)


def text_of(message: blocks.Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def test_root_message_carries_what_on_call_needs() -> None:
    ui_url = slack_settings({"DAGSTER_UI_URL": "https://dagster.example.com/"}).ui_url
    message = blocks.root_message(blocks.ThreadView([incident()]), NOW, ui_url=ui_url)
    shown = text_of(message)
    assert message.text == "[CRITICAL] checkout: checkout: latency and errors up together (score 92)"
    assert blocks.header_text(blocks.ThreadView([incident()])).startswith(":red_circle: CRITICAL · checkout")
    for needle in (
        "`latency_p95_ms`",
        "`error_rate`",
        "92 / 100",
        "812 (expected 110–290)",
        "19 min, ongoing",
        "ecod",
        "0.09 vs expected 0–0.01",
        "70% of the score",
    ):
        assert needle in shown, needle
    started = int(dt.datetime(2026, 11, 20, 12, 41, tzinfo=dt.UTC).timestamp())
    assert f"<!date^{started}^" in shown
    link = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"] if "url" in e]
    assert link[0]["url"] == (
        "https://dagster.example.com/assets/anomalies?view=partitions&partition=2026-11-20-12:00"
    )
    actions = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == ["sreops_ack", "sreops_snooze", "sreops_not_anomaly", "sreops_open"]


def test_run_failure_links_to_its_run() -> None:
    alert = incident(
        kind="run_failure",
        fingerprint="run_failure:build_features",
        service=None,
        details={"run_id": "abc-123"},
        score=None,
        summary="Run of build_features failed",
    )
    assert blocks.dagster_link(alert, "http://ui:3000") == (
        "View run in Dagster",
        "http://ui:3000/runs/abc-123",
    )
    message = blocks.root_message(blocks.ThreadView([alert]), NOW, ui_url="http://ui:3000")
    assert "platform" in message.text and "*Score*\\nn/a" in text_of(message)


def test_grouped_thread_shows_every_metric_and_the_worst_severity() -> None:
    cpu = incident(alert_id="1", severity="minor", details={"metrics": ["cpu_utilization"], "score": 70})
    memory = incident(
        alert_id="2", severity="major", details={"metrics": ["memory_utilization"], "score": 81}
    )
    view = blocks.ThreadView([cpu, memory])
    message = blocks.root_message(view, NOW)
    assert message.text.startswith("[MAJOR]")
    assert "`cpu_utilization`, `memory_utilization`" in text_of(message)
    assert "81 / 100" in text_of(message)


def test_resolved_root_says_how_long_it_lasted_and_drops_the_buttons() -> None:
    alert = incident(status="resolved", resolved_at=dt.datetime(2026, 11, 20, 13, 5))
    message = blocks.root_message(blocks.ThreadView([alert]), NOW + dt.timedelta(minutes=30))
    assert message.text.startswith("[RESOLVED]")
    assert "24 min (resolved" in text_of(message)
    assert "sreops_ack" not in text_of(message)


def test_change_reply_words_each_kind_of_change() -> None:
    before = replies.snapshot(
        incident(severity="minor", details={"metrics": ["latency_p95_ms"], "score": 70}), []
    )
    now_worse = incident()
    reply = replies.change_reply(now_worse, before, [], NOW)
    assert reply is not None
    assert "Severity raised: minor → *critical*" in reply.text
    assert "Now also: `error_rate`" in reply.text
    assert "Score 70.0 → *92.4*" in reply.text
    assert replies.change_reply(now_worse, replies.snapshot(now_worse, []), [], NOW) is None  # nothing new
    resolved = incident(status="resolved", resolved_at=NOW)
    assert replies.change_reply(resolved, replies.snapshot(now_worse, []), [], NOW).text.startswith(
        ":white_check_mark: Resolved after 19 min"
    )


def test_feedback_shows_in_reply_and_root() -> None:
    ack = Feedback("f1", "a1b2c3d4e5f6", "ack", "U42", "alice", NOW, None)
    alert = incident()
    reply = replies.change_reply(alert, replies.snapshot(alert, []), [ack], NOW)
    assert reply is not None and reply.text == ":eyes: Acknowledged by <@U42>."
    root = blocks.root_message(blocks.ThreadView([alert], [ack]), NOW)
    assert ":eyes: acknowledged by <@U42>" in text_of(root)


def test_long_text_is_clipped_to_slack_limits() -> None:
    alert = incident(summary="x" * 5000)
    message = blocks.root_message(blocks.ThreadView([alert]), NOW)
    assert len(message.text) <= blocks.MAX_FALLBACK
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000


@pytest.fixture
def log_tables(warehouse_path, insert_rows):
    minutes = pd.date_range("2026-11-20 11:40", "2026-11-20 12:59", freq="1min")
    rows = []
    for minute in minutes:
        rows.append((minute, "checkout", "1", 10))  # steady chatter
        if minute >= pd.Timestamp("2026-11-20 12:41"):
            rows.append((minute, "checkout", "2", 30))  # new during the incident
            rows.append((minute, "checkout", "3", 40))  # surging
        else:
            rows.append((minute, "checkout", "3", 2))
    counts = pd.DataFrame(rows, columns=["minute", "service", "cluster_id", "count"])
    clusters = pd.DataFrame(
        {
            "cluster_id": ["1", "2", "3"],
            "service": "checkout",
            "template": ["GET /health <*>", "connection refused to db <*>", "retrying payment <*>"],
            "size": [800, 570, 900],
            "first_seen": pd.to_datetime(["2026-11-01 00:00", "2026-11-20 12:41", "2026-11-02 00:00"]),
            "last_seen": pd.to_datetime(["2026-11-20 12:59"] * 3),
        }
    )
    with warehouse.transaction(warehouse_path) as con:
        insert_rows(con, "log_cluster_counts_1m", counts)
        insert_rows(con, "log_clusters", clusters)
    return warehouse_path


def test_log_context_names_new_and_surging_patterns(log_tables) -> None:
    with warehouse.connect(log_tables) as con:
        found = context.log_patterns(
            con, "checkout", dt.datetime(2026, 11, 20, 12, 41), dt.datetime(2026, 11, 20, 12, 59)
        )
    assert [(p.template, p.new) for p in found] == [
        ("connection refused to db <*>", True),
        ("retrying payment <*>", False),
    ]
    assert found[1].ratio == pytest.approx(20.0)
    message = blocks.root_message(blocks.ThreadView([incident()], [], found), NOW)
    assert "connection refused to db &lt;*&gt;" in text_of(message) and "(new)" in text_of(message)


def test_no_log_tables_means_no_log_section(warehouse_path) -> None:
    with warehouse.connect(warehouse_path) as con:
        assert context.log_patterns(con, "checkout", NOW - dt.timedelta(minutes=20), NOW) == []


@pytest.mark.parametrize("score", ["high", [1], {"v": 2}, "nan", float("inf")])
def test_an_unreadable_score_from_a_producer_still_renders_without_one(score: object) -> None:
    alert = incident(details={"metrics": ["error_rate"], "score": score}, score=None)
    assert alert.peak_score is None
    message = blocks.root_message(blocks.ThreadView([alert]), NOW)
    assert "checkout" in message.text and "score" not in message.text
