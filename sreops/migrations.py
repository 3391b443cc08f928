"""Numbered schema migrations of the warehouse, applied in order by `sreops.warehouse`.

A migration is never edited once released: schema changes are new entries. Each stage owns a
range of version numbers so that stages can evolve independently:
1–99 foundation (samples, files, features, alerts outbox), 100–199 detection,
200–299 alerting, 300–399 forecasting, 400–499 logs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, a short name, and the statements it runs."""

    version: int
    name: str
    statements: tuple[str, ...]


FOUNDATION = (
    Migration(
        1,
        "metric samples, ingested files, minute features",
        (
            "CREATE SEQUENCE IF NOT EXISTS ingested_files_seq START 1",
            """CREATE TABLE ingested_files (
                file_id BIGINT PRIMARY KEY,
                path VARCHAR NOT NULL,
                sha256 VARCHAR NOT NULL,
                size_bytes BIGINT NOT NULL,
                rows BIGINT,
                status VARCHAR NOT NULL,
                error VARCHAR,
                ingested_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE metric_samples (
                ts TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                value DOUBLE NOT NULL,
                source VARCHAR NOT NULL,
                file_id BIGINT
            )""",
            """CREATE TABLE metric_features_1m (
                minute TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                n BIGINT NOT NULL,
                mean DOUBLE,
                min DOUBLE,
                max DOUBLE,
                std DOUBLE,
                last DOUBLE
            )""",
        ),
    ),
    Migration(
        2,
        "labels, file time range, partition marks, richer features",
        (
            "ALTER TABLE metric_samples ADD COLUMN labels VARCHAR",
            "ALTER TABLE ingested_files ADD COLUMN min_ts TIMESTAMP",
            "ALTER TABLE ingested_files ADD COLUMN max_ts TIMESTAMP",
            "ALTER TABLE ingested_files ADD COLUMN source VARCHAR",
            "ALTER TABLE metric_features_1m ADD COLUMN first DOUBLE",
            "ALTER TABLE metric_features_1m ADD COLUMN sum DOUBLE",
            "ALTER TABLE metric_features_1m ADD COLUMN delta DOUBLE",
            "ALTER TABLE metric_features_1m ADD COLUMN rate DOUBLE",
            "ALTER TABLE metric_features_1m ADD COLUMN gap_minutes INTEGER",
            "CREATE SEQUENCE IF NOT EXISTS partition_marks_seq START 1",
            """CREATE TABLE partition_marks (
                mark_id BIGINT PRIMARY KEY,
                asset VARCHAR NOT NULL,
                hour TIMESTAMP NOT NULL,
                reason VARCHAR NOT NULL,
                file_id BIGINT,
                created_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE partition_builds (
                asset VARCHAR NOT NULL,
                hour TIMESTAMP NOT NULL,
                rows BIGINT NOT NULL,
                samples BIGINT NOT NULL,
                built_at TIMESTAMP NOT NULL,
                PRIMARY KEY (asset, hour)
            )""",
        ),
    ),
    Migration(
        3,
        "alerts outbox",
        (
            # Detection (and other producers) insert and update incidents here; alert delivery
            # posts every row whose revision is newer than delivered_revision.
            """CREATE TABLE alerts (
                alert_id VARCHAR PRIMARY KEY,
                fingerprint VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                service VARCHAR,
                severity VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                opened_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                resolved_at TIMESTAMP,
                summary VARCHAR NOT NULL,
                details VARCHAR,
                score DOUBLE,
                slack_channel VARCHAR,
                slack_ts VARCHAR,
                delivery_status VARCHAR NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error VARCHAR,
                next_attempt_at TIMESTAMP,
                revision INTEGER NOT NULL DEFAULT 1,
                delivered_revision INTEGER NOT NULL DEFAULT 0
            )""",
        ),
    ),
)

# Stages append their tuples here (detection 100–199, alerting 200–299, forecasting 300–399,
# logs 400–499).
MIGRATIONS: tuple[Migration, ...] = FOUNDATION
