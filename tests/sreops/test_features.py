"""Minute features against a straightforward pandas reference, and idempotent hourly rebuilds."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops import features, paths, warehouse
from sreops.ingest import run as ingest_run

HOUR = dt.datetime(2026, 11, 20, 10)


def random_files(seed: int) -> list[pd.DataFrame]:
    """Three files of irregular samples with gaps, repeats inside a file and across files."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(3):
        n = 600
        seconds = rng.integers(-3600, 7200, n)  # the hour before, the hour built, the hour after
        seconds[rng.random(n) < 0.2] = rng.integers(0, 3600)  # one instant repeated many times
        frame = pd.DataFrame(
            {
                "timestamp": [HOUR + dt.timedelta(seconds=int(s)) for s in seconds],
                "service": rng.choice(["api", "db", "web"], n),
                "metric": rng.choice(["cpu", "p95"], n),
                "value": np.round(rng.normal(50, 20, n), 3),
            }
        )
        # leave whole minutes empty so gaps and gap_minutes are exercised
        frame = frame[~frame["timestamp"].dt.minute.isin([7, 8, 9, 31])]
        frames.append(frame)
    return frames


def reference(frames: list[pd.DataFrame], hour: dt.datetime) -> pd.DataFrame:
    """The documented semantics, written plainly in pandas."""
    parts = [f.assign(file_id=i) for i, f in enumerate(frames)]
    raw = pd.concat(parts).rename(columns={"timestamp": "ts"})
    per_file = raw.groupby(["service", "metric", "ts", "file_id"], as_index=False)["value"].mean()
    latest = per_file.sort_values("file_id").groupby(["service", "metric", "ts"]).tail(1)
    start, end = pd.Timestamp(hour), pd.Timestamp(hour) + pd.Timedelta(hours=1)
    current = latest[(latest.ts >= start) & (latest.ts < end)].sort_values("ts").copy()
    current["minute"] = current["ts"].dt.floor("min")
    rows = []
    for (service, metric, minute), g in current.groupby(["service", "metric", "minute"]):
        rows.append(
            {
                "minute": minute,
                "service": service,
                "metric": metric,
                "n": len(g),
                "mean": g.value.mean(),
                "min": g.value.min(),
                "max": g.value.max(),
                "std": g.value.std(ddof=0),
                "first": g.value.iloc[0],
                "last": g.value.iloc[-1],
                "sum": g.value.sum(),
                "last_ts": g.ts.iloc[-1],
            }
        )
    out = pd.DataFrame(rows)
    before = latest[(latest.ts >= start - features.LOOKBACK) & (latest.ts < start)].sort_values("ts")
    before = before.groupby(["service", "metric"]).tail(1)
    deltas, rates, gaps = [], [], []
    for _, row in out.iterrows():
        earlier = out[(out.service == row.service) & (out.metric == row.metric) & (out.minute < row.minute)]
        if len(earlier):
            prev = earlier.iloc[-1]
            prev_last, prev_ts, prev_minute = prev["last"], prev["last_ts"], prev["minute"]
        else:
            b = before[(before.service == row.service) & (before.metric == row.metric)]
            if b.empty:
                deltas.append(np.nan), rates.append(np.nan), gaps.append(np.nan)
                continue
            prev_last, prev_ts, prev_minute = b.value.iloc[0], b.ts.iloc[0], b.ts.iloc[0].floor("min")
        deltas.append(row["last"] - prev_last)
        rates.append((row["last"] - prev_last) / (row["last_ts"] - prev_ts).total_seconds())
        gaps.append((row["minute"] - prev_minute) / pd.Timedelta(minutes=1))
    out["delta"], out["rate"], out["gap_minutes"] = deltas, rates, gaps
    return out.drop(columns="last_ts").sort_values(["service", "metric", "minute"]).reset_index(drop=True)


def ingest(frames: list[pd.DataFrame], warehouse_path: Path) -> None:
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        path = folder / f"part-{i}.csv"
        frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(path, index=False)
        assert ingest_run.ingest_file(path, warehouse_path).status == "ingested"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_features_match_the_pandas_reference_with_gaps_and_repeats(warehouse_path: Path, seed: int) -> None:
    frames = random_files(seed)
    ingest(frames, warehouse_path)
    build = features.build_hour(warehouse_path, HOUR)
    got = features.read_hour(warehouse_path, HOUR)
    want = reference(frames, HOUR)
    assert build.rows == len(want)
    assert list(got["minute"]) == list(want["minute"])
    for column in ["n", "mean", "min", "max", "std", "first", "last", "sum", "delta", "rate", "gap_minutes"]:
        np.testing.assert_allclose(
            got[column].astype(float), want[column].astype(float), rtol=1e-9, atol=1e-9, err_msg=column
        )


def test_rebuilding_an_hour_replaces_it_and_never_duplicates(warehouse_path: Path) -> None:
    ingest(random_files(4), warehouse_path)
    features.build_hour(warehouse_path, HOUR)
    first = features.read_hour(warehouse_path, HOUR)
    for _ in range(3):
        features.build_hour(warehouse_path, HOUR)
    again = features.read_hour(warehouse_path, HOUR)
    pd.testing.assert_frame_equal(first, again)
    assert features.duplicate_keys(warehouse_path, HOUR, HOUR + dt.timedelta(hours=1)) == 0
    counted, distinct = features.sample_count_mismatch(warehouse_path, HOUR, HOUR + dt.timedelta(hours=1))
    assert counted == distinct > 0


def test_a_late_file_changes_only_its_hours(warehouse_path: Path) -> None:
    ingest(random_files(5), warehouse_path)
    for hour in features.hours_between(HOUR - dt.timedelta(hours=1), HOUR + dt.timedelta(hours=2)):
        features.build_hour(warehouse_path, hour)
    before = {h: features.read_hour(warehouse_path, h) for h in (HOUR - dt.timedelta(hours=1), HOUR)}
    late = pd.DataFrame(
        {
            "timestamp": [HOUR + dt.timedelta(minutes=7, seconds=5)],
            "service": ["api"],
            "metric": ["cpu"],
            "value": [999.0],
        }
    )
    path = paths.landing_metrics() / "late.csv"
    late.to_csv(path, index=False)
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.hours == [HOUR]
    features.build_hour(warehouse_path, HOUR)
    pd.testing.assert_frame_equal(
        before[HOUR - dt.timedelta(hours=1)], features.read_hour(warehouse_path, HOUR - dt.timedelta(hours=1))
    )
    rebuilt = features.read_hour(warehouse_path, HOUR)
    minute = rebuilt[
        (rebuilt.service == "api") & (rebuilt.metric == "cpu") & (rebuilt.minute == HOUR.replace(minute=7))
    ]
    assert minute["max"].iloc[0] == 999.0 and len(rebuilt) == len(before[HOUR]) + 1


def test_first_minute_delta_uses_the_last_sample_of_the_previous_hour(warehouse_path: Path) -> None:
    with warehouse.transaction(warehouse_path) as con:
        con.executemany(
            "INSERT INTO metric_samples_extra VALUES (?, 'api', 'cpu', ?, 1, 'test', NULL)",
            [[HOUR - dt.timedelta(seconds=30), 10.0], [HOUR + dt.timedelta(seconds=30), 16.0]],
        )
    features.build_hour(warehouse_path, HOUR)
    row = features.read_hour(warehouse_path, HOUR).iloc[0]
    assert row["delta"] == 6.0 and row["rate"] == pytest.approx(0.1) and row["gap_minutes"] == 1
