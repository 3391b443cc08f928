"""The Slack side of delivery: slack-sdk's WebClient from `SlackSettings`, and what its failures mean.

A bot token enables posting (without one the platform dry-runs); the API URL points the client
elsewhere (tests and benchmarks use a local fake). The client retries nothing itself:
delivery decides, because a blind retry of a post whose response was lost would post it twice.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import time
import urllib.error
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError

from sreops.config.environment import DEFAULT_SLACK_API_URL, SlackSettings

REQUEST_TIMEOUT_S = 10
DEFAULT_RETRY_AFTER_S = 30
CHANNEL_CACHE_S = 600.0
CHANNEL_RETRY_S = 60.0

log = logging.getLogger(__name__)
_CHANNEL_CACHE: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

RATE_LIMITED = "rate_limited"
TRANSIENT = "transient"
AUTH = "auth"
PERMANENT = "permanent"

TRANSIENT_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "timeout"}
AUTH_ERRORS = {
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "no_permission",
    "ekm_access_denied",
    "not_allowed_token_type",
}


def make_client(token: str | None, base_url: str = DEFAULT_SLACK_API_URL) -> WebClient | None:
    """A WebClient for the workspace of `token` at the Web API `base_url`; None without a token (dry-run)."""
    if not token:
        return None
    url = base_url if base_url.endswith("/") else base_url + "/"
    return WebClient(token=token, base_url=url, timeout=REQUEST_TIMEOUT_S, retry_handlers=[])


def poster_for(settings: SlackSettings) -> SlackPoster | None:
    """The poster of these settings; None without a bot token (dry-run)."""
    client = make_client(settings.bot_token, settings.api_url)
    return SlackPoster(client) if client is not None else None


class SlackFailure(Exception):
    """A failed Slack call, classified for the delivery loop."""

    def __init__(
        self, category: str, message: str, retry_after_s: float | None = None, ambiguous: bool = False
    ) -> None:
        super().__init__(message)
        self.thread_lost = "message_not_found" in message or "thread_not_found" in message
        self.category = category  # RATE_LIMITED, TRANSIENT, AUTH or PERMANENT
        self.message = message
        self.retry_after_s = retry_after_s
        self.ambiguous = ambiguous  # Slack may have acted on the request (its response was lost)


def classify(exc: BaseException, method: str, api_url: str = DEFAULT_SLACK_API_URL) -> SlackFailure:
    """What a client exception means (calling the Web API at `api_url`): rate limit, transient, auth or permanent."""
    if isinstance(exc, SlackFailure):
        return exc
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = response.status_code
        error = response.get("error") if isinstance(response.data, dict) else None
        if status == 429 or error == "ratelimited":
            header = response.headers.get("Retry-After") or response.headers.get("retry-after")
            try:
                retry_after = float(header) if header is not None else DEFAULT_RETRY_AFTER_S
            except ValueError:
                retry_after = DEFAULT_RETRY_AFTER_S
            return SlackFailure(
                RATE_LIMITED,
                f"{method}: rate limited by Slack (Retry-After {retry_after:.0f} s)",
                retry_after_s=retry_after,
            )
        if status >= 500:
            return SlackFailure(TRANSIENT, f"{method}: Slack answered HTTP {status}", ambiguous=True)
        if error in TRANSIENT_ERRORS:
            return SlackFailure(TRANSIENT, f"{method}: Slack error {error}", ambiguous=True)
        if error in AUTH_ERRORS:
            needed = response.get("needed") if isinstance(response.data, dict) else None
            hint = f" (needs scope {needed})" if needed else ""
            return SlackFailure(
                AUTH, f"{method}: {error}{hint}; check SLACK_BOT_TOKEN and the app's scopes (`sreops doctor`)"
            )
        hints = {
            "channel_not_found": "the channel does not exist or the app cannot see it; fix alerting routes",
            "not_in_channel": "invite the app to the channel (/invite @app)",
            "is_archived": "the channel is archived; route alerts elsewhere",
        }
        hint = f": {hints[error]}" if error in hints else ""
        return SlackFailure(PERMANENT, f"{method}: Slack error {error or status}{hint}")
    if isinstance(exc, urllib.error.HTTPError):
        return SlackFailure(TRANSIENT, f"{method}: HTTP {exc.code} from Slack's file upload", ambiguous=True)
    if isinstance(exc, urllib.error.URLError):
        refused = isinstance(exc.reason, ConnectionRefusedError)
        return SlackFailure(
            TRANSIENT, f"{method}: cannot reach Slack at {api_url} ({exc.reason})", ambiguous=not refused
        )
    if isinstance(exc, ConnectionRefusedError):
        return SlackFailure(TRANSIENT, f"{method}: connection refused by {api_url}")
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException, OSError)):
        return SlackFailure(
            TRANSIENT, f"{method}: {type(exc).__name__} talking to Slack: {exc}", ambiguous=True
        )
    if isinstance(exc, (SlackRequestError, SlackClientError)):
        return SlackFailure(TRANSIENT, f"{method}: {exc}", ambiguous=True)
    raise exc


class SlackPoster:
    """The few Slack calls delivery makes, each raising SlackFailure on error."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _call(self, method: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:  # classified: anything unknown is re-raised by classify
            raise classify(exc, method, self.client.base_url) from exc

    def channel_id(self, channel: str) -> str:
        """A channel's id ('#name', name or id in); the name itself when the app cannot list channels."""
        if channel.startswith(("C", "G", "D")) and channel[1:].isalnum() and channel.upper() == channel:
            return channel
        return self.channel_ids().get(channel.lstrip("#"), channel)

    def channel_ids(self) -> dict[str, str]:
        """name → id of the workspace's channels, listed at most every few minutes per process.

        Sensor ticks make a new client every few seconds; listing channels on each would spend
        Slack's conversations.list budget (Tier 2, ~20 calls a minute) on nothing.
        """
        key = (self.client.base_url, hashlib.sha256((self.client.token or "").encode()).hexdigest())
        now = time.monotonic()
        cached = _CHANNEL_CACHE.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            found, ttl = self.list_channels(), CHANNEL_CACHE_S
        except SlackFailure as exc:
            found, ttl = {}, CHANNEL_RETRY_S
            log.warning("cannot list Slack channels, using names as given: %s", exc)
        _CHANNEL_CACHE[key] = (now + ttl, found)
        return found

    def list_channels(self) -> dict[str, str]:
        """name → id of every channel the app can see."""
        found: dict[str, str] = {}
        cursor = None
        for _ in range(100):  # pages; bounded so a misbehaving server cannot loop us forever
            page = self._call(
                "conversations.list",
                self.client.conversations_list,
                types="public_channel,private_channel",
                limit=200,
                cursor=cursor,
                exclude_archived=True,
            )
            found.update({c["name"]: c["id"] for c in page.get("channels", [])})
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return found

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict],
        *,
        thread_ts: str | None = None,
        step_key: str | None = None,
    ) -> tuple[str, str]:
        """Post a message (in a thread when `thread_ts`); returns (channel id, ts)."""
        metadata = (
            {"event_type": "sreops_alert", "event_payload": {"step_key": step_key}} if step_key else None
        )
        response = self._call(
            "chat.postMessage",
            self.client.chat_postMessage,
            channel=channel,
            text=text,
            blocks=blocks or None,
            thread_ts=thread_ts,
            metadata=metadata,
            unfurl_links=False,
            unfurl_media=False,
        )
        return response["channel"], response["ts"]

    def update(self, channel_id: str, ts: str, text: str, blocks: list[dict]) -> None:
        """Edit a message in place."""
        self._call(
            "chat.update", self.client.chat_update, channel=channel_id, ts=ts, text=text, blocks=blocks
        )

    def upload_png(
        self,
        channel_id: str,
        thread_ts: str,
        png: bytes,
        filename: str,
        title: str,
        alt_txt: str | None = None,
    ) -> str:
        """Upload a PNG into a thread (files_upload_v2); returns the file id. Texts come Slack-escaped."""
        response = self._call(
            "files_upload_v2",
            self.client.files_upload_v2,
            channel=channel_id,
            thread_ts=thread_ts,
            content=png,
            filename=filename,
            title=title,
            alt_txt=alt_txt,
        )
        file = response.get("file") or {}
        return file.get("id", "")

    def find_posted(
        self,
        channel_id: str,
        step_key: str,
        *,
        thread_ts: str | None,
        oldest: float,
        file_title: str | None = None,
    ) -> str | None:
        """The ts of a message (or file) an earlier, uncertain attempt of this step posted, if any."""
        if thread_ts:
            response = self._call(
                "conversations.replies",
                self.client.conversations_replies,
                channel=channel_id,
                ts=thread_ts,
                include_all_metadata=True,
                limit=1000,
            )
        else:
            response = self._call(
                "conversations.history",
                self.client.conversations_history,
                channel=channel_id,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
            )
        for message in response.get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("step_key") == step_key:
                return message["ts"]
            if file_title and any(f.get("title") == file_title for f in message.get("files") or []):
                return message["ts"]
        return None

    def auth_test(self) -> dict[str, Any]:
        """Who the token is (team, user, bot) and its scopes."""
        response = self._call("auth.test", self.client.auth_test)
        data = dict(response.data) if isinstance(response.data, dict) else {}
        scopes = response.headers.get("x-oauth-scopes") or response.headers.get("X-OAuth-Scopes") or ""
        data["scopes"] = sorted(s.strip() for s in scopes.split(",") if s.strip())
        return data

    def channel_info(self, channel_id: str) -> dict[str, Any]:
        """conversations.info of one channel."""
        return dict(
            self._call("conversations.info", self.client.conversations_info, channel=channel_id)["channel"]
        )
