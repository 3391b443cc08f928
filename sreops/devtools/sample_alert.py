"""A made-up incident for `sreops alerts test`: every part of an alert message, on sample data."""

from __future__ import annotations

import datetime as dt
from typing import Any

SERVICE = "sreops-test"
SUMMARY = "Test alert from sreops: latency and errors up together (sample data)"


def sample_details(now: dt.datetime, channel: str) -> dict[str, Any]:
    """Details of a made-up incident that shows every part of an alert message."""
    return {
        "channel": channel,
        "metrics": ["latency_p95_ms", "error_rate"],
        "score": 88.0,
        "observed": 742.0,
        "expected_low": 120.0,
        "expected_high": 310.0,
        "detector": "sample",
        "first_minute": (now - dt.timedelta(minutes=12)).isoformat(),
        "last_minute": now.isoformat(),
        "explanation": [
            {
                "metric": "latency_p95_ms",
                "feature": "mean",
                "observed": 742.0,
                "expected_low": 120.0,
                "expected_high": 310.0,
                "contribution": 0.64,
            },
            {
                "metric": "error_rate",
                "feature": "max",
                "observed": 0.081,
                "expected_low": 0.0,
                "expected_high": 0.012,
                "contribution": 0.36,
            },
        ],
    }
