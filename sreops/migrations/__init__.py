"""Numbered schema migrations of the warehouse, applied in order by `sreops.warehouse`.

A migration is never edited once released: schema changes are new entries. Each stage owns a
range of version numbers, and a module here, so that stages can evolve independently:
1–99 `foundation` (samples, files, features, alerts outbox), 100–199 `detection`,
200–299 `alerting`, 300–399 `forecasting`, 400–499 `logs`. `runner` applies them.
"""

from __future__ import annotations

from sreops.migrations.alerting import ALERTING
from sreops.migrations.base import Migration
from sreops.migrations.detection import DETECTION
from sreops.migrations.forecasting import FORECASTING
from sreops.migrations.foundation import FOUNDATION
from sreops.migrations.logs import LOGS

MIGRATIONS: tuple[Migration, ...] = FOUNDATION + DETECTION + ALERTING + LOGS + FORECASTING
