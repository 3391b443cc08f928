"""A local fake of the Slack Web API on 127.0.0.1, for tests, benchmarks and `sreops alerts test --fake`.

It speaks enough of the real protocol for slack-sdk's `WebClient` (pointed at it with `base_url`)
to post, update, thread, upload files (`files_upload_v2`'s three steps) and read history back.
Failures are programmable (429 with `Retry-After`, 500, or a 500 sent after the message was
stored, as when Slack posts but the response is lost), and every call is logged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from sreops.devtools.fake_slack_api import Channel, WebApiMethods

DEFAULT_TOKEN = "xoxb-fake-token"
DEFAULT_SCOPES = "chat:write,files:write,channels:read,groups:read,channels:history,groups:history"


@dataclass
class Call:
    """One request the fake received, with what it answered."""

    method: str
    params: dict[str, Any]
    status: int
    at: float
    error: str | None = None


@dataclass
class FailureRule:
    """Answer matching requests with `status` (`count` times, or until cleared when None)."""

    status: int
    methods: frozenset[str] | None = None
    count: int | None = None
    retry_after: int | None = None
    after_effect: bool = False


class FakeSlack(WebApiMethods):
    """A threaded HTTP server with Slack's Web API shape; use as a context manager."""

    def __init__(
        self,
        channels: tuple[str, ...] = ("sre-alerts",),
        token: str = DEFAULT_TOKEN,
        clock: Callable[[], float] = time.time,
        scopes: str = DEFAULT_SCOPES,
    ) -> None:
        self.token = token
        self.scopes = scopes
        self.clock = clock
        self.calls: list[Call] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self._rules: list[FailureRule] = []
        self._lock = threading.RLock()
        self._ts_counter = itertools.count(1)
        self._ids = itertools.count(1)
        for name in channels:
            self.add_channel(name)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        """Listen on a free loopback port in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `calls`
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def url(self) -> str:
        """The `base_url` for slack-sdk's WebClient (and `SLACK_API_URL`)."""
        return self.root_url + "api/"

    # ---- programming the fake ----------------------------------------------------------------
    def add_channel(self, name: str, *, is_member: bool = True, is_private: bool = False) -> Channel:
        """Create a channel (name without '#')."""
        with self._lock:
            channel = Channel(
                id=f"C{next(self._ids):08d}",
                name=name.lstrip("#"),
                is_member=is_member,
                is_private=is_private,
            )
            self.channels[channel.id] = channel
            return channel

    def fail(
        self,
        status: int,
        *,
        count: int | None = None,
        methods: tuple[str, ...] | None = None,
        retry_after: int | None = None,
        after_effect: bool = False,
    ) -> FailureRule:
        """Answer the next `count` matching calls (all, when None) with `status`."""
        rule = FailureRule(status, frozenset(methods) if methods else None, count, retry_after, after_effect)
        with self._lock:
            self._rules.append(rule)
        return rule

    def recover(self) -> None:
        """Clear every failure rule."""
        with self._lock:
            self._rules.clear()

    # ---- reading what happened ---------------------------------------------------------------
    def channel(self, name_or_id: str) -> Channel:
        """A channel by id, '#name' or name."""
        with self._lock:
            found = self._find_channel(name_or_id)
            if found is None:
                raise KeyError(f"no channel {name_or_id!r} in the fake")
            return found

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Logged calls of one method (optionally only the successful or failed ones)."""
        with self._lock:
            calls = [c for c in self.calls if c.method == method]
        if ok is None:
            return calls
        return [c for c in calls if (c.status == 200 and c.error is None) == ok]

    def messages(self, channel: str, *, include_replies: bool = True) -> list[dict[str, Any]]:
        """Messages stored in a channel, oldest first."""
        with self._lock:
            stored = list(self.channel(channel).messages)
        return stored if include_replies else [m for m in stored if m.get("thread_ts") in (None, m["ts"])]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Messages of a thread after its root, oldest first."""
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts]

    def find(self, channel: str, ts: str) -> dict[str, Any]:
        """One stored message by its ts."""
        for message in self.messages(channel):
            if message["ts"] == ts:
                return message
        raise KeyError(f"no message {ts} in {channel}")

    # ---- request handling --------------------------------------------------------------------
    def _read_params(self, handler: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(urlparse(handler.path).query).items()}
        content_type = handler.headers.get("Content-Type", "")
        if urlparse(handler.path).path.startswith("/upload/"):
            params["_body"] = raw  # urllib labels raw uploads as form data; they are not
        elif "application/json" in content_type and raw:
            params.update(json.loads(raw))
        elif "application/x-www-form-urlencoded" in content_type and raw:
            params.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        elif raw:
            params["_body"] = raw
        for key in ("blocks", "metadata", "files"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(json.JSONDecodeError):
                    params[key] = json.loads(params[key])
        return params

    def _matching_rule(self, method: str) -> FailureRule | None:
        for rule in self._rules:
            if rule.methods is not None and method not in rule.methods:
                continue
            if rule.count is not None:
                if rule.count <= 0:
                    continue
                rule.count -= 1
            return rule
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlparse(handler.path).path
        params = self._read_params(handler)
        if path.startswith("/upload/"):
            method = "upload"
        elif path.startswith("/api/"):
            method = path[len("/api/") :]
        else:
            self._respond(handler, 404, {"ok": False, "error": "unknown_path"})
            return
        with self._lock:
            rule = self._matching_rule(method)
            status, body, headers = 200, None, {}
            if rule is not None and not rule.after_effect:
                status = rule.status
            else:
                body = self._dispatch(method, params, handler)
                if rule is not None:
                    status = rule.status
            if status == 429:
                headers["Retry-After"] = str(rule.retry_after if rule and rule.retry_after is not None else 1)
                body = {"ok": False, "error": "ratelimited"}
            elif status >= 500:
                body = None
            error = None if body is None or not isinstance(body, dict) else body.get("error")
            if status >= 500:
                error = f"http {status}"
            self.calls.append(Call(method, params, status, self.clock(), error))
        if status >= 500:
            self._respond_text(handler, status, "upstream connect error or disconnect/reset before headers")
        elif method == "upload":
            self._respond_text(handler, status, "OK")
        else:
            self._respond(handler, status, body, headers)

    def _respond(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict | None = None
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if status == 200:
            handler.send_header("x-oauth-scopes", self.scopes)
        handler.end_headers()
        handler.wfile.write(data)

    def _respond_text(self, handler: BaseHTTPRequestHandler, status: int, text: str) -> None:
        data = text.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _authorized(self, handler: BaseHTTPRequestHandler, params: dict[str, Any]) -> bool:
        header = handler.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() or params.get("token", "")
        return token == self.token

    def _dispatch(
        self, method: str, params: dict[str, Any], handler: BaseHTTPRequestHandler
    ) -> dict[str, Any]:
        if method == "upload":
            upload = self.uploads.get(handler.path.rsplit("/", 1)[-1])
            if upload is not None:
                upload["data"] = params.get("_body", b"")
            return {"ok": upload is not None}
        if not self._authorized(handler, params):
            return {"ok": False, "error": "invalid_auth"}
        action = getattr(self, "_api_" + method.replace(".", "_"), None)
        if action is None:
            return {"ok": False, "error": "unknown_method"}
        return action(params)
