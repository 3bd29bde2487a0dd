"""The rollback checklist: a run of the plan's rollback runbook, step by step.

A ``RollbackRun`` starts from a Roll back decision (``decision``) or, before the decision, as an
emergency rollback from a fired trigger episode (``episode``); a Roll back decision recorded
later links to that emergency run instead of starting another. The decision record itself is
immutable, so the link lives here. At most one run per plan is open (``ended_at`` null): a
partial unique index.

Each ``RollbackStepRun`` copies its step's action, owner and expected minutes when the run
starts, so the checklist stays true after the plan's runbook is edited; the last one is the
verification step ("Verify the triggering metric recovered"). The database insists that a
skipped step has a reason, a failed one a note, and a marked one who and when.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints

STEP_STATUSES = ["pending", "done", "skipped", "failed"]
STEP_KINDS = ["step", "verification"]
_BLANK = r"^\s*$"


class RollbackRun(FieldConstraints):
    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="rollback_runs"
    )
    decision = models.ForeignKey(
        "decisions.DecisionRecord",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rollback_runs",
        help_text="The Roll back decision this run carries out (linked later for an emergency).",
    )
    emergency = models.BooleanField(
        default=False, help_text="Started from a fired trigger before the decision."
    )
    episode = models.ForeignKey(
        "metrics.TriggerEpisode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The trigger episode that called for it (an emergency rollback).",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    communication_plan = models.TextField(
        blank=True, help_text="The plan's communication plan as it read when the run started."
    )
    version = models.PositiveIntegerField(default=1)

    CONSTRAINT_FIELDS = {
        "decisions_rollbackrun_ended_with_who": (
            "ended_by",
            "An ended rollback records who ended it and when.",
        ),
    }

    class Meta:
        ordering = ["plan", "-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan"],
                condition=models.Q(ended_at__isnull=True),
                name="decisions_rollbackrun_one_open_per_plan",
                violation_error_message="This plan already has a rollback in progress.",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True, ended_by__isnull=True)
                | models.Q(ended_at__isnull=False, ended_by__isnull=False),
                name="decisions_rollbackrun_ended_with_who",
            ),
        ]

    def __str__(self) -> str:
        kind = "Emergency rollback" if self.emergency else "Rollback"
        return f"{kind} of {self.plan} ({self.started_at:%Y-%m-%d %H:%M})"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class RollbackStepRun(FieldConstraints):
    class Kind(models.TextChoices):
        STEP = "step", "Step"
        VERIFICATION = "verification", "Verification"

    class Status(models.TextChoices):
        PENDING = "pending", "Not done yet"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(RollbackRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.STEP)
    # Copied from pilots.RollbackStep when the run starts.
    action = models.TextField()
    owner_name = models.CharField(max_length=200, blank=True)
    expected_minutes = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The reason (skipped), what went wrong (failed), or why a mark was undone (pending).
    note = models.TextField(blank=True)
    # Who marked the step and when (for a step set back to pending: who did that).
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    CONSTRAINT_FIELDS = {
        "decisions_rollbackstep_status_valid": (
            "status",
            "A step is not done yet, done, skipped or failed.",
        ),
        "decisions_rollbackstep_kind_valid": ("kind", "A step is a step or the verification."),
        "decisions_rollbackstep_skipped_needs_reason": (
            "note",
            "Say why the step is skipped.",
        ),
        "decisions_rollbackstep_failed_needs_note": ("note", "Say what went wrong."),
        "decisions_rollbackstep_marked_needs_who": (
            "done_by",
            "A marked step records who marked it and when.",
        ),
    }

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "position"], name="decisions_rollbackstep_position_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=STEP_STATUSES),
                name="decisions_rollbackstep_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=STEP_KINDS), name="decisions_rollbackstep_kind_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="skipped") | ~models.Q(note__regex=_BLANK),
                name="decisions_rollbackstep_skipped_needs_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="failed") | ~models.Q(note__regex=_BLANK),
                name="decisions_rollbackstep_failed_needs_note",
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending")
                | models.Q(done_by__isnull=False, done_at__isnull=False),
                name="decisions_rollbackstep_marked_needs_who",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.action[:60]} ({self.status})"

    @property
    def is_verification(self) -> bool:
        return self.kind == self.Kind.VERIFICATION
