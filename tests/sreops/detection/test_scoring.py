"""Scoring hours from the warehouse: rows, explanations, idempotence, no look-ahead, models, versions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops import config, warehouse
from sreops.detection import run, versions
from sreops.detection.artifacts import FileModelStore, MemoryModelStore
from sreops.detection.models import SeriesModel
from sreops.detection.settings import AlarmPolicy, DetectorSettings

START = dt.datetime(2026, 11, 16)
SPIKE = dt.datetime(2026, 11, 18, 10, 30)
SERIES = [("checkout", "cpu"), ("checkout", "latency"), ("search", "cpu"), ("search", "latency")]


def feature_rows(start: dt.datetime, hours: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    minute = pd.date_range(start, periods=hours * 60, freq="min")
    frames = []
    for i, (service, metric) in enumerate(SERIES):
        value = (
            40
            + 10 * i
            + 8 * np.sin(2 * np.pi * np.arange(len(minute)) / 1440)
            + rng.normal(0, 1, len(minute))
        )
        value[(minute >= SPIKE) & (minute < SPIKE + dt.timedelta(minutes=4))] += (
            50 if (service, metric) == SERIES[1] else 0
        )
        frames.append(
            pd.DataFrame({"minute": minute, "service": service, "metric": metric, "n": 2, "mean": value})
        )
    return pd.concat(frames, ignore_index=True)


def write_features(path: Path, frame: pd.DataFrame) -> None:
    with warehouse.transaction(path) as con:
        con.register("rows", frame)
        con.execute(
            "INSERT INTO metric_features_1m (minute, service, metric, n, mean, last) "
            "SELECT minute, service, metric, n, mean, mean FROM rows"
        )
        con.unregister("rows")


@pytest.fixture
def fleet(warehouse_path: Path) -> Path:
    write_features(warehouse_path, feature_rows(START, 60))  # 2.5 days: to 2026-11-18 12:00
    return warehouse_path


def anomalies_of(path: Path, version: str) -> pd.DataFrame:
    with warehouse.connect(path) as con:
        return con.execute(
            "SELECT * FROM anomalies WHERE version = ? ORDER BY minute, service, metric", [version]
        ).df()


def test_an_hour_gets_one_row_per_series_minute_and_per_service_minute(fleet: Path) -> None:
    settings, policy = DetectorSettings(), AlarmPolicy()
    result = run.score_hour(fleet, SPIKE.replace(minute=0), settings, policy, MemoryModelStore())
    rows = anomalies_of(fleet, settings.version)
    assert result.rows == len(rows) == 60 * (len(SERIES) + 2)
    assert set(rows[rows["metric"] == "*"]["detector"]) == {"service"}
    assert rows["score"].between(0, 100).all()
    spike = rows[
        (rows["service"] == "checkout") & (rows["metric"] == "latency") & (rows["minute"] == SPIKE)
    ].iloc[0]
    assert spike["is_anomaly"] and spike["severity"] == "critical"
    assert spike["expected_low"] <= spike["value"] - 40 and spike["value"] > spike["expected_high"]
    (entry,) = json.loads(spike["explanation"])
    assert entry["metric"] == "latency" and entry["observed"] == pytest.approx(spike["value"])
    service = rows[
        (rows["service"] == "checkout") & (rows["metric"] == "*") & (rows["minute"] == SPIKE)
    ].iloc[0]
    assert service["score"] == spike["score"]
    assert json.loads(service["explanation"])[0]["metric"] == "latency"
    quiet = rows[(rows["service"] == "search") & (rows["minute"] < SPIKE)]
    assert not quiet["is_anomaly"].any()


def test_rescoring_an_hour_replaces_its_rows(fleet: Path) -> None:
    settings, policy, store = DetectorSettings(), AlarmPolicy(), MemoryModelStore()
    hour = SPIKE.replace(minute=0)
    run.score_hour(fleet, hour, settings, policy, store)
    first = anomalies_of(fleet, settings.version)
    run.score_hour(fleet, hour, settings, policy, store)
    again = anomalies_of(fleet, settings.version)
    assert len(again) == len(first)
    assert np.array_equal(again["score"].to_numpy(), first["score"].to_numpy())
    assert run.duplicate_rows(fleet, hour, hour + dt.timedelta(hours=1), settings.version) == 0


def test_a_range_scored_a_window_at_a_time_writes_what_its_hours_scored_one_by_one(
    warehouse_path: Path,
) -> None:
    """The ranged path (one read per window of several hours) changes nothing but its cost."""
    late = feature_rows(START + dt.timedelta(hours=20), 40, seed=3)  # young when the range starts
    late["service"] = "late-" + late["service"]
    write_features(warehouse_path, pd.concat([feature_rows(START, 60), late], ignore_index=True))
    settings, policy = DetectorSettings(), AlarmPolicy()
    now = dt.datetime(2026, 11, 19)
    start, end = START + dt.timedelta(hours=2), START + dt.timedelta(hours=60)
    windows = run.range_windows(start, end, settings)
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(a < b <= a + run.WINDOW for a, b in windows) and len(windows) < 58
    assert all(b2 == a1 for (_, b2), (a1, _) in zip(windows, windows[1:], strict=False))
    assert all(b.date() == a.date() or b == dt.datetime.combine(b.date(), dt.time()) for a, b in windows)
    for a, b in windows:
        run.score_window(warehouse_path, a, b, settings, policy, MemoryModelStore(), now=now)
    ranged = anomalies_of(warehouse_path, settings.version)
    store = MemoryModelStore()
    for hour in pd.date_range(start, end, freq="h", inclusive="left").to_pydatetime():
        run.score_hour(warehouse_path, hour, settings, policy, store, now=now)
    hourly = anomalies_of(warehouse_path, settings.version)
    assert len(ranged) == 58 * 60 * (len(SERIES) + 2) + 40 * 60 * (len(SERIES) + 2)
    pd.testing.assert_frame_equal(ranged, hourly)


def test_a_long_range_keeps_only_the_current_days_models_in_memory(fleet: Path, tmp_path: Path) -> None:
    settings, policy = DetectorSettings(), AlarmPolicy()
    store = FileModelStore(tmp_path / "models")
    start, end = START + dt.timedelta(hours=6), START + dt.timedelta(hours=60)
    hours = sum(
        len(pd.date_range(r.hour, r.end, freq="h", inclusive="left"))
        for r in run.score_range(fleet, start, end, settings, policy, store)
    )
    assert hours == 54
    fitted = {key[3] for key in store.cache}
    assert fitted and min(fitted) >= dt.datetime(2026, 11, 18)  # the last day's grid; older ones left
    on_file = {p.name for p in (tmp_path / "models").rglob("*.npz")}
    assert {"20261117T000000.npz", "20261118T000000.npz"} <= on_file  # evicted from memory, kept on file


def test_later_data_does_not_change_an_hour_already_scored(fleet: Path) -> None:
    settings, policy = DetectorSettings(), AlarmPolicy()
    hour = dt.datetime(2026, 11, 18, 9)
    before = run.score_hour(fleet, hour, settings, policy, MemoryModelStore()).frame
    write_features(fleet, feature_rows(START + dt.timedelta(hours=60), 30, seed=5))
    after = run.score_hour(fleet, hour, settings, policy, MemoryModelStore()).frame
    assert np.array_equal(before["score"].to_numpy(), after["score"].to_numpy())


def test_models_are_trained_once_kept_as_files_and_registered(fleet: Path) -> None:
    settings, policy = DetectorSettings(), AlarmPolicy()
    store = FileModelStore()
    report = run.train_as_of(fleet, dt.datetime(2026, 11, 18, 10), settings, store)
    assert report.trained == len(SERIES) and report.too_short == 0
    assert run.train_as_of(fleet, dt.datetime(2026, 11, 18, 10), settings, store).reused == len(SERIES)
    with warehouse.connect(fleet) as con:
        rows = con.execute("SELECT service, metric, trained_until, path FROM detector_models").fetchall()
    assert {r[2] for r in rows} == {dt.datetime(2026, 11, 18)}
    key = (settings.version, "checkout", "cpu", dt.datetime(2026, 11, 18))
    loaded = SeriesModel.load(store.path(key))
    assert np.array_equal(loaded.explain_refs_, store.load_model(key).explain_refs_)
    assert np.array_equal(loaded.member_.decision_scores_, store.load_model(key).member_.decision_scores_)
    # the stored model scores exactly as the in-memory one
    fresh = FileModelStore()
    a = run.score_hour(fleet, SPIKE.replace(minute=0), settings, policy, store).frame
    b = run.score_hour(fleet, SPIKE.replace(minute=0), settings, policy, fresh).frame
    assert np.array_equal(a["score"].to_numpy(), b["score"].to_numpy())


def test_incidents_of_scored_hours_land_in_alerts_once(fleet: Path) -> None:
    settings, policy, store = DetectorSettings(), AlarmPolicy(), MemoryModelStore()
    for hour in (dt.datetime(2026, 11, 18, 10), dt.datetime(2026, 11, 18, 11)):
        run.score_hour(fleet, hour, settings, policy, store)
        run.update_incidents(fleet, hour, hour + dt.timedelta(hours=1), settings.version, policy)
    run.update_incidents(
        fleet, dt.datetime(2026, 11, 18, 11), dt.datetime(2026, 11, 18, 12), settings.version, policy
    )
    with warehouse.connect(fleet) as con:
        rows = con.execute("SELECT fingerprint, status, opened_at, details FROM alerts").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("anomaly:checkout", "resolved")]
    assert rows[0][2] == SPIKE
    assert json.loads(rows[0][3])["metrics"][0] == "latency"


def test_a_candidate_version_is_replayed_compared_and_promoted(fleet: Path) -> None:
    baseline, policy = versions.current(fleet, config.Config())
    candidate = baseline.with_changes(context_points=5)
    assert candidate.version != baseline.version
    store = MemoryModelStore()
    hours = [dt.datetime(2026, 11, 18, h) for h in (9, 10, 11)]
    for settings in (baseline, candidate):
        versions.register(fleet, settings)
        for hour in hours:
            run.score_hour(fleet, hour, settings, policy, store)
    result = versions.compare(
        fleet, candidate.version, baseline.version, hours[0], hours[-1] + dt.timedelta(hours=1), policy
    )
    assert result.matched == 1 and result.lost == 0
    listed = versions.list_versions(fleet)
    assert set(listed["version"]) == {baseline.version, candidate.version}
    assert listed.set_index("version").loc[candidate.version, "hours_scored"] == 3
    versions.promote(fleet, candidate.version)
    assert versions.current(fleet, config.Config())[0] == candidate
    with pytest.raises(versions.VersionError):
        versions.promote(fleet, "novelty-nothere")


def test_settings_name_their_version_stably() -> None:
    settings = DetectorSettings()
    assert DetectorSettings.from_json(settings.to_json()) == settings
    assert settings.version == DetectorSettings().version
    assert settings.with_changes(context_points=3).version != settings.version
    with pytest.raises(ValueError, match="not one of"):
        DetectorSettings(member="magic")


def test_the_config_names_the_current_version_until_one_is_promoted_by_hand(warehouse_path: Path) -> None:
    default, _ = versions.current(warehouse_path, config.Config())
    edited = config.Config.model_validate({"detection": {"context_points": 4}})
    follows, _ = versions.current(warehouse_path, edited)
    assert follows.context_points == 4 and follows.version != default.version
    versions.promote(warehouse_path, default.version)
    assert versions.current(warehouse_path, edited)[0] == default
