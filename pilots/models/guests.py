"""Invited stakeholders: people outside a plan's team whom the team invites to read one plan.

A plan is visible to the members of its team, plus the stakeholders the team invites; nobody
else. A guest reads the plan like a team stakeholder does and changes nothing.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils import timezone

from pilots.models.plan import PilotPlan, audited


@pghistory.track(*audited())
class PlanGuest(models.Model):
    """``user`` may read ``plan`` (and only that plan of its team), invited by ``invited_by``."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="guests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="plan_invitations"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    invited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "invited_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "user"], name="pilots_planguest_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} invited to {self.plan}"


@pghistory.track(*audited())
class PlanInvitation(models.Model):
    """A pending invitation to read ``plan``, addressed to an e-mail address (which may or may not
    have an account). Nothing is visible to the invitee until they accept it, logged in with that
    address (pages ``/invitations/``); accepting turns it into a ``PlanGuest``."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)  # stored lower-case
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    invited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["invited_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "email"], name="pilots_planinvitation_once"),
        ]

    def __str__(self) -> str:
        return f"{self.email} invited to {self.plan}"
