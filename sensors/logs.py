"""The log sensor: appended log lines start an ingest-and-cluster run; hours they touched, count runs."""

import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from assets.logs import ingest_logs_job, log_counts_job
from assets.partitions import hourly_partitions
from assets.resources import ConfigResource, WarehouseResource
from sensors.rebuilds import rebuild_requests
from sreops import paths
from sreops.ingest import logfiles
from sreops.logs.store import COUNTS_ASSET


def log_run_requests(
    cursor: str | None,
    now: float,
    landing: Path,
    warehouse_path: str,
    partition_keys: set[str] | None = None,
    idle_seconds: float = 2.0,
) -> tuple[list[dg.RunRequest], str, str]:
    """The run requests for one tick, the new cursor, and a note on what was skipped.

    A file whose size or mtime changed asks for a run. A file that stopped changing asks for one
    more run once it has been idle `idle_seconds`, so that a last record kept back (it might
    have grown continuation lines) is read.
    """
    state = json.loads(cursor) if cursor else {}
    seen: dict[str, list] = state.get("files", {})
    last_mark: int = state.get("mark", 0)
    requests: list[dg.RunRequest] = []

    current = logfiles.pending_signature(landing)
    changed = []
    for name, signature in current.items():
        mtime = int(signature.split(":", 1)[0]) / 1e9
        previous = seen.get(name)
        idle = now - mtime >= idle_seconds
        if previous is None or previous[0] != signature:
            changed.append(name)
            seen[name] = [signature, idle]
        elif idle and not previous[1]:
            changed.append(name)
            seen[name] = [signature, True]
    seen = {name: value for name, value in seen.items() if name in current}
    if changed:
        key = hashlib.sha256(json.dumps(sorted(changed) + [seen[n][0] for n in sorted(changed)]).encode())
        requests.append(
            dg.RunRequest(
                job_name=ingest_logs_job.name,
                run_key=f"logs-{key.hexdigest()[:16]}-{int(now)}",
                tags={"sreops/log_files": str(len(changed))},
            )
        )

    rebuilds, last_mark, note = rebuild_requests(
        warehouse_path, COUNTS_ASSET, last_mark, log_counts_job.name, "log-counts", partition_keys
    )
    requests.extend(rebuilds)
    return requests, json.dumps({"files": seen, "mark": last_mark}), note


@dg.sensor(
    name="landing_logs",
    jobs=[ingest_logs_job, log_counts_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every few seconds: read and cluster appended log lines, then recount the hours touched.",
)
def landing_logs_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, sreops_config: ConfigResource
):
    """Changed log files → `ingest_logs`; hours with newly clustered lines → `build_log_counts`."""
    keys = set(hourly_partitions.get_partition_keys())
    requests, cursor, note = log_run_requests(
        context.cursor,
        time.time(),
        paths.landing_logs(),
        warehouse.path,
        keys,
        idle_seconds=sreops_config.load().logs.flush_idle_seconds,
    )
    context.update_cursor(cursor)
    if note:
        context.log.info(note)
    if not requests:
        return dg.SkipReason(note or "no appended log lines and no hours to recount")
    return requests


SENSORS = [landing_logs_sensor]
