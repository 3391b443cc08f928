"""Which executor runs use: one setting, `SREOPS_EXECUTOR` (in_process, multiprocess or celery).

`in_process` (the default) was measured best on one small machine (`sreops bench realtime`):
every run here is a chain of steps that must run in order (ingest → features → anomalies →
alerts), and each step that writes the warehouse holds its one-slot `warehouse` pool, so
Dagster's multiprocess executor could never run two of them at once: it only added a process
start and a code-location import per step (a detection run took 5.2 s instead of 1.5 s, a
features run 2.5 s instead of 0.6 s). Parallelism comes from runs instead: the queued run
coordinator runs up to three at a time (`dagster.yaml`), and the CPU-heavy work inside a step
(Prophet fits) uses its own process pool.

`multiprocess` runs each step in its own process (steps of one run that do not share a pool
overlap); `celery` sends each step to a Celery worker, on any machine that has the checkout,
the same `dagster.yaml` (PostgreSQL storage, `deploy/dagster.postgres.yaml`) and the warehouse.
The broker URL comes from `SREOPS_CELERY_BROKER` (read by Dagster when a run starts);
docs/deploy.md has the worker command.
"""

import dagster as dg

from sreops.config import environment

CELERY_BROKER_ENV = "SREOPS_CELERY_BROKER"


def _celery_executor() -> dg.ExecutorDefinition:
    from dagster_celery import celery_executor  # only when chosen: Celery and kombu load slowly

    return celery_executor.configured({"broker": {"env": CELERY_BROKER_ENV}}, name="celery")


def run_executor(name: str) -> dg.ExecutorDefinition:
    """The executor named `name` (`in_process`, `multiprocess` or `celery`)."""
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        return _celery_executor()
    raise ValueError(f"unknown executor {name!r}: use in_process, multiprocess or celery")


RUN_EXECUTOR = run_executor(environment.run_executor_name())
