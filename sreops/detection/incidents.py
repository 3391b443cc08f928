"""Incidents: runs of anomalous service-minutes, opened by N-of-M, closed with hysteresis, kept in `alerts`.

An incident opens when at least `open_minutes` of the last `window_minutes` observed minutes score
at or above `threshold` (minutes inside a deploy or maintenance window do not count), and resolves
after `quiet_minutes` observed minutes in a row below `close_threshold`. Minutes count as rows:
a minute without data, or one that has not happened yet, is not a quiet minute, so an incident in
the hour in progress stays open until quiet minutes have actually been seen.

A *recovery* is not a new incident: within `recovery_hours` of an incident, a hot minute whose
strong metrics are that incident's metrics, each back at least halfway from the incident's peak
to the level expected before it began, is the return to normal (a level shift ending, a leak
fixed), and does not count towards opening one.

`find_incidents` is a pure function over a service's minute scores. `update_incidents` scans
from a *calm point* (a stretch of `recovery_hours` with no minute at or above `close_threshold`),
where no incident can be open or remembered, so the incidents it finds are exactly those of the
whole stream, whatever the hour it is run for; `reconcile` writes them through `alerting.outbox`,
one row per incident (fingerprint `anomaly:<service>`, identified by its first minute), bumping
`revision` only on a change worth a message: opened, escalated to a higher severity, resolved.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from sreops import warehouse
from sreops.alerting import outbox
from sreops.detection import calibration
from sreops.detection.settings import AlarmPolicy
from sreops.severity import severity_rank

KIND = "anomaly"
MINUTE = dt.timedelta(minutes=1)
SCAN_LIMIT = dt.timedelta(days=2)  # how far back update_incidents looks for a calm point


def fingerprint(service: str) -> str:
    """The stable identity of a service's anomaly incidents."""
    return f"{KIND}:{service}"


@dataclass
class Incident:
    """One run of anomalous minutes of one service."""

    service: str
    first_minute: dt.datetime
    last_minute: dt.datetime  # last minute at or above the close threshold
    peak_score: float
    peak_minute: dt.datetime
    anomalous_minutes: int
    resolved: bool
    explanation: list[dict] = field(default_factory=list)  # at the peak
    metrics: list[str] = field(default_factory=list)  # every metric that drove a hot minute
    # per metric: (level expected before the incident, the observed value furthest from it)
    excursions: dict[str, tuple[float, float]] = field(default_factory=dict)
    recovery_minutes: int = 0  # hot minutes after it that were its return to normal

    @property
    def severity(self) -> str:
        return calibration.severity(self.peak_score)

    @property
    def resolved_at(self) -> dt.datetime | None:
        return self.last_minute + MINUTE if self.resolved else None

    def note(self, entries: list[dict]) -> None:
        """Record the metrics of a minute's explanation and how far each strayed from its expected level."""
        for entry in entries:
            metric = entry.get("metric")
            if not metric:
                continue
            if metric not in self.metrics:
                self.metrics.append(metric)
            expected = _expected_level(entry)
            observed = _number(entry.get("observed"))
            if observed is None:
                continue
            if metric not in self.excursions:
                if expected is not None:
                    self.excursions[metric] = (expected, observed)
                continue
            before, furthest = self.excursions[metric]
            if abs(observed - before) > abs(furthest - before):
                self.excursions[metric] = (before, observed)

    def recovers(self, entries: list[dict], threshold: float) -> bool:
        """Whether every strong entry of a minute brings one of its metrics at least halfway back to normal."""
        strong = [e for e in entries if (_number(e.get("score")) or 0.0) >= threshold]
        if not strong:
            return False
        for entry in strong:
            excursion = self.excursions.get(entry.get("metric"))
            observed = _number(entry.get("observed"))
            if excursion is None or observed is None:
                return False
            before, furthest = excursion
            if abs(observed - before) > 0.5 * abs(furthest - before):
                return False
        return True


def _number(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _expected_level(entry: dict) -> float | None:
    low, high = _number(entry.get("expected_low")), _number(entry.get("expected_high"))
    return None if low is None or high is None else (low + high) / 2.0


def find_incidents(scores: pd.DataFrame, policy: AlarmPolicy) -> list[Incident]:
    """Incidents in one service's minute scores (columns minute, score, and optionally explanation, event).

    Rows are observed minutes. An incident without `quiet_minutes` observed quiet rows after its
    last hot one stays open.
    """
    if scores.empty:
        return []
    service = str(scores["service"].iloc[0]) if "service" in scores else ""
    frame = scores.sort_values("minute", kind="stable").reset_index(drop=True)
    minutes = pd.to_datetime(frame["minute"]).dt.to_pydatetime()
    values = frame["score"].to_numpy(dtype=float)
    events = frame["event"].to_numpy() if "event" in frame else np.full(len(frame), None)
    explanations = frame["explanation"].to_numpy() if "explanation" in frame else np.full(len(frame), None)
    recovery = dt.timedelta(hours=policy.recovery_hours)
    incidents: list[Incident] = []
    recent_hot: list[int] = []  # row numbers of anomalous, event-free rows in the N-of-M window
    current: Incident | None = None
    quiet = 0  # observed rows below the close threshold since the current incident's last hot row
    for row, (minute, value, event, explanation) in enumerate(
        zip(minutes, values, events, explanations, strict=True)
    ):
        entries = _entries(explanation)
        if current is not None:
            if value >= policy.close_threshold:
                quiet = 0
                current.last_minute = minute
                current.anomalous_minutes += int(value >= policy.threshold)
                current.note(entries)
                if value > current.peak_score:
                    current.peak_score, current.peak_minute, current.explanation = (
                        float(value),
                        minute,
                        entries,
                    )
                continue
            quiet += 1
            if quiet >= policy.quiet_minutes:
                current.resolved = True
                incidents.append(current)
                current, recent_hot = None, []
            continue
        hot = value >= policy.threshold and not _is_event(event)
        if hot:
            previous = next(
                (
                    i
                    for i in reversed(incidents)
                    if minute - i.last_minute <= recovery and i.recovers(entries, policy.threshold)
                ),
                None,
            )
            if previous is not None:
                previous.recovery_minutes += 1
                hot = False
        if hot:
            recent_hot.append(row)
        recent_hot = [r for r in recent_hot if row - r < policy.window_minutes]
        if len(recent_hot) >= policy.open_minutes:
            first = recent_hot[0]
            current = Incident(service, minutes[first], minute, 0.0, minute, len(recent_hot), False)
            for opening in range(first, row + 1):  # the peak and metrics of the rows that opened it
                opening_entries = _entries(explanations[opening])
                current.note(opening_entries)
                if values[opening] > current.peak_score:
                    current.peak_score = float(values[opening])
                    current.peak_minute = minutes[opening]
                    current.explanation = opening_entries
            recent_hot, quiet = [], 0
    if current is not None:
        incidents.append(current)
    return incidents


def _is_event(event: object) -> bool:
    return event is not None and not (isinstance(event, float) and np.isnan(event)) and event != ""


def _entries(explanation: object) -> list[dict]:
    if explanation is None or (isinstance(explanation, float) and np.isnan(explanation)):
        return []
    if isinstance(explanation, str):
        try:
            explanation = json.loads(explanation)
        except json.JSONDecodeError:
            return []
    return [e for e in explanation if isinstance(e, dict)] if isinstance(explanation, list) else []


def summary(incident: Incident) -> str:
    """One line: service, what is off, how bad, since when."""
    what = ", ".join(incident.metrics[:3]) + (" …" if len(incident.metrics) > 3 else "")
    state = f"resolved {incident.resolved_at:%H:%M}" if incident.resolved else "ongoing"
    return (
        f"{incident.service}: anomalous {what or 'metrics'} (score {incident.peak_score:.0f}, "
        f"{incident.severity}) since {incident.first_minute:%Y-%m-%d %H:%M} UTC, {state}"
    )


def details(incident: Incident, version: str, partition: str | None = None) -> dict:
    """The `alerts.details` JSON of an incident (contract: metrics, score, observed, bands, explanation, …)."""
    top = incident.explanation[0] if incident.explanation else {}
    return {
        "metrics": incident.metrics,
        "score": round(incident.peak_score, 2),
        "observed": top.get("observed"),
        "expected_low": top.get("expected_low"),
        "expected_high": top.get("expected_high"),
        "explanation": incident.explanation,
        "first_minute": incident.first_minute.isoformat(),
        "last_minute": incident.last_minute.isoformat(),
        "peak_minute": incident.peak_minute.isoformat(),
        "anomalous_minutes": incident.anomalous_minutes,
        "recovery_minutes": incident.recovery_minutes,
        "detector": version,
        "asset": "anomalies",
        **({"partition": partition} if partition else {}),
    }


@dataclass
class ReconcileReport:
    """What `reconcile` changed in `alerts`."""

    opened: int = 0
    updated: int = 0
    escalated: int = 0
    resolved: int = 0
    withdrawn: int = 0
    unchanged: int = 0


def reconcile(
    warehouse_path: str | Path | None,
    incidents: list[Incident],
    version: str,
    window_start: dt.datetime,
    services: set[str],
    now: dt.datetime,
    partition: str | None = None,
    window_end: dt.datetime | None = None,
    calm_since: dt.datetime | None = None,
) -> ReconcileReport:
    """Make `alerts` agree with the incidents found in [window_start, …) for these services.

    An incident is identified by (fingerprint, first minute). Firing alerts of these services that
    opened inside the window but no longer appear (re-scored late data) are resolved as withdrawn;
    with `calm_since` (the scan began after a calm stretch ending there), firing alerts opened
    before the window are over too, and are resolved.
    """

    def reconcile(con: duckdb.DuckDBPyConnection) -> ReconcileReport:
        report = ReconcileReport()  # counted afresh should a conflicting commit make it run again
        existing = con.execute(
            "SELECT alert_id, fingerprint, status, severity, details, revision, opened_at FROM alerts"
            " WHERE kind = ? AND (status = 'firing' OR opened_at >= ?)",
            [KIND, window_start],
        ).fetchall()
        by_key = {}
        for alert_id, fp, status, severity, detail_text, revision, opened_at in existing:
            detail = json.loads(detail_text or "{}")
            if detail.get("detector") not in (None, version):
                continue
            by_key[(fp, opened_at)] = (alert_id, status, severity, revision)
        seen = set()
        for incident in incidents:
            fp = fingerprint(incident.service)
            key = (fp, incident.first_minute)
            seen.add(key)
            status = "resolved" if incident.resolved else "firing"
            payload = details(incident, version, partition)
            if key not in by_key:
                outbox.insert_incident(
                    con,
                    fingerprint=fp,
                    kind=KIND,
                    service=incident.service,
                    severity=incident.severity,
                    status=status,
                    opened_at=incident.first_minute,
                    resolved_at=incident.resolved_at,
                    summary=summary(incident),
                    details=payload,
                    score=incident.peak_score,
                    now=now,
                )
                report.opened += 1
                continue
            alert_id, old_status, old_severity, revision = by_key[key]
            escalated = severity_rank(incident.severity) > severity_rank(old_severity)
            newly_resolved = old_status != "resolved" and incident.resolved
            bump = int(escalated or newly_resolved)
            severity = incident.severity if escalated else old_severity
            if old_status == "resolved" and not incident.resolved:
                status, bump = "firing", 1  # late data re-opened it
            outbox.rewrite_incident(
                con,
                alert_id,
                status=status,
                severity=severity,
                resolved_at=incident.resolved_at,
                summary=summary(incident),
                details=payload,
                score=incident.peak_score,
                now=now,
                notify=bool(bump),
            )
            report.escalated += int(escalated)
            report.resolved += int(newly_resolved)
            report.updated += int(not bump)
        for (fp, opened_at), (alert_id, status, _, _) in by_key.items():
            service = fp.split(":", 1)[1]
            if (fp, opened_at) in seen or service not in services or status != "firing":
                continue
            if opened_at < window_start:
                if calm_since is None:
                    continue  # opened before this scan could see: another run's business
                resolution = "resolved: calm since " + calm_since.isoformat()
            elif window_end is not None and opened_at >= window_end:
                continue  # opened after this scan's data: a later hour's business
            else:
                resolution = "withdrawn: re-scoring no longer finds it"
            outbox.resolve_alert(con, alert_id, now=now, resolution=resolution)
            report.withdrawn += 1
        return report

    # one transaction, run again if another writer's commit conflicts with it (DuckLake)
    return warehouse.transact(reconcile, warehouse_path)


def calm_start(frame: pd.DataFrame, policy: AlarmPolicy, before: dt.datetime) -> dt.datetime | None:
    """The latest minute at or before `before` that follows `recovery_hours` of calm, or None.

    Calm: at least `quiet_minutes` observed rows and none at or above `close_threshold`. There no
    incident can be open or remembered, so a scan from there sees exactly what a scan of the
    whole stream sees.
    """
    if frame.empty:
        return None
    frame = frame.sort_values("minute", kind="stable")
    minutes = pd.to_datetime(frame["minute"]).to_numpy(dtype="datetime64[ns]")
    loud = np.concatenate([[0], np.cumsum(frame["score"].to_numpy(dtype=float) >= policy.close_threshold)])
    span = np.timedelta64(int(policy.recovery_hours * 3600e9), "ns")
    rows = np.arange(len(minutes))
    lo = np.searchsorted(minutes, minutes - span, side="left")
    calm = (rows - lo >= policy.quiet_minutes) & (loud[rows] - loud[lo] == 0)
    calm &= minutes <= np.datetime64(pd.Timestamp(before).to_datetime64(), "ns")
    hits = np.flatnonzero(calm)
    return pd.Timestamp(minutes[hits[-1]]).to_pydatetime() if len(hits) else None
