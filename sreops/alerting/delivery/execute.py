"""Calling Slack for planned work, with no warehouse connection open: pacing, pauses, reconciliation.

At most one message per channel per `pacing_seconds`. A 429 pauses every call for its
`Retry-After`; other failures back off exponentially; none drops an alert. A step whose earlier
attempt may have reached Slack (its intent is still 'sending' or 'uncertain') is first looked
for in the channel, by the step key each post carries in its message metadata, and is not
posted again when found.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import deque

from sreops.alerting import charts, mrkdwn
from sreops.alerting.delivery.clock import Clock, epoch
from sreops.alerting.delivery.work import DeliveryReport, PassState, Step, Work
from sreops.alerting.slack import AUTH, PERMANENT, RATE_LIMITED, SlackFailure, SlackPoster

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
MAX_AUTH_BACKOFF_S = 900.0
RECONCILE_LOOKBACK_S = 120.0


class Executor:
    """Makes the Slack calls of a pass, paced per channel; keeps the pass's pause state."""

    def __init__(self, poster: SlackPoster, clock: Clock, pacing_s: float, batch_s: float) -> None:
        self.poster = poster
        self.clock = clock
        self.pacing_s = pacing_s
        self.batch_s = batch_s
        self.state = PassState()
        self._next_free: dict[str, float] = {}

    def lane(self, channel: str) -> str:
        """The pacing lane of a channel: its id."""
        return self.poster.channel_id(channel)

    def execute(self, works: list[Work], deadline: float, report: DeliveryReport) -> None:
        """Call Slack for the works' steps until done, paused or the batch's time is up."""
        batch_end = min(deadline, self.clock.monotonic() + self.batch_s)
        lanes: dict[str, deque[Work]] = {}
        for work in works:
            lanes.setdefault(self.lane(work.steps[0].channel), deque()).append(work)
        executed = 0
        while lanes:
            lane = min(lanes, key=lambda name: self._next_free.get(name, 0.0))
            ready_at = self._next_free.get(lane, 0.0)
            now = self.clock.monotonic()
            head = lanes[lane][0]
            starting = len(head.pending) == len(head.steps)  # a new alert, not the rest of one begun
            if starting and executed and max(now, ready_at) >= batch_end:
                break  # the batch's time is up: record, then plan again
            if ready_at > now:
                self.clock.sleep(ready_at - now)
            step = head.pending[0]
            self._next_free[lane] = self.clock.monotonic() + self.pacing_s
            executed += 1
            failure = self._call(head, step, report)
            if failure is not None and failure.category != PERMANENT:
                self._pause(failure)
                break
            if failure is not None and not step.optional:
                head.failure = failure
                for rest in head.pending:
                    rest.state = "not_attempted"
            if not head.pending:
                lanes[lane].popleft()
                if not lanes[lane]:
                    del lanes[lane]
        for work in works:
            for step in work.pending:
                step.state = "not_attempted"

    def _call(self, work: Work, step: Step, report: DeliveryReport) -> SlackFailure | None:
        """Make one step's Slack call; marks the step and returns its failure, if any."""
        poster = self.poster
        try:
            report.calls += 1
            if step.kind in ("root", "notice"):
                channel_id = poster.channel_id(step.channel)
                found = self._reconcile(step, channel_id, None)
                assert step.message is not None
                if found:
                    poster.update(channel_id, found, step.message.text, step.message.blocks)
                    step.message_ts = found
                else:
                    channel_id, step.message_ts = poster.post(
                        step.channel, step.message.text, step.message.blocks, step_key=step.key
                    )
                work.thread = (channel_id, step.message_ts)
            elif step.kind == "reply":
                assert work.thread is not None and step.message is not None
                found = self._reconcile(step, work.thread[0], work.thread[1])
                step.message_ts = (
                    found
                    or poster.post(
                        work.thread[0],
                        step.message.text,
                        step.message.blocks,
                        thread_ts=work.thread[1],
                        step_key=step.key,
                    )[1]
                )
            elif step.kind == "update":
                assert work.thread is not None and step.message is not None
                poster.update(work.thread[0], work.thread[1], step.message.text, step.message.blocks)
                step.message_ts = work.thread[1]
            elif step.kind == "chart":
                assert work.thread is not None and step.chart is not None
                title = mrkdwn.escape(
                    f"{step.chart.title} · alert {work.alert.alert_id[:8]} r{work.alert.revision}"
                )
                found = self._reconcile(step, work.thread[0], work.thread[1], title)
                if not found:
                    png = charts.render_png(step.chart)
                    poster.upload_png(
                        work.thread[0],
                        work.thread[1],
                        png,
                        f"{work.alert.alert_id[:8]}.png",
                        title,
                        alt_txt=mrkdwn.escape(charts.alt_text(step.chart)),
                    )
                step.message_ts = found or work.thread[1]
            step.state = "done"
            self.state.failures = 0
            return None
        except SlackFailure as failure:
            step.state = "uncertain" if failure.ambiguous else "failed"
            step.error = failure.message
            work.failure = failure
            log.warning("alert %s %s: %s", work.alert.alert_id[:8], step.kind, failure.message)
            report.errors.append(failure.message)
            return failure

    def _reconcile(
        self, step: Step, channel_id: str, thread_ts: str | None, title: str | None = None
    ) -> str | None:
        if not step.reconcile_keys:
            return None
        since = epoch(step.reconcile_since or self.clock.now()) - RECONCILE_LOOKBACK_S
        for key in step.reconcile_keys:
            found = self.poster.find_posted(
                channel_id,
                key,
                thread_ts=thread_ts,
                oldest=since,
                file_title=title if step.kind == "chart" else None,
            )
            if found:
                log.info("step %s had reached Slack already (ts %s); not posting it again", key, found)
                return found
        return None

    def _pause(self, failure: SlackFailure) -> None:
        now = self.clock.now()
        if failure.category == RATE_LIMITED:
            delay = float(failure.retry_after_s or 1.0)
        else:
            self.state.failures += 1
            ceiling = MAX_AUTH_BACKOFF_S if failure.category == AUTH else MAX_BACKOFF_S
            base = 60.0 if failure.category == AUTH else 2.0
            delay = min(base * 2 ** (self.state.failures - 1), ceiling) * random.uniform(0.8, 1.0)
        self.state.paused_until = now + dt.timedelta(seconds=delay)
        self.state.reason = failure.message
