"""The demand stand-ins: hourly sums and flash crowds, reproducible from the file name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops.devtools.demand_standins import (
    FlashCrowds,
    hourly_records,
    main,
    seed_for,
    with_flash_crowds,
)
from sreops.forecasting.replay import TraceError, load_trace


def read_trace(path: Path) -> pd.Series:
    return load_trace(path).series()


def five_minute_trace(days: int = 14) -> pd.Series:
    index = pd.date_range("2026-01-01 00:02:00", periods=days * 288, freq="5min")
    hours = (index - index[0]).total_seconds() / 3600
    values = 100 + 50 * np.sin(2 * np.pi * hours / 24)
    return pd.Series(np.round(values), index=index, name="value")


def test_hourly_records_keep_the_total_with_one_record_per_hour() -> None:
    trace = five_minute_trace()
    hourly = hourly_records(trace)
    assert hourly.sum() == trace.sum()
    assert (np.diff(hourly.index.to_numpy()) == np.timedelta64(1, "h")).all()
    # Each full hour holds twelve 5-minute records.
    assert hourly.iloc[5] == trace[(trace.index > hourly.index[4]) & (trace.index <= hourly.index[5])].sum()


def test_flash_crowds_only_raise_demand_after_the_warm_up() -> None:
    trace = five_minute_trace()
    crowds = FlashCrowds()
    crowded = with_flash_crowds(trace, seed=7, crowds=crowds)
    ratio = crowded / trace
    assert (ratio >= 0.99).all()
    assert (ratio[trace.index < trace.index[0] + crowds.earliest] < 1.01).all()
    # At least one crowd reaches the smallest multiplier and holds it for its shortest plateau.
    assert (ratio >= crowds.multiplier[0] * 0.99).sum() >= crowds.hold_hours[0] * 12


def test_flash_crowds_are_reproducible_by_name() -> None:
    trace = five_minute_trace()
    first = with_flash_crowds(trace, seed_for("a.csv"))
    assert first.equals(with_flash_crowds(trace, seed_for("a.csv")))
    assert not first.equals(with_flash_crowds(trace, seed_for("b.csv")))


def test_too_short_a_trace_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        with_flash_crowds(five_minute_trace(days=7), seed=1)


def test_command_writes_both_stand_ins(tmp_path: Path) -> None:
    source = tmp_path / "in" / "trace.csv"
    source.parent.mkdir()
    five_minute_trace().rename_axis("timestamp").reset_index().to_csv(source, index=False)
    main([str(source), "--out", str(tmp_path / "out")])
    hourly = read_trace(tmp_path / "out" / "hourly" / "trace.csv")
    flash = read_trace(tmp_path / "out" / "flash" / "trace.csv")
    assert len(hourly) == 14 * 24  # one record per hour of the fortnight
    assert flash.index.equals(read_trace(source).index)
    assert flash.sum() > read_trace(source).sum()


def test_a_file_without_the_columns_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,requests\n2026-01-01 00:00:00,1\n")
    with pytest.raises(TraceError, match="bad.csv lacks column"):
        main([str(bad), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
