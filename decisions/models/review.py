"""The post-pilot review: what the team learnt, written after the decision, before closing.

One per plan, opened when the decision is recorded (``decisions.services.review``) and due a few
business days later (``POST_PILOT_REVIEW_DAYS``). Its three parts are edited by the team's writers
with a compare-and-set on ``version``; the Product Owner or Scrum Master completes it, and only a
completed review lets the pilot close (``decisions.guards``). Audited like the plan's records.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints
from pilots.models.plan import audited

# The three parts, in the order the page shows them: (field, label, what a missing one is called).
PARTS = (
    ("findings", "Findings", "the findings"),
    ("went_well", "What went well", "what went well"),
    ("to_improve", "What to improve", "what to improve"),
)
PART_MAX_LENGTH = 10_000

_BLANK = r"^\s*$"


@pghistory.track(
    *audited(), exclude=["version", "updated_at", "reminded_at", "overdue_reminded_at"]
)
class PostPilotReview(FieldConstraints):
    plan = models.OneToOneField(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="post_pilot_review"
    )
    # The last business day to complete it, in the plan's zone.
    due_on = models.DateField()
    findings = models.TextField(blank=True)
    went_well = models.TextField("what went well", blank=True)
    to_improve = models.TextField("what to improve", blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    # Set by the conditional UPDATE that claims each reminder (one business day before the due
    # date, and once when overdue), so two workers never send the same one twice.
    reminded_at = models.DateTimeField(null=True, blank=True)
    overdue_reminded_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    CONSTRAINT_FIELDS = {
        "decisions_postpilotreview_completed_by_whom": (
            "completed_by",
            "A completed review names who completed it, and when.",
        ),
        "decisions_postpilotreview_completed_written": (
            "findings",
            "A completed review has all three parts written.",
        ),
    }

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(completed_at__isnull=True, completed_by__isnull=True)
                | models.Q(completed_at__isnull=False, completed_by__isnull=False),
                name="decisions_postpilotreview_completed_by_whom",
            ),
            models.CheckConstraint(
                condition=models.Q(completed_at__isnull=True)
                | (
                    ~models.Q(findings__regex=_BLANK)
                    & ~models.Q(went_well__regex=_BLANK)
                    & ~models.Q(to_improve__regex=_BLANK)
                ),
                name="decisions_postpilotreview_completed_written",
            ),
        ]
        indexes = [
            # Serves post_pilot_reviews_remind: the open reviews still owing a reminder.
            models.Index(
                fields=["due_on"],
                name="decisions_review_open_due_idx",
                condition=models.Q(completed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Post-pilot review of {self.plan}"

    @property
    def is_completed(self) -> bool:
        return self.completed_at is not None

    @property
    def parts_written(self) -> int:
        return sum(1 for field, _label, _words in PARTS if getattr(self, field).strip())

    @property
    def parts_total(self) -> int:
        return len(PARTS)
