"""Delivery killed with SIGKILL at seeded points, restarted at once: every alert posted exactly once.

Each pass runs in its own process against the fake Slack on 127.0.0.1. The kill lands at a
seeded point: as the fake receives the k-th Slack call (not applied), right after the fake
applied it (its response lost), or a seeded moment after the process started (anywhere: planning,
recording, a warehouse transaction). The next pass starts the moment the killed one is dead, and
must make progress then (issue 12, item 10c: it used to wait out a 70 s lease).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops import warehouse
from sreops.alerting import outbox
from sreops.devtools.fake_slack import FakeSlack

REPO = Path(__file__).resolve().parents[3]
CHANNELS = ("sre-alerts", "api-oncall", "payments", "platform")
SERVICES = {f"svc{i}": CHANNELS[i % len(CHANNELS)] for i in range(8)}
CHARTED = ("svc0", "svc5")  # incidents with features: a chart upload (three calls) in their threads
CONFIG = {
    "alerting": {"pacing_seconds": 0.02},
    "services": {name: {"slack_channel": f"#{channel}"} for name, channel in SERVICES.items()},
}
PASS = """
import json, sys
from sreops import config
from sreops.alerting.delivery.run import Deliverer
from sreops.alerting.slack import SlackPoster, make_client

path, url, token, cfg = sys.argv[1:5]
poster = SlackPoster(make_client(token, url))
print("ready", flush=True)
report = Deliverer(path, poster=poster, config=config.Config.model_validate(json.loads(cfg))).run()
print(json.dumps({"delivered": report.delivered, "note": report.note, "errors": report.errors}), flush=True)
"""
KILL_ROUNDS = 6
CLEAN_ROUNDS = 4


class KillingSlack(FakeSlack):
    """The fake Slack, able to SIGKILL the delivery process at its k-th call, before or after applying it."""

    def __init__(self) -> None:
        super().__init__(channels=CHANNELS)
        self.victim: subprocess.Popen | None = None
        self.kill_at: tuple[str, int] | None = None
        self.seen = 0

    def arm(self, victim: subprocess.Popen, kill_at: tuple[str, int] | None) -> None:
        with self._lock:
            self.victim, self.kill_at, self.seen = victim, kill_at, 0

    def _kill_if(self, when: str) -> bool:
        if self.kill_at is None or self.victim is None or self.kill_at != (when, self.seen):
            return False
        os.kill(self.victim.pid, signal.SIGKILL)
        self.victim.wait()
        return True

    def _dispatch(self, method, params, handler):
        self.seen += 1
        if self._kill_if("before"):
            return {"ok": False, "error": "never_applied"}  # nobody reads it: the caller is dead
        body = super()._dispatch(method, params, handler)
        self._kill_if("after")
        return body


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def queue_incidents(path: Path) -> dict[str, str]:
    """One firing incident per service (and minute features for the charted ones)."""
    at = now()
    rng = np.random.default_rng(7)
    ids = {}
    with warehouse.transaction(path) as con:
        for service in CHARTED:
            minutes = pd.date_range(at - dt.timedelta(hours=2), at, freq="1min", inclusive="left")
            values = 40 + rng.normal(0, 4, len(minutes))
            values[-10:] += 55
            frame = pd.DataFrame({"minute": minutes.floor("min"), "mean": values})
            frame["service"], frame["metric"], frame["n"], frame["std"] = service, "cpu", 2, 1.0
            con.register("frame", frame)
            con.execute(
                "INSERT INTO metric_features_1m (minute, service, metric, n, mean, min, max, std, last)"
                " SELECT minute, service, metric, n, mean, mean, mean, std, mean FROM frame"
            )
            con.unregister("frame")
        for service in SERVICES:
            ids[service] = outbox.open_or_update(
                con,
                fingerprint=f"anomaly:{service}",
                kind="anomaly",
                service=service,
                severity="major",
                summary=f"{service}: cpu unusual",
                details={
                    "metrics": ["cpu"],
                    "score": 90,
                    "observed": 95.0,
                    "expected_low": 20.0,
                    "expected_high": 60.0,
                    "first_minute": (at - dt.timedelta(minutes=10)).isoformat(),
                    "last_minute": (at - dt.timedelta(minutes=1)).isoformat(),
                },
                score=90,
                now=at,
            )
    return ids


def resolve_half(path: Path) -> list[str]:
    with warehouse.transaction(path) as con:
        return [a for s in list(SERVICES)[::2] for a in outbox.resolve(con, f"anomaly:{s}", now=now())]


def start_pass(path: Path, fake: FakeSlack) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", PASS, str(path), fake.url, fake.token, json.dumps(CONFIG)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def run_until_delivered(path: Path, fake: KillingSlack, rng: random.Random) -> list[str]:
    """Kill passes at seeded points, then run clean ones until the outbox is empty; returns what happened."""
    log: list[str] = []
    rounds = ["kill"] * KILL_ROUNDS + ["clean"] * CLEAN_ROUNDS
    for kind in rounds:
        if kind == "kill" and pending(path) == 0:
            continue
        mode = rng.choice(["before", "after", "delay"]) if kind == "kill" else "clean"
        proc = start_pass(path, fake)
        fake.arm(proc, (mode, rng.randint(1, 12)) if mode in ("before", "after") else None)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        if mode == "delay":
            timer = threading.Timer(rng.uniform(0.0, 0.6), lambda p=proc: p.poll() is None and p.kill())
            timer.start()
        out, _ = proc.communicate(timeout=60)
        if mode == "delay":
            timer.cancel()
        fake.arm(proc, None)
        report = json.loads(out) if proc.returncode == 0 and out.strip() else None
        log.append(f"{mode}: rc {proc.returncode} {report}")
        if report is not None:
            # The pass right after a kill holds the outbox at once: no lease of the dead one to outwait.
            assert "another delivery pass" not in report["note"], log
        if kind == "clean" and report is not None and pending(path) == 0:
            return log
    raise AssertionError(f"outbox not delivered after {len(log)} passes: {log}")


def pending(path: Path) -> int:
    with warehouse.connect(path) as con:
        return con.execute("SELECT count(*) FROM alerts WHERE delivered_revision < revision").fetchall()[0][0]


def posted_step_keys(fake: FakeSlack) -> Counter:
    keys: Counter = Counter()
    for channel in CHANNELS:
        for message in fake.messages(channel):
            key = ((message.get("metadata") or {}).get("event_payload") or {}).get("step_key")
            keys[key or "file:" + ",".join(f["title"] for f in message.get("files") or [])] += 1
    return keys


@pytest.mark.slow
@pytest.mark.parametrize("seed", [4])
def test_killed_delivery_restarted_posts_every_alert_exactly_once(warehouse_path, monkeypatch, seed) -> None:
    monkeypatch.delenv("SLACK_API_URL", raising=False)
    rng = random.Random(seed)
    with KillingSlack() as fake:
        ids = queue_incidents(warehouse_path)
        first = run_until_delivered(warehouse_path, fake, rng)
        resolved = resolve_half(warehouse_path)
        second = run_until_delivered(warehouse_path, fake, rng)
        keys = posted_step_keys(fake)
        doubled = {k: n for k, n in keys.items() if n > 1}
        assert not doubled, (doubled, first, second)  # never twice
        roots = {k.split(":")[0] for k in keys if k.endswith(":1:root")}
        assert roots == set(ids.values())  # every incident's root, never dropped
        resolutions = {k.split(":")[0] for k in keys if k.endswith(":reply")}
        assert resolutions == set(resolved)  # and every resolution in its thread
        charts = [k for k in keys if k.startswith("file:")]
        assert len(charts) == len(CHARTED)
        assert sum("rc -9" in line for line in first + second) >= 4, (first, second)  # it was killed
    with warehouse.connect(warehouse_path) as con:
        states = con.execute("SELECT DISTINCT delivery_status FROM alerts").fetchall()
    assert states == [("delivered",)]
