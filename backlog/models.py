"""Product backlog items, cohort feedback, findings and change control.

The backlog is the team's, not a plan's: a pilot adds to it (a defect logged against the running
pilot, a failing criterion or a fired trigger turned into an item, a review finding) and a plan's
scope picks items from it by reference (``ScopeItem.reference``, e.g. US-145).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints


class Finding(models.Model):
    """Something learnt from a pilot, recorded in its time-boxed review."""

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="findings")
    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.text[:60]


class BacklogItem(FieldConstraints):
    """One item of a team's prioritised product backlog.

    ``position`` is the priority order, 1 at the top, dense and unique per team (checked at
    commit, so a move may shift rows within one statement). Every change of order or numbering
    runs under the team's backlog lock (``backlog.services``): concurrent moves queue instead of
    producing duplicate or lost positions.
    """

    class Kind(models.TextChoices):
        STORY = "story", "Story"
        DEFECT = "defect", "Defect"
        IMPROVEMENT = "improvement", "Improvement"
        SPIKE = "spike", "Spike"

    class Severity(models.TextChoices):
        P1 = "p1", "P1"
        P2 = "p2", "P2"
        P3 = "p3", "P3"
        P4 = "p4", "P4"

    class Status(models.TextChoices):
        NEW = "new", "New"
        READY = "ready", "Ready"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    class Origin(models.TextChoices):
        """Where the item came from: typed in, imported, or raised by a pilot."""

        MANUAL = "manual", "Added by hand"
        IMPORT = "import", "Imported"
        DEFECT = "defect", "Defect in a pilot"
        CRITERION = "criterion", "Exit criterion"
        TRIGGER = "trigger", "Rollback trigger"
        FEEDBACK = "feedback", "Cohort feedback"
        FINDING = "finding", "Review finding"

    # The prefix of generated references, per type: US-145, DE-146 …
    PREFIX = {Kind.STORY: "US", Kind.DEFECT: "DE", Kind.IMPROVEMENT: "IM", Kind.SPIKE: "SP"}

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="backlog")
    # The team's running number, from which generated references are made (never reused).
    number = models.PositiveIntegerField()
    reference = models.CharField(
        max_length=30, help_text="e.g. US-145; generated from the type when left empty."
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField("type", max_length=12, choices=Kind.choices, default=Kind.STORY)
    severity = models.CharField(
        max_length=2, choices=Severity.choices, blank=True, help_text="Defects only: P1 to P4."
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    position = models.PositiveIntegerField()
    estimate = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Story points, or leave empty."
    )
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    # What it came from (each optional): the pilot, and within it the criterion, the trigger or
    # the review finding. A deleted source leaves the item and forgets the link.
    plan = models.ForeignKey(
        "pilots.PilotPlan",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backlog_items",
    )
    criterion = models.ForeignKey(
        "pilots.ExitCriterion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    trigger = models.ForeignKey(
        "pilots.RollbackTrigger",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    finding = models.ForeignKey(
        Finding, on_delete=models.SET_NULL, null=True, blank=True, related_name="backlog_items"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Lost-update protection for edits: a save names the version it read (409 when stale).
    version = models.PositiveIntegerField(default=1)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "backlog_item_severity_for_defects": (
            "severity",
            "A defect needs a severity (P1 to P4); other types have none.",
        ),
        "backlog_item_reference_unique": ("reference", "Another item already has this reference."),
    }

    class Meta:
        ordering = ["team", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "reference"], name="backlog_item_reference_unique"
            ),
            models.UniqueConstraint(fields=["team", "number"], name="backlog_item_number_unique"),
            # Also the index of the backlog page's order (team, position).
            models.UniqueConstraint(
                fields=["team", "position"],
                name="backlog_item_position_unique",
                deferrable=models.Deferrable.DEFERRED,
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="defect", severity__in=["p1", "p2", "p3", "p4"])
                    | (~models.Q(kind="defect") & models.Q(severity=""))
                ),
                name="backlog_item_severity_for_defects",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def clean(self) -> None:
        # The severity rule in Python too, so a bulk import checks it without a query per row.
        if (self.kind == self.Kind.DEFECT) != bool(self.severity):
            field, message = self.CONSTRAINT_FIELDS["backlog_item_severity_for_defects"]
            raise ValidationError({field: message}, code="backlog_item_severity_for_defects")


class ChangeControlEntry(models.Model):
    """One line of a plan's change-control log: a backlog item created or re-prioritised
    because of the pilot, by whom, when and why, and what in the pilot it came from.

    Written only by ``backlog.change_control`` in the same transaction as the change itself, and
    never edited: the log is the record. The item may be deleted later; the entry keeps its
    reference and title as they were.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        REPRIORITISED = "reprioritised", "Re-prioritised"

    class Source(models.TextChoices):
        """What in the pilot the change came from (``BacklogItem.Origin``'s pilot words)."""

        CRITERION = "criterion", "Exit criterion"
        TRIGGER = "trigger", "Rollback trigger"
        DEFECT = "defect", "Defect in a pilot"
        FEEDBACK = "feedback", "Cohort feedback"
        FINDING = "finding", "Review finding"

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="change_control_entries"
    )
    item = models.ForeignKey(
        BacklogItem,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="change_control_entries",
    )
    reference = models.CharField(max_length=30)
    title = models.CharField(max_length=200)
    action = models.CharField(max_length=15, choices=Action.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The source row's id (criterion, trigger, finding, feedback), when there is one; and what it
    # said at the time, in words ("Errors as % of requests ≤ 0.5 %: not met").
    source_id = models.BigIntegerField(null=True, blank=True)
    source_words = models.CharField(max_length=300, blank=True)
    reason = models.TextField(blank=True)
    old_position = models.PositiveIntegerField(null=True, blank=True)
    new_position = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "-at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action="created")
                | (
                    models.Q(action="reprioritised")
                    & ~models.Q(reason__regex=r"^\s*$")
                    & models.Q(old_position__isnull=False, new_position__isnull=False)
                ),
                name="backlog_changecontrol_reprioritise_has_reason",
            ),
        ]
        indexes = [
            # The plan's change-control log, newest first.
            models.Index(fields=["plan", "-at"], name="backlog_changecontrol_plan_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.reference}"
