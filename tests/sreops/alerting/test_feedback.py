"""Buttons: signed (and forged) interactivity requests, and feedback that changes what gets posted."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from sreops import warehouse
from sreops.alerting import interactivity
from sreops.alerting.feedback import labels, spool
from sreops.alerting.feedback import store as feedback_store
from sreops.alerting.interactivity import InteractivityServer

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def body_for(alert_id: str, action_id: str, value: str | None = None, user: str = "U42") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "alice"},
        "actions": [{"action_id": action_id, "value": value or alert_id, "action_ts": "1795179700.123456"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": interactivity.sign(secret, body, str(timestamp)),
    }


def press(alert_id: str, action_id: str, clock, value: str | None = None) -> tuple[int, str]:
    body = body_for(alert_id, action_id, value)
    now = clock.epoch()
    return interactivity.handle(body, signed_headers(body, int(now)), SECRET, now=now)


def feedback_rows(path) -> list[tuple]:
    with warehouse.connect(path) as con:
        return con.execute("SELECT alert_id, action, user_id, snooze_until FROM alert_feedback").fetchall()


def test_signed_press_is_stored_once_and_shown_in_slack(
    fire, deliver, fake_slack, clock, warehouse_path
) -> None:
    alert_id = fire("api")
    deliver()
    assert press(alert_id, "sreops_ack", clock) == (200, "")
    assert press(alert_id, "sreops_ack", clock) == (200, "")  # Slack retried the same request
    deliver()
    assert feedback_rows(warehouse_path) == [(alert_id, "ack", "U42", None)]
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    assert ":eyes: acknowledged by <@U42>" in json.dumps(root["blocks"])
    [reply] = fake_slack.replies("sre-alerts", root["ts"])
    assert reply["text"] == ":eyes: Acknowledged by <@U42>."


@pytest.mark.parametrize("tamper", ["wrong secret", "changed body", "stale timestamp", "no signature"])
def test_forged_or_replayed_requests_are_refused(tamper, fire, clock, warehouse_path) -> None:
    alert_id = fire("api")
    body = body_for(alert_id, "sreops_not_anomaly")
    now = int(clock.epoch())
    headers = signed_headers(body, now)
    if tamper == "wrong secret":
        headers = signed_headers(body, now, secret="not-the-secret")
    elif tamper == "changed body":
        body = body_for(alert_id, "sreops_not_anomaly", user="U666")
    elif tamper == "stale timestamp":
        headers = signed_headers(body, now - 600)
    else:
        headers = {"X-Slack-Request-Timestamp": str(now)}
    status, _ = interactivity.handle(body, headers, SECRET, now=float(now))
    assert status == 401
    assert not spool.spool_path().exists() or spool.spool_path().read_text() == ""


def test_not_an_anomaly_suppresses_the_same_pattern_but_not_a_worse_one(
    fire, resolve, deliver, fake_slack, clock, warehouse_path, alert_rows
) -> None:
    first = fire("api", ["cpu_utilization"], observed=85.0, high=60.0)
    deliver()
    press(first, "sreops_not_anomaly", clock)
    deliver()
    resolve("anomaly:api")
    deliver()
    clock.advance(3 * 3600)  # long after: a new incident, not a re-open
    same = fire("api", ["cpu_utilization"], observed=88.0, high=60.0)  # within the labelled pattern
    deliver()
    rows = alert_rows().set_index("alert_id")
    assert rows.loc[same, "delivery_status"] == "suppressed"
    assert len(fake_slack.messages("sre-alerts", include_replies=False)) == 1
    resolve("anomaly:api")
    deliver()
    clock.advance(3 * 3600)
    worse = fire("api", ["cpu_utilization"], observed=140.0, high=60.0)  # far beyond what was labelled
    other = fire("web", ["cpu_utilization"], observed=85.0, high=60.0)  # another service
    deliver()
    rows = alert_rows().set_index("alert_id")
    assert rows.loc[worse, "delivery_status"] == "delivered"
    assert rows.loc[other, "delivery_status"] == "delivered"
    with warehouse.connect(warehouse_path) as con:
        windows = feedback_store.suppressed_windows(con, "api")
    # the labelled incident and the one suppressed as the same pattern stay out of training
    starts = [
        dt.datetime.fromisoformat(json.loads(rows.loc[a, "details"])["first_minute"]) for a in (first, same)
    ]
    assert [(w[0], w[1]) for w in windows] == [("api", starts[0]), ("api", starts[1])]
    assert starts[1] - starts[0] >= dt.timedelta(hours=3)


def test_snooze_holds_updates_until_it_ends(fire, deliver, fake_slack, clock, warehouse_path) -> None:
    alert_id = fire("api", score=70)
    deliver()
    press(alert_id, "sreops_snooze", clock, value=f"{alert_id}|60")
    deliver()
    [root] = fake_slack.messages("sre-alerts", include_replies=False)
    assert fake_slack.replies("sre-alerts", root["ts"])[-1]["text"].startswith(":zzz: Snoozed by <@U42>")
    updates_before = len(fake_slack.calls_to("chat.update"))
    clock.advance(600)
    fire("api", severity="critical", score=95)
    deliver()
    assert len(fake_slack.calls_to("chat.update")) == updates_before  # held
    clock.advance(3600)
    fire("api", severity="critical", score=97, metrics=["cpu_utilization", "error_rate"])
    deliver()
    assert len(fake_slack.calls_to("chat.update")) == updates_before + 1
    [snooze] = [r for r in feedback_rows(warehouse_path) if r[1] == "snooze"]
    assert snooze[3] == dt.datetime(2026, 11, 20, 14, 0)


def test_precision_per_detector_from_labels(fire, clock, warehouse_path) -> None:
    labels = {"iforest": ["ack", "ack", "not_anomaly", None], "ecod": ["not_anomaly"]}
    for detector, actions in labels.items():
        for i, action in enumerate(actions):
            alert_id = fire(f"{detector}-{i}", detector=detector)
            if action:
                with warehouse.transaction(warehouse_path) as con:
                    feedback_store.record(
                        con, alert_id=alert_id, action=action, now=clock.now(), user_id="U1"
                    )
    with warehouse.connect(warehouse_path) as con:
        rows = {r["detector"]: r for r in feedback_store.precision_by_detector(con)}
    assert rows["iforest"]["precision"] == pytest.approx(2 / 3)
    assert (rows["iforest"]["incidents"], rows["iforest"]["labelled"]) == (4, 3)
    assert rows["ecod"]["precision"] == 0.0


def test_feedback_for_an_unknown_alert_is_an_error(warehouse_path, clock) -> None:
    with (
        warehouse.transaction(warehouse_path) as con,
        pytest.raises(labels.UnknownAlertError, match="nope"),
    ):
        feedback_store.record(con, alert_id="nope", action="ack", now=clock.now())


def test_http_endpoint_verifies_and_lands_feedback(fire, warehouse_path, clock) -> None:
    alert_id = fire("api")
    server = InteractivityServer("127.0.0.1", 0, SECRET, str(warehouse_path), drain_every_s=0.05).start()
    try:
        body = body_for(alert_id, "sreops_ack")
        now = int(dt.datetime.now(dt.UTC).timestamp())
        good = urllib.request.Request(server.url, data=body, headers=signed_headers(body, now), method="POST")
        with urllib.request.urlopen(good, timeout=5) as response:
            assert response.status == 200
        forged = urllib.request.Request(
            server.url, data=body, headers=signed_headers(body, now, "x"), method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 401
        for _ in range(200):  # the worker drains the spool; bounded wait on its own progress
            if feedback_rows(warehouse_path):
                break
            server._wake.set()
            server._stop.wait(0.05)
        assert [r[:2] for r in feedback_rows(warehouse_path)] == [(alert_id, "ack")]
    finally:
        server.stop()
