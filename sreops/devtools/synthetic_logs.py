"""A long log stream with realistic repetition, generated from labelled Loghub lines.

Each generated line picks a labelled source line at random (so events keep the frequencies
they have in real logs) and refills every variable part of its ground-truth template with a
fresh value of the same kind: digits are redrawn digit by digit, hexadecimal letters stay
hexadecimal, and a word value (a user name, a host alias) is usually one seen in that slot and
now and then a new random word when the slot shows many different words in the data (user
names, not true/false). The ground-truth template travels with each line, so accuracy
can be scored on the stream too.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

NEW_WORD_RATE = 0.1
# A slot takes new words only if the data shows it open (user names), not an enumeration (true/false).
OPEN_SLOT_VALUES = 5


@dataclass
class _Pattern:
    """One ground-truth template: its constant parts, and the values seen in each slot."""

    parts: list[str]
    slots: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class SyntheticStream:
    """Generated messages with the source system and ground-truth event (`system/template`) of each."""

    messages: list[str]
    events: list[str]
    systems: list[str]


def _template_regex(template: str) -> re.Pattern[str]:
    pieces = [re.escape(p) for p in template.split("<*>")]
    return re.compile("(.*?)".join(pieces) + r"\Z", re.S)


def _fresh_value(value: str, seen: list[str], rng: random.Random) -> str:
    if any(ch.isdigit() for ch in value):
        is_hex = bool(re.fullmatch(r"(0x)?[0-9a-fA-F]+", value)) and any(ch.isalpha() for ch in value)
        out = []
        for i, ch in enumerate(value):
            if ch.isdigit():
                out.append(str(rng.randint(1 if i == 0 and ch != "0" else 0, 9)))
            elif is_hex and ch in "abcdef" and not (i == 1 and value.startswith("0x")):
                out.append(rng.choice("0123456789abcdef"))
            else:
                out.append(ch)
        return "".join(out)
    if value.isalpha() and len(set(seen)) >= OPEN_SLOT_VALUES and rng.random() < NEW_WORD_RATE:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(max(3, len(value))))
    return rng.choice(seen) if seen else value


def build_patterns(
    frames: Mapping[str, pd.DataFrame],
) -> tuple[list[tuple[str, str, str]], dict[str, _Pattern]]:
    """Source lines as (system, event, content) and each event's pattern with the slot values seen."""
    sources: list[tuple[str, str, str]] = []
    patterns: dict[str, _Pattern] = {}
    for system, frame in frames.items():
        regexes: dict[str, re.Pattern[str] | None] = {}
        for content, template in zip(frame["Content"], frame["EventTemplate"], strict=True):
            event = f"{system}/{template}"
            sources.append((system, event, content))
            if event not in patterns:
                patterns[event] = _Pattern(template.split("<*>"), [[] for _ in range(template.count("<*>"))])
                try:
                    regexes[template] = _template_regex(template)
                except re.error:
                    regexes[template] = None
            regex = regexes[template]
            match = regex.match(content) if regex is not None else None
            if match:
                for slot, value in zip(patterns[event].slots, match.groups(), strict=True):
                    if len(slot) < 500:
                        slot.append(value)
    return sources, patterns


def generate(frames: Mapping[str, pd.DataFrame], lines: int, seed: int = 7) -> SyntheticStream:
    """`lines` messages drawn from the labelled `frames` (system name → Loghub structured CSV)."""
    rng = random.Random(seed)
    sources, patterns = build_patterns(frames)
    if not sources:
        raise ValueError("no labelled lines to generate from")
    messages: list[str] = []
    events: list[str] = []
    systems: list[str] = []
    for _ in range(lines):
        system, event, content = sources[rng.randrange(len(sources))]
        pattern = patterns[event]
        if not pattern.slots or any(not slot for slot in pattern.slots):
            # The template does not align with this line: repeat it as it was written.
            messages.append(content)
        else:
            out = [pattern.parts[0]]
            for slot, part in zip(pattern.slots, pattern.parts[1:], strict=True):
                out.append(_fresh_value(rng.choice(slot), slot, rng))
                out.append(part)
            messages.append("".join(out))
        events.append(event)
        systems.append(system)
    return SyntheticStream(messages, events, systems)
