"""A throwaway Redis server on loopback (Debian's `redis-server`), e.g. a Celery broker for tests.

Nothing is persisted (`--save ''`, no append-only file); the server listens on 127.0.0.1 only,
on a free port, and is stopped when the context exits.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from sreops.devtools.dagster_dev import free_port


def available() -> bool:
    """True when Debian's redis-server is installed."""
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server(root: Path, startup_s: float = 30.0) -> Iterator[str]:
    """Start redis-server on a free loopback port (working folder `root`); its URL (`redis://…/0`)."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install redis-server")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (root / "redis.log").open("ab")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(root), "--protected-mode", "yes"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + startup_s
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as exc:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(
                        f"redis-server did not answer on port {port}; see {root}/redis.log"
                    ) from exc
                time.sleep(0.1)
        client.close()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
