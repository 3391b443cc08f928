"""The knobs of a detector version (hashed into its name) and the alarm policy applied to its scores.

Scoring and the alarm policy are two stages (calibrate → threshold → alarm): changing a threshold
or the N-of-M rule never needs retraining or a new version, changing how scores are computed does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

MEMBERS = ("novelty", "hbos", "iforest", "knn", "lof", "ecod", "copod", "loda")


class SettingsError(ValueError):
    """Detector settings that cannot work together; the message names the field."""


@dataclass(frozen=True)
class DetectorSettings:
    """How scores are computed. Defaults are the ones evaluated on NAB and the demo fleet."""

    member: str = "novelty"  # "novelty", or a PyOD detector measured against it
    context_minutes: float = 10.0  # a value is compared from the mean level of this many minutes before it
    training_days: float = 7.0  # trailing window a model learns from
    refit_hours: float = 24.0  # models are retrained on this grid (UTC-aligned)
    cold_start_hours: float = 6.0  # history before a series gets its first model (robust baseline until then)
    warmup_hours: float = 24.0  # until a series has this much history, evidence is scaled by the share seen
    min_points: int = 30  # fewest training points a model accepts
    range_units: float = 20.0  # novelty is measured in 1/range_units of the series' observed range
    surprise_scale: float = 10.0  # nats of tail surprise that count as full rarity

    def __post_init__(self) -> None:
        if self.member not in MEMBERS:
            raise SettingsError(f"detector member {self.member!r} is not one of {', '.join(MEMBERS)}")
        for name in ("context_minutes", "training_days", "refit_hours", "range_units", "surprise_scale"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"detector setting {name} must be > 0, got {getattr(self, name)}")
        if self.cold_start_hours < 0 or self.warmup_hours < 0 or self.min_points < 2:
            raise SettingsError("cold_start_hours and warmup_hours must be >= 0, min_points >= 2")

    @property
    def context_s(self) -> float:
        return self.context_minutes * 60.0

    @property
    def training_s(self) -> float:
        return self.training_days * 86400.0

    @property
    def refit_s(self) -> float:
        return self.refit_hours * 3600.0

    @property
    def cold_start_s(self) -> float:
        return self.cold_start_hours * 3600.0

    def confidence(self, age_s: np.ndarray) -> np.ndarray:
        """How much a series' evidence counts at this age: the share of the warm-up seen (0–1).

        A series younger than a day has not seen its daily cycle: its first morning would be novel.
        """
        if self.warmup_hours <= 0:
            return np.ones_like(np.asarray(age_s, dtype=float))
        return np.clip(np.asarray(age_s, dtype=float) / (self.warmup_hours * 3600.0), 0.0, 1.0)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the same settings always give the same text and version."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> DetectorSettings:
        """Settings from `to_json` output; unknown keys are an error, missing ones take defaults."""
        raw = json.loads(text) if isinstance(text, str) else dict(text)
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SettingsError(f"unknown detector settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**raw)

    @property
    def version(self) -> str:
        """`<member>-<8 hex>`: the name under which this configuration's scores and models are kept."""
        digest = hashlib.sha1(self.to_json().encode()).hexdigest()[:8]
        return f"{self.member}-{digest}"

    def with_changes(self, **changes: Any) -> DetectorSettings:
        """A copy with some knobs changed (a candidate version)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class AlarmPolicy:
    """Thresholds over scores: what counts as an anomaly, and when an incident opens and resolves."""

    threshold: float = 75.0  # is_anomaly and incident opening
    close_threshold: float = 50.0  # hysteresis: scores below this count as quiet
    open_minutes: int = 2  # N of M anomalous minutes open an incident
    window_minutes: int = 5  # M
    quiet_minutes: int = 15  # consecutive quiet minutes resolve it
    suppression_hours: float = 6.0  # a series re-alarms within this only on a new high (streaming alarm)

    def __post_init__(self) -> None:
        if not 0 <= self.close_threshold <= self.threshold <= 100:
            raise SettingsError("alarm policy needs 0 <= close_threshold <= threshold <= 100")
        if not 1 <= self.open_minutes <= self.window_minutes:
            raise SettingsError("alarm policy needs 1 <= open_minutes <= window_minutes")


def from_config(detection_config: Any) -> tuple[DetectorSettings, AlarmPolicy]:
    """The settings and policy named by the config file's `detection` section."""
    settings = DetectorSettings(
        context_minutes=detection_config.context_minutes,
        training_days=float(detection_config.training_days),
        refit_hours=detection_config.refit_hours,
        cold_start_hours=detection_config.cold_start_hours,
    )
    policy = AlarmPolicy(
        threshold=detection_config.threshold,
        close_threshold=min(detection_config.close_threshold, detection_config.threshold),
        open_minutes=min(detection_config.open_minutes, detection_config.window_minutes),
        window_minutes=detection_config.window_minutes,
        quiet_minutes=detection_config.quiet_minutes,
    )
    return settings, policy
