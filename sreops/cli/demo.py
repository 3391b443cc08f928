"""`sreops demo`: write a week of demo fleet data (metrics, logs, deploys) and its ground truth."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from sreops import paths
from sreops.devtools.demo import (
    default_start,
    generate,
    record_deploys,
    write_ground_truth,
    write_landing_files,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops demo`."""
    parser.add_argument("--days", type=float, default=7.0, help="length of history (default 7)")
    parser.add_argument("--step", type=int, default=30, help="seconds between samples, 10–60 (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--start",
        help="first timestamp, ISO-8601 UTC (default: midnight of the day DAYS before now; data until the current hour)",
    )
    parser.add_argument("--out", type=Path, help="folder for the files (default: the metrics landing folder)")
    parser.add_argument("--no-logs", action="store_true", help="write metrics only, no demo log files")


def run(args: argparse.Namespace) -> int:
    """`sreops demo`: write the demo fleet and its ground truth."""
    days = args.days
    if args.start:
        start = dt.datetime.fromisoformat(args.start)
    else:  # from the first day's midnight to the current hour: every partition of those days has data
        end = default_start(0)
        start = default_start(days).replace(hour=0)
        days = (end - start) / dt.timedelta(days=1)
    fleet = generate(start, days=days, step_seconds=args.step, seed=args.seed)
    files = write_landing_files(fleet, args.out or paths.landing_metrics())
    truth = write_ground_truth(fleet, paths.demo_dir())
    deploys = record_deploys(fleet)
    if not args.no_logs:
        from sreops.devtools.demo_logs import write_demo_logs

        logs = write_demo_logs(fleet.incidents, start, days=days, seed=args.seed)
        print(f"wrote demo logs for {len(logs)} services under {paths.landing_logs()}")
    print(
        f"wrote {len(fleet.samples):,} samples for {fleet.samples['service'].nunique()} services in "
        f"{len(files)} files under {files[0].parent}"
    )
    print(
        f"ground truth of {len(fleet.incidents)} injected events in {truth}; {deploys} deploys recorded as events"
    )
    demo_config = write_demo_config(start, paths.demo_dir() / "sreops.yaml")
    print(f"demo config (partitions start on the demo's first day): {demo_config}")
    return 0


def write_demo_config(start: dt.datetime, target: Path) -> Path:
    """A config whose hourly partitions start on the demo's first day (an existing file is kept)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            "# Written by `sreops demo`; `make demo` runs Dagster with SREOPS_CONFIG pointing here.\n"
            "# Partitions start on the demo's first day, so every partition the UI lists has data.\n"
            f"partitions:\n  start: {start.date().isoformat()}\n"
        )
    return target
