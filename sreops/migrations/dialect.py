"""The migrations' DDL as DuckLake takes it: no PRIMARY KEY/UNIQUE constraints, indexes or sequences.

DuckLake keeps NOT NULL and defaults, views, ALTER TABLE and every type the migrations use; the
rest of a statement is unchanged, so both backends hold the same tables and columns. Keys are
kept by the writers (one module per table, replacing rows by delete and insert in one
transaction), and sequences live in the catalog's PostgreSQL (`sreops.ducklake.next_ids`).
"""

from __future__ import annotations

import re

_SEQUENCE = re.compile(r"^\s*CREATE SEQUENCE (?:IF NOT EXISTS )?(\w+)(?: START \d+)?\s*$", re.IGNORECASE)
_INDEX = re.compile(r"^\s*CREATE (?:UNIQUE )?INDEX\b", re.IGNORECASE)
_TABLE_KEY = re.compile(r",\s*(?:PRIMARY KEY|UNIQUE)\s*\([^)]*\)", re.IGNORECASE)
_COLUMN_KEY = re.compile(r"\s+(?:PRIMARY KEY|UNIQUE)\b(?P<rest>[^,\n]*)", re.IGNORECASE)
_SEQUENCE_DEFAULT = re.compile(r"\s+DEFAULT\s+nextval\('\w+'\)", re.IGNORECASE)


def for_lake(statement: str) -> tuple[str | None, str | None]:
    """(the statement DuckLake runs or None, the sequence to create in the catalog or None)."""
    sequence = _SEQUENCE.match(statement)
    if sequence:
        return None, sequence.group(1)
    if _INDEX.match(statement):
        return None, None
    lake = _TABLE_KEY.sub("", statement)
    lake = _SEQUENCE_DEFAULT.sub("", lake)
    lake = _COLUMN_KEY.sub(_keep_not_null, lake)
    return lake, None


def _keep_not_null(match: re.Match[str]) -> str:
    """A column key's constraint dropped; NOT NULL kept where a PRIMARY KEY implied it."""
    rest = match.group("rest")
    implied = match.group(0).lstrip().upper().startswith("PRIMARY") and "NOT NULL" not in rest.upper()
    return (" NOT NULL" if implied else "") + rest
