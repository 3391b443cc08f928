"""A throwaway Prometheus and node exporter on loopback for tests and demos: Debian's binaries.

`node_exporter()` starts `prometheus-node-exporter` with only the CPU and memory collectors (fast
scrapes); `prometheus_server()` starts `prometheus` on a free 127.0.0.1 port with its TSDB in a
folder of the caller's, scraping the given targets every `scrape_interval_s`. The server can be
stopped and started again on the same port and TSDB (`stop()`, `start()`), as an outage would.
Both stop (SIGTERM, so Prometheus closes its WAL) when their context exits.

`TEST_USER`/`TEST_PASSWORD`/`TEST_PASSWORD_BCRYPT` are a fixed test login for the optional basic
auth (`--web.config.file`), which Prometheus checks on every endpoint: a way to test auth headers
against the real server. They protect nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sreops.devtools.dagster_dev import free_port

PROMETHEUS = "prometheus"
NODE_EXPORTER = "prometheus-node-exporter"
TEST_USER = "sreops"
TEST_PASSWORD = "sreops-test"
TEST_PASSWORD_BCRYPT = "$2b$04$wqgmtPN.QVesQNLpboUrpelntC5.gMGuKbxrbBoJPSpZE2Ol2GFfK"  # of TEST_PASSWORD


def missing() -> str | None:
    """Why a server cannot be started here (a binary not installed), or None when both are."""
    absent = [name for name in (PROMETHEUS, NODE_EXPORTER) if shutil.which(name) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (apt-get install prometheus prometheus-node-exporter)"
    return None


def available() -> bool:
    """True when both `prometheus` and `prometheus-node-exporter` are installed."""
    return missing() is None


def basic_auth_secret(user: str = TEST_USER, password: str = TEST_PASSWORD) -> str:
    """The credential of an `Authorization: Basic …` header for `user`."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _stop(process: subprocess.Popen, patience_s: float = 30.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=patience_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=patience_s)


def _get(url: str, headers: dict[str, str] | None = None, timeout_s: float = 5.0) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, startup_s: float, headers=None) -> None:
    deadline = time.monotonic() + startup_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited ({process.returncode}): {log.read_text()[-800:]}")
        try:
            _get(url, headers)
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{process.args[0]} did not answer {url} in {startup_s:.0f} s") from None
            time.sleep(0.2)


@dataclass(frozen=True)
class NodeExporter:
    """A running node exporter: its scrape target (`host:port`)."""

    port: int

    @property
    def target(self) -> str:
        """What a Prometheus scrape config lists: `127.0.0.1:PORT`."""
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def node_exporter(root: Path, startup_s: float = 30.0) -> Iterator[NodeExporter]:
    """`prometheus-node-exporter` on a free loopback port with the cpu and meminfo collectors only."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "node-exporter.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                NODE_EXPORTER,
                f"--web.listen-address=127.0.0.1:{port}",
                "--collector.disable-defaults",
                "--collector.cpu",
                "--collector.meminfo",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/metrics", process, log, startup_s)
        yield NodeExporter(port)
    finally:
        _stop(process)


@dataclass
class PrometheusServer:
    """A Prometheus process that can be stopped and started again on the same port and TSDB."""

    root: Path
    targets: Sequence[str]
    scrape_interval_s: float = 1.0
    rules: str | None = None
    basic_auth: bool = False
    startup_s: float = 60.0
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The base URL of its HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """The headers its API needs (basic auth when enabled)."""
        return {"Authorization": f"Basic {basic_auth_secret()}"} if self.basic_auth else {}

    def _write_config(self) -> list[str]:
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        scrape = {
            "global": {
                "scrape_interval": interval,
                "evaluation_interval": interval,
                "scrape_timeout": interval,
            },
            "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": list(self.targets)}]}],
        }
        flags = []
        if self.rules:
            (self.root / "rules.yml").write_text(self.rules)
            scrape["rule_files"] = [str(self.root / "rules.yml")]
        (self.root / "prometheus.yml").write_text(json.dumps(scrape))  # JSON is YAML
        if self.basic_auth:
            web = {"basic_auth_users": {TEST_USER: TEST_PASSWORD_BCRYPT}}
            (self.root / "web.yml").write_text(json.dumps(web))
            flags.append(f"--web.config.file={self.root / 'web.yml'}")
        return flags

    def start(self) -> None:
        """Start (or start again) on the same port and TSDB; returns once the server is ready."""
        if self.process is not None and self.process.poll() is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        flags = self._write_config()
        log = self.root / "prometheus.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                    *flags,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_until_up(f"{self.url}/-/ready", self.process, log, self.startup_s, self.headers)

    def stop(self) -> None:
        """Stop gracefully (the TSDB and its WAL are kept for the next `start`)."""
        if self.process is not None:
            _stop(self.process)

    def api(self, path: str, **params: str | float) -> dict:
        """The `data` of one API call (`query`, `query_range`, …); RuntimeError on an error status."""
        body = json.loads(
            _get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", self.headers, 30)
        )
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} failed: {body}")
        return body["data"]

    def wait_for(self, query: str, timeout_s: float = 60.0) -> None:
        """Wait until `query` has a result (a first scrape landed)."""
        deadline = time.monotonic() + timeout_s
        while not self.api("query", query=query)["result"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no result for {query!r} after {timeout_s:.0f} s")
            time.sleep(0.5)


@contextlib.contextmanager
def prometheus_server(
    root: Path,
    targets: Sequence[str],
    scrape_interval_s: float = 1.0,
    rules: str | None = None,
    basic_auth: bool = False,
    port: int | None = None,
) -> Iterator[PrometheusServer]:
    """A started Prometheus scraping `targets` (job `node`) with its TSDB under `root`; stopped on exit.

    `port` (default: a free one) is on 127.0.0.1.
    """
    server = PrometheusServer(root, targets, scrape_interval_s, rules, basic_auth, port=port or free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_source(config_file: Path, source: dict) -> None:
    """Set `sources.prometheus` in a YAML config file to `source`, keeping its other settings.

    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    import yaml

    data = yaml.safe_load(config_file.read_text()) if config_file.exists() else None
    data = data if isinstance(data, dict) else {}
    sources = data.get("sources") if isinstance(data.get("sources"), dict) else {}
    data["sources"] = {**sources, "prometheus": source}
    partial = config_file.with_name(f".{config_file.name}.part")
    config_file.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(
        "# sources.prometheus: set by `python -m sreops.devtools.prometheus_server --write-config`\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    partial.replace(config_file)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m sreops.devtools.prometheus_server [FOLDER]`: node exporter and Prometheus for the demo.

    Both run on loopback until Ctrl-C, the TSDB under FOLDER (default `./.sreops/prometheus`); the
    `sources.prometheus` section to add to sreops.yaml is printed.
    """
    import argparse

    import yaml

    from sreops.devtools.demo import node_exporter_source

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=".sreops/prometheus", type=Path)
    parser.add_argument("--scrape-interval", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument(
        "--port", type=int, default=0, help="Prometheus port on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        help="also set sources.prometheus in this config file (what `make demo` does with the demo's)",
    )
    args = parser.parse_args(argv)

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # so both servers are stopped on the way out, as on Ctrl-C

    signal.signal(signal.SIGTERM, stop)  # `make demo` stops it with a TERM when Dagster exits
    if reason := missing():
        raise SystemExit(reason)
    with (
        node_exporter(args.folder / "node") as node,
        prometheus_server(
            args.folder / "prometheus", [node.target], args.scrape_interval, port=args.port or None
        ) as server,
    ):
        section = {"sources": {"prometheus": node_exporter_source(server.url)}}
        if args.write_config:
            write_source(args.write_config, section["sources"]["prometheus"])
            print(f"wrote sources.prometheus into {args.write_config}")
        print(f"Prometheus {server.url} scrapes node exporter {node.target}; add to sreops.yaml:\n")
        print(yaml.safe_dump(section, sort_keys=False))
        print("Ctrl-C stops both.")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
