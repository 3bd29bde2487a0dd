"""Writes about the metric catalogue."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from accounts.models import Team, User
from accounts.permissions import Perm, require, role_in_team
from catalogue.models import MetricDefinition

# A new metric's expected interval when none is given: per-minute gauges every 5 minutes, counts
# hourly, scores (surveys) daily.
DEFAULT_INTERVAL_MINUTES = {
    MetricDefinition.Kind.GAUGE: 5,
    MetricDefinition.Kind.COUNT: 60,
    MetricDefinition.Kind.SCORE: 1440,
}


@transaction.atomic
def metric_create(
    *,
    team: Team,
    user: User,
    key: str,
    name: str,
    unit: str,
    kind: str,
    direction: str,
    description: str = "",
    expected_interval_minutes: int | None = None,
) -> MetricDefinition:
    """Add a metric to ``team``'s catalogue. Its key may not repeat a built-in or team key, so
    integrations pushing samples by key always mean one metric."""
    require(role_in_team(user=user, team_id=team.pk), Perm.CATALOGUE_EDIT)
    metric = MetricDefinition(
        team=team,
        key=key.strip().lower(),
        name=name.strip(),
        unit=unit.strip(),
        kind=kind,
        direction=direction,
        description=description,
        expected_interval_minutes=expected_interval_minutes
        or DEFAULT_INTERVAL_MINUTES.get(kind, 60),
    )
    taken = MetricDefinition.objects.filter(key=metric.key).filter(
        Q(team__isnull=True) | Q(team=team)
    )
    if taken.exists():  # before full_clean, whose unique check would not name the field
        raise ValidationError({"key": f"“{metric.key}” is already a metric of this team."})
    metric.full_clean()
    metric.save()
    return metric
