"""Incidents: runs of anomalous service-minutes, opened by N-of-M, closed with hysteresis, kept in `alerts`.

An incident opens when at least `open_minutes` of the last `window_minutes` minutes score at or
above `threshold` (minutes inside a deploy or maintenance window do not count), and resolves after
`quiet_minutes` in a row below `close_threshold`. `find_incidents` is a pure function over a
service's minute scores; `reconcile` writes what it found into the `alerts` outbox, one row per
incident (fingerprint `anomaly:<service>`), bumping `revision` only on a change worth a message:
opened, escalated to a higher severity, resolved.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sreops import warehouse
from sreops.detection import calibration
from sreops.detection.settings import AlarmPolicy

KIND = "anomaly"
MINUTE = dt.timedelta(minutes=1)


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

    @property
    def severity(self) -> str:
        return calibration.severity(self.peak_score)

    @property
    def resolved_at(self) -> dt.datetime | None:
        return self.last_minute + MINUTE if self.resolved else None


def find_incidents(scores: pd.DataFrame, policy: AlarmPolicy, until: dt.datetime) -> list[Incident]:
    """Incidents in one service's minute scores (columns minute, score, and optionally explanation, event).

    Minutes with no row count as quiet. An incident still hot within `quiet_minutes` of `until`
    (the end of the data) stays open.
    """
    if scores.empty:
        return []
    service = str(scores["service"].iloc[0]) if "service" in scores else ""
    frame = scores.sort_values("minute", kind="stable")
    minutes = pd.to_datetime(frame["minute"]).dt.to_pydatetime()
    values = frame["score"].to_numpy(dtype=float)
    events = frame["event"].to_numpy() if "event" in frame else np.full(len(frame), None)
    explanations = frame["explanation"].to_numpy() if "explanation" in frame else np.full(len(frame), None)
    quiet = dt.timedelta(minutes=policy.quiet_minutes)
    window = dt.timedelta(minutes=policy.window_minutes)
    incidents: list[Incident] = []
    recent_hot: list[dt.datetime] = []  # anomalous, event-free minutes in the N-of-M window
    current: Incident | None = None
    for minute, value, event, explanation in zip(minutes, values, events, explanations, strict=True):
        if current is not None and minute - current.last_minute > quiet:
            current.resolved = True
            incidents.append(current)
            current = None
            recent_hot = []
        if current is not None:
            if value >= policy.close_threshold:
                current.last_minute = minute
                current.anomalous_minutes += int(value >= policy.threshold)
                entries = _entries(explanation)
                current.metrics.extend(
                    m for m in (e.get("metric") for e in entries) if m and m not in current.metrics
                )
                if value > current.peak_score:
                    current.peak_score, current.peak_minute, current.explanation = (
                        float(value),
                        minute,
                        entries,
                    )
            continue
        if value >= policy.threshold and not _is_event(event):
            recent_hot.append(minute)
        recent_hot = [m for m in recent_hot if minute - m < window]
        if len(recent_hot) >= policy.open_minutes:
            first = recent_hot[0]
            current = Incident(service, first, minute, float(value), minute, len(recent_hot), False)
            # the peak and metrics of the minutes that opened it
            opened = frame[
                (pd.to_datetime(frame["minute"]) >= first) & (pd.to_datetime(frame["minute"]) <= minute)
            ]
            best = opened.loc[opened["score"].idxmax()]
            current.peak_score = float(best["score"])
            current.peak_minute = pd.Timestamp(best["minute"]).to_pydatetime()
            current.explanation = _entries(best.get("explanation"))
            for item in opened.get("explanation", pd.Series(dtype=object)):
                current.metrics.extend(
                    m for m in (e.get("metric") for e in _entries(item)) if m and m not in current.metrics
                )
            recent_hot = []
    if current is not None:
        current.resolved = until - current.last_minute > quiet
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
) -> ReconcileReport:
    """Make `alerts` agree with the incidents found in [window_start, …) for these services.

    An incident is identified by (fingerprint, first minute). Firing alerts of these services that
    opened inside the window but no longer appear (re-scored late data) are resolved as withdrawn.
    """
    report = ReconcileReport()
    with warehouse.transaction(warehouse_path) as con:
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
            payload = json.dumps(details(incident, version, partition))
            if key not in by_key:
                con.execute(
                    "INSERT INTO alerts (alert_id, fingerprint, kind, service, severity, status, opened_at,"
                    " updated_at, resolved_at, summary, details, score, delivery_status, revision,"
                    " delivered_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 1, 0)",
                    [
                        uuid.uuid4().hex,
                        fp,
                        KIND,
                        incident.service,
                        incident.severity,
                        status,
                        incident.first_minute,
                        now,
                        incident.resolved_at,
                        summary(incident),
                        payload,
                        incident.peak_score,
                    ],
                )
                report.opened += 1
                continue
            alert_id, old_status, old_severity, revision = by_key[key]
            escalated = calibration.severity_rank(incident.severity) > calibration.severity_rank(old_severity)
            newly_resolved = old_status != "resolved" and incident.resolved
            bump = int(escalated or newly_resolved)
            severity = incident.severity if escalated else old_severity
            if old_status == "resolved" and not incident.resolved:
                status, bump = "firing", 1  # late data re-opened it
            con.execute(
                "UPDATE alerts SET status = ?, severity = ?, updated_at = ?, resolved_at = ?, summary = ?,"
                " details = ?, score = ?, revision = revision + ? WHERE alert_id = ?",
                [
                    status,
                    severity,
                    now,
                    incident.resolved_at,
                    summary(incident),
                    payload,
                    incident.peak_score,
                    bump,
                    alert_id,
                ],
            )
            report.escalated += int(escalated)
            report.resolved += int(newly_resolved)
            report.updated += int(not bump)
        for (fp, opened_at), (alert_id, status, _, _) in by_key.items():
            service = fp.split(":", 1)[1]
            if (fp, opened_at) in seen or service not in services or opened_at < window_start:
                continue
            if window_end is not None and opened_at >= window_end:
                continue  # opened after this scan's data: a later hour's business
            if status == "firing":
                con.execute(
                    "UPDATE alerts SET status = 'resolved', resolved_at = ?, updated_at = ?,"
                    " details = json_merge_patch(coalesce(details, '{}'), ?), revision = revision + 1"
                    " WHERE alert_id = ?",
                    [
                        now,
                        now,
                        json.dumps({"resolution": "withdrawn: re-scoring no longer finds it"}),
                        alert_id,
                    ],
                )
                report.withdrawn += 1
    return report


def update_incidents(
    warehouse_path: str | Path | None,
    hour_start: dt.datetime,
    hour_end: dt.datetime,
    version: str,
    policy: AlarmPolicy,
    now: dt.datetime | None = None,
    lookback: dt.timedelta = dt.timedelta(hours=6),
    partition: str | None = None,
) -> tuple[list[Incident], ReconcileReport]:
    """Rebuild the incidents touching [hour_start, hour_end) from service scores and reconcile `alerts`.

    The scan starts `lookback` earlier, or at the opening of a still-firing incident (at most two
    days back), so an incident spanning hours is one incident. Incidents that opened before the
    scan could see their start are left to the runs that saw it.
    """
    from sreops.detection.scoring import read_service_scores

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = hour_start - lookback
    with warehouse.connect(warehouse_path) as con:
        oldest_firing = con.execute(
            "SELECT min(opened_at) FROM alerts WHERE kind = ? AND status = 'firing' AND opened_at >= ?",
            [KIND, hour_start - dt.timedelta(days=2)],
        ).fetchone()[0]
    if oldest_firing is not None and oldest_firing < start:
        start = oldest_firing
    scores = read_service_scores(warehouse_path, version, start, hour_end)
    preroll = dt.timedelta(minutes=policy.window_minutes + policy.quiet_minutes)
    found: list[Incident] = []
    for _, part in scores.groupby("service", sort=True):
        for incident in find_incidents(part, policy, hour_end):
            # a scan that starts mid-incident would see a fragment: keep only what it saw begin,
            # or what continues an incident already firing
            continues_firing = oldest_firing is not None and incident.first_minute >= oldest_firing
            if incident.first_minute >= start + preroll or continues_firing:
                found.append(incident)
    services = set(scores["service"]) if len(scores) else set()
    report = reconcile(warehouse_path, found, version, start + preroll, services, now, partition, hour_end)
    return found, report
