"""Signed outbound webhooks. (Contract; implemented by the alerts work.)"""

from __future__ import annotations

import datetime as dt


def deliveries_sweep(*, now: dt.datetime) -> None:
    """Queue undelivered webhook deliveries that are due for a (re)try."""


def webhook_deliver(*, delivery_id: int) -> None:
    """POST one delivery, signed; record the outcome."""
