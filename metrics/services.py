"""Writes about metrics and scheduling."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Team
from metrics.models import TICK, Heartbeat, MetricDefinition


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


@transaction.atomic
def metric_create(
    *,
    team: Team,
    key: str,
    name: str,
    unit: str,
    kind: str,
    direction: str,
    description: str = "",
) -> MetricDefinition:
    """Add a metric to ``team``'s catalogue. Its key may not repeat a built-in or team key, so
    integrations pushing samples by key always mean one metric."""
    metric = MetricDefinition(
        team=team,
        key=key.strip().lower(),
        name=name.strip(),
        unit=unit.strip(),
        kind=kind,
        direction=direction,
        description=description,
    )
    taken = MetricDefinition.objects.filter(key=metric.key).filter(
        Q(team__isnull=True) | Q(team=team)
    )
    if taken.exists():  # before full_clean, whose unique check would not name the field
        raise ValidationError({"key": f"“{metric.key}” is already a metric of this team."})
    metric.full_clean()
    metric.save()
    return metric
