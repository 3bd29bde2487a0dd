"""Writes about metrics and scheduling."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from metrics.models import TICK, Heartbeat


def heartbeat_record(*, name: str = TICK, at: datetime | None = None) -> Heartbeat:
    """Record that ``name`` ran at ``at`` (now by default). Safe to call concurrently."""
    at = at or timezone.now()
    beats = Heartbeat.objects.filter(name=name)
    if not beats.update(beat_at=at, beats=F("beats") + 1):
        # No row yet. If another process inserts it between our UPDATE and INSERT, get_or_create
        # waits for it, finds it, and we count our beat on top instead of overwriting theirs.
        _beat, created = Heartbeat.objects.get_or_create(
            name=name, defaults={"beat_at": at, "beats": 1}
        )
        if not created:
            beats.update(beat_at=at, beats=F("beats") + 1)
    return Heartbeat.objects.get(name=name)
