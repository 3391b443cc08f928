"""A throwaway PostgreSQL server on loopback for tests and benchmarks: Debian's binaries, a temp cluster.

`postgres` refuses to run as root, so as root the cluster is created and started as the
`postgres` system user (created by Debian's package). The server listens on 127.0.0.1 only, on a
free port, with trust authentication for loopback, and is stopped (fast) when the context exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sreops.devtools.dagster_dev import free_port


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and how to reach its database."""

    host: str
    port: int
    user: str
    database: str

    @property
    def url(self) -> str:
        """A libpq URL (`postgresql://user@host:port/db`), as dagster-postgres and psycopg2 take."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def dagster_url(self) -> str:
        """The URL with psycopg2 named, as dagster-postgres needs (SQLAlchemy reads a bare one as psycopg 3)."""
        return self.url.replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def libpq(self) -> str:
        """A libpq key=value string, as DuckDB's postgres extension takes."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"


def create_database(server: PostgresServer, name: str) -> PostgresServer:
    """A new, empty database `name` on `server`; the same server, connecting to it."""
    import psycopg2

    admin = psycopg2.connect(server.url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return dataclasses.replace(server, database=name)


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """The rows of one query (psycopg2 parameters) against the database at `url`."""
    import psycopg2

    con = psycopg2.connect(url)
    try:
        with con, con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def postgres_bin_dir() -> Path | None:
    """The folder of Debian's `initdb`/`pg_ctl` (newest major version), or None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def available() -> bool:
    """True when a server can be started here (binaries present and, as root, a `postgres` user)."""
    if postgres_bin_dir() is None:
        return False
    if os.geteuid() != 0:
        return True
    return subprocess.run(["id", "postgres"], capture_output=True).returncode == 0


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str]) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip()[-800:]}")


@contextlib.contextmanager
def postgres_server(
    root: Path, database: str = "sreops", max_connections: int = 200, startup_s: float = 60.0
) -> Iterator[PostgresServer]:
    """Start a fresh cluster under `root` on a free loopback port; stop it on exit."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    root.mkdir(parents=True, exist_ok=True)
    data = root / "pgdata"
    sockets = root / "sockets"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets}"
        f" -c max_connections={max_connections} -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off"
    )
    _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w",
          "-t", str(int(startup_s)), "start"])  # fmt: skip
    server = PostgresServer("127.0.0.1", port, user, database)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            created = subprocess.run(
                _as_server_user(
                    [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database]
                ),  # fmt: skip
                capture_output=True,
                text=True,
            )
            if created.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb {database} failed: {created.stderr.strip()}")
            time.sleep(0.2)
        yield server
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
