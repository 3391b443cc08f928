"""Every stage's benchmark, gathered as one table of measured numbers.

Each stage module exposes a function returning rows `{"name", "value", "unit", "note"}`; this
module runs them (or the ones named) and formats the table. Numbers are measured on this
machine, now: nothing here is a stored result.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

# stage -> (module, function)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ingest": ("sreops.devtools.bench.ingest", "bench_ingest"),
    "features": ("sreops.devtools.bench.ingest", "bench_features"),
    "detection": ("sreops.devtools.bench.detection", "bench_detection"),
    "forecasting": ("sreops.devtools.bench.forecasting", "bench_forecasting"),
    "logs": ("sreops.devtools.bench.logs", "bench_logs"),
    "alerting": ("sreops.devtools.bench.alerting", "bench_alerting"),
    "realtime": ("sreops.devtools.bench.realtime", "bench_realtime"),
    "demo": ("sreops.devtools.bench.demo", "bench_demo"),
    "warehouse": ("sreops.devtools.bench.warehouse", "bench_warehouse"),
}


class UnknownStageError(ValueError):
    """A benchmark stage that is not in `BENCHMARKS`; the message lists the known ones."""


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


def run_benchmarks(
    stages: Sequence[str] = (), options: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[list[dict], bool]:
    """Run the named stages (all when empty) with their keyword `options`; returns (rows, any failed).

    Progress goes to stderr; a benchmark that raises is reported as a FAILED row and the others
    still run.
    """
    chosen = list(stages) or list(BENCHMARKS)
    unknown = [s for s in chosen if s not in BENCHMARKS]
    if unknown:
        raise UnknownStageError(f"unknown stage(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    options = options or {}
    rows: list[dict] = []
    failed = False
    for stage in chosen:
        module_name, function = BENCHMARKS[stage]
        if importlib.util.find_spec(module_name) is None:
            rows.append(
                {"stage": stage, "name": "(not available)", "value": "", "unit": "", "note": module_name}
            )
            continue
        started = time.perf_counter()
        print(f"running {stage} benchmark…", file=sys.stderr, flush=True)
        try:
            produced = getattr(importlib.import_module(module_name), function)(**options.get(stage, {}))
        except Exception as exc:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            rows.append({"stage": stage, "name": "FAILED", "value": "", "unit": "", "note": str(exc)[:120]})
            failed = True
            continue
        rows.extend({"stage": stage, **row} for row in produced)
        print(f"{stage} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows, failed
