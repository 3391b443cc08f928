"""A `dagster-celery` worker for tests and benchmarks: start it, wait until it answers the broker, stop it.

The worker gets this process's environment plus the given settings (through `env`, so that this
module never reads or writes the environment itself), runs from the checkout (so the code
location `sreops.definitions` imports), and reads the broker from `deploy/celery.yaml`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from sreops.devtools.dagster_dev import REPO

WORKER_CONFIG = REPO / "deploy" / "celery.yaml"


def _answers(broker_url: str, name: str) -> bool:
    from celery import Celery

    app = Celery("sreops-probe", broker=broker_url)
    try:
        replies = app.control.ping(destination=[name], timeout=1.0)
    finally:
        app.close()
    return bool(replies)


@contextlib.contextmanager
def celery_worker(
    name: str,
    broker_url: str,
    settings: Mapping[str, str],
    log_path: Path,
    concurrency: int = 2,
    startup_s: float = 120.0,
) -> Iterator[str]:
    """`dagster-celery worker start` with the checkout's config; its node name (`name@host`).

    `settings` (e.g. `DAGSTER_HOME`, `SREOPS_HOME`) and `SREOPS_CELERY_BROKER` are added to the
    environment; `log_path` receives the worker's output.
    """
    node = f"{name}@{socket.gethostname()}"
    environment = {**settings, "SREOPS_CELERY_BROKER": broker_url, "PYTHONPATH": str(REPO)}
    assignments = [f"{k}={v}" for k, v in environment.items()]
    log = log_path.open("ab")
    worker = subprocess.Popen(
        ["env", *assignments, str(Path(sys.executable).parent / "dagster-celery"), "worker", "start"]
        + ["-A", "dagster_celery.app", "-y", str(WORKER_CONFIG), "-n", name, "--"]
        + [f"--concurrency={concurrency}"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_s
        while not _answers(broker_url, node):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise TimeoutError(
                    f"celery worker {node} did not answer within {startup_s:.0f} s; see {log_path}"
                )
            time.sleep(0.5)
        yield node
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown: running tasks finish first
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        log.close()
