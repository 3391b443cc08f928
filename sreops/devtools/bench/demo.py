"""The first minutes of `make demo`, as a newcomer meets them: until every demo run is done.

Writes the demo into a scratch `$SREOPS_HOME` with `sreops demo` (a subprocess, as `make demo`
runs it), starts the real `dagster dev` with the demo's config, and polls the webserver's run
records until the metrics landing folder is empty and no run has been queued or running, nor
created, for `quiet_s` seconds (longer than every sensor's interval). The install is excluded.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sreops.devtools.dagster_dev import dagster_dev, run_records

UNFINISHED = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}


def bench_demo(
    quiet_s: float = 60.0, limit_s: float = 1200.0, startup_s: float = 240.0
) -> list[dict[str, Any]]:
    """Seconds from `sreops demo` starting to the demo's last run ending, and how many runs that took."""
    with tempfile.TemporaryDirectory(prefix="sreops-bench-demo-") as folder:
        root = Path(folder)
        home = root / "home"
        settings = {"SREOPS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        began = time.time()
        assignments = [f"{k}={v}" for k, v in settings.items()]  # added to the inherited environment
        subprocess.run(
            ["env", *assignments, str(Path(sys.executable).parent / "sreops"), "demo"],
            check=True,
            capture_output=True,
        )
        written = time.time() - began
        settings["SREOPS_CONFIG"] = str(home / "demo" / "sreops.yaml")
        landing = home / "landing" / "metrics"
        with dagster_dev(root / "dagster", settings, startup_s) as port:
            up = time.time() - began
            last_change, seen = time.time(), -1
            while time.time() - began < limit_s:
                runs = run_records(port)
                busy = any(r["status"] in UNFINISHED for r in runs)
                pending = any(p.is_file() and not p.name.startswith(".") for p in landing.glob("*"))
                if busy or pending or len(runs) != seen:
                    last_change, seen = time.time(), len(runs)
                elif time.time() - last_change >= quiet_s:
                    break
                time.sleep(2.0)
            else:
                raise TimeoutError(f"the demo's runs were still going after {limit_s:.0f} s")
    for r in sorted(runs, key=lambda r: r["created"]):  # the timeline, for whoever reads stderr
        print(
            f"  {r['created'] - began:6.1f} s created, {(r['started'] or 0) - began:6.1f} started,"
            f" {(r['ended'] or 0) - began:6.1f} ended: {r['what']} {r['status']}",
            file=sys.stderr,
        )
    ends = [r["ended"] for r in runs if r["ended"]]
    done = (max(ends) - began) if ends else float("nan")
    failed = sum(r["status"] == "FAILURE" for r in runs)
    note = "install excluded; target <= 180 s"
    slowest = sorted(
        (r for r in runs if r["started"] and r["ended"]), key=lambda r: r["started"] - r["ended"]
    )[:3]
    return [
        {
            "name": "`sreops demo` writes the week",
            "value": written,
            "unit": "s",
            "note": "metrics, logs, deploys",
        },
        {
            "name": "dagster dev answering",
            "value": up,
            "unit": "s",
            "note": "from the start of `sreops demo`",
        },
        {"name": "every demo run done", "value": done, "unit": "s", "note": note},
        {"name": "runs", "value": len(runs), "unit": "", "note": f"{failed} failed"},
    ] + [
        {
            "name": f"slowest run {i + 1}: started → ended",
            "value": r["ended"] - r["started"],
            "unit": "s",
            "note": f"{r['what']}, created at {r['created'] - began:.0f} s",
        }
        for i, r in enumerate(slowest)
    ]
