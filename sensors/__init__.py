"""Dagster sensors and schedules: landing files, alert delivery, run failures."""
