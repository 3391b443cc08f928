"""Demo logs for the demo fleet: a week of application logs per service that follow its incidents.

Each service logs its steady patterns (requests, cache and job messages, the odd slow request)
a few times a minute, and the injected incidents of `sreops.devtools.demo` leave their own traces:
an error burst logs upstream 503s with stack traces, a latency degradation slow queries, a memory
leak growing GC pauses, a spike a deep request queue, a deploy its version banner and, after one
deploy per service, a new deprecation warning. Those incident patterns appear after the first
hour, so the clustering stage reports them as new patterns.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from pathlib import Path

from sreops import paths

STEADY = (
    ("INFO", "Handled {method} {path} in {ms} ms status=200 user={user}"),
    ("INFO", "Handled {method} {path} in {ms} ms status=200 user={user}"),
    ("INFO", "Handled {method} {path} in {ms} ms status=200 user={user}"),
    ("INFO", "Cache hit ratio {pct}% over {n} lookups"),
    ("INFO", "Scheduled job {job} finished in {ms} ms"),
    ("DEBUG", "Connection pool stats: active={n} idle={n2} waiting=0"),
    ("WARN", "Slow request to {path} took {slow} ms"),
)
PATHS = (
    "/api/v1/items/{id}",
    "/api/v1/cart/{id}",
    "/api/v1/users/{id}/profile",
    "/health",
    "/api/v1/search?q={word}",
)
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
JOBS = ("reindex", "cleanup-sessions", "refresh-rates", "compact-events")
WORDS = ("shoes", "lamp", "coffee", "desk", "phone", "cable", "book")


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        method=rng.choice(("GET", "GET", "POST", "PUT")),
        path=rng.choice(PATHS).format(id=rng.randint(1, 99999), word=rng.choice(WORDS)),
        ms=rng.randint(3, 250),
        slow=rng.randint(900, 4000),
        user=rng.choice(USERS),
        pct=rng.randint(80, 99),
        n=rng.randint(5, 5000),
        n2=rng.randint(0, 20),
        job=rng.choice(JOBS),
    )


def _incident_lines(incident: dict, at: dt.datetime, rng: random.Random) -> list[tuple[str, str]]:
    """What one minute of an incident adds to its service's log."""
    kind = incident["kind"]
    if kind == "error_burst":
        request = f"{rng.getrandbits(48):012x}"
        return [
            ("ERROR", f"Upstream {incident['service']}-db returned 503 for POST /api/v1/charge (request {request})"),
            ("ERROR", "Request failed after 3 retries\n"
                      "java.net.SocketTimeoutException: Read timed out\n"
                      f"\tat com.example.{incident['service']}.DbClient.call(DbClient.java:{rng.randint(80, 90)})\n"
                      "\tat com.example.http.Handler.handle(Handler.java:42)"),
        ] * rng.randint(3, 8)  # fmt: skip
    if kind == "latency_degradation":
        return [
            ("WARN", f"Slow query on table orders took {rng.randint(600, 5000)} ms (threshold 500 ms)")
        ] * 3
    if kind == "memory_leak":
        return [("WARN", f"GC pause of {rng.randint(200, 1500)} ms, heap {rng.randint(85, 99)}% used")]
    if kind == "spike":
        return [("WARN", f"Request queue depth {rng.randint(150, 900)} exceeds limit 100")] * 2
    return []


def write_demo_logs(
    incidents: Sequence[dict],
    start: dt.datetime,
    days: float = 7,
    services: Sequence[str] | None = None,
    folder: Path | None = None,
    seed: int = 7,
    lines_per_minute: float = 2.0,
) -> list[Path]:
    """Write `<folder>/<service>/app.log` for each service; returns the files written."""
    rng = random.Random(seed)
    folder = folder or paths.landing_logs()
    names = list(services or sorted({i["service"] for i in incidents}))
    windows: dict[str, list[tuple[dt.datetime, dt.datetime, dict]]] = {name: [] for name in names}
    for incident in incidents:
        if incident["service"] in windows:
            begin = dt.datetime.fromisoformat(incident["start"].rstrip("Z"))
            end = dt.datetime.fromisoformat(incident["end"].rstrip("Z"))
            windows[incident["service"]].append((begin, max(end, begin + dt.timedelta(minutes=1)), incident))
    written = []
    minutes = int(days * 24 * 60)
    for name in names:
        target = folder / name / "app.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        deprecated_after = min((b for b, _, i in windows[name] if i["kind"] == "deploy"), default=None)
        with target.open("w") as fh:
            for minute in range(minutes):
                at = start + dt.timedelta(minutes=minute)
                records: list[tuple[str, str]] = []
                count = int(lines_per_minute) + (rng.random() < lines_per_minute % 1)
                # The first minute shows every steady pattern once: the service's known baseline.
                steady = STEADY if minute == 0 else [rng.choice(STEADY) for _ in range(count)]
                for level, template in steady:
                    if minute and level == "WARN" and rng.random() < 0.8:
                        level, template = STEADY[0]
                    records.append((level, _fill(template, rng)))
                for begin, end, incident in windows[name]:
                    if incident["kind"] == "deploy" and begin <= at < begin + dt.timedelta(minutes=1):
                        version = f"v1.{rng.randint(10, 40)}.{rng.randint(0, 9)}"
                        records.append(
                            ("INFO", f"Deploying {name} {version} (build {rng.getrandbits(28):07x})")
                        )
                        records.append(("INFO", f"Started {name} {version} in {rng.randint(2000, 9000)} ms"))
                    elif begin <= at < end:
                        records.extend(_incident_lines(incident, at, rng))
                in_hour_after_deploy = (
                    deprecated_after is not None
                    and deprecated_after <= at < deprecated_after + dt.timedelta(hours=1)
                )
                if in_hour_after_deploy and rng.random() < 0.2:
                    records.append(("WARN", "Config key cache.ttl is deprecated, using default 300 s"))
                for i, (level, text) in enumerate(records):
                    stamp = at + dt.timedelta(
                        seconds=60 * i / max(len(records), 1), milliseconds=rng.randint(0, 999)
                    )
                    thread = f"worker-{rng.randint(1, 8)}"
                    fh.write(
                        f"{stamp:%Y-%m-%d %H:%M:%S},{stamp.microsecond // 1000:03d} [{thread}] {level} {text}\n"
                    )
        written.append(target)
    return written
