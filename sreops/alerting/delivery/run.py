"""One delivery pass: plan from a snapshot, call Slack, record; the entry point the sensor and CLI call."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
from collections.abc import Iterator

import duckdb

from sreops import warehouse
from sreops.alerting.delivery import record
from sreops.alerting.delivery.clock import Clock, SystemClock
from sreops.alerting.delivery.execute import Executor
from sreops.alerting.delivery.plan import Arrangement, Planner, Snapshot
from sreops.alerting.delivery.work import DeliveryReport, PassState, Work
from sreops.alerting.feedback import spool
from sreops.alerting.slack import SlackPoster, make_client
from sreops.config import Config, SlackSettings
from sreops.config.environment import DEFAULT_UI_URL

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 40.0  # a sensor tick must finish well inside Dagster's 60 s evaluation limit
BATCH_S = 5.0  # results are written back at least this often


@contextlib.contextmanager
def _outbox_lock(warehouse_path: str | os.PathLike[str] | None) -> Iterator[bool]:
    """Hold the outbox for one pass (True), or learn that another live pass holds it (False)."""
    lock = warehouse.lock_file(warehouse_path, "delivery")  # host-local, also for a DuckLake warehouse
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)


class Deliverer:
    """One delivery pass over the outbox (the sensor makes one per tick); no poster means dry-run."""

    def __init__(
        self,
        warehouse_path: str | os.PathLike[str] | None = None,
        *,
        config: Config,
        poster: SlackPoster | None = None,
        clock: Clock | None = None,
        ui_url: str = DEFAULT_UI_URL,
        budget_s: float = DEFAULT_BUDGET_S,
        batch_s: float = BATCH_S,
        patience_s: float | None = None,
    ) -> None:
        self.path = warehouse_path
        self.poster = poster
        self.config = config
        self.clock = clock or SystemClock()
        self.ui_url = ui_url
        self.budget_s = budget_s
        self.batch_s = batch_s
        self.patience_s = patience_s
        self.pacing_s = config.alerting.pacing_seconds
        self.executor = Executor(poster, self.clock, self.pacing_s, batch_s) if poster is not None else None
        self.state = PassState()

    @classmethod
    def for_settings(
        cls, warehouse_path: str | os.PathLike[str] | None, slack: SlackSettings, *, config: Config, **kwargs
    ) -> Deliverer:
        """A deliverer posting with the settings' bot token to their API URL, or dry-running without one."""
        client = make_client(slack.bot_token, slack.api_url)
        poster = SlackPoster(client) if client else None
        return cls(warehouse_path, config=config, poster=poster, ui_url=slack.ui_url, **kwargs)

    def run(self, only: list[str] | None = None) -> DeliveryReport:
        """Deliver what is due within the time budget; returns what happened."""
        with _outbox_lock(self.path) as held:
            if not held:
                return DeliveryReport(note="another delivery pass holds the outbox")
            return self._run(only)

    def _run(self, only: list[str] | None) -> DeliveryReport:
        report = DeliveryReport()
        deadline = self.clock.monotonic() + self.budget_s
        try:
            report.feedback = spool.drain_spool(
                self.path,
                self.clock.now(),
                patience_s=self.patience_s,
                snooze_minutes=self.config.alerting.snooze_minutes,
            )
        except (warehouse.WarehouseLockedError, OSError, duckdb.Error) as exc:
            # Bad lines are set aside by the drain itself; this is the warehouse or disk failing.
            log.warning("button feedback stays spooled for the next pass: %s", exc)
        if self.poster is not None:
            self.poster.channel_ids()  # listed now, not while the warehouse is held
        batch: list[Work] = []
        while True:
            if batch:
                with warehouse.transaction(self.path, patience_s=self.patience_s) as con:
                    self._record(con, batch, self.clock.now(), report)
                batch = []
            arranged, batch, now = self._plan(deadline, only, report)
            if arranged.withheld or arranged.dry_runs or batch:
                with warehouse.transaction(self.path, patience_s=self.patience_s) as con:
                    record.write_plan(con, arranged, batch, now)
                report.withheld += len(arranged.withheld)
                report.dry_run += len(arranged.dry_runs)
            if not batch:
                break
            assert self.executor is not None
            self.executor.execute(batch, deadline, report)
        return report

    def _plan(
        self, deadline: float, only: list[str] | None, report: DeliveryReport
    ) -> tuple[Arrangement, list[Work], dt.datetime]:
        """Read a snapshot and plan from it, in one short read-only transaction; nothing is written here."""
        with warehouse.transaction(self.path, patience_s=self.patience_s) as con:
            now = self.clock.now()
            self.state = record.read_state(con)
            if self.executor is not None:
                self.executor.state = self.state
            paused = self.state.paused_until is not None and self.state.paused_until > now
            if paused:
                report.paused_until = self.state.paused_until
            if paused or self.clock.monotonic() >= deadline:
                return Arrangement(), [], now
            snap = record.read_snapshot(con, now, only, self.config)
            if not snap.due:
                return Arrangement(), [], now
            lane = self.executor.lane if self.executor is not None else str
            planner = Planner(snap, self.config, lane, self.ui_url, posting=self.executor is not None)
            arranged = planner.arrange()
            return arranged, self._admit(con, planner, arranged, snap), now

    def _admit(
        self, con: duckdb.DuckDBPyConnection, planner: Planner, arranged: Arrangement, snap: Snapshot
    ) -> list[Work]:
        """The drafts that fit this batch (each channel's share of it), finished with their context."""
        capacity = int(self.batch_s / self.pacing_s) + 1 if self.pacing_s > 0 else 10_000
        used: dict[str, int] = {}
        works = []
        for draft in arranged.drafts:
            if used.get(draft.lane, 0) >= capacity:
                continue  # this channel's share of the batch is full; it goes in the next batch
            patterns, chart = record.read_context(con, draft, snap)
            work = planner.finish(draft, patterns, chart)
            used[draft.lane] = used.get(draft.lane, 0) + len(work.steps)
            works.append(work)
        return works

    def _record(
        self, con: duckdb.DuckDBPyConnection, works: list[Work], now: dt.datetime, report: DeliveryReport
    ) -> None:
        state = self.executor.state if self.executor is not None else self.state
        record.record(con, works, now, state, report)


def deliver_pending(
    warehouse_path: str | os.PathLike[str] | None = None,
    *,
    config: Config,
    slack: SlackSettings,
    budget_s: float = DEFAULT_BUDGET_S,
    only: list[str] | None = None,
    patience_s: float | None = None,
) -> DeliveryReport:
    """One delivery pass with these Slack settings (what the delivery sensor and `sreops alerts` run)."""
    deliverer = Deliverer.for_settings(
        warehouse_path, slack, config=config, budget_s=budget_s, patience_s=patience_s
    )
    return deliverer.run(only)
