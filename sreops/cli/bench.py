"""`sreops bench [STAGE…]`: run the benchmarks and print a table of measured numbers."""

from __future__ import annotations

import argparse
import json
import sys

from sreops.devtools.bench.runner import BENCHMARKS, UnknownStageError, format_table, run_benchmarks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops bench`."""
    parser.add_argument("stages", nargs="*", help=f"stages to run (default all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", dest="json_out", help="also write the rows to this JSON file")
    parser.add_argument(
        "--log-lines",
        type=int,
        default=None,
        metavar="N",
        help="logs: lines of the generated log stream (default: one million)",
    )
    parser.add_argument(
        "--daemon",
        action="store_true",
        help="alerting: also measure latency through a real dagster-daemon (tens of seconds more)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks and print the table; exit 1 if one failed, 2 for an unknown stage."""
    options = {
        "logs": {} if args.log_lines is None else {"stream_lines": args.log_lines},
        "alerting": {"daemon": args.daemon},
    }
    try:
        rows, failed = run_benchmarks(args.stages, options)
    except UnknownStageError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(format_table(rows))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh, indent=2, default=str)
    return 1 if failed else 0
