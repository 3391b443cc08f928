"""Runs `build_features` for the partition ranges given on the command line (`FIRST...LAST`).

Against $DAGSTER_HOME. Used by test_backfill.py: several of these at once are concurrent runs, each executing its step
in its run process, all writing the same DuckDB warehouse.
"""

import sys

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

if __name__ == "__main__":
    root, *ranges = sys.argv[1:]
    repository = ReconstructableRepository.for_module("sreops.definitions", "defs", working_directory=root)
    job = repository.get_reconstructable_job("build_features")
    failed = 0
    with dg.DagsterInstance.get() as instance:
        for key_range in ranges:
            first, last = key_range.split("...")
            tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
            result = dg.execute_job(job, instance=instance, tags=tags)
            failed += not result.success
            print(key_range, "ok" if result.success else "FAILED", flush=True)
    sys.exit(1 if failed else 0)
