"""Replayable detector versions: register a configuration, backfill it, compare its incidents, promote it.

A version is named by the hash of its `DetectorSettings`, so its scores (`anomalies.version`) and
models (`detector_models.version`) never mix with another's. One version is `current`: its scores
feed `alerts`. A `candidate` is scored over past hours (the same `score_hour`, the same
no-look-ahead rule), its incidents are compared with the current version's over the same hours
(matched, lost, new), the comparison is kept in `detector_comparisons`, and it can be promoted.
Late data takes the same path: the late hour is re-scored under the current version.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sreops import config, warehouse
from sreops.detection import incidents, store
from sreops.detection.settings import AlarmPolicy, DetectorSettings, from_config
from sreops.timeutil import utc_now

CURRENT, CANDIDATE, RETIRED = "current", "candidate", "retired"
FROM_CONFIG = "from the config file"


class VersionError(LookupError):
    """A version that is not registered, or an action its status does not allow."""


def register(
    warehouse_path: str | Path | None, settings: DetectorSettings, status: str = CANDIDATE, note: str = ""
) -> str:
    """Record a configuration under its version name (idempotent); returns the version."""
    with warehouse.transaction(warehouse_path) as con:
        if store.version_row(con, settings.version) is None:
            promoted = utc_now() if status == CURRENT else None
            store.insert_version(con, settings.version, settings.to_json(), status, promoted, note)
    return settings.version


def settings_of(warehouse_path: str | Path | None, version: str) -> DetectorSettings:
    """The settings a version was registered with."""
    with warehouse.connect(warehouse_path) as con:
        row = store.version_row(con, version)
    if row is None:
        raise VersionError(f"detector version {version!r} is not registered; see `sreops detect versions`")
    return DetectorSettings.from_json(row[1])


def current(warehouse_path: str | Path | None, cfg: config.Config) -> tuple[DetectorSettings, AlarmPolicy]:
    """The current version's settings, and the alarm policy of the config.

    The config file's detector settings are the current version unless a version was promoted
    by hand (`sreops detect promote`): then the promoted one stays current until the next promotion.
    """
    configured, policy = from_config(cfg.detection)
    with warehouse.connect(warehouse_path) as con:
        row = store.current_version(con, CURRENT)
    if row is not None and (row[0] == configured.version or row[2] != FROM_CONFIG):
        return DetectorSettings.from_json(row[1]), policy
    register(warehouse_path, configured, CANDIDATE, FROM_CONFIG)
    promote(warehouse_path, configured.version, note=FROM_CONFIG)
    return configured, policy


def list_versions(warehouse_path: str | Path | None) -> pd.DataFrame:
    """Every registered version with its status and the hours it has scored."""
    with warehouse.connect(warehouse_path) as con:
        return store.versions_table(con)


def promote(warehouse_path: str | Path | None, version: str, note: str = "promoted") -> None:
    """Make `version` current; the previous current version is retired (its rows stay for comparison)."""
    settings_of(warehouse_path, version)
    with warehouse.transaction(warehouse_path) as con:
        store.set_status(con, version, CURRENT, utc_now(), note, retire=RETIRED, current=CURRENT)


@dataclass
class Comparison:
    """Incidents of a candidate against the baseline over the same hours."""

    candidate: str
    baseline: str
    start: dt.datetime
    end: dt.datetime
    matched: int
    lost: int
    new: int
    rows: pd.DataFrame  # one row per incident of either: service, first/last minute, peak, which side

    def as_markdown(self) -> str:
        if self.rows.empty:
            return "_no incidents in either version_"
        return self.rows.to_markdown(index=False, floatfmt=".1f")


def _incidents_of(warehouse_path, version, start, end, policy) -> list[incidents.Incident]:
    with warehouse.connect(warehouse_path) as con:
        scores = store.read_service_scores(con, version, start, end)
    found = []
    for _, part in scores.groupby("service", sort=True):
        found.extend(incidents.find_incidents(part, policy))
    return found


def _overlap(a: incidents.Incident, b: incidents.Incident, slack: dt.timedelta) -> bool:
    return (
        a.service == b.service
        and a.first_minute <= b.last_minute + slack
        and b.first_minute <= a.last_minute + slack
    )


def compare(
    warehouse_path: str | Path | None,
    candidate: str,
    baseline: str,
    start: dt.datetime,
    end: dt.datetime,
    policy: AlarmPolicy | None = None,
    slack: dt.timedelta = dt.timedelta(minutes=10),
) -> Comparison:
    """Match the two versions' incidents in [start, end) by service and overlap; record the result."""
    policy = policy or AlarmPolicy()
    theirs = _incidents_of(warehouse_path, baseline, start, end, policy)
    ours = _incidents_of(warehouse_path, candidate, start, end, policy)
    rows = []
    matched_ours: set[int] = set()
    for b in theirs:
        hit = next((i for i, c in enumerate(ours) if i not in matched_ours and _overlap(b, c, slack)), None)
        if hit is not None:
            matched_ours.add(hit)
        rows.append(
            {
                "service": b.service,
                "first_minute": b.first_minute,
                "last_minute": b.last_minute,
                "baseline_peak": b.peak_score,
                "candidate_peak": ours[hit].peak_score if hit is not None else None,
                "outcome": "matched" if hit is not None else "lost",
            }
        )
    for i, c in enumerate(ours):
        if i not in matched_ours:
            rows.append(
                {
                    "service": c.service,
                    "first_minute": c.first_minute,
                    "last_minute": c.last_minute,
                    "baseline_peak": None,
                    "candidate_peak": c.peak_score,
                    "outcome": "new",
                }
            )
    frame = pd.DataFrame(
        rows, columns=["service", "first_minute", "last_minute", "baseline_peak", "candidate_peak", "outcome"]
    )
    frame = frame.sort_values(["first_minute", "service"], kind="stable").reset_index(drop=True)
    counts = frame["outcome"].value_counts()
    result = Comparison(
        candidate,
        baseline,
        start,
        end,
        int(counts.get("matched", 0)),
        int(counts.get("lost", 0)),
        int(counts.get("new", 0)),
        frame,
    )
    with warehouse.transaction(warehouse_path) as con:
        store.insert_comparison(
            con, candidate, baseline, start, end, (result.matched, result.lost, result.new), frame
        )
    return result


def replay(
    warehouse_path: str | Path | None,
    settings: DetectorSettings,
    start: dt.datetime,
    end: dt.datetime,
    cfg: config.Config,
    progress: bool = False,
) -> list:
    """Score every hour in [start, end) under `settings` (registered as a candidate if new), a window at a time."""
    from tqdm import tqdm

    from sreops.detection.artifacts import FileModelStore
    from sreops.detection.run import EVENTS_LOOKBACK, load_events, score_range
    from sreops.features import hours_between

    register(warehouse_path, settings)
    _, policy = current(warehouse_path, cfg)
    store = FileModelStore()
    settle = dt.timedelta(minutes=cfg.detection.deploy_settle_minutes)
    events = load_events(warehouse_path, start - EVENTS_LOOKBACK, end, cfg.events, settle)
    out = []
    with tqdm(
        total=len(hours_between(start, end)),
        desc=f"replay {settings.version}",
        unit="hour",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for scored in score_range(warehouse_path, start, end, settings, policy, store, events):
            out.append(scored)
            bar.update(len(hours_between(scored.hour, scored.end)))
    return out
