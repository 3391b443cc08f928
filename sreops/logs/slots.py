"""Template tokens and their slots: how a masked token fits a template, and how templates generalise.

A template is a list of tokens; a token's generalised parts are `GENERAL` (any text) and a whole
token may be a `SPAN` (a variable-length run of masked values). Pure functions over strings, used
by the clusterer (`sreops.logs.clustering`), its alignment of variable-length messages
(`sreops.logs.alignment`) and its review (`sreops.logs.review`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from sreops.logs.masking import PLACEHOLDER

GENERAL = "\x00"  # a generalised part of a template token: matches any text
SPAN = "\x01"  # a variable-length run of tokens: matches one or more masked values
_SHAPE = re.compile(r"[^\s=:,;()\[\]{}<>\"'|#@]+")


def render(tokens: Sequence[str]) -> str:
    """Template tokens as text, with every generalised part shown as `<*>`."""
    return " ".join(tokens).replace(SPAN, PLACEHOLDER).replace(GENERAL, PLACEHOLDER)


_VALUE_RUN = re.compile(r"<\*>(?:\s+<\*>)+")


def embedding_text(masked: str) -> str:
    """What gets embedded: the masked text with runs of values made one (the count of values in a
    list says nothing about the event) and spacing collapsed."""
    return _VALUE_RUN.sub(PLACEHOLDER, " ".join(masked.split()))


def cluster_id_for(namespace: str, origin: str) -> str:
    """A stable id: the same namespace and first masked text always give the same id."""
    digest = hashlib.blake2b(f"{namespace}\x1f{origin}".encode(), digest_size=6).hexdigest()
    return f"c{digest}"


_LIST = re.compile(r"w(?:[,;]w)+")


def shape_of(token: str) -> str:
    """The punctuation skeleton of a token (`tag="x",` → `w="w",`): values of one slot share it.

    A comma-separated list of values has the skeleton of one value (`a,b,c` → `w`): one variable
    written as a single value or as a list is one slot.
    """
    return _LIST.sub("w", _SHAPE.sub("w", token.replace(PLACEHOLDER, "w")))


_SLOT_PATTERNS: dict[str, re.Pattern[str]] = {}


def fits(pattern: str, token: str) -> bool:
    """Whether `token` fits a template token whose generalised parts match any text."""
    if pattern == token:
        return True
    if GENERAL not in pattern:
        return False
    if pattern.count(GENERAL) == 1:
        prefix, _, suffix = pattern.partition(GENERAL)
        return len(token) >= len(prefix) + len(suffix) and token.startswith(prefix) and token.endswith(suffix)
    compiled = _SLOT_PATTERNS.get(pattern)
    if compiled is None:
        compiled = re.compile(".*".join(re.escape(part) for part in pattern.split(GENERAL)), re.DOTALL)
        if len(_SLOT_PATTERNS) > 10_000:
            _SLOT_PATTERNS.clear()
        _SLOT_PATTERNS[pattern] = compiled
    return compiled.fullmatch(token) is not None


def is_anchor(token: str) -> bool:
    """A token that names something: a letter outside its values (`iar`, `cr:<*>`, not `<*>` or `-`)."""
    text = token.replace(PLACEHOLDER, "").replace(GENERAL, "").replace(SPAN, "")
    return any(ch.isalpha() for ch in text)


def is_value(token: str) -> bool:
    """A token that holds a value: masked, generalised, or a span."""
    return PLACEHOLDER in token or GENERAL in token or SPAN in token


def as_slot(token: str) -> str | None:
    """A token that holds values, as a slot: its literal text kept, each value matching any text.

    `rhost=<*>` → `rhost=` + GENERAL, `<*>=<*>` → GENERAL `=` GENERAL; a template token already
    generalised is its own slot; a token without a value is not a slot (None).
    """
    if GENERAL in token:
        return token
    if PLACEHOLDER not in token:
        return None
    return token.replace(PLACEHOLDER, GENERAL)


def proves_slot(word: str, value: str) -> bool:
    """Whether a masked `value` shows that the position where a template has `word` holds values.

    The literal text around the value must agree: `chdir(pwd)` / `chdir(<*>)`, `admin` / `<*>`,
    `allreduce.rts:` / `<*>:`. Other text around it (`tty=NODEVssh` / `tty=:<*>`, `num=<*>` /
    `topActivity=<*>`) says nothing.
    """
    slot = as_slot(value)
    return slot is not None and fits(slot, word)


def fits_slot(pattern: str, token: str) -> bool:
    """Whether `token` equals `pattern` or fills the slot `pattern` is (any text between its ends)."""
    if pattern == token:
        return True
    slot = as_slot(pattern)
    return slot is not None and fits(slot, token)


_BOUNDARY = "=:([{\"'@"
_CLOSERS = ")]}\"',;:"


def generalize(values: Iterable[str]) -> str:
    """One template token covering all `values`: their common delimited prefix and suffix around `<*>`."""
    items = list(values)
    prefix = items[0]
    suffix = items[0]
    for value in items[1:]:
        n = 0
        limit = min(len(prefix), len(value))
        while n < limit and prefix[n] == value[n]:
            n += 1
        prefix = prefix[:n]
        n = 0
        limit = min(len(suffix), len(value))
        while n < limit and suffix[-1 - n] == value[-1 - n]:
            n += 1
        suffix = suffix[len(suffix) - n :] if n else ""
    # Keep only whole delimited parts: `user=root`/`user=test` → `user=<*>`, never `user=<*>t`.
    cut = max(prefix.rfind(c) for c in _BOUNDARY)
    prefix = prefix[: cut + 1] if cut >= 0 else ""
    starts = [suffix.find(c) for c in _CLOSERS if c in suffix]
    suffix = suffix[min(starts) :] if starts else ""
    shortest = min(len(v) for v in items)
    if len(prefix) + len(suffix) > shortest:
        suffix = ""
    return prefix + GENERAL + suffix
