"""Which executor runs use: in-process, measured (`sreops bench realtime`).

Every run here is a chain of steps that must run in order (ingest → features → anomalies →
alerts), and each step that writes the warehouse holds its one-slot `warehouse` pool, so
Dagster's multiprocess executor could never run two of them at once: it only added a process
start and a code-location import per step (a detection run took 5.2 s instead of 1.5 s, a
features run 2.5 s instead of 0.6 s). Parallelism comes from runs instead: the queued run
coordinator runs up to three at a time (`dagster.yaml`), and the CPU-heavy work inside a step
(Prophet fits) uses its own process pool.
"""

import dagster as dg

RUN_EXECUTOR = dg.in_process_executor
