"""sreops: the domain library of the SRE operations platform (Dagster-free)."""

__version__ = "0.1.0"
