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

# Detection (100–199): per series-minute and service-minute scores, detector versions, the
# model registry, version comparisons, and deploy/maintenance events.
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

# Stages append their tuples here (detection 100–199, alerting 200–299, forecasting 300–399,
# logs 400–499).
ALERTING = (
    Migration(
        200,
        "alert feedback, delivery log, delivery state",
        (
            # One row per button press (acknowledge, snooze, not an anomaly); feedback_id is
            # derived from Slack's action so a retried request lands once.
            """CREATE TABLE alert_feedback (
                feedback_id VARCHAR PRIMARY KEY,
                alert_id VARCHAR NOT NULL,
                fingerprint VARCHAR,
                kind VARCHAR,
                service VARCHAR,
                detector VARCHAR,
                action VARCHAR NOT NULL,
                user_id VARCHAR,
                user_name VARCHAR,
                created_at TIMESTAMP NOT NULL,
                snooze_until TIMESTAMP,
                first_minute TIMESTAMP,
                last_minute TIMESTAMP,
                pattern VARCHAR,
                source VARCHAR NOT NULL
            )""",
            # Every Slack call made (or withheld) for an alert revision: intents are written before
            # a call, so a crash between posting and recording is reconciled instead of re-posted.
            "CREATE SEQUENCE IF NOT EXISTS alert_deliveries_seq START 1",
            """CREATE TABLE alert_deliveries (
                delivery_id BIGINT PRIMARY KEY,
                alert_id VARCHAR NOT NULL,
                revision INTEGER NOT NULL,
                step VARCHAR NOT NULL,
                step_key VARCHAR NOT NULL,
                channel VARCHAR,
                thread_ts VARCHAR,
                message_ts VARCHAR,
                state VARCHAR NOT NULL,
                note VARCHAR,
                snapshot VARCHAR,
                attempted_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE alert_delivery_state (
                key VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
        ),
    ),
)

# Logs (400–499): lines read from landing/logs, their clusters, per-minute counts, and caches.
LOGS = (
    Migration(
        401,
        "log lines, file offsets, clusters, minute counts, embedding cache",
        (
            "CREATE SEQUENCE IF NOT EXISTS log_lines_seq START 1",
            # One row per log record (a first line and its continuation lines); cluster_id is
            # filled in by clustering, which runs apart from ingestion.
            """CREATE TABLE log_lines (
                line_id BIGINT NOT NULL,
                ts TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                source_file VARCHAR NOT NULL,
                line_no BIGINT NOT NULL,
                message VARCHAR NOT NULL,
                level VARCHAR,
                cluster_id VARCHAR,
                byte_offset BIGINT NOT NULL,
                ingested_at TIMESTAMP NOT NULL
            )""",
            # Where reading stopped in each file, by file identity (device, inode) so a rotated
            # file keeps its place; fingerprint = hash of the first bytes, to spot a reused inode.
            """CREATE TABLE log_offsets (
                service VARCHAR NOT NULL,
                path VARCHAR NOT NULL,
                device BIGINT NOT NULL,
                inode BIGINT NOT NULL,
                fingerprint VARCHAR NOT NULL,
                fingerprint_bytes INTEGER NOT NULL,
                byte_offset BIGINT NOT NULL,
                line_no BIGINT NOT NULL,
                header VARCHAR,
                updated_at TIMESTAMP NOT NULL
            )""",
            # Cluster state and description; tokens (JSON) is the clusterer's template, merged
            # clusters stay with merged_into set so old ids still resolve.
            """CREATE TABLE log_clusters (
                cluster_id VARCHAR NOT NULL,
                service VARCHAR NOT NULL,
                template VARCHAR NOT NULL,
                size BIGINT NOT NULL,
                first_seen TIMESTAMP,
                last_seen TIMESTAMP,
                max_level VARCHAR,
                example VARCHAR,
                merged_into VARCHAR,
                similar_cluster_id VARCHAR,
                similarity DOUBLE,
                seq BIGINT NOT NULL,
                origin VARCHAR NOT NULL,
                tokens VARCHAR NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE log_cluster_counts_1m (
                minute TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                cluster_id VARCHAR NOT NULL,
                count BIGINT NOT NULL
            )""",
            # Sentence embeddings of masked texts, so a text embedded once is never embedded again.
            """CREATE TABLE log_embeddings (
                text_hash VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                text VARCHAR NOT NULL,
                vector FLOAT[] NOT NULL,
                created_at TIMESTAMP NOT NULL
            )""",
            # Bumped by every clustering run of a service: a run that finds it moved lost a race.
            """CREATE TABLE log_cluster_state (
                service VARCHAR NOT NULL,
                version BIGINT NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )""",
        ),
    ),
)

# Forecasting (300–399): Prophet fit metadata, hourly forecasts, scaling advice.
FORECASTING = (
    Migration(
        300,
        "forecast fits, forecasts, scaling recommendations",
        (
            # One row per Prophet fit of a (service, metric) series; params (JSON) warm-start the
            # next fit, model_path is the serialized model under $SREOPS_HOME/models/forecasting.
            """CREATE TABLE forecast_fits (
                fit_id VARCHAR PRIMARY KEY,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                fitted_at TIMESTAMP NOT NULL,
                training_hours INTEGER NOT NULL,
                scale DOUBLE NOT NULL,
                params VARCHAR NOT NULL,
                warm_started BOOLEAN NOT NULL,
                fit_seconds DOUBLE NOT NULL,
                mase DOUBLE,
                settings VARCHAR NOT NULL,
                model_path VARCHAR,
                created_at TIMESTAMP NOT NULL
            )""",
            # Hourly peak forecasts. Rows with in_sample = true are the fit's values over its
            # training hours (kept for the latest fit only: the policy calibrates on them).
            """CREATE TABLE forecasts (
                ts TIMESTAMP NOT NULL,
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                yhat DOUBLE NOT NULL,
                yhat_lower DOUBLE NOT NULL,
                yhat_upper DOUBLE NOT NULL,
                generated_at TIMESTAMP NOT NULL,
                fit_id VARCHAR NOT NULL,
                in_sample BOOLEAN NOT NULL,
                statistic VARCHAR NOT NULL
            )""",
            # One row per (service, window_start): the latest advice for that hour.
            """CREATE TABLE scaling_recommendations (
                service VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                recommended_replicas INTEGER NOT NULL,
                forecast_peak DOUBLE NOT NULL,
                upper_peak DOUBLE NOT NULL,
                current_load DOUBLE,
                capacity_per_replica DOUBLE NOT NULL,
                capacity_source VARCHAR NOT NULL,
                min_replicas INTEGER NOT NULL,
                max_replicas INTEGER NOT NULL,
                reason VARCHAR NOT NULL,
                mode VARCHAR NOT NULL,
                fit_id VARCHAR NOT NULL,
                generated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (service, window_start)
            )""",
        ),
    ),
)

MIGRATIONS: tuple[Migration, ...] = FOUNDATION + DETECTION + ALERTING + LOGS + FORECASTING
