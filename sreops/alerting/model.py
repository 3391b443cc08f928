"""An alert as the outbox stores it: one row of `alerts`, with its JSON details parsed."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from sreops.timeutil import naive_utc

SEVERITY_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "minor": ":large_yellow_circle:",
    "major": ":large_orange_circle:",
    "critical": ":red_circle:",
}
# Incidents of these kinds and one service are one thread, whatever their fingerprints.
GROUPED_KINDS = frozenset({"anomaly"})
# One-shot notices: no lifecycle, no minimum severity.
NOTICE_KINDS = frozenset({"digest", "test"})

ALERT_COLUMNS = (
    "alert_id",
    "fingerprint",
    "kind",
    "service",
    "severity",
    "status",
    "opened_at",
    "updated_at",
    "resolved_at",
    "summary",
    "details",
    "score",
    "slack_channel",
    "slack_ts",
    "delivery_status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "revision",
    "delivered_revision",
)


@dataclass(frozen=True)
class Alert:
    """One incident's notification state (a row of `alerts`)."""

    alert_id: str
    fingerprint: str
    kind: str
    service: str | None
    severity: str
    status: str
    opened_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    delivery_status: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    revision: int = 1
    delivered_revision: int = 0

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def metrics(self) -> list[str]:
        """Metric names involved (details.metrics, else those named by the explanation)."""
        named = self.details.get("metrics") or [e.get("metric") for e in self.explanation]
        return list(dict.fromkeys(m for m in named if m))

    @property
    def explanation(self) -> list[dict[str, Any]]:
        entries = self.details.get("explanation") or []
        return [e for e in entries if isinstance(e, dict)]

    @property
    def detector(self) -> str | None:
        return self.details.get("detector")

    @property
    def first_minute(self) -> dt.datetime:
        return parse_time(self.details.get("first_minute")) or self.opened_at

    @property
    def last_minute(self) -> dt.datetime:
        return parse_time(self.details.get("last_minute")) or self.resolved_at or self.updated_at

    @property
    def peak_score(self) -> float | None:
        """The alert's peak score; None when its producer wrote none or wrote something unreadable."""
        value = self.details.get("score", self.score)
        try:
            score = float(value) if value is not None else None
        except (TypeError, ValueError):
            return None
        return score if score is None or math.isfinite(score) else None


def parse_time(value: Any) -> dt.datetime | None:
    """A naive-UTC datetime from ISO text, a datetime, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return naive_utc(moment)


def parse_details(text: str | None) -> dict[str, Any]:
    """The details JSON of a row; text that is not a JSON object is kept under 'text'."""
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return {"text": text}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def alert_from_row(row: tuple) -> Alert:
    """An Alert from a row selected with ALERT_COLUMNS."""
    values = dict(zip(ALERT_COLUMNS, row, strict=True))
    values["details"] = parse_details(values["details"])
    return Alert(**values)


def select_sql(where: str = "", order: str = "opened_at") -> str:
    """SELECT of every alert column; `where` and `order` are fixed SQL fragments, never values."""
    sql = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts"
    if where:
        sql += f" WHERE {where}"
    return sql + f" ORDER BY {order}"


def fetch_alerts(
    con: duckdb.DuckDBPyConnection, where: str = "", params: list | None = None, order: str = "opened_at"
) -> list[Alert]:
    """Alerts matching a fixed WHERE fragment whose values come as parameters."""
    return [alert_from_row(r) for r in con.execute(select_sql(where, order), params or []).fetchall()]


def get_alert(con: duckdb.DuckDBPyConnection, alert_id: str) -> Alert | None:
    """One alert by id."""
    found = fetch_alerts(con, "alert_id = ?", [alert_id])
    return found[0] if found else None


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table exists (other stages' tables are optional here)."""
    query = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(query, [name]).fetchall()[0][0])


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """Column names of a table (empty when it does not exist)."""
    query = "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
    return {r[0] for r in con.execute(query, [table]).fetchall()}
