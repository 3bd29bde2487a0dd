"""The sections of a plan (docs/user-guide.md describes each).

Single-valued sections (cohort, environment and data, monitoring and support, rollback plan) are
one-to-one rows created with the plan. List sections are rows with a ``position``; positions are
unique per plan and list, with the constraint deferred to the end of the transaction so a
reorder can swap positions freely.
"""

from __future__ import annotations

from decimal import Decimal

import pghistory
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from catalogue import comparators
from core.constraints import FieldConstraints
from core.validators import validate_not_future, validate_sane_date
from pilots import wording
from pilots.models.plan import PilotPlan, audited

COMPARATORS = list(comparators.CODES)
MAX_THRESHOLD = Decimal("9999999999.9999")  # the largest numeric(14, 4)
SHARE_PERCENT = "A share is a percentage between 0 and 100."
PRACTICAL_BOUND = "The practical bound is between 0 and 50 percentage points."
PERCENTILE_RANGE = "A percentile is between 0 and 100 (e.g. 95)."

# The codes (stored) and symbols (labels) of the one table of comparators: LT = "lt", "<", …
Comparator = models.TextChoices(  # type: ignore[call-overload]  # the functional form
    "Comparator", [(c.code.upper(), (c.code, c.symbol)) for c in comparators.TABLE]
)


def _position_unique(model: str, *extra: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(
        fields=["plan", *extra, "position"],
        name=f"pilots_{model}_position_unique",
        deferrable=models.Deferrable.DEFERRED,
    )


def _threshold_is_number(model: str) -> models.CheckConstraint:
    # A numeric(14, 4) column still accepts 'NaN', which PostgreSQL sorts above every number,
    # so "at most the largest value the column holds" rules out exactly NaN.
    return models.CheckConstraint(
        condition=models.Q(threshold__isnull=True) | models.Q(threshold__lte=MAX_THRESHOLD),
        name=f"pilots_{model}_threshold_is_number",
        violation_error_message="The threshold must be a number.",
    )


class Orderable(FieldConstraints):
    position = models.PositiveIntegerField()

    class Meta:
        abstract = True
        ordering = ["position"]


# --- Scope -------------------------------------------------------------------------------------


@pghistory.track(*audited())
class ScopeItem(Orderable):
    """A story or epic slice in the pilot (``included``), or left out of it with the reason."""

    class Kind(models.TextChoices):
        INCLUDED = "included", "Included"
        EXCLUDED = "excluded", "Excluded"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="scope_items")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INCLUDED)
    reference = models.CharField(max_length=50, blank=True, help_text="e.g. US-145")
    title = models.CharField(max_length=200)
    reason = models.TextField(blank=True, help_text="Why it is excluded from the pilot.")

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_scopeitem_excluded_has_reason": ("reason", ""),
    }

    class Meta(Orderable.Meta):
        constraints = [
            _position_unique("scopeitem", "kind"),
            models.CheckConstraint(
                condition=models.Q(kind="included") | ~models.Q(reason=""),
                name="pilots_scopeitem_excluded_has_reason",
                violation_error_message="Say why this item is excluded from the pilot.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}".strip()


# --- Cohort ------------------------------------------------------------------------------------


@pghistory.track(*audited())
class Cohort(FieldConstraints):
    plan = models.OneToOneField(PilotPlan, on_delete=models.CASCADE, related_name="cohort")
    description = models.TextField(blank=True, help_text="e.g. 200 internal users in Region A")
    target_size = models.PositiveIntegerField(null=True, blank=True)
    opt_in_required = models.BooleanField(default=True)
    consent_recorded = models.BooleanField(default=False)
    feedback_channel = models.CharField(
        max_length=200, blank=True, help_text="e.g. #pilot-feedback"
    )
    # The representativeness check (pilots.representativeness) flags the cohort as skewed only
    # when the gap between an actual and an intended share exceeds this many percentage points
    # (and the test is significant): big cohorts must not raise alarms for trivial gaps.
    practical_bound = models.DecimalField(
        "practical bound (percentage points)",
        max_digits=4,
        decimal_places=1,
        default=Decimal(5),
        validators=[
            MinValueValidator(0, PRACTICAL_BOUND),
            MaxValueValidator(50, PRACTICAL_BOUND),
        ],
        help_text="Flag the cohort as skewed only when a segment is off its intended share by "
        "more than this (0–50 points).",
    )

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_cohort_practical_bound_range": ("practical_bound", ""),
    }

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(practical_bound__gte=0) & models.Q(practical_bound__lte=50),
                name="pilots_cohort_practical_bound_range",
                violation_error_message=PRACTICAL_BOUND,
            ),
        ]

    def __str__(self) -> str:
        return f"Cohort of {self.plan}"


@pghistory.track(*audited())
class CohortSegment(Orderable):
    """A slice of the cohort (region, customer type, internal/external) with its intended share."""

    class Dimension(models.TextChoices):
        REGION = "region", "Region"
        CUSTOMER_TYPE = "customer_type", "Customer type"
        AUDIENCE = "audience", "Internal / external"
        OTHER = "other", "Other"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="segments")
    dimension = models.CharField(max_length=20, choices=Dimension.choices)
    value = models.CharField(max_length=100, help_text="e.g. Region A, SMB, internal")
    intended_share = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        help_text="Per cent of the cohort (0–100).",
        validators=[
            MinValueValidator(0, SHARE_PERCENT),
            MaxValueValidator(100, SHARE_PERCENT),
        ],
    )

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_cohortsegment_share_percent": ("intended_share", ""),
    }

    class Meta(Orderable.Meta):
        constraints = [
            _position_unique("cohortsegment"),
            models.CheckConstraint(
                condition=models.Q(intended_share__gte=0) & models.Q(intended_share__lte=100),
                name="pilots_cohortsegment_share_percent",
                violation_error_message="A share is a percentage between 0 and 100.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_dimension_display()}: {self.value} ({self.intended_share} %)"


# --- Environment and data ----------------------------------------------------------------------


@pghistory.track(*audited())
class EnvironmentAndData(FieldConstraints):
    plan = models.OneToOneField(PilotPlan, on_delete=models.CASCADE, related_name="environment")
    environment = models.CharField(max_length=200, blank=True, help_text="e.g. pilot-eu-1")
    data_migration_rules = models.TextField(blank=True)
    privacy_constraints = models.TextField("privacy / compliance constraints", blank=True)
    masking_rules = models.TextField(blank=True)
    uses_real_data = models.BooleanField(default=False)
    compliance_validated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    compliance_validated_at = models.DateTimeField(null=True, blank=True)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_environmentanddata_validation_who_and_when": (
            "compliance_validated_by",
            "Record both who validated compliance and when.",
        ),
    }

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    compliance_validated_by__isnull=True, compliance_validated_at__isnull=True
                )
                | models.Q(
                    compliance_validated_by__isnull=False, compliance_validated_at__isnull=False
                ),
                name="pilots_environmentanddata_validation_who_and_when",
            ),
        ]

    def __str__(self) -> str:
        return f"Environment of {self.plan}"


# --- Entry and exit criteria -------------------------------------------------------------------


@pghistory.track(*audited())
class EntryCriterion(Orderable):
    class Kind(models.TextChoices):
        DEFINITION_OF_DONE = "dod", "Definition of Done"
        NON_FUNCTIONAL = "non_functional", "Non-functional / performance tests"
        RUNBOOK = "runbook", "Support runbook"
        STAKEHOLDER_READINESS = "stakeholders", "Stakeholder readiness"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        MET = "met", "Met"
        WAIVED = "waived", "Waived"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="entry_criteria")
    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OTHER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    evidence_url = models.URLField(blank=True)
    evidence_note = models.TextField(
        blank=True, help_text="What shows the criterion is met, when there is no link."
    )
    waiver_reason = models.TextField(blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was confirmed; now when left empty."
    )

    EVIDENCE_NEEDED = "Give the evidence that it is met: a link or a note."

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_entrycriterion_met_has_evidence": ("evidence_url", ""),
        "pilots_entrycriterion_waiver_has_reason": ("waiver_reason", ""),
        "pilots_entrycriterion_confirmed_who_and_when": (
            "confirmed_by",
            "Record who confirmed the criterion and when.",
        ),
    }

    class Meta(Orderable.Meta):
        verbose_name_plural = "entry criteria"
        constraints = [
            _position_unique("entrycriterion"),
            models.CheckConstraint(
                condition=~models.Q(status="met")
                | ~models.Q(evidence_url="")
                | ~models.Q(evidence_note=""),
                name="pilots_entrycriterion_met_has_evidence",
                violation_error_message="Give the evidence that it is met: a link or a note.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="waived") | ~models.Q(waiver_reason=""),
                name="pilots_entrycriterion_waiver_has_reason",
                violation_error_message="A waived entry criterion needs the reason.",
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending")
                | models.Q(confirmed_by__isnull=False, confirmed_at__isnull=False),
                name="pilots_entrycriterion_confirmed_who_and_when",
            ),
        ]

    def __str__(self) -> str:
        return self.text


@pghistory.track(*audited())
class ExitCriterion(Orderable):
    """A quantitative success threshold: metric, aggregation, comparator, threshold, window."""

    class Aggregation(models.TextChoices):
        LATEST = "latest", "Latest value"
        MEAN = "mean", "Mean"
        MAX = "max", "Maximum"
        MIN = "min", "Minimum"
        PERCENTILE = "percentile", "Percentile"
        TOTAL = "total", "Total"
        RATE_PER = "rate_per", "Rate per N of another metric"
        RATIO = "ratio", "Ratio of two counts (%)"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="exit_criteria")
    metric = models.ForeignKey(
        "catalogue.MetricDefinition", on_delete=models.PROTECT, related_name="exit_criteria"
    )
    aggregation = models.CharField(max_length=12, choices=Aggregation.choices)
    percentile = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[
            MinValueValidator(Decimal("0.01"), PERCENTILE_RANGE),
            MaxValueValidator(Decimal("99.99"), PERCENTILE_RANGE),
        ],
    )
    denominator = models.ForeignKey(
        "catalogue.MetricDefinition",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="For a rate or ratio: what it is per (e.g. sessions).",
    )
    per_n = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For a rate: per how many (e.g. 1000 sessions).",
        validators=[MinValueValidator(1, "A rate is per at least 1 (e.g. 1000).")],
    )
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    # Empty while the author has not decided; plan health flags it. Never non-numeric.
    threshold = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    window_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Evaluate over the last N hours; empty = whole pilot."
    )
    min_sample_size = models.PositiveIntegerField(
        default=30, help_text="Below this many observations the verdict is 'not enough evidence'."
    )
    blocking = models.BooleanField(
        default=True, help_text="Blocking criteria decide go / no-go; advisory ones inform."
    )

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_exitcriterion_threshold_is_number": ("threshold", ""),
        "pilots_exitcriterion_comparator_valid": (
            "comparator",
            "Choose a comparator such as < or ≥.",
        ),
        "pilots_exitcriterion_percentile_in_range": ("percentile", ""),
        "pilots_exitcriterion_rate_has_denominator": ("denominator", ""),
        "pilots_exitcriterion_rate_has_per_n": ("per_n", ""),
    }

    class Meta(Orderable.Meta):
        verbose_name_plural = "exit criteria"
        constraints = [
            _position_unique("exitcriterion"),
            _threshold_is_number("exitcriterion"),
            models.CheckConstraint(
                condition=models.Q(comparator__in=COMPARATORS),
                name="pilots_exitcriterion_comparator_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(aggregation="percentile")
                | models.Q(percentile__isnull=False, percentile__gt=0, percentile__lt=100),
                name="pilots_exitcriterion_percentile_in_range",
                violation_error_message="A percentile is between 0 and 100 (e.g. 95).",
            ),
            models.CheckConstraint(
                condition=~models.Q(aggregation__in=["rate_per", "ratio"])
                | models.Q(denominator__isnull=False),
                name="pilots_exitcriterion_rate_has_denominator",
                violation_error_message="A rate or ratio needs the metric it is per.",
            ),
            models.CheckConstraint(
                condition=~models.Q(aggregation="rate_per")
                | models.Q(per_n__isnull=False, per_n__gte=1),
                name="pilots_exitcriterion_rate_has_per_n",
                violation_error_message="A rate needs “per how many” (e.g. 1000).",
            ),
        ]

    def __str__(self) -> str:
        return wording.criterion_text(self)


# --- Monitoring and support --------------------------------------------------------------------


@pghistory.track(*audited())
class MonitoringAndSupport(models.Model):
    plan = models.OneToOneField(PilotPlan, on_delete=models.CASCADE, related_name="monitoring")
    communication_cadence = models.TextField(
        blank=True, help_text="e.g. daily stand-up note in #pilot at 16:30"
    )
    training_done = models.BooleanField(default=False)
    training_notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Monitoring of {self.plan}"


@pghistory.track(*audited())
class Dashboard(Orderable):
    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="dashboards")
    name = models.CharField(max_length=100, help_text="e.g. P-01")
    url = models.URLField()

    class Meta(Orderable.Meta):
        constraints = [_position_unique("dashboard")]

    def __str__(self) -> str:
        return self.name


@pghistory.track(*audited())
class OnCallShift(FieldConstraints):
    """Who is on call from one date to another (inclusive), in the plan's time zone."""

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="on_call")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    person_name = models.CharField(
        max_length=100, blank=True, help_text="When the person is not a Pilotplan user."
    )
    starts_on = models.DateField(validators=[validate_sane_date])
    ends_on = models.DateField(validators=[validate_sane_date])

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_oncallshift_ends_after_start": ("ends_on", ""),
        "pilots_oncallshift_has_person": ("person", ""),
    }

    class Meta:
        ordering = ["starts_on", "ends_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")),
                name="pilots_oncallshift_ends_after_start",
                violation_error_message="An on-call shift cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=models.Q(person__isnull=False) | ~models.Q(person_name=""),
                name="pilots_oncallshift_has_person",
                violation_error_message="Name who is on call.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person or self.person_name}: {self.starts_on} – {self.ends_on}"


@pghistory.track(*audited())
class ResponseSla(FieldConstraints):
    class Severity(models.TextChoices):
        P1 = "p1", "P1"
        P2 = "p2", "P2"
        P3 = "p3", "P3"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="response_slas")
    severity = models.CharField(max_length=2, choices=Severity.choices)
    response_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1, "Respond within at least one minute.")]
    )

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_responsesla_positive": ("response_minutes", "Respond within at least one minute."),
    }

    class Meta:
        ordering = ["severity"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "severity"], name="pilots_responsesla_one_per_severity"
            ),
            models.CheckConstraint(
                condition=models.Q(response_minutes__gte=1),
                name="pilots_responsesla_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.response_minutes} min"


# --- Rollback ----------------------------------------------------------------------------------


@pghistory.track(*audited())
class RollbackTrigger(Orderable):
    """A condition that calls for a rollback: on any occurrence, or sustained for N minutes."""

    class Mode(models.TextChoices):
        ANY_OCCURRENCE = "any", "Any occurrence"
        SUSTAINED = "sustained", "Sustained for"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="rollback_triggers")
    metric = models.ForeignKey(
        "catalogue.MetricDefinition", on_delete=models.PROTECT, related_name="rollback_triggers"
    )
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    sustained_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1, "“Sustained” lasts at least one minute.")],
    )
    description = models.CharField(max_length=200, blank=True)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "pilots_rollbacktrigger_threshold_is_number": ("threshold", ""),
        "pilots_rollbacktrigger_comparator_valid": (
            "comparator",
            "Choose a comparator such as < or ≥.",
        ),
        "pilots_rollbacktrigger_sustained_has_duration": ("sustained_minutes", ""),
    }

    class Meta(Orderable.Meta):
        constraints = [
            _position_unique("rollbacktrigger"),
            _threshold_is_number("rollbacktrigger"),
            models.CheckConstraint(
                condition=models.Q(comparator__in=COMPARATORS),
                name="pilots_rollbacktrigger_comparator_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(mode="any", sustained_minutes__isnull=True)
                | models.Q(
                    mode="sustained", sustained_minutes__isnull=False, sustained_minutes__gte=1
                ),
                name="pilots_rollbacktrigger_sustained_has_duration",
                violation_error_message=(
                    "“Sustained” needs a duration in minutes; “any occurrence” has none."
                ),
            ),
        ]

    def __str__(self) -> str:
        return wording.trigger_text(self)


@pghistory.track(*audited())
class RollbackPlan(models.Model):
    plan = models.OneToOneField(PilotPlan, on_delete=models.CASCADE, related_name="rollback_plan")
    data_considerations = models.TextField(blank=True)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who approves a rollback.",
    )
    communication_plan = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Rollback plan of {self.plan}"


@pghistory.track(*audited())
class RollbackStep(Orderable):
    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="rollback_steps")
    action = models.TextField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expected_minutes = models.PositiveIntegerField(null=True, blank=True)

    class Meta(Orderable.Meta):
        constraints = [_position_unique("rollbackstep")]

    def __str__(self) -> str:
        return f"{self.position}. {self.action[:60]}"


@pghistory.track(*audited())
class RollbackRehearsal(models.Model):
    class Outcome(models.TextChoices):
        PASSED = "passed", "Passed"
        PARTIAL = "partial", "Partly worked"
        FAILED = "failed", "Failed"

    plan = models.ForeignKey(
        PilotPlan, on_delete=models.CASCADE, related_name="rollback_rehearsals"
    )
    # A rehearsal is recorded after it happened: never in the future.
    rehearsed_on = models.DateField(
        default=timezone.localdate, validators=[validate_sane_date, validate_not_future]
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-rehearsed_on"]

    def __str__(self) -> str:
        return f"{self.rehearsed_on}: {self.get_outcome_display()}"


# --- Risks -------------------------------------------------------------------------------------


@pghistory.track(*audited())
class Risk(Orderable):
    class Level(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    plan = models.ForeignKey(PilotPlan, on_delete=models.CASCADE, related_name="risks")
    description = models.TextField()
    likelihood = models.CharField(max_length=10, choices=Level.choices)
    impact = models.CharField(max_length=10, choices=Level.choices)
    mitigation = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(Orderable.Meta):
        constraints = [_position_unique("risk")]

    def __str__(self) -> str:
        return self.description[:60]
