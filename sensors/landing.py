"""The landing sensor: new metric files start ingestion runs; hours they touched start feature runs."""

import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from assets.features import features_job
from assets.ingest import ingest_job
from assets.partitions import hour_key, hourly_partitions
from assets.resources import WarehouseResource
from sreops import marks, paths
from sreops.features import ASSET as FEATURES_ASSET
from sreops.ingest import files as landing_files
from sreops.warehouse import WarehouseLockedError

MAX_FILES_PER_RUN = 50
SETTLE_SECONDS = 1.0  # a file must be this old, so a writer that does not rename is done
RETRY_AFTER_SECONDS = 600.0  # a file still in landing this long after its run was requested is retried
READ_PATIENCE_SECONDS = 3.0


def _signature(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def landing_run_requests(
    cursor: str | None, now: float, landing: Path, warehouse_path: str, partition_keys: set[str] | None = None
) -> tuple[list[dg.RunRequest], str, str]:
    """The run requests for one tick, the new cursor, and a note on what was skipped."""
    state = json.loads(cursor) if cursor else {}
    requested: dict[str, list] = state.get("files", {})
    last_mark: int = state.get("mark", 0)
    requests: list[dg.RunRequest] = []

    present = {str(p): p for p in landing_files.discover(landing)}
    fresh = []
    for name, path in present.items():
        try:
            signature = _signature(path)
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        seen = requested.get(name)
        if age < SETTLE_SECONDS:
            continue
        if seen is None or seen[0] != signature or now - seen[1] > RETRY_AFTER_SECONDS:
            fresh.append((name, signature))
    for start in range(0, len(fresh), MAX_FILES_PER_RUN):
        batch = fresh[start : start + MAX_FILES_PER_RUN]
        key = hashlib.sha256(json.dumps(batch).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                job_name=ingest_job.name,
                run_key=f"ingest-{key}-{int(now)}",
                run_config={"ops": {"metric_samples": {"config": {"files": [name for name, _ in batch]}}}},
                tags={"sreops/files": str(len(batch))},
            )
        )
        for name, signature in batch:
            requested[name] = [signature, now]
    requested = {name: seen for name, seen in requested.items() if name in present}

    note = ""
    try:
        new_marks = marks.marks_after(
            warehouse_path, FEATURES_ASSET, last_mark, patience_s=READ_PATIENCE_SECONDS
        )
    except WarehouseLockedError:
        new_marks, note = [], "warehouse busy; hours touched by new files will be requested next tick"
    skipped = 0
    for hour_range in marks.group_hours(new_marks):
        first, last = hour_key(hour_range.first), hour_key(hour_range.last)
        if partition_keys is not None and (first not in partition_keys or last not in partition_keys):
            skipped += hour_range.hours
            continue
        tags = (
            {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
            if first != last
            else {}
        )
        requests.append(
            dg.RunRequest(
                job_name=features_job.name,
                run_key=f"features-{first}-{last}-{hour_range.newest_mark}",
                partition_key=first if first == last else None,
                tags=tags,
            )
        )
    if new_marks:
        last_mark = max(mark_id for mark_id, _ in new_marks)
    if skipped:
        note = f"{skipped} marked hour(s) fall outside the hourly partitions and were not requested"
    return requests, json.dumps({"files": requested, "mark": last_mark}), note


@dg.sensor(
    name="landing_metrics",
    jobs=[ingest_job, features_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every few seconds: ingest new metric files, then rebuild exactly the hours they touched.",
)
def landing_metrics_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """New landing files → `ingest_metrics`; hours they touched → `build_features`."""
    keys = set(hourly_partitions.get_partition_keys())
    requests, cursor, note = landing_run_requests(
        context.cursor, time.time(), paths.landing_metrics(), warehouse.path, keys
    )
    context.update_cursor(cursor)
    if note:
        context.log.info(note)
    if not requests:
        return dg.SkipReason(note or "no new files and no hours to rebuild")
    return requests


SENSORS = [landing_metrics_sensor]
