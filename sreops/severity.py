"""The one severity vocabulary: info < warning < minor < major < critical, and the score bands."""

from __future__ import annotations

from typing import Literal

Severity = Literal["info", "warning", "minor", "major", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "minor", "major", "critical")

# Elastic ML's bands: the lowest anomaly score (0-100) of each severity, highest first.
SEVERITY_BANDS: tuple[tuple[float, Severity], ...] = (
    (75.0, "critical"),
    (50.0, "major"),
    (25.0, "minor"),
    (3.0, "warning"),
    (0.0, "info"),
)


class UnknownSeverityError(ValueError):
    """A severity outside info < warning < minor < major < critical."""


def severity_rank(severity: str) -> int:
    """Position of a severity in info=0 < warning < minor < major < critical=4."""
    try:
        return SEVERITIES.index(severity)  # type: ignore[arg-type]
    except ValueError:
        raise UnknownSeverityError(
            f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}"
        ) from None


def severity_of_score(score: float) -> Severity:
    """The severity band of one anomaly score."""
    for floor, name in SEVERITY_BANDS:
        if score >= floor:
            return name
    return "info"
