"""Incident grouping (N-of-M, hysteresis, quiet period, events) and its reconciliation with `alerts`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from sreops import warehouse
from sreops.detection import incidents
from sreops.detection.settings import AlarmPolicy

T0 = dt.datetime(2026, 11, 20, 10, 0)
POLICY = AlarmPolicy(threshold=75, close_threshold=50, open_minutes=2, window_minutes=5, quiet_minutes=15)


def minutes(
    scores: list[float], service: str = "checkout", events: dict[int, str] | None = None
) -> pd.DataFrame:
    """One row per minute from T0; minute i gets an explanation naming metric m<i % 2>."""
    return pd.DataFrame(
        {
            "service": service,
            "minute": [T0 + dt.timedelta(minutes=i) for i in range(len(scores))],
            "score": scores,
            "explanation": [
                json.dumps([{"metric": f"m{i % 2}", "score": s}]) if s >= 3 else None
                for i, s in enumerate(scores)
            ],
            "event": [(events or {}).get(i) for i in range(len(scores))],
        }
    )


def test_one_hot_minute_does_not_open_an_incident() -> None:
    frame = minutes([0] * 10 + [99] + [0] * 30)
    assert incidents.find_incidents(frame, POLICY) == []


def test_two_hot_minutes_within_five_open_one_incident_from_the_first() -> None:
    frame = minutes([0] * 10 + [90, 10, 10, 80] + [0] * 30)
    (incident,) = incidents.find_incidents(frame, POLICY)
    assert incident.first_minute == T0 + dt.timedelta(minutes=10)
    assert incident.peak_score == 90 and incident.severity == "critical"
    assert incident.resolved and incident.resolved_at == T0 + dt.timedelta(minutes=14)
    assert incident.metrics == ["m0", "m1"]


def test_hysteresis_keeps_it_open_between_the_close_and_open_scores() -> None:
    frame = minutes([0] * 5 + [90, 90] + [60] * 40 + [0] * 20)
    (incident,) = incidents.find_incidents(frame, POLICY)
    assert incident.last_minute == T0 + dt.timedelta(minutes=46)


def test_quiet_period_resolves_and_a_later_burst_is_a_new_incident() -> None:
    frame = minutes([90, 90] + [0] * 16 + [90, 90] + [0] * 20)
    first, second = incidents.find_incidents(frame, POLICY)
    assert first.resolved and second.first_minute == T0 + dt.timedelta(minutes=18)


def test_short_gap_below_the_quiet_period_does_not_flap() -> None:
    frame = minutes([90, 90] + [0] * 10 + [90] + [0] * 20)
    assert len(incidents.find_incidents(frame, POLICY)) == 1


def test_incident_still_hot_at_the_end_of_the_data_stays_open() -> None:
    frame = minutes([0] * 5 + [90] * 5)
    (incident,) = incidents.find_incidents(frame, POLICY)
    assert not incident.resolved and incident.resolved_at is None


def test_minutes_not_yet_seen_are_not_quiet_minutes() -> None:
    """An incident in the hour in progress: ten quiet minutes so far, the rest of the hour unknown."""
    frame = minutes([0] * 5 + [90] * 5 + [0] * 10)
    (incident,) = incidents.find_incidents(frame, POLICY)
    assert not incident.resolved
    later = minutes([0] * 5 + [90] * 5 + [0] * 15)
    (incident,) = incidents.find_incidents(later, POLICY)
    assert incident.resolved and incident.resolved_at == T0 + dt.timedelta(minutes=10)


def test_a_gap_in_the_data_does_not_resolve_an_incident() -> None:
    frame = minutes([0] * 5 + [90] * 5 + [0] * 3)
    later = frame.assign(
        minute=frame["minute"].where(frame.index < 10, frame["minute"] + dt.timedelta(hours=2))
    )
    (incident,) = incidents.find_incidents(later, POLICY)
    assert not incident.resolved


def excursion(
    scores: list[float], observed: list[float], low: float = 90.0, high: float = 110.0
) -> pd.DataFrame:
    """Minutes whose explanation names metric `rps`, expected [low, high] and the observed value."""
    frame = minutes(scores)
    frame["explanation"] = [
        json.dumps([{"metric": "rps", "score": s, "observed": o, "expected_low": low, "expected_high": high}])
        for s, o in zip(scores, observed, strict=True)
    ]
    return frame


def test_the_return_to_the_level_before_an_incident_is_its_recovery_not_a_new_incident() -> None:
    # a drop from ~100 to 40 (learned as the new level after a while), then back to 100
    scores = [0] * 5 + [95] * 5 + [0] * 40 + [95] * 3 + [0] * 20
    observed = [100] * 5 + [40] * 45 + [101] * 23
    (incident,) = incidents.find_incidents(excursion(scores, observed), POLICY)
    assert incident.resolved and incident.recovery_minutes == 3
    # going further away instead (a second, deeper drop) is news
    deeper = [100] * 5 + [40] * 45 + [5] * 23
    first, second = incidents.find_incidents(excursion(scores, deeper), POLICY)
    assert second.first_minute == T0 + dt.timedelta(minutes=50)


def test_minutes_inside_a_deploy_window_do_not_open_incidents() -> None:
    frame = minutes([0] * 5 + [95] * 6 + [0] * 20, events={i: "deploy" for i in range(5, 11)})
    assert incidents.find_incidents(frame, POLICY) == []


def alerts_rows(path: Path) -> pd.DataFrame:
    with warehouse.connect(path) as con:
        return con.execute("SELECT * FROM alerts ORDER BY opened_at").df()


def test_reconcile_opens_then_resolves_one_row_and_never_duplicates(warehouse_path: Path) -> None:
    ongoing = minutes([0] * 5 + [80] * 5)
    (incident,) = incidents.find_incidents(ongoing, POLICY)
    report = incidents.reconcile(warehouse_path, [incident], "v1", T0, {"checkout"}, T0)
    assert report.opened == 1
    row = alerts_rows(warehouse_path).iloc[0]
    assert (row["fingerprint"], row["kind"], row["status"], row["severity"]) == (
        "anomaly:checkout",
        "anomaly",
        "firing",
        "critical",
    )
    assert row["revision"] == 1 and row["delivered_revision"] == 0 and row["delivery_status"] == "pending"
    details = json.loads(row["details"])
    for key in (
        "metrics",
        "score",
        "observed",
        "expected_low",
        "expected_high",
        "explanation",
        "first_minute",
        "last_minute",
        "detector",
    ):
        assert key in details

    # the same run again changes nothing worth a message
    incidents.reconcile(warehouse_path, [incident], "v1", T0, {"checkout"}, T0)
    assert len(alerts_rows(warehouse_path)) == 1 and alerts_rows(warehouse_path).iloc[0]["revision"] == 1

    later = minutes([0] * 5 + [80] * 5 + [0] * 30)
    (resolved,) = incidents.find_incidents(later, POLICY)
    report = incidents.reconcile(warehouse_path, [resolved], "v1", T0, {"checkout"}, T0)
    row = alerts_rows(warehouse_path).iloc[0]
    assert report.resolved == 1 and row["status"] == "resolved" and row["revision"] == 2
    assert row["resolved_at"] == T0 + dt.timedelta(minutes=10)


def test_escalation_bumps_the_revision(warehouse_path: Path) -> None:
    minor = minutes([0] * 5 + [80, 80] + [60] * 3)
    (first,) = incidents.find_incidents(minor, POLICY)
    first.peak_score = 55.0  # major
    incidents.reconcile(warehouse_path, [first], "v1", T0, {"checkout"}, T0)
    first.peak_score = 95.0  # critical
    report = incidents.reconcile(warehouse_path, [first], "v1", T0, {"checkout"}, T0)
    row = alerts_rows(warehouse_path).iloc[0]
    assert report.escalated == 1 and row["severity"] == "critical" and row["revision"] == 2


def test_an_incident_that_re_scoring_removes_is_withdrawn(warehouse_path: Path) -> None:
    frame = minutes([0] * 5 + [80] * 5)
    (incident,) = incidents.find_incidents(frame, POLICY)
    incidents.reconcile(warehouse_path, [incident], "v1", T0, {"checkout"}, T0)
    report = incidents.reconcile(warehouse_path, [], "v1", T0, {"checkout"}, T0)
    row = alerts_rows(warehouse_path).iloc[0]
    assert report.withdrawn == 1 and row["status"] == "resolved" and row["revision"] == 2
    assert "withdrawn" in json.loads(row["details"])["resolution"]


@pytest.mark.parametrize(
    "bad", [dict(threshold=40, close_threshold=50), dict(open_minutes=6, window_minutes=5)]
)
def test_inconsistent_policy_is_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        AlarmPolicy(**bad)
