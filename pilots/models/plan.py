"""The plan itself and the version of each of its sections."""

from __future__ import annotations

import datetime as dt

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Team, validate_time_zone
from core.constraints import FieldConstraints
from core.validators import validate_sane_date


def audited() -> tuple[pghistory.RowEvent, ...]:
    """Every insert, update and delete of an audited model is recorded by a database trigger
    (django-pghistory) with the request's user in its context, bulk updates included. Fresh
    tracker objects per model: pghistory binds each one to the model it tracks."""
    return (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())


def default_check_times() -> list[dt.time]:
    return [dt.time(10, 0), dt.time(16, 0)]


class Section(models.TextChoices):
    """The sections of a plan (docs/user-guide.md, "The plan page"). Each is edited and versioned
    on its own, so two people editing different sections never conflict."""

    OVERVIEW = "overview", "Overview"
    SCOPE = "scope", "Scope"
    COHORT = "cohort", "Cohort"
    ENVIRONMENT = "environment", "Environment and data"
    ENTRY_CRITERIA = "entry_criteria", "Entry criteria"
    EXIT_CRITERIA = "exit_criteria", "Exit criteria"
    MONITORING = "monitoring", "Monitoring and support"
    ROLLBACK_TRIGGERS = "rollback_triggers", "Rollback triggers"
    ROLLBACK_PLAN = "rollback_plan", "Rollback and contingency"
    TIMELINE = "timeline", "Timeline"
    OWNERSHIP = "ownership", "Ownership"
    CHANGE_CONTROL = "change_control", "Change control"
    RISKS = "risks", "Risks"


@pghistory.track(*audited(), exclude=["version", "updated_at"])
class PilotPlan(FieldConstraints):
    """A limited, time-boxed release of an increment to a small cohort, and the plan for it."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        RUNNING = "running", "Running"
        EVALUATING = "evaluating", "Evaluating"
        DECIDED = "decided", "Decided"
        CLOSED = "closed", "Closed"

    class Decision(models.TextChoices):
        GO = "go", "Go (full release)"
        ITERATE = "iterate", "Iterate (another pilot)"
        ROLL_BACK = "roll_back", "Roll back"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="plans")
    # Overview
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    release_ref = models.CharField(
        "release / increment", max_length=100, blank=True, help_text="e.g. Release 2026.12, PI-7"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # Ownership
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="owned_plans",
        help_text="The Product Owner who owns the plan.",
    )
    scrum_master = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Decides go / iterate / roll back at exit (normally the Product Owner).",
    )
    rollback_executor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Executes the rollback when a trigger fires (normally the DevOps lead).",
    )
    # Timeline
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    start_date = models.DateField(null=True, blank=True, validators=[validate_sane_date])
    business_days = models.PositiveSmallIntegerField(
        default=10,
        validators=[
            MinValueValidator(1, "A pilot lasts between 1 and 260 business days."),
            MaxValueValidator(260, "A pilot lasts between 1 and 260 business days."),
        ],
    )
    # Derived from start_date + business_days, skipping weekends and the team's holidays;
    # stored so lists and the scheduler can filter on it. Computed by services.plan_end_date and
    # written only by the timeline section's save (section_update), plan_create_from_template
    # and, when a team's holidays change, team_holiday_add / team_holiday_remove.
    end_date = models.DateField(null=True, blank=True, editable=False)
    check_times = ArrayField(models.TimeField(), default=default_check_times)
    # The decision page recommends nothing but "Not yet decidable" before this many business
    # days of the pilot have been observed (decisions.rules).
    minimum_observation_days = models.PositiveSmallIntegerField(
        default=3,
        validators=[
            MaxValueValidator(60, "The minimum observation period is at most 60 business days.")
        ],
        help_text="Business days of data before the decision page recommends anything.",
    )
    # Change control
    change_control = models.TextField(
        blank=True, help_text="How learnings become or re-prioritise Product Backlog items."
    )
    # Lifecycle: the review round (bumped on each submission) and the exit decision.
    review_round = models.PositiveIntegerField(default=0)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    cloned_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones"
    )
    # An iteration created by an "Iterate" decision: what the previous pilot's failing criteria
    # say this one must address (its ``cloned_from`` is the previous pilot).
    must_address = models.TextField(
        blank=True, help_text="What this iteration must address, from the previous decision."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every write to the plan or any section: the API's ETag for the whole plan.
    version = models.PositiveIntegerField(default=1)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_pilotplan_status_valid": ("status", "Choose one of the plan's statuses."),
        "pilots_pilotplan_business_days_range": ("business_days", ""),
        "pilots_pilotplan_end_after_start": (
            "start_date",
            "The pilot cannot end before it starts.",
        ),
        "pilots_pilotplan_decision_only_when_decided": (
            "decision",
            "A decision is recorded only when the plan is Decided or Closed.",
        ),
        "pilots_pilotplan_check_times_not_empty": ("check_times", ""),
        "pilots_pilotplan_minimum_observation_range": ("minimum_observation_days", ""),
    }

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
            models.CheckConstraint(
                condition=models.Q(business_days__gte=1) & models.Q(business_days__lte=260),
                name="pilots_pilotplan_business_days_range",
                violation_error_message="A pilot lasts between 1 and 260 business days.",
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(start_date__isnull=False, end_date__gte=models.F("start_date")),
                name="pilots_pilotplan_end_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(decision="") | models.Q(status__in=["decided", "closed"]),
                name="pilots_pilotplan_decision_only_when_decided",
            ),
            models.CheckConstraint(
                condition=~models.Q(check_times=[]),
                name="pilots_pilotplan_check_times_not_empty",
                violation_error_message="A running pilot is checked at least once a day.",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_observation_days__lte=60),
                name="pilots_pilotplan_minimum_observation_range",
                violation_error_message=(
                    "The minimum observation period is at most 60 business days."
                ),
            ),
        ]  # fmt: skip
        indexes = [
            # Serves plan_list_for_user: a team's plans, most recently changed first.
            models.Index(fields=["team", "-updated_at"], name="pilots_plan_team_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read_only(self) -> bool:
        """Decided and Closed plans no longer change (``pilots.editable``)."""
        return self.status in (self.Status.DECIDED, self.Status.CLOSED)


class PlanSection(models.Model):
    """The version of one section of one plan: the unit of lost-update protection.

    Every edit of a section (including adding, editing, reordering or removing its rows) states
    the version it was based on; the service bumps it with a compare-and-set UPDATE and refuses
    the edit when someone else got there first. Later, sign-offs record these versions.
    """

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="sections")
    key = models.CharField(max_length=30, choices=Section.choices)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["plan", "key"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "key"], name="pilots_plansection_one_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} · {self.get_key_display()} v{self.version}"
