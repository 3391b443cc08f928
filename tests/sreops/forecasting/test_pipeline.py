"""The stage over the warehouse: refit every scaling series, store forecasts, advise hour by hour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sreops import config, warehouse
from sreops.forecasting import model, run

DATA_END = pd.Timestamp("2026-11-12 00:00")
LATER = pd.Timestamp("2026-11-20 00:00")  # the wall clock: data end decides the decision time


def rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect(path) as con:
        return con.execute(sql, params or []).fetchall()


def test_sql_hourly_peaks_equal_the_replay_resampling(fleet_warehouse: Path) -> None:
    start, end = DATA_END - pd.Timedelta(hours=30), DATA_END
    from_sql = run.hourly_peaks(fleet_warehouse, "checkout", "request_rate", start, end)
    with warehouse.connect(fleet_warehouse) as con:
        minutes = con.execute(
            "SELECT minute, max FROM metric_features_1m"
            " WHERE service = 'checkout' AND metric = 'request_rate' ORDER BY minute"
        ).df()
    series = pd.Series(minutes["max"].to_numpy(), index=pd.DatetimeIndex(minutes["minute"]))
    pd.testing.assert_series_equal(from_sql, model.hourly_peaks(series, end, 30), check_names=False)


def test_only_each_services_scaling_metric_is_forecast(fleet_warehouse: Path) -> None:
    cfg = config.Config()
    assert run.scaling_series(fleet_warehouse, cfg) == [
        ("checkout", "request_rate"),
        ("search", "request_rate"),
    ]
    custom = config.Config(services={"checkout": config.ServiceConfig(scaling_metric="cpu_utilization")})
    assert run.scaling_series(fleet_warehouse, custom) == [
        ("checkout", "cpu_utilization"),
        ("search", "request_rate"),
    ]


def test_refit_stores_fits_forecasts_and_model_files_idempotently(
    fleet_warehouse: Path, sreops_home: Path
) -> None:
    cfg = config.Config()
    report = run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    assert len(report.fits) == 2 and not report.skipped
    assert {f.fit.fitted_at for f in report.fits} == {DATA_END}
    horizon = cfg.forecasting.refit_hours + cfg.forecasting.horizon_hours
    counts = rows(
        fleet_warehouse,
        "SELECT service, count(*) FILTER (WHERE NOT in_sample), count(*) FILTER (WHERE in_sample),"
        " min(ts) FILTER (WHERE NOT in_sample) FROM forecasts GROUP BY service ORDER BY service",
    )
    assert [(c[0], c[1], c[3]) for c in counts] == [
        ("checkout", horizon, DATA_END),
        ("search", horizon, DATA_END),
    ]
    assert all(c[2] == 10 * 24 for c in counts)  # every training hour in-sample
    model_files = list((sreops_home / "models" / "forecasting").rglob("*.json"))
    assert len(model_files) == 2
    # the same refit again replaces, never duplicates
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    assert rows(fleet_warehouse, "SELECT count(*) FROM forecast_fits")[0][0] == 2
    assert rows(fleet_warehouse, "SELECT count(*) FROM forecasts")[0][0] == 2 * (horizon + 240)


def test_a_later_refit_warm_starts_scores_the_old_forecast_and_drops_old_in_sample_rows(
    fleet_warehouse: Path, add_features, make_demand
) -> None:
    cfg = config.Config()
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    day = make_demand(DATA_END, 24 * 60, "min", 400.0, seed=9)
    add_features(fleet_warehouse, "checkout", "request_rate", day)
    report = run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    checkout = next(f.fit for f in report.fits if f.fit.key[0] == "checkout")
    assert checkout.fitted_at == DATA_END + pd.Timedelta(days=1)
    assert checkout.warm_started
    assert checkout.mase is not None and checkout.mase < 1.0
    in_sample_fits = rows(
        fleet_warehouse,
        "SELECT count(DISTINCT fit_id) FROM forecasts WHERE service = 'checkout' AND in_sample",
    )
    assert in_sample_fits[0][0] == 1
    # the old fit's horizon stays, for accuracy history
    assert (
        rows(fleet_warehouse, "SELECT count(DISTINCT fit_id) FROM forecasts WHERE service = 'checkout'")[0][0]
        == 2
    )


def test_advice_covers_the_horizon_within_limits_and_replaces_unstarted_hours(fleet_warehouse: Path) -> None:
    cfg = config.Config(
        services={
            "checkout": config.ServiceConfig(capacity_per_replica=50.0, min_replicas=2, max_replicas=12)
        }
    )
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    advice, skipped = run.advise(fleet_warehouse, cfg, wall_clock=LATER)
    assert not skipped and [a.service for a in advice] == ["checkout", "search"]
    table = run.read_recommendations(fleet_warehouse)
    assert len(table) == 2 * cfg.forecasting.horizon_hours
    checkout = table[table["service"] == "checkout"]
    assert checkout["window_start"].min() == DATA_END
    assert (checkout["window_end"] - checkout["window_start"] == pd.Timedelta(hours=1)).all()
    assert checkout["recommended_replicas"].between(2, 12).all()
    assert (checkout["capacity_source"] == "config").all()
    # capacity 50 against peaks of about 400 × 1.6: the afternoon needs far more than the night
    assert checkout["recommended_replicas"].max() > checkout["recommended_replicas"].min()
    search = table[table["service"] == "search"]
    assert search["capacity_source"].str.startswith("assumed").all()
    assert search["reason"].str.contains("forecast peak").all()
    run.advise(fleet_warehouse, cfg, wall_clock=LATER)
    assert len(run.read_recommendations(fleet_warehouse)) == 2 * cfg.forecasting.horizon_hours


def test_advice_before_any_fit_says_what_to_do(fleet_warehouse: Path) -> None:
    advice, skipped = run.advise(fleet_warehouse, config.Config(), wall_clock=LATER)
    assert advice == []
    assert "materialize `forecasts`" in skipped["checkout/request_rate"]


def test_refit_is_due_without_a_fit_and_once_the_fit_is_a_day_old(
    fleet_warehouse: Path, add_features, make_demand
) -> None:
    cfg = config.Config()
    assert run.refit_due(fleet_warehouse, cfg, wall_clock=LATER)
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    assert not run.refit_due(fleet_warehouse, cfg, wall_clock=LATER)
    add_features(fleet_warehouse, "search", "request_rate", make_demand(DATA_END, 24 * 60, "min", 90.0))
    assert run.refit_due(fleet_warehouse, cfg, wall_clock=LATER)


def test_exports_are_minreplicas_schedules_per_service(fleet_warehouse: Path, tmp_path: Path) -> None:
    cfg = config.Config()
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    advice, _ = run.advise(fleet_warehouse, cfg, wall_clock=LATER)
    written = run.write_exports(advice, tmp_path / "hpa")
    assert [p.name for p in written] == ["checkout.yaml", "search.yaml"]
    scaled, schedule = yaml.safe_load_all(written[0].read_text())
    windows = schedule["schedule"]
    assert windows[0]["start"] == "2026-11-12T00:00:00Z"
    assert windows[-1]["end"] == "2026-11-13T00:00:00Z"
    advised = {r.window_start: r.replicas for r in advice[0].recommendations}
    for window in windows:
        start = pd.Timestamp(window["start"]).tz_localize(None)
        assert advised[start] == window["minReplicas"]
    assert len(scaled["spec"]["triggers"]) == len(windows)


def test_picture_is_a_png(fleet_warehouse: Path) -> None:
    cfg = config.Config()
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    advice, _ = run.advise(fleet_warehouse, cfg, wall_clock=LATER)
    image = run.picture(fleet_warehouse, advice[0])
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 5000


@pytest.mark.parametrize(
    "peaks, expected", [([np.nan, np.nan], None), ([0.0, 0.0], None), ([10.0, 20.0], 1.99)]
)
def test_default_capacity_needs_load(peaks: list[float], expected: float | None) -> None:
    value = run.default_capacity(pd.Series(peaks))
    assert value == (pytest.approx(expected) if expected is not None else None)


def test_the_hour_that_starts_now_costs_no_more_than_the_reactive_rule_unless_a_rise_is_expected(
    fleet_warehouse: Path,
) -> None:
    # a very wide margin, so the cap is what decides wherever the forecast expects no rise
    cfg = config.Config(forecasting=config.ForecastingConfig(headroom=3.0))
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    advice, _ = run.advise(fleet_warehouse, cfg, wall_clock=LATER)
    capped = 0
    for item in advice:
        first = item.recommendations[0]
        with warehouse.connect(fleet_warehouse) as con:
            last_peak = run.store.recent_load(con, item.service, item.metric, first.window_start, 60)
        reactive = int(np.ceil(last_peak / (0.8 * item.limits.capacity_per_replica)))
        if first.forecast_peak <= last_peak:
            assert first.replicas <= max(reactive, item.limits.min_replicas)
            capped += "expects no rise" in first.reason
        else:
            assert "expects no rise" not in first.reason
        assert all("expects no rise" not in r.reason for r in item.recommendations[1:])
    assert capped > 0
    uncapped = config.Config(
        forecasting=config.ForecastingConfig(headroom=3.0, reactive_cap=False, reactive_budget=None)
    )
    advice, _ = run.advise(fleet_warehouse, uncapped, wall_clock=LATER)
    assert all("expects no rise" not in item.recommendations[0].reason for item in advice)


def test_the_hour_that_starts_now_is_budgeted_from_what_the_warehouse_holds(fleet_warehouse: Path) -> None:
    cfg = config.Config(forecasting=config.ForecastingConfig(reactive_budget=0.97))
    run.refit(fleet_warehouse, cfg, wall_clock=LATER, workers=1)
    advice, _ = run.advise(fleet_warehouse, cfg, wall_clock=LATER)
    assert len(advice) == 2
    for item in advice:
        first = item.recommendations[0]
        assert "budgeted" in first.reason and "reactive rule's replica-hours" in first.reason
        with warehouse.connect(fleet_warehouse) as con:
            recent = run.store.recent_load(con, item.service, item.metric, first.window_start, 15)
        assert first.replicas >= int(np.ceil(recent / item.limits.capacity_per_replica))
        assert all("budgeted" not in r.reason for r in item.recommendations[1:])
    advice, _ = run.advise(fleet_warehouse, config.Config(), wall_clock=LATER)  # off by default
    assert all("budgeted" not in item.recommendations[0].reason for item in advice)


def test_the_floor_loads_of_past_hours_in_sql_equal_the_replays(fleet_warehouse: Path) -> None:
    from sreops.forecasting import budget

    hours = pd.date_range(DATA_END - pd.Timedelta(hours=30), DATA_END, freq="h")
    with warehouse.connect(fleet_warehouse) as con:
        from_sql = run.store.recent_loads(con, "checkout", "request_rate", hours, 15)
        minutes = con.execute(
            "SELECT minute, max FROM metric_features_1m"
            " WHERE service = 'checkout' AND metric = 'request_rate' ORDER BY minute"
        ).df()
    series = pd.Series(minutes["max"].to_numpy(), index=pd.DatetimeIndex(minutes["minute"]))
    from_series = budget.floor_loads(series, hours, 15)
    pd.testing.assert_series_equal(from_sql, from_series, check_names=False, check_freq=False)
    assert from_sql.notna().all()
