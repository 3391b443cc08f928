"""Names that come from the data (services, metrics, log folders): checked once, made safe for paths.

Data names are user input. They are stored literally in the warehouse (SQL is parametrised), but
they must never *become* anything else: a path, a YAML document, a Slack ping. Two functions do
all of it:

- `check_name(text, what)` refuses what no real service or metric name holds (NUL and other
  control characters, line breaks, bidirectional overrides, more than `MAX_NAME_LENGTH`
  characters, leading or trailing space, nothing at all), with an error that says what is wrong;
- `path_component(text)` turns any name into one safe path component: a plainly safe name as it
  is, anything else with unsafe characters replaced and a short hash of the original, so two
  names never share a file and `.`, `..`, empty or a separator are impossible; `inside(root,
  *parts)` builds a path from such components and proves it stays under `root`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

MAX_NAME_LENGTH = 200
_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9._-]+")
# bidirectional embeddings, overrides and isolates: text that displays in another order
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


class UnsafeName(ValueError):
    """A data-derived name that cannot be a service or metric name; the message says why."""


def check_name(text: object, what: str = "name") -> str:
    """`text` if it can be a service or metric name; else `UnsafeName` saying what is wrong."""
    if not isinstance(text, str):
        raise UnsafeName(f"{what} must be text, got {type(text).__name__}")
    if not text or not text.strip():
        raise UnsafeName(f"{what} is empty")
    if len(text) > MAX_NAME_LENGTH:
        raise UnsafeName(f"{what} has {len(text)} characters; at most {MAX_NAME_LENGTH} are allowed")
    if text != text.strip():
        raise UnsafeName(f"{what} {text.strip()[:40]!r} starts or ends with white space")
    for char in text:
        if char in _BIDI:
            raise UnsafeName(f"{what} {_shown(text)} holds a bidirectional override (U+{ord(char):04X})")
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") and char != "\u200d":
            raise UnsafeName(f"{what} {_shown(text)} holds a control character (U+{ord(char):04X})")
    return text


def _shown(text: str) -> str:
    """A name as it can be quoted in an error: escaped, and cut short."""
    return ascii(text[:60]) + ("…" if len(text) > 60 else "")


def path_component(text: str, max_length: int = 80) -> str:
    """One file or folder name for `text`: the name itself when it is plainly safe, else a safe form.

    Plainly safe: letters, digits, `.`, `_`, `-` only, not starting with `.` or `-`, at most
    `max_length` long (`checkout`, `api-gw.eu-1`). Anything else has its unsafe characters
    replaced and a hash of the original appended, so distinct names stay apart (`a/b` becomes
    `a_b-<8 hex>`, never `a_b`) and `.`, `..` or an empty name are impossible.
    """
    text = str(text)
    if text and len(text) <= max_length and not _UNSAFE_PATH.search(text) and text[0] not in ".-":
        return text
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    readable = _UNSAFE_PATH.sub("_", text).strip("._-")[:max_length]
    return f"{readable}-{digest}" if readable else f"_-{digest}"


def inside(root: str | Path, *parts: str) -> Path:
    """`root / parts…`, refused (`UnsafeName`) unless it resolves to a place under `root`."""
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise UnsafeName(f"{'/'.join(parts)!r} would leave {base}")
    return target
