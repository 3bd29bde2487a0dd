"""Reads about the metric catalogue."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from catalogue.models import MetricDefinition


def metric_list_for_team(*, team_id: int) -> QuerySet[MetricDefinition]:
    """The built-in catalogue plus the team's own metrics."""
    return MetricDefinition.objects.filter(Q(team__isnull=True) | Q(team_id=team_id))


def metric_is_available(*, metric_id: int, team_id: int) -> bool:
    return metric_list_for_team(team_id=team_id).filter(pk=metric_id).exists()


def metric_by_key(*, key: str, team_id: int) -> MetricDefinition | None:
    """The team's metric with ``key``, else the built-in one (the team's own wins)."""
    return (
        metric_list_for_team(team_id=team_id)
        .filter(key=key)
        .order_by(F("team_id").desc(nulls_last=True))
        .first()
    )
