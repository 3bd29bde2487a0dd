"""The decision record: who decided what, why, and the evidence as it stood at that moment.

A record is never edited or deleted: a PostgreSQL trigger (migration 0001) refuses every UPDATE
and DELETE of ``decisions_decisionrecord``, whoever asks (the ORM, the admin, a psql session). A
correction is a new record that ``supersedes`` the old one; both stay visible. Each record keeps
the SHA-256 of its frozen evidence (``evidence_hash``) and of the record it supersedes
(``supersedes_hash``), and ``record_hash`` covers all of it, so an edit made around the trigger
is detectable (``decisions.services.decision.decision_record_verify``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints

OUTCOMES = ["go", "iterate", "roll_back"]
RECOMMENDATIONS = ["go", "iterate", "roll_back", "not_yet_decidable"]


class DecisionRecord(FieldConstraints):
    class Outcome(models.TextChoices):
        GO = "go", "Go"
        ITERATE = "iterate", "Iterate"
        ROLL_BACK = "roll_back", "Roll back"

    class Recommendation(models.TextChoices):
        GO = "go", "Go"
        ITERATE = "iterate", "Iterate"
        ROLL_BACK = "roll_back", "Roll back"
        NOT_YET_DECIDABLE = "not_yet_decidable", "Not yet decidable"

    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.PROTECT, related_name="decision_records"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    rationale = models.TextField()
    # Required when ``outcome`` differs from ``recommendation`` (a database rule).
    override_reason = models.TextField(blank=True)
    # The recommendation when the decision was recorded, the rule that produced it (its name in
    # ``decisions.rules.RULES``) and its words.
    recommendation = models.CharField(max_length=20, choices=Recommendation.choices)
    recommendation_rule = models.CharField(max_length=40)
    recommendation_words = models.TextField()
    # ``decisions.evidence.DecisionEvidence.snapshot()``: every criterion, trigger, defect,
    # sign-off... as it stood. JSON with sorted keys is what the hash covers.
    evidence = models.JSONField()
    evidence_hash = models.CharField(max_length=64)
    supersedes = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
        help_text="The earlier record this one corrects.",
    )
    supersedes_hash = models.CharField(max_length=64, blank=True)
    record_hash = models.CharField(max_length=64, unique=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    CONSTRAINT_FIELDS = {
        "decisions_record_outcome_valid": ("outcome", "Choose go, iterate or roll back."),
        "decisions_record_recommendation_valid": (
            "recommendation",
            "The recommendation is go, iterate, roll back or not yet decidable.",
        ),
        "decisions_record_override_needs_reason": (
            "override_reason",
            "Going against the recommendation needs an override reason.",
        ),
        "decisions_record_rationale_present": ("rationale", "Say why: the record keeps it."),
        "decisions_record_supersedes_hash": (
            "supersedes_hash",
            "A correction carries the SHA-256 of the record it supersedes; a first record none.",
        ),
    }

    class Meta:
        ordering = ["plan", "recorded_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=OUTCOMES), name="decisions_record_outcome_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(recommendation__in=RECOMMENDATIONS),
                name="decisions_record_recommendation_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(outcome=models.F("recommendation"))
                | ~models.Q(override_reason__regex=r"^\s*$"),
                name="decisions_record_override_needs_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(rationale__regex=r"^\s*$"),
                name="decisions_record_rationale_present",
            ),
            models.CheckConstraint(
                condition=models.Q(supersedes__isnull=True, supersedes_hash="")
                | models.Q(supersedes__isnull=False, supersedes_hash__regex=r"^[0-9a-f]{64}$"),
                name="decisions_record_supersedes_hash",
            ),
        ]
        indexes = [models.Index(fields=["plan", "-recorded_at"], name="decisions_record_plan_idx")]

    def __str__(self) -> str:
        return f"{self.plan}: {self.get_outcome_display()} ({self.recorded_at:%Y-%m-%d})"

    @property
    def is_override(self) -> bool:
        return self.outcome != self.recommendation


class DecisionComment(models.Model):
    """A member's comment on the decision page, before (or after) the decision."""

    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="decision_comments"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["plan", "created_at"], name="decisions_comment_plan_idx")]

    def __str__(self) -> str:
        return self.text[:60]


class IterateItem(models.Model):
    """A backlog item the next iteration takes on, listed with an Iterate decision, in order.

    Written with the record in one transaction (``decision_record``) and, like the record,
    never changed: a different list is a correction. The item may be deleted from the backlog
    later; the line keeps its reference and title as they were.
    """

    record = models.ForeignKey(DecisionRecord, on_delete=models.PROTECT, related_name="iterate")
    item = models.ForeignKey(
        "backlog.BacklogItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    position = models.PositiveSmallIntegerField()
    reference = models.CharField(max_length=30)
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["record", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "position"], name="decisions_iterateitem_position_unique"
            ),
            models.UniqueConstraint(
                fields=["record", "item"], name="decisions_iterateitem_item_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"
