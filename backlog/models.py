"""Product backlog items, cohort feedback, findings and change control.

The backlog is the team's, not a plan's: a pilot adds to it (a defect logged against the running
pilot, a failing criterion or a fired trigger turned into an item, a review finding) and a plan's
scope picks items from it by reference (``ScopeItem.reference``, e.g. US-145).
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints
from pilots.models.plan import audited


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


# --- cohort feedback ---------------------------------------------------------------------------

# Bounds of what a respondent may send (docs/feedback.md).
FEEDBACK_COMMENT_MAX = 2000
FEEDBACK_CONTACT_MAX = 200
FEEDBACK_TAG_MAX = 30
FEEDBACK_TAGS_MAX = 10
CSAT_RANGE = (1, 5)
NPS_RANGE = (0, 10)


@pghistory.track(*audited())
class FeedbackToken(models.Model):
    """The secret in a plan's public feedback link (``/f/<token>``).

    A plan has at most one live token; regenerating revokes it and issues a new one, so the old
    link is dead at once. Revoked tokens stay (the feedback sent through them names them)."""

    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="feedback_tokens"
    )
    # secrets.token_urlsafe(24): 32 URL-safe characters. Unique: the public page looks it up.
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            # One live link per plan (regenerating revokes the old one in the same transaction).
            models.UniqueConstraint(
                fields=["plan"],
                condition=models.Q(revoked_at__isnull=True),
                name="backlog_feedbacktoken_one_live_per_plan",
            ),
        ]

    def __str__(self) -> str:
        return f"feedback link of plan {self.plan_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


# The contact is personal data: it is kept out of the audit trail, so erasing it erases it.
@pghistory.track(*audited(), exclude=["contact", "version"])
class Feedback(FieldConstraints):
    """One answer from the pilot's cohort through the public link (or the in-product widget).

    At least one of CSAT (1–5), NPS (0–10) or a comment; an optional contact (an e-mail address
    or any text, personal data: masked for roles that may not see it). No IP address is stored.
    ``backlog_item`` is the item the team turned it into (the item reaches it back as
    ``item.feedback``)."""

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="feedback")
    token = models.ForeignKey(
        FeedbackToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="feedback"
    )
    csat = models.PositiveSmallIntegerField("CSAT", null=True, blank=True)
    nps = models.PositiveSmallIntegerField("NPS", null=True, blank=True)
    # varchar(2000): the database holds the bound too.
    comment = models.CharField(blank=True, max_length=FEEDBACK_COMMENT_MAX)
    contact = models.CharField(blank=True, max_length=FEEDBACK_CONTACT_MAX)
    created_at = models.DateTimeField(default=timezone.now)
    # Triage: free tags, and whether it is noise (spam, a test, off-topic).
    tags = ArrayField(
        models.CharField(max_length=FEEDBACK_TAG_MAX), default=list, blank=True, size=None
    )
    noise = models.BooleanField(default=False)
    backlog_item = models.ForeignKey(
        BacklogItem,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="feedback",
    )
    # Lost-update protection for triage edits (tags, noise).
    version = models.PositiveIntegerField(default=1)

    CONSTRAINT_FIELDS = {
        # Said on the comment: the one field every answer may fill in.
        "backlog_feedback_says_something": (
            "comment",
            "Give a CSAT score, an NPS score or a comment.",
        ),
        "backlog_feedback_csat_range": ("csat", "CSAT is a score from 1 to 5."),
        "backlog_feedback_nps_range": ("nps", "NPS is a score from 0 to 10."),
        "backlog_feedback_tags_count": ("tags", f"At most {FEEDBACK_TAGS_MAX} tags."),
    }

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The triage page and the API list: a plan's feedback, newest first.
            models.Index(fields=["plan", "-created_at", "-id"], name="backlog_feedback_plan_new"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(csat__isnull=False)
                | models.Q(nps__isnull=False)
                | ~models.Q(comment=""),
                name="backlog_feedback_says_something",
            ),
            models.CheckConstraint(
                condition=models.Q(csat__isnull=True) | models.Q(csat__gte=1, csat__lte=5),
                name="backlog_feedback_csat_range",
            ),
            models.CheckConstraint(
                condition=models.Q(nps__isnull=True) | models.Q(nps__gte=0, nps__lte=10),
                name="backlog_feedback_nps_range",
            ),
            models.CheckConstraint(
                condition=models.Q(tags__len__lte=FEEDBACK_TAGS_MAX),
                name="backlog_feedback_tags_count",
            ),
        ]

    def __str__(self) -> str:
        return f"feedback {self.pk} on plan {self.plan_id}"
