"""Slack's interactivity endpoint: verified button presses become feedback rows.

Slack POSTs `payload=<json>` to the app's Request URL with `X-Slack-Request-Timestamp` and
`X-Slack-Signature` (HMAC-SHA256 of `v0:<timestamp>:<body>` keyed by the app's signing secret,
`SLACK_SIGNING_SECRET`). A request whose signature does not match, or whose timestamp is more than
five minutes off, is refused with 401. Accepted presses are spooled durably and answered at once
(Slack wants a reply within 3 s); a worker writes them into `alert_feedback`, and the next
delivery pass updates the message.

The endpoint is a small http.server with bounded patience, kept rather than slack-bolt's HTTP
path after measuring both (docs/reliability.md): requests are parsed only after their signature
checks out, bodies need a valid Content-Length within MAX_BODY_BYTES, every connection has a
deadline (a watchdog closes slow or idle ones), and a fixed pool of worker threads serves them
(connections beyond what the pool and its queue hold are answered 503 at once).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

from sreops import warehouse
from sreops.alerting import blocks
from sreops.alerting.feedback import labels, spool
from sreops.config.environment import SlackSettings
from sreops.timeutil import from_epoch, utc_now

log = logging.getLogger(__name__)

PATH = "/slack/interactivity"
MAX_BODY_BYTES = 1_000_000
WORKERS = 8  # threads serving requests; Slack sends a press at a time per user
QUEUED = 32  # accepted connections waiting for a worker; beyond this, 503 at once
REQUEST_DEADLINE_S = 5.0  # a connection's whole life: Slack gives up after 3 s anyway
IO_TIMEOUT_S = 2.0  # one read or write on the socket
ACTIONS = {blocks.ACTION_ACK: "ack", blocks.ACTION_SNOOZE: "snooze", blocks.ACTION_NOT_ANOMALY: "not_anomaly"}


class SigningSecretMissingError(RuntimeError):
    """The endpoint cannot verify Slack without `SLACK_SIGNING_SECRET`."""


class _Clock:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def signing_secret(settings: SlackSettings) -> str:
    """The settings' signing secret (`SLACK_SIGNING_SECRET`), or an error saying where to find it."""
    secret = settings.signing_secret
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
            "feedback_id": labels.feedback_id_for(self.alert_id, self.action, self.user_id, self.action_ts),
            "alert_id": self.alert_id,
            "action": self.action,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "snooze_minutes": self.snooze_minutes,
            "at": at.isoformat(),
        }


def _str(value: Any, limit: int = labels.MAX_ID_CHARS) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _whole(text: str) -> bool:
    return text.isascii() and text.isdigit()


def presses(payload: Any) -> list[Press]:
    """The feedback presses in a `block_actions` payload (other payloads, buttons and odd shapes are ignored)."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return []
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    actions = payload.get("actions") if isinstance(payload.get("actions"), list) else []
    found = []
    for action in actions:
        if not isinstance(action, dict):
            continue
        kind = ACTIONS.get(action.get("action_id")) if isinstance(action.get("action_id"), str) else None
        value = _str(action.get("value"), 2 * labels.MAX_ID_CHARS)
        if kind is None or value is None:
            continue
        alert_id, _, minutes = value.partition("|")
        if not _str(alert_id):
            continue
        found.append(
            Press(
                alert_id=alert_id,
                action=kind,
                user_id=_str(user.get("id")),
                user_name=_str(user.get("username"), labels.MAX_NAME_CHARS)
                or _str(user.get("name"), labels.MAX_NAME_CHARS),
                action_ts=str(action.get("action_ts") or "")[:64],
                snooze_minutes=labels.snooze_length(minutes) if _whole(minutes) else None,
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
    try:
        form = parse_qs(body.decode("utf-8"), max_num_fields=20)
        payload = json.loads((form.get("payload") or [""])[0])
    except (UnicodeDecodeError, ValueError, RecursionError):
        return 400, "expected a form field 'payload' holding a JSON object"
    if not isinstance(payload, dict):
        return 400, "expected a form field 'payload' holding a JSON object"
    at = from_epoch(now if now is not None else time.time())
    try:
        for press in presses(payload):
            spool.spool(press.spool_entry(at), spool_path)
            log.info("feedback %s on alert %s by %s", press.action, press.alert_id[:8], press.user_name)
    except OSError as exc:
        log.error("cannot spool feedback (Slack will retry): %s", exc)
        return 503, "feedback could not be stored; try again"
    return 200, ""


def content_length(values: list[str]) -> tuple[int | None, int, str]:
    """(length, 0, "") for one valid Content-Length header, else (None, HTTP status, why)."""
    if not values:
        return None, 411, "a Content-Length header is required"
    if len(set(v.strip() for v in values)) != 1:
        return None, 400, "conflicting Content-Length headers"
    text = values[0].strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return None, 400, "Content-Length must be a non-negative whole number"
    length = int(text)
    if length > MAX_BODY_BYTES:
        return None, 413, f"request body over {MAX_BODY_BYTES} bytes"
    return length, 0, ""


class _Watchdog:
    """One thread that closes connections past their deadline, so no worker waits on a client forever."""

    def __init__(self) -> None:
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interactivity-watchdog", daemon=True)
        self._thread.start()

    def watch(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._deadlines[sock] = time.monotonic() + seconds

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(sock, None)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self._lock:
                late = [s for s, d in self._deadlines.items() if d <= now]
                for sock in late:
                    del self._deadlines[sock]
            for sock in late:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # the worker's pending read returns at once

    def stop(self) -> None:
        self._stop.set()


class _BoundedServer(HTTPServer):
    """An HTTPServer whose connections are served by a fixed pool of threads, each under a deadline."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], deadline_s: float
    ) -> None:
        super().__init__(address, handler)
        self.deadline_s = deadline_s
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="interactivity")
        self._slots = threading.BoundedSemaphore(WORKERS + QUEUED)
        self.watchdog = _Watchdog()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        self.watchdog.watch(request, self.deadline_s)
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # one broken connection must not take the worker down
            log.debug("interactivity: connection from %s failed", client_address, exc_info=True)
        finally:
            self.watchdog.forget(request)
            self.shutdown_request(request)
            self._slots.release()

    def _refuse(self, request: Any) -> None:
        try:
            request.settimeout(0.2)
            request.sendall(
                b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 5\r\nRetry-After: 1\r\n\r\nbusy\n"
            )
        except OSError:
            pass
        self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.watchdog.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)


class InteractivityServer:
    """The HTTP endpoint plus a worker that moves spooled presses into the warehouse."""

    def __init__(
        self,
        host: str,
        port: int,
        secret: str,
        warehouse_path: str | None = None,
        drain_every_s: float = 1.0,
        deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        self.secret = secret
        self.warehouse_path = warehouse_path
        self.drain_every_s = drain_every_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = IO_TIMEOUT_S  # each socket read and write
            protocol_version = "HTTP/1.0"  # one request per connection: nothing idles between requests

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] != PATH:
                    self._reply(404, "not found")
                    return
                if self.headers.get("Transfer-Encoding"):
                    self._reply(501, "send the body with a Content-Length, not Transfer-Encoding")
                    return
                length, status, why = content_length(self.headers.get_all("Content-Length") or [])
                if length is None:
                    self._reply(status, why)
                    return
                body = self._read(length)
                if body is None:
                    return
                status, text = handle(body, dict(self.headers.items()), server.secret)
                self._reply(status, text)
                if status == 200:
                    server._wake.set()

            def _read(self, length: int) -> bytes | None:
                try:
                    body = self.rfile.read(length)
                except OSError:  # timed out, or closed by the watchdog: nothing to answer
                    self.close_connection = True
                    return None
                if len(body) != length:
                    self._reply(400, "request body shorter than its Content-Length")
                    return None
                return body

            def do_GET(self) -> None:  # noqa: N802
                self._reply(200 if self.path == "/healthz" else 404, "ok" if self.path == "/healthz" else "")

            def _reply(self, status: int, text: str) -> None:
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("interactivity: " + format, *args)

        self.httpd = _BoundedServer((host, port), Handler, deadline_s)
        self._worker = threading.Thread(target=self._drain_loop, name="feedback-drain", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.drain_every_s * 30)
            self._wake.clear()
            now = utc_now()
            try:
                spool.drain_spool(self.warehouse_path, now, patience_s=10.0)
            except (warehouse.WarehouseLockedError, OSError) as exc:
                log.warning("feedback stays spooled (warehouse busy): %s", exc)
            except Exception:  # the worker outlives any failure: the spool keeps what it could not store
                log.exception("feedback drain failed; the spool keeps its entries for the next try")
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
