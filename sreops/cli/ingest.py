"""`sreops ingest PATH…` and `sreops features START [END]`: the sensors' and assets' code paths, from a shell."""

from __future__ import annotations

import argparse
import datetime as dt
import sys


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops ingest`."""
    parser.add_argument("paths", nargs="*", help="files or folders (default: the landing folder)")
    parser.add_argument(
        "--move",
        action="store_true",
        help="archive ingested files and quarantine bad ones (as the sensor does)",
    )
    parser.add_argument("--source", default="cli", help="source label stored with the samples")


def run_ingest(args: argparse.Namespace) -> int:
    """`sreops ingest PATH…`: the landing sensor's code path, from the command line."""
    from tqdm import tqdm

    from sreops.ingest.landing import discover, expand
    from sreops.ingest.run import ingest_file

    try:
        files = expand(args.paths) if args.paths else discover()
    except FileNotFoundError as exc:
        print(f"sreops ingest: {exc}", file=sys.stderr)
        return 2
    move = args.move or not args.paths
    if not files:
        print("no metric files to ingest")
        return 0
    counts = dict.fromkeys(("ingested", "duplicate", "quarantined", "vanished"), 0)
    for path in tqdm(files, desc="ingesting", unit="file", disable=len(files) < 2):
        result = ingest_file(path, source=args.source, move=move)
        counts[result.status] += 1
        if result.status == "quarantined":
            print(f"QUARANTINED {path}: {result.error}")
        elif result.status in ("duplicate", "vanished"):
            print(f"skipped     {path}: {result.error}")
        else:
            print(f"ingested    {path}: {result.rows} samples over {len(result.hours)} hour(s)")
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    return 1 if counts["quarantined"] else 0


def add_features_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops features`."""
    parser.add_argument("start", help="first hour, ISO-8601 UTC (e.g. 2026-11-20T13:00)")
    parser.add_argument("end", nargs="?", help="end hour, exclusive (default: start + 1 h)")


def run_features(args: argparse.Namespace) -> int:
    """`sreops features START [END]`: rebuild those hours outside Dagster."""
    from tqdm import tqdm

    from sreops.features import build_hour, hours_between

    start = dt.datetime.fromisoformat(args.start)
    end = dt.datetime.fromisoformat(args.end) if args.end else start + dt.timedelta(hours=1)
    for hour in tqdm(hours_between(start, end), desc="features", unit="hour"):
        build = build_hour(None, hour)
        tqdm.write(
            f"{build.hour:%Y-%m-%d %H:00}  {build.rows} rows from {build.samples} samples, {build.series} series"
        )
    return 0
