"""Crash safety: `sreops ingest --move` and `sreops features` killed (SIGKILL) at seeded random
moments, then run again, leave exact counts: every sample once, nothing lost, features whole."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sreops import features, paths, warehouse
from sreops.ingest import landing as metric_landing
from sreops.ingest import run as ingest_run

REPO = Path(__file__).resolve().parents[3]  # the tree under test, also for the subprocesses
HEADER = "timestamp,service,metric,value\n"
START = dt.datetime(2026, 11, 20, 0)
HOURS = 24
KILLS = 6


def sreops(*args: str) -> list[str]:
    return [sys.executable, "-m", "sreops.cli", *args]


def environment() -> dict[str, str]:
    return os.environ | {"SREOPS_HOME": str(paths.home()), "PYTHONPATH": str(REPO)}


def kill_at_random_moments(command: list[str], rng: random.Random, kills: int, latest_s: float) -> int:
    """Start `command` `kills` times, SIGKILL each run after a seeded random delay; the number
    of runs that the kill actually interrupted."""
    interrupted = 0
    for _ in range(kills):
        proc = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.1, latest_s))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            interrupted += 1
        else:
            assert proc.returncode in (0, 1), proc.stderr.read().decode()[-2000:]
        proc.stderr.close()
    return interrupted


def same_features(left: list[tuple], right: list[tuple]) -> bool:
    """Row for row equal; floats to rounding, since parallel aggregation may sum in any order."""
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (a, b)
            else:
                assert x == y, (a, b)
    return True


def write_landing(rng: random.Random) -> tuple[int, int]:
    """Metric files over 24 hours, some repeated under another name, two malformed; returns
    (distinct good contents, their samples)."""
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    contents = []
    for _ in range(40):
        rows = []
        for _ in range(200):
            moment = START + dt.timedelta(seconds=rng.randrange(HOURS * 3600))
            rows.append(
                f"{moment:%Y-%m-%dT%H:%M:%S}Z,svc-{rng.randrange(4)},m{rng.randrange(3)},{rng.random():.6f}\n"
            )
        contents.append(HEADER + "".join(rows))
    for i, text in enumerate(contents):
        (folder / f"part-{i:03d}.csv").write_text(text)
    for i in range(0, 40, 10):  # the same content landing twice
        (folder / f"again-{i:03d}.csv").write_text(contents[i])
    (folder / "bad-value.csv").write_text(HEADER + "2026-11-20T01:00:00Z,svc-0,m0,abc\n")
    (folder / "bad-year.csv").write_text(HEADER + "9999-01-01T00:00:00Z,svc-0,m0,1\n")
    return len(contents), sum(text.count("\n") - 1 for text in contents)


@pytest.mark.slow
def test_killed_ingests_and_feature_builds_rerun_to_exact_counts(warehouse_path: Path) -> None:
    rng = random.Random(20261201)
    distinct, samples = write_landing(rng)
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.landing_metrics().glob("part-*.csv")}

    # ingestion: killed mid-batch several times, then run to the end
    ingest = sreops("ingest", "--move", str(paths.landing_metrics()))
    interrupted = kill_at_random_moments(ingest, rng, KILLS, latest_s=2.5)
    finished = subprocess.run(ingest, env=environment(), capture_output=True, text=True, timeout=300)
    assert finished.returncode in (0, 1), finished.stderr[-2000:]  # 1: the malformed files
    assert "Traceback" not in finished.stderr

    with warehouse.connect(warehouse_path) as con:
        landed = con.execute(
            "SELECT count(*), count(DISTINCT sha256), list(sha256) FROM ingested_files WHERE status = 'ingested'"
        ).fetchone()
        marked = con.execute(
            "SELECT count(DISTINCT m.file_id) FROM partition_marks AS m"
            " JOIN ingested_files AS f ON f.file_id = m.file_id WHERE f.status = 'ingested'"
        ).fetchone()[0]
        refused = {
            r[0]
            for r in con.execute("SELECT path FROM ingested_files WHERE status = 'quarantined'").fetchall()
        }
        orphans = con.execute(
            "SELECT count(*) FROM metric_sample_values WHERE file_id NOT IN"
            " (SELECT file_id FROM ingested_files WHERE status = 'ingested')"
        ).fetchone()[0]
    assert landed[:2] == (distinct, distinct)  # each content once, whatever the kills interrupted
    assert set(landed[2]) == digests
    assert warehouse.table_count("metric_sample_values", warehouse_path) == samples
    assert orphans == 0 and marked == distinct  # rows, record and hour marks committed together
    assert {Path(p).name for p in refused} == {"bad-value.csv", "bad-year.csv"}
    assert metric_landing.discover() == []  # nothing left behind to retry
    quarantined = {
        p.name for p in paths.quarantine_metrics().glob("*.csv") if Path(f"{p}.reason.txt").exists()
    }
    assert {"bad-value.csv", "bad-year.csv"} <= {name.split(".")[0] + ".csv" for name in quarantined}

    # features: a rebuild of the whole day killed several times, then run to the end
    build = sreops(
        "features", f"{START:%Y-%m-%dT%H:%M}", f"{START + dt.timedelta(hours=HOURS):%Y-%m-%dT%H:%M}"
    )
    interrupted += kill_at_random_moments(build, rng, KILLS, latest_s=1.5)
    finished = subprocess.run(build, env=environment(), capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]

    end = START + dt.timedelta(hours=HOURS)
    assert features.duplicate_keys(warehouse_path, START, end) == 0
    counted, present = features.sample_count_mismatch(warehouse_path, START, end)
    assert counted == present > 0
    with warehouse.connect(warehouse_path) as con:
        after_kills = con.execute(
            "SELECT * FROM metric_features_1m ORDER BY minute, service, metric"
        ).fetchall()
    features.build_range(warehouse_path, START, end)  # a clean rebuild changes nothing
    with warehouse.connect(warehouse_path) as con:
        clean = con.execute("SELECT * FROM metric_features_1m ORDER BY minute, service, metric").fetchall()
    assert same_features(after_kills, clean)
    assert interrupted > 0  # the kills did land mid-run (seeded delays inside the runs' span)


def test_sigkill_inside_an_ingest_transaction_leaves_no_trace(warehouse_path: Path) -> None:
    """The worst moment, made certain: killed after its rows are inserted, before COMMIT."""
    path = paths.landing_metrics() / "held.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"2026-11-20T10:00:{s:02d}Z,api,cpu,{s}\n" for s in range(50)))
    script = (
        "import os, signal, sys\n"
        "from sreops.ingest import run, store\n"
        "real = store.insert_file_rows\n"
        "def insert_then_die(*args, **kwargs):\n"
        "    real(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "store.insert_file_rows = insert_then_die\n"
        "run.ingest_file(sys.argv[1], sys.argv[2])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path), str(warehouse_path)], env=environment(), timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert warehouse.table_count("metric_sample_values", warehouse_path) == 0
    assert warehouse.table_count("ingested_files", warehouse_path) == 0
    assert path.exists()  # still in landing: the next run takes it

    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "ingested" and result.rows == 50
    assert warehouse.table_count("metric_sample_values", warehouse_path) == 50


def test_sigkill_before_a_feature_build_commits_leaves_the_hour_as_it_was(warehouse_path: Path) -> None:
    """Killed after the hour's rows were deleted and rebuilt, before COMMIT: the old rows stay."""
    hour = dt.datetime(2026, 11, 20, 10)
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "first.csv"
    first.write_text(HEADER + "".join(f"2026-11-20T10:{m:02d}:00Z,api,cpu,{m}\n" for m in range(30)))
    ingest_run.ingest_file(first, warehouse_path)
    features.build_hour(warehouse_path, hour)
    before = features.read_hour(warehouse_path, hour)
    later = folder / "later.csv"
    later.write_text(HEADER + "".join(f"2026-11-20T10:{m:02d}:30Z,db,p95,{m}\n" for m in range(60)))
    ingest_run.ingest_file(later, warehouse_path)
    script = (
        "import contextlib, datetime, os, signal, sys\n"
        "from sreops import features, warehouse\n"
        "real = warehouse.transaction\n"
        "@contextlib.contextmanager\n"
        "def dies_before_commit(*args, **kwargs):\n"
        "    with real(*args, **kwargs) as con:\n"
        "        yield con\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "warehouse.transaction = dies_before_commit\n"
        "features.build_hour(sys.argv[1], datetime.datetime.fromisoformat(sys.argv[2]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(warehouse_path), hour.isoformat()], env=environment(), timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert features.read_hour(warehouse_path, hour).equals(before)  # not empty, not half-built

    build = features.build_hour(warehouse_path, hour)
    assert build.samples == 90 and build.series == 2
