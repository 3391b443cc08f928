"""Feedback from the alert buttons: `labels` (pure: presses, patterns), `store` (`alert_feedback`), `spool`.

Other stages read feedback through this package, never through `store`: detection keeps the
windows people labelled "not an anomaly" out of training with :func:`suppressed_windows`.
"""

from sreops.alerting.feedback.store import suppressed_windows

__all__ = ["suppressed_windows"]
