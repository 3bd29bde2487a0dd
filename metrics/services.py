"""Writes about metrics and scheduling."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from metrics.models import TICK, Heartbeat


def heartbeat_record(*, name: str = TICK, at: datetime | None = None) -> Heartbeat:
    """Record that ``name`` ran at ``at`` (now by default). Safe to call concurrently."""
    at = at or timezone.now()
    updated = Heartbeat.objects.filter(name=name).update(beat_at=at, beats=F("beats") + 1)
    if not updated:
        Heartbeat.objects.bulk_create(
            [Heartbeat(name=name, beat_at=at, beats=1)],
            update_conflicts=True,
            unique_fields=["name"],
            update_fields=["beat_at"],
        )
    return Heartbeat.objects.get(name=name)
