"""The knobs of a detector version (hashed into its name) and the alarm policy applied to its scores.

Scoring and the alarm policy are two stages (calibrate → threshold → alarm): changing a threshold
or the N-of-M rule never needs retraining or a new version, changing how scores are computed does.

Scales follow each series' own sampling interval. Each is a number of *points* with a floor in
wall-clock time: the context is the last 2 points but at least 10 minutes of them, so it is 2
points of 5-minute or hourly data and 60 points of 10-second data; the warm-up is 288 points but
at least a day. The interval is detected from the training window (the median positive step,
`timeline.sampling_interval`), so gaps and duplicates barely move it, and one set of defaults
serves 10-second and hourly data alike. The points floor keeps enough points for statistics on
coarse data; the time floor keeps a fine-grained series from judging a level on a minute of
noise or meeting its daily cycle before it has seen one. The retraining grid stays on the clock.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

DAY_S = 86400.0
MAX_CONTEXT = 1000  # context points, whatever the interval (10 minutes of 0.6-second data)


class SettingsError(ValueError):
    """Detector settings that cannot work together; the message names the field."""


@dataclass(frozen=True)
class DetectorSettings:
    """How scores are computed. Defaults are the ones chosen by the protocol of docs/detection.md."""

    member: str = "novelty"  # a registered member (`sreops.detection.members.names()`)
    context_points: int = 2  # a value is compared from the mean of the points just before it,
    context_minutes: float = 10.0  # at least this much time of them
    training_points: int = 10080  # a model learns from at most this many points before its fit time
    refit_hours: float = 24.0  # models are retrained on this grid (UTC-aligned)
    cold_start_points: int = 72  # points before a series gets its first model (robust baseline until then)
    warmup_points: int = 288  # evidence is scaled by the share of these points seen so far ...
    warmup_days: float = 1.0  # ... and by the share of this much time (a daily cycle seen once)
    min_points: int = 30  # fewest training points a model accepts
    range_units: float = 20.0  # novelty is measured in 1/range_units of the series' observed range
    surprise_scale: float = 10.0  # nats of tail surprise that count as full rarity

    def __post_init__(self) -> None:
        from sreops.detection import members

        if not members.is_known(self.member):
            raise SettingsError(
                f"detector member {self.member!r} is not one of {', '.join(members.names())}"
                " (or a '+'-joined ensemble of them)"
            )
        for name in ("context_points", "training_points", "cold_start_points", "warmup_points", "min_points"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise SettingsError(f"detector setting {name} counts points: a whole number, got {value!r}")
        for name in ("refit_hours", "range_units", "surprise_scale"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"detector setting {name} must be > 0, got {getattr(self, name)}")
        if self.context_minutes < 0:
            raise SettingsError("context_minutes must be >= 0")
        if self.context_points < 1 or self.training_points < self.min_points:
            raise SettingsError("context_points must be >= 1 and training_points >= min_points")
        if (
            self.cold_start_points < 0
            or self.warmup_points < 0
            or self.warmup_days < 0
            or self.min_points < 2
        ):
            raise SettingsError(
                "cold_start_points, warmup_points and warmup_days must be >= 0, min_points >= 2"
            )

    def context_for(self, interval_s: float | None) -> int:
        """Context points for a series sampled every `interval_s` seconds (None: unknown)."""
        if not interval_s or not np.isfinite(interval_s) or interval_s <= 0:
            return self.context_points
        return int(
            min(
                MAX_CONTEXT,
                max(self.context_points, np.ceil(self.context_minutes * 60.0 / interval_s - 1e-9)),
            )
        )

    def max_context(self, finest_interval_s: float = 60.0) -> int:
        """The most context points a model may use on data no finer than `finest_interval_s`."""
        return self.context_for(finest_interval_s)

    @property
    def refit_s(self) -> float:
        return self.refit_hours * 3600.0

    def confidence(self, points_seen: np.ndarray, age_s: np.ndarray) -> np.ndarray:
        """How much a series' evidence counts: the share of the warm-up seen, in points and in time (0–1).

        Few points say little about a distribution; a series younger than a day has not seen its
        daily cycle, and its first morning would be novel.
        """
        points_seen = np.asarray(points_seen, dtype=float)
        share = np.ones_like(points_seen)
        if self.warmup_points > 0:
            share = np.minimum(share, points_seen / self.warmup_points)
        if self.warmup_days > 0:
            share = np.minimum(share, np.asarray(age_s, dtype=float) / (self.warmup_days * DAY_S))
        return np.clip(share, 0.0, 1.0)

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

    @functools.cached_property
    def version(self) -> str:
        """`<member>-<8 hex>`: the name under which this configuration's scores and models are kept.

        Computed once per settings object (they are frozen): scoring asks for it per row block.
        """
        digest = hashlib.sha1(self.to_json().encode()).hexdigest()[:8]
        return f"{self.member.replace('+', '_')}-{digest}"

    def with_changes(self, **changes: Any) -> DetectorSettings:
        """A copy with some knobs changed (a candidate version)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise SettingsError(f"unknown detector settings {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **changes)


@dataclass(frozen=True)
class AlarmPolicy:
    """Thresholds over scores: what counts as an anomaly, and when an incident opens and resolves.

    The N-of-M rule and the quiet period count observed service-minutes (rows), so a service
    reporting every 5 minutes needs 15 quiet reports, not 15 minutes, and a minute that has not
    happened yet is never quiet.
    """

    threshold: float = 75.0  # is_anomaly and incident opening
    close_threshold: float = 50.0  # hysteresis: scores below this count as quiet
    open_minutes: int = 2  # N of M anomalous minutes open an incident
    window_minutes: int = 5  # M
    quiet_minutes: int = 15  # consecutive observed quiet minutes resolve it
    recovery_hours: float = 6.0  # a return to normal this soon after an incident is its recovery
    suppression_points: int = 72  # a series re-alarms within this many points only on a new high,
    suppression_hours: float = 6.0  # and within at least this much time of them

    def suppression_for(self, interval_s: float | None) -> int:
        """Suppression points for a series sampled every `interval_s` seconds (None: unknown)."""
        if not interval_s or not np.isfinite(interval_s) or interval_s <= 0:
            return self.suppression_points
        return int(max(self.suppression_points, np.ceil(self.suppression_hours * 3600.0 / interval_s - 1e-9)))

    def __post_init__(self) -> None:
        if not 0 <= self.close_threshold <= self.threshold <= 100:
            raise SettingsError("alarm policy needs 0 <= close_threshold <= threshold <= 100")
        if not 1 <= self.open_minutes <= self.window_minutes:
            raise SettingsError("alarm policy needs 1 <= open_minutes <= window_minutes")
        if self.quiet_minutes < self.window_minutes:
            raise SettingsError("alarm policy needs quiet_minutes >= window_minutes")
        if self.recovery_hours < 0:
            raise SettingsError("recovery_hours must be >= 0")
        if self.suppression_points < 0 or self.suppression_hours < 0:
            raise SettingsError("suppression_points and suppression_hours must be >= 0")


def from_config(detection_config: Any) -> tuple[DetectorSettings, AlarmPolicy]:
    """The settings and policy named by the config file's `detection` section."""
    settings = DetectorSettings(
        member=detection_config.member,
        context_points=detection_config.context_points,
        context_minutes=detection_config.context_minutes,
        training_points=detection_config.training_points,
        refit_hours=detection_config.refit_hours,
        cold_start_points=detection_config.cold_start_points,
        warmup_points=detection_config.warmup_points,
        warmup_days=detection_config.warmup_days,
    )
    policy = AlarmPolicy(
        threshold=detection_config.threshold,
        close_threshold=min(detection_config.close_threshold, detection_config.threshold),
        open_minutes=min(detection_config.open_minutes, detection_config.window_minutes),
        window_minutes=detection_config.window_minutes,
        quiet_minutes=max(detection_config.quiet_minutes, detection_config.window_minutes),
    )
    return settings, policy
