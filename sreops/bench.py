"""`sreops bench`: every stage's benchmark, printed as one table of measured numbers.

Each stage exposes a function returning rows `{"name", "value", "unit", "note"}`; this module
runs them (or the ones named) and prints the table. Numbers are measured on this machine,
now: nothing here is a stored result.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
import traceback

# stage -> (module, function)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ingest": ("sreops.ingest.bench", "bench_ingest"),
    "features": ("sreops.ingest.bench", "bench_features"),
    "detection": ("sreops.detection.bench", "bench_detection"),
    "forecasting": ("sreops.forecasting.bench", "bench_forecasting"),
    "logs": ("sreops.logs.bench", "bench_logs"),
    "alerting": ("sreops.alerting.bench", "bench_alerting"),
}


def format_table(rows: list[dict]) -> str:
    """A plain-text table: stage, measure, value, unit, note."""
    header = ("stage", "measure", "value", "unit", "note")
    cells = [header] + [
        (
            str(r.get("stage", "")),
            str(r.get("name", "")),
            f"{r['value']:,.3f}" if isinstance(r.get("value"), float) else f"{r.get('value', '')}",
            str(r.get("unit", "")),
            str(r.get("note", "")),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops bench`."""
    parser.add_argument("stages", nargs="*", help=f"stages to run (default all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", dest="json_out", help="also write the rows to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks and print the table."""
    stages = args.stages or list(BENCHMARKS)
    unknown = [s for s in stages if s not in BENCHMARKS]
    if unknown:
        print(f"unknown stage(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rows: list[dict] = []
    failed = False
    for stage in stages:
        module_name, function = BENCHMARKS[stage]
        if importlib.util.find_spec(module_name) is None:
            rows.append(
                {"stage": stage, "name": "(not available)", "value": "", "unit": "", "note": module_name}
            )
            continue
        started = time.perf_counter()
        print(f"running {stage} benchmark…", file=sys.stderr, flush=True)
        try:
            produced = getattr(importlib.import_module(module_name), function)()
        except Exception as exc:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            rows.append({"stage": stage, "name": "FAILED", "value": "", "unit": "", "note": str(exc)[:120]})
            failed = True
            continue
        rows.extend({"stage": stage, **row} for row in produced)
        print(f"{stage} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(format_table(rows))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh, indent=2, default=str)
    return 1 if failed else 0
