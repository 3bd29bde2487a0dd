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
from django.db.models.functions import Lower
from django.utils import timezone

from core.constraints import FieldConstraints
from pilots.models import CohortSegment
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


# Audited like the plan (ARCHITECTURE: every change to backlog items, bulk moves and status
# changes included, with actor, before and after).
@pghistory.track(*audited())
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


# --- cohort participants -------------------------------------------------------------------------

# The segment dimensions a participant carries one value of each (pilots.CohortSegment's).
DIMENSIONS: tuple[str, ...] = tuple(CohortSegment.Dimension.values)
# The personal data of a participant: what erasure empties, and what the audit trail never holds.
PERSONAL_FIELDS: tuple[str, ...] = ("name", "email", "external_ref")


class EnrolmentLink(models.Model):
    """A plan's public enrolment link (``/join/<token>``): the cohort opts in through it.

    One per plan. The token is random and shown to the team to copy, so it is stored as it is;
    it is revocable (``revoked_at``) and regenerable (a new token; the old link stops working).
    The consent text is what the enrolment page shows and what each participant's consent record
    keeps a copy of.
    """

    plan = models.OneToOneField(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="enrolment_link"
    )
    token = models.CharField(max_length=64, unique=True)
    consent_text = models.TextField(
        max_length=4000,
        help_text="What a person agrees to by opting in: shown on the enrolment page, and kept "
        "with each participant's consent.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"Enrolment link of {self.plan_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


@pghistory.track(*audited(), exclude=[*PERSONAL_FIELDS, "withdraw_token"])
class Participant(FieldConstraints):
    """A person in a plan's cohort: their segment attributes and how they consented.

    The audit trail (django-pghistory) records every change *except* the personal data (and
    the secret withdraw token): erasing a person on request therefore leaves nothing of them in
    the history either, while their segments, consent record and status stay for the counts.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class ConsentMethod(models.TextChoices):
        IMPORT = "import", "Imported with consent"
        ENROLMENT_LINK = "enrolment_link", "Opted in through the enrolment link"
        RECORDED_BY_TEAM = "recorded_by_team", "Recorded by the team"

    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="participants"
    )
    # Personal data: emptied by erasure.
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField("e-mail", max_length=254, blank=True)
    external_ref = models.CharField(
        "external reference", max_length=100, blank=True, help_text="e.g. a customer id."
    )
    # One value per segment dimension the plan uses (a CohortSegment value); blank otherwise.
    region = models.CharField(max_length=100, blank=True)
    customer_type = models.CharField(max_length=100, blank=True)
    audience = models.CharField("internal / external", max_length=100, blank=True)
    other = models.CharField(max_length=100, blank=True)
    # The consent record: when, how and the exact text agreed to (empty: no consent recorded,
    # which only cohorts without "opt-in required" accept).
    consent_given_at = models.DateTimeField(null=True, blank=True)
    consent_method = models.CharField(max_length=20, choices=ConsentMethod.choices, blank=True)
    consent_text = models.TextField(max_length=4000, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    # The personal withdraw link (/join/withdraw/<token>); gone once withdrawn or erased.
    withdraw_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    CONSTRAINT_FIELDS = {
        "backlog_participant_email_unique": (
            "email",
            "Another participant of this plan has this e-mail.",
        ),
        "backlog_participant_withdrawn_when": (
            "status",
            "A withdrawn participant has a withdrawal time; an active one has none.",
        ),
        "backlog_participant_consent_complete": (
            "consent_method",
            "A consent record says when and how it was given.",
        ),
        "backlog_participant_erased_is_anonymous": (
            "name",
            "An erased participant keeps no name, e-mail or external reference.",
        ),
        "backlog_participant_status_valid": ("status", "Choose active or withdrawn."),
    }

    class Meta:
        ordering = ["plan", "pk"]
        constraints = [
            # Case-insensitive: Ana@X and ana@x are one person.
            models.UniqueConstraint(
                Lower("email"),
                "plan",
                condition=~models.Q(email=""),
                name="backlog_participant_email_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "withdrawn"]),
                name="backlog_participant_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status="active", withdrawn_at__isnull=True)
                | models.Q(status="withdrawn", withdrawn_at__isnull=False),
                name="backlog_participant_withdrawn_when",
            ),
            models.CheckConstraint(
                condition=models.Q(consent_method="", consent_given_at__isnull=True)
                | (~models.Q(consent_method="") & models.Q(consent_given_at__isnull=False)),
                name="backlog_participant_consent_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(erased_at__isnull=True)
                | models.Q(name="", email="", external_ref="", withdraw_token__isnull=True),
                name="backlog_participant_erased_is_anonymous",
            ),
        ]
        indexes = [
            # Serves the participants page and the fit's counts: a plan's participants by status.
            models.Index(fields=["plan", "status"], name="backlog_participant_status_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.erased_at:
            return f"Erased participant #{self.pk}"
        return self.name or self.email or self.external_ref or f"Participant #{self.pk}"

    @property
    def has_consent(self) -> bool:
        return bool(self.consent_method)

    def segment_values(self) -> dict[str, str]:
        return {d: getattr(self, d) for d in DIMENSIONS if getattr(self, d)}


class CohortFit(models.Model):
    """The stored result of the representativeness check for one plan and segment dimension
    (``pilots.representativeness.segment_fit`` over the active participants), recomputed
    whenever the participants, the segments or the practical bound change."""

    class Status(models.TextChoices):
        SKEWED = "skewed", "Skewed"
        REPRESENTATIVE = "representative", "Representative"
        NOT_ENOUGH = "not_enough", "Not enough participants to tell"
        NO_TARGET = "no_target", "No intended shares"

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=20, choices=CohortSegment.Dimension.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    participants = models.PositiveIntegerField(help_text="Active participants counted.")
    p_value = models.FloatField(null=True, blank=True)
    method = models.CharField(max_length=30, blank=True)
    practical_bound = models.DecimalField(max_digits=4, decimal_places=1)
    largest_segment = models.CharField(max_length=100, blank=True)
    largest_gap_points = models.FloatField(
        default=0, help_text="Actual minus intended share of the segment furthest off, in points."
    )
    # Per segment: value, observed count, intended and observed per cent.
    segments = models.JSONField(default=list)
    summary = models.CharField(max_length=300)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "dimension"]
        constraints = [
            # Also the index of cohort_fit_for_plan and the portfolio's "skewed" subquery.
            models.UniqueConstraint(
                fields=["plan", "dimension"], name="backlog_cohortfit_one_per_dimension"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.dimension}: {self.status}"

    @property
    def skewed(self) -> bool:
        return self.status == self.Status.SKEWED

    @property
    def dimension_label(self) -> str:
        return str(CohortSegment.Dimension(self.dimension).label)

    @property
    def p_text(self) -> str:
        if self.p_value is None:
            return ""
        return "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"

    @property
    def headline(self) -> str:
        """The verdict in one line, e.g. "Region: Region A over-represented by 12 pp
        (p < 0.001)"; the words of every page that shows the check."""
        label = self.dimension_label
        if self.status == self.Status.SKEWED:
            direction = "over" if self.largest_gap_points > 0 else "under"
            return (
                f"{label}: {self.largest_segment} {direction}-represented by "
                f"{abs(self.largest_gap_points):.0f} pp ({self.p_text})"
            )
        if self.status == self.Status.REPRESENTATIVE:
            return f"{label}: representative ({self.participants} active participants)"
        if self.status == self.Status.NO_TARGET:
            return f"{label}: no intended shares to compare with"
        if self.participants == 0:
            return f"{label}: no participants yet"
        return f"{label}: not enough participants to tell ({self.participants} active)"


class ChangeControlEntry(FieldConstraints):
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

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "backlog_changecontrol_reprioritise_has_reason": (
            "reason",
            "Say why the item is re-prioritised.",
        ),
    }

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
