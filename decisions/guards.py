"""Lifecycle rules that read more than the plan: registered on ``pilots``' steps at start-up
(``decisions.apps``), so ``pilots`` owns the steps and never imports what lies above it."""

from __future__ import annotations

from backlog.selectors import finding_count
from pilots.models import PilotPlan


def findings_recorded(plan: PilotPlan) -> list[str]:
    """Closing a pilot needs its review's findings (what the team learnt) on record."""
    if finding_count(plan_id=plan.pk):
        return []
    return ["Record the pilot review's findings before closing it."]
