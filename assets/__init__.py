"""Dagster assets: thin adapters from the warehouse tables to the `sreops` library."""
