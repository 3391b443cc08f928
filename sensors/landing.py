"""The landing sensor: new metric files start ingestion runs; hours they touched start feature runs."""

import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from assets.features import features_job
from assets.ingest import ingest_job
from assets.partitions import hourly_partitions
from assets.resources import WarehouseResource
from sensors.rebuilds import rebuild_requests
from sreops import paths
from sreops.features import ASSET as FEATURES_ASSET
from sreops.ingest import landing as metric_landing

MAX_FILES_PER_RUN = 50
SETTLE_SECONDS = 1.0  # a file must be this old, so a writer that does not rename is done
RETRY_AFTER_SECONDS = 600.0  # a file still in landing this long after its run was requested is retried


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

    present = {str(p): p for p in metric_landing.discover(landing)}
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

    rebuilds, last_mark, note = rebuild_requests(
        warehouse_path, FEATURES_ASSET, last_mark, features_job.name, "features", partition_keys
    )
    requests.extend(rebuilds)
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
