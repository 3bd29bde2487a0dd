"""Lifecycle rules that read more than the plan: registered on ``pilots``' steps at start-up
(``decisions.apps``), so ``pilots`` owns the steps and never imports what lies above it."""

from __future__ import annotations

from decisions.services.review import post_pilot_review_blockers
from pilots.models import PilotPlan


def post_pilot_review_completed(plan: PilotPlan) -> list[str]:
    """Closing a pilot needs its post-pilot review completed (what the team learnt)."""
    return post_pilot_review_blockers(plan)
