"""Alerts: rules over the market state, their events, and the notifications that deliver them.

The rules themselves are data (:mod:`perpscope.domain.alert_rules`, parsed with the
configuration); :mod:`~perpscope.alerts.metrics` computes the market state they read,
:mod:`~perpscope.alerts.engine` detects edges and applies cooldowns, and
:mod:`~perpscope.alerts.notify` delivers through apprise with retries.
"""
