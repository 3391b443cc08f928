"""Log ingestion killed (SIGKILL) at seeded points, then run again: every line stored exactly once.

A subprocess runs ingestion in a loop until a run reads nothing. It is killed either at its k-th
warehouse call inside the write transaction (before each statement, and once more just after the
commit), or after a seeded delay, which lands anywhere: listing, reading, parsing, connecting.
Between kills the files grow and are rotated, so each restart meets a new state.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sreops import paths, warehouse

REPO = Path(__file__).resolve().parents[3]
ROUNDS = 24

WORKER = r"""
import os, signal, sys, time
from contextlib import contextmanager
from pathlib import Path

from sreops import config, warehouse
from sreops.logs import run as logs_run

warehouse_path, root, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
calls = 0


def tick():
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


class Counted:
    # The write transaction's connection: every statement is a point where the process may die.
    def __init__(self, con):
        self._con = con

    def __getattr__(self, name):
        attr = getattr(self._con, name)
        if name not in ("execute", "executemany", "register", "unregister"):
            return attr

        def call(*args, **kwargs):
            tick()
            return attr(*args, **kwargs)

        return call


real_transaction = warehouse.transaction


@contextmanager
def transaction(*args, **kwargs):
    with real_transaction(*args, **kwargs) as con:
        yield Counted(con)
    tick()  # just after the commit


warehouse.transaction = transaction
cfg = config.Config.model_validate({"logs": {"max_bytes_per_file": 65536}})  # several runs per file
print("ready", flush=True)
while logs_run.ingest(warehouse_path, root, cfg=cfg, clock=time.time() + 5).rows:
    pass
print("done", flush=True)
"""


class Writer:
    """Numbered lines appended to a plain log (rotated by renaming now and then) and a JSON Lines file."""

    def __init__(self, root: Path) -> None:
        self.api, self.web = root / "api", root / "web"
        self.api.mkdir(parents=True)
        self.web.mkdir(parents=True)
        self.lines = {"api": 0, "web": 0}
        self.rotations = 0

    def append(self, n: int) -> None:
        with (self.api / "app.log").open("a") as fh:
            for _ in range(n):
                fh.write(f"2026-11-20 13:00:00,000 INFO api line {self.lines['api']:06d} padded to be long\n")
                self.lines["api"] += 1
        with (self.web / "events.jsonl").open("a") as fh:
            for _ in range(n):
                fh.write(f'{{"ts": "2026-11-20T13:00:00Z", "msg": "web line {self.lines["web"]:06d}"}}\n')
                self.lines["web"] += 1

    def rotate(self) -> None:
        self.rotations += 1
        os.rename(self.api / "app.log", self.api / f"app.log.{self.rotations}")


def run_worker(warehouse_path: Path, kill_at: int, delay: float | None) -> int:
    env = os.environ | {"SREOPS_HOME": str(paths.home()), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", WORKER, str(warehouse_path), str(paths.landing_logs()), str(kill_at)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if delay is not None:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGKILL), err[-2000:]
    if proc.returncode == 0:
        assert out.strip().endswith("done") and "Traceback" not in err, err[-2000:]
    return proc.returncode


@pytest.mark.slow
def test_log_ingestion_killed_anywhere_and_rerun_stores_every_line_once(warehouse_path: Path) -> None:
    rng = random.Random(20261120)
    writer = Writer(paths.landing_logs())
    killed = 0
    for round_no in range(ROUNDS):  # bounded: ROUNDS kills, then one run left to finish
        writer.append(rng.randint(300, 1800))
        if round_no % 4 == 3:
            writer.rotate()
            writer.append(rng.randint(50, 300))
        if round_no % 2:
            code = run_worker(warehouse_path, kill_at=0, delay=rng.uniform(0.0, 0.8))
        else:
            code = run_worker(warehouse_path, kill_at=rng.randint(1, 16), delay=None)
        killed += code == -signal.SIGKILL
    assert run_worker(warehouse_path, kill_at=0, delay=None) == 0
    assert killed >= ROUNDS // 2 and writer.rotations >= 3
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute("SELECT service, message FROM log_lines").fetchall()
    for service, count in writer.lines.items():
        messages = sorted(m for s, m in rows if s == service)
        assert len(messages) == len(set(messages)), (
            f"{service}: {len(messages) - len(set(messages))} repeated"
        )
        assert messages == [
            f"{service} line {i:06d}" + (" padded to be long" if service == "api" else "")
            for i in range(count)
        ]
