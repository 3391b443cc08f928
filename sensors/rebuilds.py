"""Run requests that rebuild the hours marked in `partition_marks`, shared by the landing sensors."""

import dagster as dg

from assets.partitions import hour_key
from sreops import marks, warehouse
from sreops.warehouse import WarehouseLockedError

READ_PATIENCE_SECONDS = 3.0
# Contiguous marked hours become one ranged run of up to a week: every run start costs seconds
# (the queue, a process, the code location), while a run builds its hours one at a time with
# flat memory. A day per run made the demo's first week 8 features and 8 log-count runs.
REBUILD_RANGE_HOURS = 168


def rebuild_requests(
    warehouse_path: str,
    asset: str,
    after_mark: int,
    job_name: str,
    run_key_prefix: str,
    partition_keys: set[str] | None = None,
) -> tuple[list[dg.RunRequest], int, str]:
    """One run per contiguous range of newly marked hours of `asset`, the newest mark, and a note.

    A range becomes a ranged run (Dagster's partition range tags); hours outside the
    partitions are skipped and said so; a busy warehouse defers everything to the next tick.
    """
    try:
        with warehouse.connect(warehouse_path, patience_s=READ_PATIENCE_SECONDS) as con:
            new_marks = marks.marks_after(con, asset, after_mark)
            done = marks.built_since_marked(con, asset, new_marks)  # e.g. built inline by the ingest run
    except WarehouseLockedError:
        return [], after_mark, "warehouse busy; marked hours will be requested next tick"
    requests, skipped = [], 0
    for hour_range in marks.group_hours([m for m in new_marks if m[0] not in done], REBUILD_RANGE_HOURS):
        first, last = hour_key(hour_range.first), hour_key(hour_range.last)
        if partition_keys is not None and (first not in partition_keys or last not in partition_keys):
            skipped += hour_range.hours
            continue
        ranged = first != last
        requests.append(
            dg.RunRequest(
                job_name=job_name,
                run_key=f"{run_key_prefix}-{first}-{last}-{hour_range.newest_mark}",
                partition_key=None if ranged else first,
                tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
                if ranged
                else {},
            )
        )
    newest = max((mark_id for mark_id, _ in new_marks), default=after_mark)
    note = (
        f"{skipped} marked hour(s) fall outside the hourly partitions and were not requested"
        if skipped
        else ""
    )
    return requests, newest, note
