"""The Slack Web API methods the fake answers: channels, messages, threads, history, file uploads.

`WebApiMethods` holds what each method does to the fake workspace's state; `FakeSlack` (the
HTTP server, its failure rules and call log) dispatches each authorised call to `_api_<method>`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Channel:
    """A channel of the fake workspace and the messages stored in it, oldest first."""

    id: str
    name: str
    is_member: bool = True
    is_private: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)


class WebApiMethods:
    """Slack's Web API methods over the fake workspace's channels and uploads."""

    channels: dict[str, Channel]
    uploads: dict[str, dict[str, Any]]
    clock: Callable[[], float]
    root_url: str
    _ids: itertools.count
    _ts_counter: itertools.count

    def _find_channel(self, key: str | None) -> Channel | None:
        if not key:
            return None
        if key in self.channels:
            return self.channels[key]
        name = key.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def _next_ts(self) -> str:
        return f"{int(self.clock()):d}.{next(self._ts_counter):06d}"

    def _member_channel(self, key: str | None) -> Channel | dict[str, Any]:
        channel = self._find_channel(key)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not channel.is_member:
            return {"ok": False, "error": "not_in_channel"}
        return channel

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://sreops-fake.slack.com/",
            "team": "sreops-fake",
            "user": "sreops",
            "team_id": "T00000001",
            "user_id": "U00000001",
            "bot_id": "B00000001",
        }

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        channel = self._member_channel(params.get("channel"))
        if isinstance(channel, dict):
            return channel
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        thread_ts = params.get("thread_ts") or None
        if thread_ts and not any(m["ts"] == thread_ts for m in channel.messages):
            return {"ok": False, "error": "thread_not_found"}
        message = {
            "ts": self._next_ts(),
            "text": params.get("text", ""),
            "blocks": params.get("blocks") or [],
            "metadata": params.get("metadata"),
            "user": "U00000001",
            "bot_id": "B00000001",
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        channel.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(params.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        for message in channel.messages:
            if message["ts"] == params.get("ts"):
                message["text"] = params.get("text", message["text"])
                message["blocks"] = params.get("blocks") or message["blocks"]
                message["edited"] = {"ts": self._next_ts()}
                return {"ok": True, "channel": channel.id, "ts": message["ts"], "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def _channel_info(self, channel: Channel) -> dict[str, Any]:
        return {
            "id": channel.id,
            "name": channel.name,
            "is_member": channel.is_member,
            "is_private": channel.is_private,
            "is_archived": False,
        }

    def _api_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._find_channel(params.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self._channel_info(channel)}

    def _api_conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        every = list(self.channels.values())
        page = every[start : start + limit]
        next_cursor = str(start + limit) if start + limit < len(every) else ""
        return {
            "ok": True,
            "channels": [self._channel_info(c) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _visible(self, message: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        shown = dict(message)
        if str(params.get("include_all_metadata", "")).lower() not in ("1", "true"):
            shown.pop("metadata", None)
        return shown

    def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params.get("channel"))
        if isinstance(channel, dict):
            return channel
        oldest = float(params.get("oldest") or 0)
        roots = [
            m for m in channel.messages if m.get("thread_ts") in (None, m["ts"]) and float(m["ts"]) >= oldest
        ]
        limit = int(params.get("limit") or 100)
        newest_first = list(reversed(roots))[:limit]
        return {"ok": True, "messages": [self._visible(m, params) for m in newest_first], "has_more": False}

    def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(params.get("channel"))
        if isinstance(channel, dict):
            return channel
        ts = params.get("ts")
        thread = [m for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": [self._visible(m, params) for m in thread], "has_more": False}

    def _api_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        self.uploads[file_id] = {
            "id": file_id,
            "name": params["filename"],
            "length": int(params["length"]),
            "data": None,
        }
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.root_url}upload/{file_id}"}

    def _api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        files = params.get("files") or []
        shared = []
        for item in files:
            upload = self.uploads.get(item.get("id"))
            if upload is None or upload["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            upload["title"] = item.get("title")
            shared.append(
                {
                    "id": upload["id"],
                    "name": upload["name"],
                    "title": upload["title"],
                    "size": len(upload["data"]),
                }
            )
        channel_key = params.get("channel_id")
        if channel_key:
            channel = self._member_channel(channel_key)
            if isinstance(channel, dict):
                return channel
            thread_ts = params.get("thread_ts") or None
            message = {
                "ts": self._next_ts(),
                "text": params.get("initial_comment") or "",
                "files": shared,
                "user": "U00000001",
                "bot_id": "B00000001",
                "blocks": [],
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
            channel.messages.append(message)
        return {"ok": True, "files": shared}
