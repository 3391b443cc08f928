"""Foundation migrations (1–99): samples, ingested files, partition marks and builds, features, the alerts outbox."""

from __future__ import annotations

from sreops.migrations.base import Migration

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
    Migration(
        4,
        "samples split into a lean core table and an extras table behind the metric_samples view",
        (
            # Most files carry only timestamp, service, metric, value: their rows go to the core
            # table (the source is the file's, in ingested_files). Rows with labels, or written
            # without a file, go to the extras table. Readers use the metric_samples view.
            """CREATE TABLE metric_samples_core (
                ts TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                value DOUBLE NOT NULL,
                file_id BIGINT NOT NULL
            )""",
            """CREATE TABLE metric_samples_extra (
                ts TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                value DOUBLE NOT NULL,
                file_id BIGINT,
                source VARCHAR,
                labels VARCHAR
            )""",
            """UPDATE ingested_files SET source = coalesce(source, (
                SELECT any_value(s.source) FROM metric_samples AS s WHERE s.file_id = ingested_files.file_id))""",
            """CREATE TEMP TABLE samples_in_core AS
               SELECT s.rowid AS rid FROM metric_samples AS s JOIN ingested_files AS f ON f.file_id = s.file_id
               WHERE s.labels IS NULL AND s.source = f.source""",
            """INSERT INTO metric_samples_core
               SELECT ts, service, metric, value, file_id FROM metric_samples WHERE rowid IN (SELECT rid FROM samples_in_core)""",
            """INSERT INTO metric_samples_extra
               SELECT ts, service, metric, value, file_id, source, labels FROM metric_samples
               WHERE rowid NOT IN (SELECT rid FROM samples_in_core)""",
            "DROP TABLE samples_in_core",
            "DROP TABLE metric_samples",
            """CREATE VIEW metric_sample_values AS
               SELECT ts, service, metric, value, file_id FROM metric_samples_core
               UNION ALL SELECT ts, service, metric, value, file_id FROM metric_samples_extra""",
            """CREATE VIEW metric_samples AS
               SELECT c.ts, c.service, c.metric, c.value, f.source, c.file_id, CAST(NULL AS VARCHAR) AS labels
               FROM metric_samples_core AS c LEFT JOIN ingested_files AS f ON f.file_id = c.file_id
               UNION ALL
               SELECT e.ts, e.service, e.metric, e.value, coalesce(e.source, f.source), e.file_id, e.labels
               FROM metric_samples_extra AS e LEFT JOIN ingested_files AS f ON f.file_id = e.file_id""",
        ),
    ),
)
