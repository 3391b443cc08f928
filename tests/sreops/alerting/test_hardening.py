"""Hostile data, bad feedback records and hostile HTTP clients (issue 12, items 3, 4 and 8).

Each test drives the real code paths: delivery through slack-sdk to the fake Slack (whose received
calls are inspected), the feedback spool through a delivery pass, and the interactivity endpoint
over loopback sockets.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from urllib.parse import urlencode

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sreops import config, warehouse
from sreops.alerting import blocks, digest, interactivity, mrkdwn, outbox
from sreops.alerting.feedback import labels, spool
from sreops.alerting.feedback import store as feedback_store
from sreops.alerting.interactivity import InteractivityServer

HOSTILE = "<!channel> <https://evil.example/login|Click to re-auth>"
ESCAPED = "&lt;!channel&gt; &lt;https://evil.example/login|Click to re-auth&gt;"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def everything_posted(fake_slack) -> str:
    """Every parameter of every call the fake Slack received, as one text."""
    return json.dumps([c.params for c in fake_slack.calls], default=repr)


def signed(body: bytes, timestamp: float) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(int(timestamp)),
        "X-Slack-Signature": interactivity.sign(SECRET, body, str(int(timestamp))),
    }


def press_body(payload: object) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def button(alert_id: str, action_id: str, value: str | None = None, user: dict | None = None) -> dict:
    return {
        "type": "block_actions",
        "user": user or {"id": "U42", "username": "alice"},
        "actions": [{"action_id": action_id, "value": value or alert_id, "action_ts": "1795179700.1"}],
    }


def press(clock, payload: object) -> tuple[int, str]:
    body = press_body(payload)
    return interactivity.handle(body, signed(body, clock.epoch()), SECRET, now=clock.epoch())


# ---- item 3: data never becomes Slack markup -------------------------------------------------------
@pytest.fixture
def hostile_logs(warehouse_path, insert_rows, clock):
    start = clock.now() - dt.timedelta(minutes=10)
    minutes = pd.date_range(start, clock.now(), freq="1min")
    counts = pd.DataFrame({"minute": minutes, "service": "api", "cluster_id": "66", "count": 20})
    clusters = pd.DataFrame(
        {
            "cluster_id": ["66"],
            "service": ["api"],
            "template": [HOSTILE],
            "size": [200],
            "first_seen": [start],
            "last_seen": [clock.now()],
        }
    )
    with warehouse.transaction(warehouse_path) as con:
        insert_rows(con, "log_cluster_counts_1m", counts)
        insert_rows(con, "log_clusters", clusters)


def test_hostile_names_in_data_never_become_mentions_or_links(
    fire, resolve, features, hostile_logs, drain, fake_slack, clock, warehouse_path
) -> None:
    cfg = config.Config.model_validate({"services": {"api": {"owners": ["U0OWNER1", "S0GROUP1", HOSTILE]}}})
    features(service="api", metric=HOSTILE)
    api_id = fire("api", [HOSTILE], summary=f"api: {HOSTILE} unusual")  # metric and summary
    fire(HOSTILE, ["cpu_utilization"])  # a service named like that
    with warehouse.transaction(warehouse_path) as con:
        outbox.open_or_update(
            con,
            fingerprint="new_log_pattern:api:66",
            kind="new_log_pattern",
            service="api",
            severity="warning",
            summary=f"New error pattern in api: {HOSTILE}",
            details={"template": HOSTILE, "example": f"ERROR {HOSTILE}", "metrics": []},
            now=clock.now(),
        )
    drain(config_override=cfg)
    assert press(clock, button(api_id, "sreops_ack")) == (200, "")
    hostile_user = {"id": "U1> <!channel", "username": HOSTILE}
    assert press(clock, button(api_id, "sreops_ack", user=hostile_user)) == (200, "")
    clock.advance(5)
    drain(config_override=cfg)
    with warehouse.transaction(warehouse_path) as con:
        outbox.resolve(con, "anomaly:api", now=clock.now(), note=HOSTILE)
    digest.enqueue(warehouse_path, cfg, clock.now())
    drain(config_override=cfg)

    posted = everything_posted(fake_slack)
    assert fake_slack.calls_to("files.completeUploadExternal", ok=True)  # the chart went too
    assert "<!channel>" not in posted and "<https://evil" not in posted
    assert ESCAPED in posted  # shown, as text
    for needed in ("*Example line*", "daily digest", "Resolved after", "Acknowledged by"):
        assert needed in posted
    # sreops' own markup still works: timestamps, presser and owner mentions from the config
    assert "<!date^" in posted and "<@U42>" in posted
    assert "<@U0OWNER1> <!subteam^S0GROUP1> " + ESCAPED in posted


@given(st.text(max_size=60) | st.sampled_from([HOSTILE, "U0OWNER1", "<@U0OWNER1>", "S0GROUP1", "U1> <!here"]))
def test_data_text_becomes_a_mention_only_when_it_is_a_valid_id(text: str) -> None:
    for shown in (mrkdwn.escape(text), mrkdwn.code(text), mrkdwn.code_block(text)):
        assert "<" not in shown and ">" not in shown
    mention = mrkdwn.who(text, text)
    assert ("<" not in mention and ">" not in mention) or mention == f"<@{text}>" and text.isalnum()
    owner = mrkdwn.owner_mention(text)
    assert ("<" not in owner and ">" not in owner) or owner.removeprefix("<@").removeprefix(
        "<!subteam^"
    ).removesuffix(">").isalnum()
    assert mrkdwn.escape(text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


def test_clipping_never_cuts_an_entity_or_a_sequence_of_ours() -> None:
    text = "x" * 10 + "&lt;!channel&gt;"
    for limit in range(5, len(text)):
        cut = mrkdwn.clip(text, limit)
        assert len(cut) <= limit and "&l…" not in cut and "&…" not in cut and "&lt…" not in cut
    stamped = "y" * 20 + blocks.slack_time(dt.datetime(2026, 11, 20, 13, 0))
    assert all("<" not in mrkdwn.clip(stamped, n) for n in range(21, len(stamped)))


# ---- item 4: one bad feedback record never stops the rest -------------------------------------------
def spool_raw(data: bytes) -> None:
    path = spool.spool_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(data)


def entry(alert_id: str, action: str, key: str, **extra: object) -> dict:
    return {"feedback_id": key, "alert_id": alert_id, "action": action, "user_id": "U7", **extra}


def test_bad_spooled_records_are_set_aside_with_reasons_and_the_rest_apply(
    fire, deliver, fake_slack, clock, warehouse_path
) -> None:
    first, second = fire("api"), fire("web")
    deliver()
    spool.spool(entry(first, "ack", "good-1"))
    spool_raw(b'{"feedback_id": "torn", "alert_id": "')  # a writer killed mid-line
    spool.spool(entry(second, "not_anomaly", "good-2"))  # appended right after the fragment
    spool_raw(b"[1, 2]\n")
    spool.spool(entry("no-such-alert", "ack", "unknown"))
    at = clock.now()
    spool.spool(entry(first, "snooze", "huge", snooze_minutes=4_294_967_296, at=at.isoformat()))
    spool.spool(entry(first, "ack", "future", at="9999-12-31T23:59:00"))
    spool.spool(entry(first, "explode", "bad-action"))
    spool_raw(b"\xff\xfe not utf-8\n")
    report = deliver()  # never raises: bad lines are set aside
    assert report.feedback == 3
    with warehouse.connect(warehouse_path) as con:
        rows = dict(con.execute("SELECT feedback_id, snooze_until FROM alert_feedback").fetchall())
    assert set(rows) == {"good-1", "good-2", "huge"}
    assert rows["huge"] == at + dt.timedelta(minutes=labels.MAX_SNOOZE_MINUTES)  # clamped
    set_aside = [json.loads(line) for line in spool.rejected_path().read_text().splitlines()]
    reasons = " | ".join(r["reason"] for r in set_aside)
    assert len(set_aside) == 6
    for why in ("not JSON", "not an object", "no-such-alert", "in the future", "'explode'", "UTF-8"):
        assert why in reasons  # the torn fragment, a list, an unknown alert, a bad clock, action, bytes
    assert spool.spool_path().read_bytes() == b""
    spool.spool(entry(second, "ack", "later"))  # later feedback still flows
    assert deliver().feedback == 1


def test_an_absurd_snooze_is_clamped_where_it_is_used(fire, clock, warehouse_path) -> None:
    alert_id = fire("api")
    with warehouse.transaction(warehouse_path) as con:
        feedback_store.record(
            con, alert_id=alert_id, action="snooze", now=clock.now(), snooze_minutes=4_294_967_296
        )
        feedback_store.record(
            con, alert_id=alert_id, action="snooze", now=clock.now(), snooze_minutes=-5, user_id="U2"
        )
        untils = sorted(r[0] for r in con.execute("SELECT snooze_until FROM alert_feedback").fetchall())
    assert untils == [clock.now() + dt.timedelta(minutes=1), clock.now() + dt.timedelta(days=7)]
    assert press(clock, button(alert_id, "sreops_snooze", f"{alert_id}|{'9' * 5000}")) == (200, "")


def test_endpoint_worker_survives_a_bad_record_and_stores_later_presses(fire, warehouse_path) -> None:
    alert_id = fire("api")
    server = InteractivityServer("127.0.0.1", 0, SECRET, str(warehouse_path), drain_every_s=0.02).start()
    try:
        now = dt.datetime.now(dt.UTC).timestamp()  # the endpoint checks signatures against real time
        for payload in (
            button(alert_id, "sreops_snooze", f"{alert_id}|4294967296"),  # overflowed the old worker
            button(alert_id, "sreops_ack"),
        ):
            body = press_body(payload)
            assert http(server, body, signed(body, now)).startswith(b"HTTP/1.0 200")
        for _ in range(400):  # bounded wait on the worker's own progress
            with warehouse.connect(warehouse_path) as con:
                actions = {r[0] for r in con.execute("SELECT action FROM alert_feedback").fetchall()}
            if actions == {"snooze", "ack"}:
                break
            server._wake.set()
            server._stop.wait(0.05)
        assert actions == {"snooze", "ack"}
    finally:
        server.stop()


# ---- item 8: the endpoint against hostile clients --------------------------------------------------
def http(
    server: InteractivityServer, body: bytes, headers: dict[str, str], raw_length: str | None = None
) -> bytes:
    """One POST over a raw socket; returns what came back (b'' when the server closed without a word)."""
    host, port = server.httpd.server_address[:2]
    length = str(len(body)) if raw_length is None else raw_length
    head = [
        f"POST {interactivity.PATH} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/x-www-form-urlencoded",
    ]
    head += [f"Content-Length: {v}" for v in length.split(",")] if length else []
    head += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, port), timeout=3) as sock:  # a hang fails the test, no timing
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def server(warehouse_path):
    running = InteractivityServer("127.0.0.1", 0, SECRET, str(warehouse_path), deadline_s=0.5).start()
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("length", "status"),
    [("-1", 400), ("abc", 400), ("1e3", 400), ("99999999999", 413), ("10,12", 400), ("", 411)],
)
def test_bad_content_length_is_refused_at_once(server, length, status) -> None:
    # No body follows: the answer must come from the headers alone (the old server waited on -1).
    answer = http(server, b"", signed(b"", dt.datetime.now(dt.UTC).timestamp()), raw_length=length)
    assert answer.startswith(f"HTTP/1.0 {status}".encode())


@pytest.mark.parametrize("payload", ["[1, 2]", "5", "null", '"text"', "{not json"])
def test_signed_payload_that_is_not_an_object_is_a_400(server, payload) -> None:
    body = urlencode({"payload": payload}).encode()
    answer = http(server, body, signed(body, dt.datetime.now(dt.UTC).timestamp()))
    assert answer.startswith(b"HTTP/1.0 400") and b"JSON object" in answer


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "actions": "x"},
        {"type": "block_actions", "actions": [5, None, {"action_id": 3}]},
        {"type": "block_actions", "user": "bob", "actions": [{"action_id": "sreops_ack", "value": 7}]},
        {"type": "block_actions", "actions": [{"action_id": "sreops_snooze", "value": "a|²"}]},
    ],
)
def test_signed_object_of_odd_shape_is_acknowledged_and_stores_only_what_is_sound(server, payload) -> None:
    body = press_body(payload)
    answer = http(server, body, signed(body, dt.datetime.now(dt.UTC).timestamp()))
    assert answer.startswith(b"HTTP/1.0 200")
    spooled = spool.spool_path().read_text() if spool.spool_path().exists() else ""
    assert all(json.loads(line)["snooze_minutes"] in (None, 60) for line in spooled.splitlines())


def test_forged_and_stale_requests_over_http_are_401(server) -> None:
    body = press_body(button("a1", "sreops_ack"))
    now = dt.datetime.now(dt.UTC).timestamp()
    assert http(server, body, signed(body, now - 600)).startswith(b"HTTP/1.0 401")
    forged = {**signed(body, now), "X-Slack-Signature": "v0=" + "0" * 64}
    assert http(server, body, forged).startswith(b"HTTP/1.0 401")


def test_idle_connections_are_closed_and_hold_a_bounded_number_of_threads(server) -> None:
    host, port = server.httpd.server_address[:2]
    before = threading.active_count()
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(200)]
    try:
        for sock in idle[:5]:
            sock.sendall(b"POST /slack/interactivity HTTP/1.1\r\nContent-Length: 100\r\n\r\npart")  # stalls
        for sock in idle:  # each is answered 503 at once or closed at its deadline: recv never hangs
            try:
                data = sock.recv(1024)
            except TimeoutError:
                pytest.fail("an idle connection was held open")
            assert data == b"" or data.startswith(b"HTTP/1.0 503")
        assert threading.active_count() - before <= interactivity.WORKERS
    finally:
        for sock in idle:
            sock.close()
    body = press_body(button("a1", "sreops_ack"))
    assert http(server, body, signed(body, dt.datetime.now(dt.UTC).timestamp())).startswith(b"HTTP/1.0 200")
