"""Alerting: incidents from the `alerts` outbox become Slack messages (threads, charts, buttons, digests).

Producers write incidents with :mod:`sreops.alerting.outbox`; :mod:`sreops.alerting.delivery`
posts them; :mod:`sreops.alerting.feedback` turns button presses into labels that detection uses.
"""
