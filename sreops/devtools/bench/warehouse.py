"""Benchmark of the warehouse backends: ingestion and feature builds by one writer process, then by two at once.

The same hour files (one CSV per hour) are ingested and their hours' features built, first by one
process doing all of it, then by two processes each doing half of the hours, at the same moment.
Ingestion and feature builds are two phases (every writer ingests, then every writer builds), so a
build never reads an hour another writer has not ingested yet and the results are exact. Each
setup then has its tables digested; the two-writer run must hold exactly what the one-writer run
holds. On DuckLake the writers commit at once; on the DuckDB file, measured for reference, they
take turns holding its lock.

`python -m sreops.devtools.bench.warehouse worker LOCATION FILES HOURS` is one writer; it talks
to the parent on stdin/stdout (`ready`, then a line per phase when told to go).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HOURS = 48
SERIES = 40
STEP_SECONDS = 10
START = dt.datetime(2026, 11, 10)

# Order-independent digests of what the writers leave, table by table (ids left out: they
# number files and marks in the order the writers happened to commit).
DIGESTS = {
    "metric_sample_values": "hash(ts, service, metric, value)",
    "metric_features_1m": "hash(minute, service, metric, n, round(mean, 9), min, max, round(std, 9), last, first,"
    " round(sum, 9), round(delta, 9), round(rate, 12), gap_minutes)",
    "ingested_files": "hash(path, sha256, size_bytes, rows, status, min_ts, max_ts, source)",
    "partition_marks": "hash(asset, hour, reason)",
    "partition_builds": "hash(asset, hour, rows, samples)",
}


def write_hour_files(folder: Path, hours: int = HOURS, series: int = SERIES, seed: int = 0) -> list[Path]:
    """One CSV of `series` series sampled every 10 s per hour from START; the files, oldest first."""
    rng = np.random.default_rng(seed)
    names = [(f"svc{s % 10}", f"m{s // 10}") for s in range(series)]
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for h in range(hours):
        hour = START + dt.timedelta(hours=h)
        ts = pd.date_range(hour, hour + dt.timedelta(hours=1), freq=f"{STEP_SECONDS}s", inclusive="left")
        frame = pd.concat(
            pd.DataFrame(
                {"timestamp": ts, "service": s, "metric": m, "value": rng.normal(50, 10, len(ts)).round(3)}
            )
            for s, m in names
        )
        path = folder / f"{hour:%Y%m%dT%H}.csv"
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        files.append(path)
    return files


def hour_of(path: Path) -> dt.datetime:
    """The hour a file written by `write_hour_files` holds."""
    return dt.datetime.strptime(path.stem, "%Y%m%dT%H")


# ---- one writer process ---------------------------------------------------------------------
def _cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _worker(location: str, files: list[Path], hours: list[dt.datetime]) -> None:
    from sreops import features, warehouse
    from sreops.ingest import run as ingest_run

    warehouse.migrate(location)
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.time(), _cpu_s()
    rows = 0
    for path in files:
        result = ingest_run.ingest_file(path, location, move=False, source="bench")
        if result.status != "ingested":
            raise RuntimeError(f"{path}: {result.status} {result.error}")
        rows += result.rows
    ingested = {"phase": "ingested", "rows": rows, "window": [started, time.time()], "cpu_s": _cpu_s() - cpu}
    print(json.dumps(ingested), flush=True)
    sys.stdin.readline()
    started, cpu = time.time(), _cpu_s()
    built = [features.build_hour(location, hour) for hour in hours]
    report = {
        "phase": "built",
        "rows": sum(b.rows for b in built),
        "window": [started, time.time()],
        "cpu_s": _cpu_s() - cpu,
        "waits": dict(warehouse.waits),
    }
    print(json.dumps(report), flush=True)


@dataclass
class Run:
    """What a set of concurrent writers did: the wall time of each phase and each writer's reports."""

    ingest_s: float
    build_s: float
    samples: int
    hours: int
    ingested: list[dict]
    built: list[dict]
    server_cpu_s: float | None = None  # the catalog's PostgreSQL, over the whole run
    machine: dict[str, float] | None = None  # cores busy on the whole machine per phase, every process

    @property
    def lock_waits(self) -> int:
        return sum(b["waits"].get("lock", 0) for b in self.built)

    @property
    def conflicts(self) -> int:
        return sum(b["waits"].get("conflict", 0) for b in self.built)

    def busy(self, phase: str) -> float:
        """CPU seconds the writers used per second of the phase: 1.0 is one core kept busy."""
        reports, wall = (self.ingested, self.ingest_s) if phase == "ingest" else (self.built, self.build_s)
        return sum(r["cpu_s"] for r in reports) / wall


def _read(proc: subprocess.Popen, expected: str) -> dict:
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
        raise RuntimeError(
            f"writer exited ({proc.returncode}) before '{expected}': {proc.stderr.read()[-3000:]}"
        )
    report = {"phase": "ready"} if line.strip() == "ready" else json.loads(line)
    if report.get("phase") != expected:
        raise RuntimeError(f"writer said {line!r} instead of {expected}")
    return report


def _with(env: dict[str, str] | None) -> list[str]:
    """A command prefix that runs the child with these variables added to this process's environment."""
    return ["env", *(f"{name}={value}" for name, value in (env or {}).items())]


def run_writers(location: str, shares: list[list[Path]], env: dict[str, str] | None = None) -> Run:
    """Start one writer process per share of the hour files, let them ingest at once, then build at once."""
    procs = [
        subprocess.Popen(
            [*_with(env), sys.executable, "-m", "sreops.devtools.bench.warehouse", "worker", location]
            + [",".join(map(str, share)), ",".join(f"{hour_of(p):%Y-%m-%dT%H}" for p in share)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    try:
        for proc in procs:
            _read(proc, "ready")
        phases: dict[str, list[dict]] = {}
        walls: dict[str, float] = {}
        machine: dict[str, float] = {}
        for phase in ("ingested", "built"):
            started, busy = time.perf_counter(), _machine_busy_s()
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            phases[phase] = [_read(proc, phase) for proc in procs]
            walls[phase] = time.perf_counter() - started
            machine[phase] = (_machine_busy_s() - busy) / walls[phase]
        for proc in procs:
            proc.stdin.close()
            if proc.wait(timeout=120) != 0:
                raise RuntimeError(f"writer failed: {proc.stderr.read()[-3000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Run(
        ingest_s=walls["ingested"],
        build_s=walls["built"],
        samples=sum(r["rows"] for r in phases["ingested"]),
        hours=sum(len(share) for share in shares),
        ingested=phases["ingested"],
        built=phases["built"],
        machine=machine,
    )


def _machine_busy_s() -> float:
    """CPU seconds every process on this machine has used since boot (/proc/stat; 0 where there is none)."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def digest(location: str) -> dict[str, tuple[int, int]]:
    """(rows, order-independent hash) of each table the writers fill."""
    from sreops import warehouse

    with warehouse.connect(location) as con:
        return {
            table: tuple(
                con.execute(f"SELECT count(*), coalesce(bit_xor({expr}), 0) FROM {table}").fetchone()
            )
            for table, expr in DIGESTS.items()
        }


def split(files: list[Path], writers: int) -> list[list[Path]]:
    """Every `writers`-th hour to each writer, so each has hours spread over the whole range."""
    return [files[i::writers] for i in range(writers)]


def _rows(backend: str, one: Run, two: Run, same: bool) -> list[dict]:
    total_one, total_two = one.ingest_s + one.build_s, two.ingest_s + two.build_s
    waits = f"lock waits {two.lock_waits}, conflict retries {two.conflicts}"
    server = [
        {"name": f"{backend}: catalog server CPU, 1 / 2 writers", "value": f"{one.server_cpu_s:.1f} / {two.server_cpu_s:.1f}",
         "unit": "CPU s", "note": "PostgreSQL, over each whole run (writer start-up included)"}
    ] if one.server_cpu_s is not None and two.server_cpu_s is not None else []  # fmt: skip
    return server + [
        {"name": f"{backend}: ingest, 1 writer", "value": one.samples / one.ingest_s, "unit": "samples/s",
         "note": f"{one.hours} hour files in {one.ingest_s:.1f} s; {one.busy('ingest'):.2f} cores busy (writers), {one.machine['ingested']:.2f} (machine)"},
        {"name": f"{backend}: ingest, 2 writers", "value": two.samples / two.ingest_s, "unit": "samples/s",
         "note": f"{one.ingest_s / two.ingest_s:.2f}x one writer; {two.busy('ingest'):.2f} cores busy (writers), {two.machine['ingested']:.2f} (machine)"},
        {"name": f"{backend}: feature builds, 1 writer", "value": one.hours / one.build_s, "unit": "hours/s",
         "note": f"{one.hours} hours in {one.build_s:.1f} s; {one.busy('build'):.2f} cores busy (writers), {one.machine['built']:.2f} (machine)"},
        {"name": f"{backend}: feature builds, 2 writers", "value": two.hours / two.build_s, "unit": "hours/s",
         "note": f"{one.build_s / two.build_s:.2f}x one writer; {two.busy('build'):.2f} cores busy (writers), {two.machine['built']:.2f} (machine)"},
        {"name": f"{backend}: ingest + features, 2 writers vs 1", "value": total_one / total_two, "unit": "x",
         "note": f"{total_one:.1f} s vs {total_two:.1f} s; {waits}; contents identical: {'yes' if same else 'NO'}"},
    ]  # fmt: skip


def bench_warehouse(
    hours: int = HOURS, series: int = SERIES, file_reference: bool = True, threads: int = 1, repeats: int = 3
) -> list[dict]:
    """Throughput of one vs two concurrent writer processes on DuckLake (and the DuckDB file), same contents.

    Each writer runs DuckDB with `threads` threads (`SREOPS_DUCKDB_THREADS`): its statements are
    small, so on this machine one thread per writer is also the fastest single writer.
    """
    tuning = {"SREOPS_DUCKDB_THREADS": str(threads)} if threads else {}
    from sreops.devtools import postgres_server

    rows: list[dict] = [machine_load()]
    with tempfile.TemporaryDirectory(prefix="sreops-bench-warehouse-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # as root, the PostgreSQL server runs as `postgres` and needs to enter it
        files = write_hour_files(root / "landing", hours, series)
        if postgres_server.available():
            with postgres_server.postgres_server(root / "postgres") as server:

                def lake(name: str) -> tuple[str, dict[str, str]]:
                    env = {
                        "SREOPS_HOME": str(root / f"home-{name}"),
                        "SREOPS_WAREHOUSE_DATA": f"{root / name}/",
                    }
                    catalog = postgres_server.create_database(server, name)
                    return f"ducklake:postgres:{catalog.libpq}", {**env, **tuning}

                pgdata = root / "postgres" / "pgdata"
                rows += _compare("DuckLake", files, lake, repeats, lambda: _server_cpu_s(pgdata))
        else:
            rows.append(
                {"name": "DuckLake", "value": "", "unit": "", "note": "PostgreSQL not installed: skipped"}
            )
        if file_reference:

            def file(name: str) -> tuple[str, dict[str, str]]:
                env = {"SREOPS_HOME": str(root / name), "SREOPS_WAREHOUSE": "", **tuning}
                return str(root / name / "warehouse.duckdb"), env

            rows += _compare("DuckDB file", files, file, repeats)
    return rows


def _server_cpu_s(pgdata: Path) -> float | None:
    """CPU seconds the PostgreSQL server (its postmaster and every backend, live or ended) has used."""
    try:
        pid = (pgdata / "postmaster.pid").read_text().split()[0]
        tick = os.sysconf("SC_CLK_TCK")

        def ticks(process: str, with_children: bool) -> int:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            return sum(
                int(f) for f in fields[11 : 15 if with_children else 13]
            )  # utime stime (cutime cstime)

        total = ticks(pid, True)
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                total += ticks(child, False)
            except OSError:  # ended meanwhile: counted in the postmaster's children times
                continue
    except (OSError, ValueError, IndexError):
        return None
    return total / tick


def machine_load() -> dict:
    """A row with this machine's cores and load, which bound what a second writer can add."""
    load = os.getloadavg()[0]
    return {
        "name": "machine",
        "value": os.cpu_count(),
        "unit": "cores",
        "note": f"load average {load:.2f} at start",
    }


def _compare(
    backend: str,
    files: list[Path],
    fresh: Callable[[str], tuple[str, dict[str, str]]],
    repeats: int,
    server_cpu: Callable[[], float | None] = lambda: None,
) -> list[dict]:
    """One and two writers, each `repeats` times on a fresh warehouse, alternating; the fastest of each.

    The fastest run is the one least disturbed by whatever else the machine runs meanwhile.
    """
    best: dict[int, Run] = {}
    digests: list[dict] = []
    for attempt in range(repeats):
        for writers in (1, 2):
            location, env = fresh(f"{backend.split()[-1].lower()}-{writers}-{attempt}")
            used = server_cpu()
            run = run_writers(location, split(files, writers), env)
            after = server_cpu()
            if used is not None and after is not None:
                run.server_cpu_s = after - used
            digests.append(digest_in(location, env))
            if (
                writers not in best
                or run.ingest_s + run.build_s < best[writers].ingest_s + best[writers].build_s
            ):
                best[writers] = run
    same = all(d == digests[0] for d in digests)
    return _rows(backend, best[1], best[2], same)


_DIGEST_CHILD = "import json, sys; from sreops.devtools.bench.warehouse import digest; print(json.dumps(digest(sys.argv[1])))"


def digest_in(location: str, env: dict[str, str]) -> dict:
    """`digest` in a fresh process with the writers' environment (this one keeps no lake open)."""
    out = subprocess.run(
        [*_with(env), sys.executable, "-c", _DIGEST_CHILD, location],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        location, files, hours = sys.argv[2:5]
        _worker(
            location,
            [Path(f) for f in files.split(",") if f],
            [dt.datetime.strptime(h, "%Y-%m-%dT%H") for h in hours.split(",") if h],
        )
    else:
        from sreops.devtools.bench.runner import format_table

        print(format_table([{"stage": "warehouse", **row} for row in bench_warehouse()]))
