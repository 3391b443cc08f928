"""`dagster dev` on loopback for benchmarks and tests: start it, query its GraphQL API, stop it.

The process gets this process's environment plus the given settings (through `env`, so that this
module never reads or writes the environment itself).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of one query to the webserver's GraphQL API; RuntimeError when it reports errors."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


RUNS_QUERY = """
query Runs($limit: Int) { runsOrError(limit: $limit) { ... on Runs { results {
    jobName creationTime startTime endTime status assetSelection { path } } } } }
"""


def run_records(port: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Each run's job, what it selected, status and created/started/ended epoch seconds (None until then)."""
    results = graphql(port, RUNS_QUERY, {"limit": limit})["runsOrError"]["results"]
    return [
        {
            "job": run["jobName"],
            "what": ",".join(sorted("/".join(key["path"]) for key in run["assetSelection"] or []))
            or run["jobName"],
            "created": run["creationTime"],
            "started": run["startTime"],
            "ended": run["endTime"],
            "status": run["status"],
        }
        for run in results
    ]


LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions }
    ... on PythonError { message }
  }
}
"""
BACKFILL_DONE = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")


def launch_backfill(port: int, assets: list[str], partition_keys: list[str]) -> str:
    """Launch a backfill of `assets` over `partition_keys` as the UI does; its backfill id."""
    params = {"assetSelection": [{"path": [a]} for a in assets], "partitionNames": partition_keys}
    launched = graphql(port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill failed: {launched}")
    return launched["backfillId"]


def wait_for_backfill(port: int, backfill_id: str, timeout_s: float = 600.0) -> dict[str, Any]:
    """The backfill's `status` and `numPartitions` once it is done; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        backfill = graphql(port, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill.get("status") in BACKFILL_DONE:
            return backfill
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} not done within {timeout_s:.0f} s: {backfill}")
        time.sleep(1.0)


@contextlib.contextmanager
def dagster_dev(
    dagster_home: Path,
    settings: Mapping[str, str],
    startup_s: float = 240.0,
    instance_yaml: Path | None = None,
    log_path: Path | None = None,
) -> Iterator[int]:
    """`dagster dev` (webserver and daemon) with the checkout's workspace, answering GraphQL; its port.

    `dagster_home` gets `instance_yaml` as its `dagster.yaml` (default: the checkout's, SQLite
    storage; e.g. `deploy/dagster.postgres.yaml` for PostgreSQL); `settings` are added to the
    environment. `log_path`, if given, receives the webserver's and daemon's output.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(instance_yaml or REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    log = log_path.open("ab") if log_path is not None else None
    port = free_port()
    assignments = [f"{k}={v}" for k, v in {**settings, "DAGSTER_HOME": str(dagster_home)}.items()]
    dev = subprocess.Popen(
        ["env", *assignments, str(Path(sys.executable).parent / "dagster"), "dev"]
        + ["-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_s
        while True:  # the webserver answers once the code location has loaded
            try:
                graphql(port, "{ version }")
                break
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                if time.monotonic() > deadline or dev.poll() is not None:
                    raise TimeoutError(
                        f"dagster dev did not answer on port {port} within {startup_s:.0f} s"
                    ) from exc
                time.sleep(0.5)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already (a failed start)
            os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
        if log is not None:
            log.close()
