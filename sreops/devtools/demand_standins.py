"""Stand-ins for demand of another kind, built from the development traces (docs/forecasting.md).

Two recipes, the ones the forecasting rounds measured their candidates on before any validation
run: *hourly* (each trace summed to hourly records: one record per decision, as on an hourly
cloud-API trace) and *flash* (each trace with six flash crowds: 3-8x for 2-8 hours after a
20-90-minute ramp, placed after the warm-up week). Seeds come from the file name (crc32), so the
same input gives the same stand-ins on every machine.

    python -m sreops.devtools.demand_standins ../shared/data/demand/*.csv --out /tmp/standins
    sreops eval autoscale /tmp/standins/hourly/*.csv --jobs 2
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sreops.forecasting.replay import WARMUP, load_trace


@dataclass(frozen=True)
class FlashCrowds:
    """How many flash crowds a trace gets and how large, long and steep they are."""

    count: int = 6
    multiplier: tuple[float, float] = (3.0, 8.0)
    ramp_minutes: tuple[float, float] = (20.0, 90.0)
    hold_hours: tuple[float, float] = (2.0, 8.0)
    # No crowd starts before this (the warm-up week and a day of scored decisions).
    earliest: pd.Timedelta = WARMUP + pd.Timedelta(days=1)


def hourly_records(trace: pd.Series) -> pd.Series:
    """The trace summed to hourly records, each labelled by the end of its hour."""
    return trace.resample("1h", label="right", closed="right").sum()


def with_flash_crowds(trace: pd.Series, seed: int, crowds: FlashCrowds | None = None) -> pd.Series:
    """The trace with flash crowds multiplied in: a linear ramp to the multiplier, then a plateau."""
    crowds = crowds or FlashCrowds()
    rng = np.random.default_rng(seed)
    values = trace.to_numpy(dtype=float)
    index = trace.index
    start = index[0] + crowds.earliest
    span = (index[-1] - start).total_seconds()
    if span <= 0:
        raise ValueError(
            f"the trace spans {index[-1] - index[0]}, too short for crowds after {crowds.earliest}"
        )
    for _ in range(crowds.count):
        onset = start + pd.Timedelta(seconds=float(rng.uniform(0, span * 0.95)))
        multiplier = rng.uniform(*crowds.multiplier)
        ramp = rng.uniform(*crowds.ramp_minutes)
        hold = rng.uniform(*crowds.hold_hours) * 60
        minutes = ((index - onset).total_seconds() / 60).to_numpy()
        factor = np.where((minutes >= 0) & (minutes < ramp), 1 + (multiplier - 1) * minutes / ramp, 1.0)
        factor = np.where((minutes >= ramp) & (minutes < ramp + hold), multiplier, factor)
        values = values * factor
    return pd.Series(np.round(values), index=index, name="value")


def seed_for(name: str) -> int:
    """A seed that depends only on the trace's file name."""
    return zlib.crc32(name.encode())


def write_standins(traces: list[Path], out: Path) -> list[Path]:
    """Write `out/hourly/<name>` and `out/flash/<name>` for every trace; returns the files written."""
    written = []
    for path in traces:
        trace = load_trace(path).series()
        for kind, standin in (
            ("hourly", hourly_records(trace)),
            ("flash", with_flash_crowds(trace, seed_for(path.name))),
        ):
            target = out / kind / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if (standin == standin.round()).all():  # whole counts stay whole in the file
                standin = standin.astype("int64")
            standin.rename("value").rename_axis("timestamp").reset_index().to_csv(target, index=False)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: demand CSVs in, stand-in folders out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="+", type=Path, help="demand CSVs (timestamp,value)")
    parser.add_argument("--out", type=Path, required=True, help="folder for hourly/ and flash/")
    args = parser.parse_args(argv)
    for path in write_standins(args.traces, args.out):
        print(path)


if __name__ == "__main__":
    main()
