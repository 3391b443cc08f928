"""Slack text from data: the one escaping layer between data-derived strings and a Slack message.

Slack reads `<…>` in message text and mrkdwn as control sequences (`<!channel>` pings everyone,
`<https://x|label>` is a link with any label), and `&` starts an entity. Any string that came
from data (service and metric names, summaries, log templates, user names, details) goes through
:func:`escape` before it joins a message; the sequences sreops writes itself (timestamps, user
mentions, owner mentions from the config) are built here from values checked to be what they claim.
"""

from __future__ import annotations

import re
from typing import Any

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Slack ids: users (U…, W… on Enterprise Grid) and user groups (S…).
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,20}")
_CUT_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(value: Any) -> str:
    """`value` as text Slack shows literally: `&`, `<` and `>` become entities."""
    return str(value).translate(_ESCAPES)


def code(value: Any) -> str:
    """Inline code of a data value; a backtick in it cannot end the span early."""
    return "`" + escape(value).replace("`", "'") + "`"


def code_block(value: Any) -> str:
    """A preformatted block of a data value (a log line); its own fences cannot end the block."""
    return "```" + escape(value).replace("```", "'" * 3) + "```"


def user_mention(user_id: Any) -> str | None:
    """`<@U…>` for a well-formed Slack user id, else None (the caller shows a name instead)."""
    text = str(user_id or "")
    return f"<@{text}>" if _USER_ID.fullmatch(text) else None


def owner_mention(owner: str) -> str:
    """An owner from the config: a user or user-group id becomes a mention, anything else plain text."""
    text = owner.strip().removeprefix("<").removesuffix(">").removeprefix("@").removeprefix("!subteam^")
    if _USER_ID.fullmatch(text):
        return f"<@{text}>"
    if _GROUP_ID.fullmatch(text):
        return f"<!subteam^{text}>"
    return escape(owner.strip())


def who(user_id: Any, user_name: Any) -> str:
    """The person behind a button press: a mention when the id is valid, else their escaped name."""
    return user_mention(user_id) or (escape(user_name) if user_name else "someone")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never inside an entity or a `<…>` sequence."""
    if len(text) <= limit:
        return text
    head = _CUT_ENTITY.sub("", text[: limit - 1])
    if head.rfind("<") > head.rfind(">"):  # escaped data holds no '<': this one is ours, cut before it
        head = head[: head.rfind("<")]
    return head + "…"
