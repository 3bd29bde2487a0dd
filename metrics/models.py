"""Metric definitions, samples, rollups, check runs and triggers grow here (ARCHITECTURE.md)."""

from __future__ import annotations

from django.db import models

# The heartbeat written by beat's one-minute tick.
TICK = "tick"


class Heartbeat(models.Model):
    """The last time a periodic process proved it was alive; one row per process name.

    Beat's one-minute ``tick`` task writes it; ``/healthz`` reports its age. One row per name
    (upserted) rather than one row per beat, so the table never grows.
    """

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
