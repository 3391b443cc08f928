"""Detection migrations (100–199): scores, detector versions, model registry, comparisons, events.

Scores per series-minute and per service-minute; deploy and maintenance events.
"""

from __future__ import annotations

from sreops.migrations.base import Migration

DETECTION = (
    Migration(
        100,
        "anomalies, detector versions, model registry, comparisons, events",
        (
            # One row per scored entity-minute and detector version; metric '*' is the service-level
            # score (which series drove it is in `explanation`).
            """CREATE TABLE anomalies (
                minute TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                detector VARCHAR NOT NULL,
                version VARCHAR NOT NULL,
                score DOUBLE NOT NULL,
                is_anomaly BOOLEAN NOT NULL,
                severity VARCHAR NOT NULL,
                value DOUBLE,
                expected_low DOUBLE,
                expected_high DOUBLE,
                novelty DOUBLE,
                explanation VARCHAR,
                event VARCHAR,
                model_id VARCHAR,
                scored_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE detector_versions (
                version VARCHAR PRIMARY KEY,
                settings VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                promoted_at TIMESTAMP,
                note VARCHAR
            )""",
            """CREATE TABLE detector_models (
                model_id VARCHAR PRIMARY KEY,
                version VARCHAR NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                trained_until TIMESTAMP NOT NULL,
                train_start TIMESTAMP,
                points BIGINT NOT NULL,
                kind VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                trained_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE detector_comparisons (
                candidate VARCHAR NOT NULL,
                baseline VARCHAR NOT NULL,
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                matched INTEGER NOT NULL,
                lost INTEGER NOT NULL,
                new INTEGER NOT NULL,
                details VARCHAR,
                compared_at TIMESTAMP NOT NULL
            )""",
            "CREATE SEQUENCE IF NOT EXISTS events_seq START 1",
            """CREATE TABLE events (
                event_id BIGINT PRIMARY KEY DEFAULT nextval('events_seq'),
                kind VARCHAR NOT NULL,
                service VARCHAR,
                starts_at TIMESTAMP NOT NULL,
                ends_at TIMESTAMP NOT NULL,
                note VARCHAR,
                source VARCHAR NOT NULL DEFAULT 'api',
                created_at TIMESTAMP NOT NULL
            )""",
        ),
    ),
)
