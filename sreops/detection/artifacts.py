"""Where trained models live: artefact files under the data directory (their registry rows are in
`detection.store`).

A model is identified by (version, service, metric, trained_until). The store has two methods
(`save_model`, `load_model`), as Drain3's persistence does; `MemoryModelStore` is the test fake
and `FileModelStore` the real one (`.npz` files under `$SREOPS_HOME/models/detection/`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sreops import names, paths
from sreops.detection.models import ModelError, SeriesModel

ModelKey = tuple[str, str, str, dt.datetime]  # version, service, metric, trained_until (naive UTC)


def model_id(key: ModelKey) -> str:
    """A stable id for a model key (the registry's primary key)."""
    version, service, metric, until = key
    return hashlib.sha1(f"{version}|{service}|{metric}|{until.isoformat()}".encode()).hexdigest()[:20]


def _safe(name: str) -> str:
    return names.path_component(name)


@dataclass
class MemoryModelStore:
    """Models in a dict: the test fake, and a cache for one process."""

    models: dict[ModelKey, SeriesModel] = field(default_factory=dict)

    def save_model(self, key: ModelKey, model: SeriesModel) -> str:
        self.models[key] = model
        return f"memory:{model_id(key)}"

    def load_model(self, key: ModelKey) -> SeriesModel | None:
        return self.models.get(key)


@dataclass
class FileModelStore:
    """Models as `.npz` files under `root` (default `$SREOPS_HOME/models/detection`), cached in memory."""

    root: Path = field(default_factory=lambda: paths.models_dir() / "detection")
    cache: dict[ModelKey, SeriesModel] = field(default_factory=dict)

    def path(self, key: ModelKey) -> Path:
        version, service, metric, until = key
        folder = names.inside(self.root, _safe(version), _safe(service), _safe(metric))
        return folder / f"{until:%Y%m%dT%H%M%S}.npz"

    def save_model(self, key: ModelKey, model: SeriesModel) -> str:
        target = self.path(key)
        model.save(target)
        self.cache[key] = model
        return str(target)

    def load_model(self, key: ModelKey) -> SeriesModel | None:
        if key in self.cache:
            return self.cache[key]
        target = self.path(key)
        if not target.exists():
            return None
        try:
            model = SeriesModel.load(target)
        except ModelError:
            return None  # unreadable artefact: retrained by the caller
        self.cache[key] = model
        return model

    def forget_before(self, moment: dt.datetime) -> None:
        """Drop cached models fitted before `moment` (they stay on file): a long range keeps memory flat."""
        self.cache = {key: model for key, model in self.cache.items() if key[3] >= moment}
