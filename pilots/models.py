"""The pilot plan. Its sections, review and lifecycle grow here (see PRODUCT.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team


class PilotPlan(models.Model):
    """A limited, time-boxed release of an increment to a small cohort, and the plan for it."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        RUNNING = "running", "Running"
        EVALUATING = "evaluating", "Evaluating"
        DECIDED = "decided", "Decided"
        CLOSED = "closed", "Closed"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="plans")
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Lost-update protection: every write compares and bumps it (ARCHITECTURE.md).
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=[
                        "draft", "in_review", "approved", "running",
                        "evaluating", "decided", "closed",
                    ]
                ),
                name="pilots_pilotplan_status_valid",
            ),
        ]
        indexes = [
            # Serves plan_list_for_user: a team's plans, most recently changed first.
            models.Index(fields=["team", "-updated_at"], name="pilots_plan_team_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.title
