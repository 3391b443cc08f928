"""Fixtures for alerting tests: a fake Slack on loopback, a fake clock, incident factories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sreops import config, warehouse
from sreops.alerting import outbox
from sreops.alerting.delivery.run import Deliverer
from sreops.alerting.delivery.work import DeliveryReport
from sreops.alerting.slack import SlackPoster, make_client
from sreops.devtools.clocks import FakeClock
from sreops.devtools.fake_slack import FakeSlack

START = dt.datetime(2026, 11, 20, 13, 0)
CHANNELS = ("sre-alerts", "api-oncall", "payments", "platform")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def fake_slack(clock: FakeClock) -> Iterator[FakeSlack]:
    with FakeSlack(channels=CHANNELS, clock=clock.epoch) as fake:
        yield fake


@pytest.fixture
def poster(fake_slack: FakeSlack) -> SlackPoster:
    client = make_client(fake_slack.token, fake_slack.url)
    assert client is not None
    return SlackPoster(client)


@pytest.fixture
def cfg() -> config.Config:
    return config.Config()


@pytest.fixture
def deliver(
    warehouse_path: Path, poster: SlackPoster, clock: FakeClock, cfg: config.Config
) -> Callable[..., DeliveryReport]:
    """One delivery pass against the fake Slack, on the fake clock."""

    def run(config_override: config.Config | None = None, **kwargs: Any) -> DeliveryReport:
        return Deliverer(
            warehouse_path, poster=poster, clock=clock, config=config_override or cfg, **kwargs
        ).run()

    return run


@pytest.fixture
def drain(deliver: Callable[..., DeliveryReport], clock: FakeClock) -> Callable[..., list[DeliveryReport]]:
    """Delivery passes every 5 s of fake time until nothing is due (bounded)."""

    def run(max_passes: int = 400, **kwargs: Any) -> list[DeliveryReport]:
        reports = []
        for _ in range(max_passes):
            report = deliver(**kwargs)
            reports.append(report)
            if not report.paused_until and report.calls == 0 and report.delivered == 0:
                return reports
            clock.advance(5)
        raise AssertionError(f"outbox not drained after {max_passes} passes: {reports[-1].summary()}")

    return run


def anomaly_details(
    metrics: list[str],
    *,
    score: float = 90.0,
    observed: float = 95.0,
    low: float = 20.0,
    high: float = 60.0,
    first: dt.datetime | None = None,
    last: dt.datetime | None = None,
    detector: str = "iforest",
) -> dict[str, Any]:
    first = first or START - dt.timedelta(minutes=10)
    last = last or START - dt.timedelta(minutes=1)
    return {
        "metrics": metrics,
        "score": score,
        "observed": observed,
        "expected_low": low,
        "expected_high": high,
        "first_minute": first.isoformat(),
        "last_minute": last.isoformat(),
        "detector": detector,
        "explanation": [
            {
                "metric": m,
                "feature": "mean",
                "observed": observed,
                "expected_low": low,
                "expected_high": high,
                "contribution": round(1 / len(metrics), 3),
            }
            for m in metrics
        ],
    }


@pytest.fixture
def fire(warehouse_path: Path, clock: FakeClock) -> Callable[..., str]:
    """Write (or update) an anomaly incident as detection would."""

    def run(
        service: str = "api",
        metrics: list[str] | None = None,
        *,
        severity: str = "major",
        fingerprint: str | None = None,
        summary: str | None = None,
        **details: Any,
    ) -> str:
        metrics = metrics or ["cpu_utilization"]
        details.setdefault("first", clock.now() - dt.timedelta(minutes=10))
        details.setdefault("last", clock.now() - dt.timedelta(minutes=1))
        info = anomaly_details(metrics, **details)
        with warehouse.transaction(warehouse_path) as con:
            return outbox.open_or_update(
                con,
                fingerprint=fingerprint or f"anomaly:{service}",
                kind="anomaly",
                service=service,
                severity=severity,
                summary=summary or f"{service}: {', '.join(metrics)} unusual",
                details=info,
                score=info["score"],
                now=clock.now(),
            )

    return run


@pytest.fixture
def resolve(warehouse_path: Path, clock: FakeClock) -> Callable[[str], list[str]]:
    def run(fingerprint: str) -> list[str]:
        with warehouse.transaction(warehouse_path) as con:
            return outbox.resolve(con, fingerprint, now=clock.now())

    return run


@pytest.fixture
def features(warehouse_path: Path) -> Callable[..., None]:
    """Minute features of one series around START: steady noise with a bump in the last 10 minutes."""

    def run(service: str = "api", metric: str = "cpu_utilization", seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        minutes = pd.date_range(START - dt.timedelta(hours=2), START, freq="1min", inclusive="left")
        values = 40 + rng.normal(0, 4, len(minutes))
        values[-10:] += 55
        frame = pd.DataFrame(
            {
                "minute": minutes,
                "service": service,
                "metric": metric,
                "n": 2,
                "mean": values,
                "min": values - 1,
                "max": values + 1,
                "std": 1.0,
                "last": values,
            }
        )
        with warehouse.transaction(warehouse_path) as con:
            con.register("frame", frame)
            con.execute(
                "INSERT INTO metric_features_1m (minute, service, metric, n, mean, min, max, std, last)"
                " SELECT minute, service, metric, n, mean, min, max, std, last FROM frame"
            )

    return run


@pytest.fixture
def alert_rows(warehouse_path: Path) -> Callable[[], pd.DataFrame]:
    """The alerts table as a frame."""

    def run() -> pd.DataFrame:
        with warehouse.connect(warehouse_path) as con:
            return con.execute("SELECT * FROM alerts ORDER BY opened_at").df()

    return run


@pytest.fixture
def insert_rows() -> Callable[[Any, str, pd.DataFrame], None]:
    """Insert rows into another stage's table, creating it when its migration is absent.

    Columns of the stage's real schema that the test does not care about get neutral values, so
    the tests follow the data contract's key columns rather than one stage's current extras.
    """

    def run(con: Any, table: str, frame: pd.DataFrame) -> None:
        columns = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = ?"
            " ORDER BY ordinal_position",
            [table],
        ).fetchall()
        filled = frame.copy()
        neutral = {"VARCHAR": "", "BIGINT": 0, "INTEGER": 0, "DOUBLE": 0.0, "BOOLEAN": False}
        for name, data_type, nullable in columns:
            if name not in filled.columns and nullable == "NO":
                filled[name] = neutral.get(data_type, pd.Timestamp("2026-01-01"))
        con.register("sreops_test_rows", filled)
        try:
            if columns:
                names = ", ".join(f'"{c}"' for c in filled.columns)
                con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM sreops_test_rows")
            else:
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM sreops_test_rows")
        finally:
            con.unregister("sreops_test_rows")

    return run
