"""Incidents stored as the data arrives equal the incidents of the whole stream: one per episode, never twice.

Random service-minute scores land hour by hour (some hours in two halves, as the hour in progress
does), `update_incidents` runs after each landing and again for some earlier hours (re-runs,
backfills); at the end, and at every step, the `alerts` rows are exactly what `find_incidents`
finds in everything landed so far.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sreops import warehouse
from sreops.detection import incidents, run
from sreops.detection.settings import AlarmPolicy

T0 = dt.datetime(2026, 11, 20)
POLICY = AlarmPolicy(recovery_hours=1.0)
VERSION = "v-test"
HOUR = dt.timedelta(hours=1)

# a stretch of minutes: (length, kind) where kind is quiet, warm (between close and open), or hot
stretch = st.tuples(st.integers(1, 40), st.sampled_from(["quiet", "quiet", "warm", "hot"]))
LEVELS = {"quiet": 10.0, "warm": 60.0, "hot": 90.0}


def stream(stretches: list[tuple[int, str]], away: list[bool]) -> pd.DataFrame:
    """Service-minute rows of one service; hot minutes name metric `rps`, away from or back at ~100."""
    rows, minute = [], T0
    for (length, kind), far in zip(stretches, away, strict=False):
        for _ in range(length):
            score = LEVELS[kind]
            entry = {
                "metric": "rps",
                "score": score,
                "observed": 40.0 if far else 100.0,
                "expected_low": 90.0,
                "expected_high": 110.0,
            }
            rows.append(
                {"minute": minute, "service": "api", "score": score, "explanation": json.dumps([entry])}
            )
            minute += dt.timedelta(minutes=1)
    return pd.DataFrame(rows)


def land(path: Path, rows: pd.DataFrame) -> None:
    frame = rows.assign(
        metric="*",
        detector="service",
        version=VERSION,
        is_anomaly=rows["score"] >= POLICY.threshold,
        severity="info",
        event=None,
        scored_at=T0,
    )
    with warehouse.transaction(path) as con:
        con.register("landed", frame)
        con.execute(
            "INSERT INTO anomalies (minute, service, metric, detector, version, score, is_anomaly, severity,"
            " explanation, event, scored_at) SELECT minute, service, metric, detector, version, score,"
            " is_anomaly, severity, explanation, event, scored_at FROM landed"
        )
        con.unregister("landed")


def stored(path: Path) -> list[tuple]:
    with warehouse.connect(path) as con:
        rows = con.execute(
            "SELECT opened_at, status, details FROM alerts WHERE kind = 'anomaly' ORDER BY opened_at"
        ).fetchall()
    return [(opened, status, json.loads(text)["last_minute"]) for opened, status, text in rows]


def expected(rows: pd.DataFrame) -> list[tuple]:
    return [
        (i.first_minute, "resolved" if i.resolved else "firing", i.last_minute.isoformat())
        for i in incidents.find_incidents(rows, POLICY)
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stretches=st.lists(stretch, min_size=3, max_size=30),
    away=st.lists(st.booleans(), min_size=30, max_size=30),
    reruns=st.lists(st.integers(0, 12), max_size=4),
    split=st.booleans(),
)
def test_alerts_rows_equal_the_incidents_of_the_stream_landed_so_far(
    warehouse_path: Path, stretches, away, reruns, split
) -> None:
    with warehouse.transaction(warehouse_path) as con:
        con.execute("DELETE FROM alerts")
        con.execute("DELETE FROM anomalies")
    rows = stream(stretches, away)
    hours = pd.date_range(T0, rows["minute"].max(), freq="h").to_pydatetime()
    for step, hour in enumerate(hours):
        part = rows[(rows["minute"] >= hour) & (rows["minute"] < hour + HOUR)]
        pieces = [part.iloc[: len(part) // 2], part.iloc[len(part) // 2 :]] if split else [part]
        for piece in pieces:  # the hour in progress: scored when half of it is in, then again
            land(warehouse_path, piece)
            run.update_incidents(warehouse_path, hour, hour + HOUR, VERSION, POLICY, now=T0)
            seen = (
                rows[rows["minute"] <= piece["minute"].max()] if len(piece) else rows[rows["minute"] < hour]
            )
            assert stored(warehouse_path) == expected(seen)
        for back in reruns:  # re-runs of earlier hours (a backfill) change nothing
            if back <= step:
                again = hours[step - back]
                run.update_incidents(warehouse_path, again, again + HOUR, VERSION, POLICY, now=T0)
    assert stored(warehouse_path) == expected(rows)
    openings = [opened for opened, _, _ in stored(warehouse_path)]
    assert len(openings) == len(set(openings))
