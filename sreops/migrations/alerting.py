"""Alerting migrations (200–299): alert feedback, the delivery log and delivery state."""

from __future__ import annotations

from sreops.migrations.base import Migration

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
