"""Forecasting migrations (300–399): Prophet fit metadata, hourly forecasts, scaling advice."""

from __future__ import annotations

from sreops.migrations.base import Migration

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
