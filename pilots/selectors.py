"""Reads about pilot plans, always scoped to what the asking user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from pilots.models import PilotPlan


def plan_list_for_user(*, user: User) -> QuerySet[PilotPlan]:
    """Every plan of every team ``user`` belongs to (the portfolio's base query)."""
    return PilotPlan.objects.filter(team__memberships__user=user).select_related("team")
