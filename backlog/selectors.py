"""Reads about the backlog."""

from __future__ import annotations

from backlog.models import Finding


def finding_count(*, plan_id: int) -> int:
    return Finding.objects.filter(plan_id=plan_id).count()
