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
        "--start", help="first timestamp, ISO-8601 UTC (default: DAYS before the current hour)"
    )
    parser.add_argument("--out", type=Path, help="folder for the files (default: the metrics landing folder)")
    parser.add_argument("--no-logs", action="store_true", help="write metrics only, no demo log files")


def run(args: argparse.Namespace) -> int:
    """`sreops demo`: write the demo fleet and its ground truth."""
    start = dt.datetime.fromisoformat(args.start) if args.start else default_start(args.days)
    fleet = generate(start, days=args.days, step_seconds=args.step, seed=args.seed)
    files = write_landing_files(fleet, args.out or paths.landing_metrics())
    truth = write_ground_truth(fleet, paths.demo_dir())
    deploys = record_deploys(fleet)
    if not args.no_logs:
        from sreops.devtools.demo_logs import write_demo_logs

        logs = write_demo_logs(fleet.incidents, start, days=args.days, seed=args.seed)
        print(f"wrote demo logs for {len(logs)} services under {paths.landing_logs()}")
    print(
        f"wrote {len(fleet.samples):,} samples for {fleet.samples['service'].nunique()} services in "
        f"{len(files)} files under {files[0].parent}"
    )
    print(
        f"ground truth of {len(fleet.incidents)} injected events in {truth}; {deploys} deploys recorded as events"
    )
    return 0
