"""Slack's interactivity endpoint: verified button presses become feedback rows.

Slack POSTs `payload=<json>` to the app's Request URL with `X-Slack-Request-Timestamp` and
`X-Slack-Signature` (HMAC-SHA256 of `v0:<timestamp>:<body>` keyed by the app's signing secret,
`SLACK_SIGNING_SECRET`). A request whose signature does not match, or whose timestamp is more than
five minutes off, is refused with 401. Accepted presses are spooled durably and answered at once
(Slack wants a reply within 3 s); a worker writes them into `alert_feedback`, and the next
delivery pass updates the message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

from sreops import warehouse
from sreops.alerting import blocks, feedback

log = logging.getLogger(__name__)

PATH = "/slack/interactivity"
MAX_BODY_BYTES = 1_000_000
ACTIONS = {blocks.ACTION_ACK: "ack", blocks.ACTION_SNOOZE: "snooze", blocks.ACTION_NOT_ANOMALY: "not_anomaly"}


class SigningSecretMissingError(RuntimeError):
    """The endpoint cannot verify Slack without `SLACK_SIGNING_SECRET`."""


class _Clock:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def signing_secret() -> str:
    """`SLACK_SIGNING_SECRET`, or an error saying where to find it."""
    secret = os.environ.get("SLACK_SIGNING_SECRET")
    if not secret:
        raise SigningSecretMissingError(
            "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from your Slack app's "
            "Basic Information page (see docs/alerting.md)"
        )
    return secret


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The `X-Slack-Signature` Slack would send for this body (tests and `sreops` tools use it)."""
    return SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)


def verified(secret: str, body: bytes, headers: Mapping[str, str], now: float | None = None) -> bool:
    """Whether the request carries a valid, fresh Slack signature."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    verifier = SignatureVerifier(secret, clock=_Clock(lambda: now if now is not None else time.time()))
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


@dataclass(frozen=True)
class Press:
    """One feedback button press."""

    alert_id: str
    action: str
    user_id: str | None
    user_name: str | None
    action_ts: str
    snooze_minutes: int | None = None

    def spool_entry(self, at: dt.datetime) -> dict[str, Any]:
        return {
            "feedback_id": feedback.feedback_id_for(self.alert_id, self.action, self.user_id, self.action_ts),
            "alert_id": self.alert_id,
            "action": self.action,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "snooze_minutes": self.snooze_minutes,
            "at": at.isoformat(),
        }


def presses(payload: dict[str, Any]) -> list[Press]:
    """The feedback presses in a `block_actions` payload (other payloads and buttons are ignored)."""
    if payload.get("type") != "block_actions":
        return []
    user = payload.get("user") or {}
    found = []
    for action in payload.get("actions") or []:
        kind = ACTIONS.get(action.get("action_id"))
        value = action.get("value") or ""
        if kind is None or not value:
            continue
        alert_id, _, minutes = value.partition("|")
        found.append(
            Press(
                alert_id=alert_id,
                action=kind,
                user_id=user.get("id"),
                user_name=user.get("username") or user.get("name"),
                action_ts=str(action.get("action_ts") or ""),
                snooze_minutes=int(minutes) if minutes.isdigit() else None,
            )
        )
    return found


def handle(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: float | None = None,
    spool_path: Path | None = None,
) -> tuple[int, str]:
    """Verify and spool one interactivity request; returns (HTTP status, body)."""
    if not verified(secret, body, headers, now):
        return 401, "invalid Slack signature"
    form = parse_qs(body.decode("utf-8", errors="replace"))
    raw = (form.get("payload") or [""])[0]
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        return 400, "expected a form field 'payload' holding JSON"
    at = dt.datetime.fromtimestamp(now if now is not None else time.time(), dt.UTC).replace(tzinfo=None)
    for press in presses(payload):
        feedback.spool(press.spool_entry(at), spool_path)
        log.info("feedback %s on alert %s by %s", press.action, press.alert_id[:8], press.user_name)
    return 200, ""


class InteractivityServer:
    """The HTTP endpoint plus a worker that moves spooled presses into the warehouse."""

    def __init__(
        self, host: str, port: int, secret: str, warehouse_path: str | None = None, drain_every_s: float = 1.0
    ) -> None:
        self.secret = secret
        self.warehouse_path = warehouse_path
        self.drain_every_s = drain_every_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.split("?")[0] != PATH or length > MAX_BODY_BYTES:
                    self._reply(404 if length <= MAX_BODY_BYTES else 413, "not found")
                    return
                status, text = handle(self.rfile.read(length), dict(self.headers.items()), server.secret)
                self._reply(status, text)
                if status == 200:
                    server._wake.set()

            def do_GET(self) -> None:  # noqa: N802
                self._reply(200 if self.path == "/healthz" else 404, "ok" if self.path == "/healthz" else "")

            def _reply(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("interactivity: " + format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._worker = threading.Thread(target=self._drain_loop, name="feedback-drain", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.drain_every_s * 30)
            self._wake.clear()
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            try:
                feedback.drain_spool(self.warehouse_path, now, patience_s=10.0)
            except (warehouse.WarehouseLockedError, OSError) as exc:
                log.warning("feedback stays spooled (warehouse busy): %s", exc)
            self._stop.wait(self.drain_every_s)

    def start(self) -> InteractivityServer:
        """Serve in background threads."""
        threading.Thread(target=self.httpd.serve_forever, name="interactivity", daemon=True).start()
        self._worker.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._worker.start()
        try:
            self.httpd.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.httpd.shutdown()
        self.httpd.server_close()
