"""A numbered schema migration: the record every stage's migration module is a tuple of."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, a short name, and the statements it runs."""

    version: int
    name: str
    statements: tuple[str, ...]
