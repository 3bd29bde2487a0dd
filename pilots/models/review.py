"""Review and sign-off, the lifecycle's record of transitions, and who contributed to what.

The Product Owner validates the business measures, the Scrum Master checks risks and readiness,
the team confirms feasibility (``pilots.review`` says which roles and sections). Each review
covers some sections; editing any of them voids that review's sign-off.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints
from pilots.models.plan import PilotPlan, audited


class ReviewKind(models.TextChoices):
    BUSINESS = "business", "Business (Product Owner)"
    READINESS = "readiness", "Readiness (Scrum Master)"
    FEASIBILITY = "feasibility", "Feasibility (team)"


@pghistory.track(*audited(), exclude=["version", "updated_at"])
class Review(models.Model):
    """A reviewer's working notes on their part of the plan, filled in before signing off."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="reviews")
    kind = models.CharField(max_length=12, choices=ReviewKind.choices)
    notes = models.TextField(blank=True)
    # {question key: "yes" | "no" | "na"}; the questions per review live in pilots/review.py.
    checklist = models.JSONField(default=dict, blank=True)
    # {question key: note}; a "no" needs one (services.review.review_update).
    checklist_notes = models.JSONField(default=dict, blank=True)
    concerns = models.TextField("open concerns", blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "kind"], name="pilots_review_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} review of {self.plan}"


@pghistory.track(*audited())
class SignOff(models.Model):
    """A named person approved their review at an exact plan version. Never deleted: a later edit
    to a covered section sets ``voided_at`` and says why, and the history stays readable."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="sign_offs")
    kind = models.CharField(max_length=12, choices=ReviewKind.choices)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sign_offs"
    )
    signed_at = models.DateTimeField(default=timezone.now)
    plan_version = models.PositiveIntegerField()
    # {section key: version} of every section this review covers, as approved.
    section_versions = models.JSONField(default=dict)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    voided_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-signed_at"]
        constraints = [
            # Two reviewers racing to sign the same review: the database lets one win. Its
            # partial index also serves the voiding UPDATE in section_claim.
            models.UniqueConstraint(
                fields=["plan", "kind"],
                condition=models.Q(voided_at__isnull=True),
                name="pilots_signoff_one_active_per_review",
            ),
        ]

    def __str__(self) -> str:
        state = "voided" if self.voided_at else "active"
        return f"{self.get_kind_display()} sign-off by {self.signed_by} ({state})"


class Contribution(models.Model):
    """``user`` edited ``section`` of ``plan`` during review round ``round``: what segregation of
    duties checks before someone signs off content they wrote."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="contributions")
    section = models.CharField(max_length=30)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    round = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "round", "section", "user"], name="pilots_contribution_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} edited {self.section} of {self.plan} (round {self.round})"


class PlanTransition(models.Model):
    """One lifecycle step: who moved the plan from which state to which, when and why."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=PilotPlan.Status.choices)
    to_status = models.CharField(max_length=20, choices=PilotPlan.Status.choices)
    # Empty for a step Pilotplan took by itself (the time-box ending at its last business day).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    # Submitted although plan health listed these gaps: the submitter's override (the reason is
    # ``reason``), shown to the reviewers.
    overridden_gaps = models.JSONField(default=list, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # Serves the plan timeline: a plan's transitions in order.
            models.Index(fields=["plan", "at"], name="pilots_transition_plan_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.plan}: {self.from_status} → {self.to_status}"


class TimeboxExtension(FieldConstraints):
    """An explicit change of a running pilot's end date, with who, when and why."""

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_timeboxextension_later": (
            "new_end_date",
            "The new end date must be after the old one.",
        ),
        "pilots_timeboxextension_reason_required": ("reason", "Say why the time-box is extended."),
    }

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="extensions")
    old_end_date = models.DateField()
    new_end_date = models.DateField()
    reason = models.TextField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(new_end_date__gt=models.F("old_end_date")),
                name="pilots_timeboxextension_later",
                violation_error_message="The new end date must be after the old one.",
            ),
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="pilots_timeboxextension_reason_required"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan}: {self.old_end_date} → {self.new_end_date}"
