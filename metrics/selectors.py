"""Reads about metrics and scheduling."""

from __future__ import annotations

from datetime import datetime

from metrics.models import TICK, Heartbeat


def heartbeat_last(*, name: str = TICK) -> datetime | None:
    """When ``name`` last beat, or None if it never has."""
    return Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()
