"""The daily digest: top incidents, precision from feedback, capacity and log patterns once they exist."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from sreops import config, warehouse
from sreops.alerting import digest
from sreops.alerting.feedback import store as feedback_store


def test_digest_lists_top_incidents_and_precision_and_is_queued_once(
    fire, resolve, warehouse_path, clock, deliver, fake_slack
) -> None:
    fire("api", severity="critical", score=97)
    fire("web", severity="minor", score=71)
    web = fire("db", severity="major", score=80)
    resolve("anomaly:web")
    with warehouse.transaction(warehouse_path) as con:
        feedback_store.record(con, alert_id=web, action="ack", now=clock.now(), user_id="U1")
    now = clock.now() + dt.timedelta(hours=1)
    alert_id = digest.enqueue(warehouse_path, config.Config(), now)
    assert alert_id is not None
    assert digest.enqueue(warehouse_path, config.Config(), now + dt.timedelta(hours=2)) is None
    deliver()
    [posted] = [m for m in fake_slack.messages("sre-alerts") if m["text"].startswith(":newspaper:")]
    text = posted["text"]
    assert "3 in the last 24 h across 3 service(s), 2 still firing" in text
    assert text.index("*api*") < text.index("*db*") < text.index("*web*")  # critical first
    assert "iforest: 100% real (1 of 1 labelled; 3 incidents)" in text
    assert "Capacity" not in text and "New log patterns" not in text


def test_digest_includes_capacity_and_new_log_patterns_when_those_tables_exist(
    warehouse_path, insert_rows
) -> None:
    now = dt.datetime(2026, 11, 20, 8, 0)
    recs = pd.DataFrame(
        {
            "service": ["api"],
            "window_start": [now],
            "window_end": [now + dt.timedelta(hours=4)],
            "recommended_replicas": [6],
            "forecast_peak": [540.0],
            "capacity_per_replica": [100.0],
            "reason": ["peak at 10:00"],
            "generated_at": [now],
        }
    )
    clusters = pd.DataFrame(
        {
            "cluster_id": ["7"],
            "service": ["api"],
            "template": ["timeout calling <*>"],
            "size": [42],
            "first_seen": [now - dt.timedelta(hours=2)],
            "last_seen": [now],
        }
    )
    with warehouse.transaction(warehouse_path) as con:
        insert_rows(con, "scaling_recommendations", recs)
        insert_rows(con, "log_clusters", clusters)
        title, sections, footer = digest.build(con, now)
    body = "\n".join(sections)
    assert "None in the last 24 h" in body
    assert "*api*: 6 replicas Fri 08:00–12:00 UTC (forecast peak 540): peak at 10:00" in body
    assert "`timeout calling &lt;*&gt;` (42 lines)" in body  # escaped: Slack shows <*>
    assert title.startswith(":newspaper: SRE daily digest")
