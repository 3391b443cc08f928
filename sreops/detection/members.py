"""The registry of detector members: one line per member, imported only when one is created.

A member is a `StreamMember` (PyOD's `BaseDetector` plus streaming, `base.py`). The table maps a
name to its class by path, so validating settings or loading the code location never imports
PyOD. A '+'-joined name (`novelty+hbos`) is an ensemble of registered members (`ensemble.py`).
"""

from __future__ import annotations

import importlib

REGISTRY: dict[str, str] = {
    "novelty": "sreops.detection.novelty:NoveltyDetector",
    "baseline": "sreops.detection.baseline:RobustBaseline",
    "knn": "sreops.detection.pyod_members:KNNMember",
    "hbos": "sreops.detection.pyod_members:HBOSMember",
    "iforest": "sreops.detection.pyod_members:IForestMember",
    "lof": "sreops.detection.pyod_members:LOFMember",
    "ecod": "sreops.detection.pyod_members:ECODMember",
    "copod": "sreops.detection.pyod_members:COPODMember",
    "loda": "sreops.detection.pyod_members:LODAMember",
}
COLD_START = "baseline"  # scores a series until it has enough points for its first model


def names() -> list[str]:
    """Every registered member."""
    return list(REGISTRY)


def is_known(spec: str) -> bool:
    """A registered member, or a '+'-joined ensemble of them."""
    parts = spec.split("+") if isinstance(spec, str) else []
    return bool(parts) and all(part in REGISTRY for part in parts)


def member_class(name: str) -> type:
    """The class registered under `name`."""
    if name not in REGISTRY:
        raise KeyError(f"no detector member {name!r}; registered: {', '.join(REGISTRY)}")
    module, _, attribute = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def create(spec: str, exclusion: int = 2, surprise_scale: float = 10.0):  # noqa: ANN201 (a StreamMember)
    """A new, unfitted member for `spec` with the settings' exclusion zone and surprise scale."""
    parts = spec.split("+")
    if len(parts) > 1:
        from sreops.detection.ensemble import EnsembleMember

        return EnsembleMember(
            tuple(create(part, exclusion, surprise_scale) for part in parts), surprise_scale=surprise_scale
        )
    cls = member_class(spec)
    params = {"surprise_scale": surprise_scale}
    if "exclusion" in cls.__init__.__code__.co_varnames:
        params["exclusion"] = exclusion
    return cls(**params)
