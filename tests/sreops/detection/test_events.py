"""Deploy and maintenance events: recorded, loaded with the config's, tagged on minutes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from sreops import config
from sreops.detection import events, run

T0 = dt.datetime(2026, 11, 20, 12, 0)


def test_deploy_covers_its_settle_time_and_maintenance_its_window(warehouse_path: Path) -> None:
    run.record_event(warehouse_path, "deploy", T0, service="checkout", note="v2.3")
    run.record_event(warehouse_path, "maintenance", T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=3))
    found = run.load_events(warehouse_path, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=5))
    deploy, maintenance = sorted(found, key=lambda e: e.starts_at)
    assert deploy.ends_at == T0 + dt.timedelta(minutes=30)
    minutes = np.array([T0 + dt.timedelta(minutes=m) for m in (0, 29, 30, 150)], dtype="datetime64[ns]")
    assert events.event_tags(minutes, "checkout", found).tolist() == ["deploy", "deploy", None, "maintenance"]
    assert events.event_tags(minutes, "search", found).tolist() == [None, None, None, "maintenance"]


def test_events_from_the_config_file_count_too(warehouse_path: Path) -> None:
    cfg = config.Config.model_validate(
        {
            "events": [
                {
                    "kind": "maintenance",
                    "service": "auth",
                    "starts_at": "2026-11-20T12:00:00Z",
                    "ends_at": "2026-11-20T13:00:00Z",
                }
            ]
        }
    )
    found = run.load_events(warehouse_path, T0, T0 + dt.timedelta(hours=2), cfg.events)
    assert [(e.kind, e.service, e.source) for e in found] == [("maintenance", "auth", "config")]


def test_unknown_kind_and_reversed_window_are_rejected(warehouse_path: Path) -> None:
    with pytest.raises(events.EventError, match="not one of"):
        run.record_event(warehouse_path, "party", T0)
    with pytest.raises(events.EventError, match="before it starts"):
        run.record_event(warehouse_path, "maintenance", T0, T0 - dt.timedelta(minutes=1))


def test_incidents_labelled_not_an_anomaly_are_kept_out_of_training(warehouse_path: Path) -> None:
    from sreops import warehouse

    with warehouse.transaction(warehouse_path) as con:
        con.execute(
            "INSERT INTO alert_feedback (feedback_id, alert_id, service, action, created_at, first_minute,"
            " last_minute, source) VALUES ('f1', 'a1', 'search', 'not_anomaly', ?, ?, ?, 'slack')",
            [T0, T0, T0 + dt.timedelta(minutes=9)],
        )
    found = run.load_events(warehouse_path, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1))
    (labelled,) = [e for e in found if e.kind == events.NOT_ANOMALY]
    minutes = np.array([T0 + dt.timedelta(minutes=m) for m in (0, 9, 10)], dtype="datetime64[ns]")
    assert events.event_tags(minutes, "search", [labelled]).tolist() == ["not_anomaly", "not_anomaly", None]
