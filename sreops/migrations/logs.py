"""Logs migrations (400–499): lines read from landing/logs, their clusters, per-minute counts, and caches."""

from __future__ import annotations

from sreops.migrations.base import Migration

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
