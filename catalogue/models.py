"""The metric catalogue: what exit criteria and rollback triggers can measure."""

from __future__ import annotations

from django.db import models

from core.constraints import FieldConstraints

MAX_EXPECTED_INTERVAL_MINUTES = 7 * 24 * 60


def interval_text(minutes: int) -> str:
    """A metric's expected interval in words: "5 minutes", "1 hour", "1 day", "90 minutes"."""
    for size, unit in ((1440, "day"), (60, "hour")):
        if minutes % size == 0:
            n = minutes // size
            return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
    return "1 minute" if minutes == 1 else f"{minutes:,} minutes"


class MetricDefinition(FieldConstraints):
    """A measurable thing exit criteria and rollback triggers refer to.

    ``team`` is empty for the built-in catalogue (P1 defects, p95 latency, CSAT, …) that every
    team sees; a team may add its own, whose keys must not clash with the built-in ones.
    """

    class Kind(models.TextChoices):
        GAUGE = "gauge", "Gauge (a value per minute, e.g. p95 latency)"
        COUNT = "count", "Count (events, e.g. defects, sessions, errors)"
        SCORE = "score", "Score (a rating, e.g. CSAT 1–5, NPS 0–10)"

    class Direction(models.TextChoices):
        LOWER_IS_BETTER = "lower", "Lower is better"
        HIGHER_IS_BETTER = "higher", "Higher is better"

    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="metrics"
    )
    key = models.SlugField(max_length=50, help_text="Stable identifier used by integrations.")
    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=20, blank=True, help_text="e.g. ms, %, count, score")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    description = models.TextField(blank=True)
    # How often samples of this metric are expected: a rollback trigger whose newest sample is
    # older than this is "stale", never a silent OK (metrics.triggers, docs/alerts.md).
    expected_interval_minutes = models.PositiveIntegerField(
        "expected interval (minutes)",
        default=60,
        help_text="How often samples arrive: 5 for a per-minute gauge, 1440 for a daily score.",
    )

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "metrics_metricdefinition_kind_valid": ("kind", "Choose a kind: gauge, count or score."),
        "metrics_metricdefinition_direction_valid": (
            "direction",
            "Choose whether lower or higher is better.",
        ),
        "catalogue_metricdefinition_expected_interval_range": (
            "expected_interval_minutes",
            "The expected interval is between 1 minute and 7 days.",
        ),
    }

    class Meta:
        # The table and constraint names date from when the catalogue lived in ``metrics``;
        # they are kept so that moving the model moved no data (migration catalogue 0001).
        db_table = "metrics_metricdefinition"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(team__isnull=True),
                name="metrics_metricdefinition_builtin_key_unique",
            ),
            models.UniqueConstraint(
                fields=["team", "key"], name="metrics_metricdefinition_team_key_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["gauge", "count", "score"]),
                name="metrics_metricdefinition_kind_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(direction__in=["lower", "higher"]),
                name="metrics_metricdefinition_direction_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(expected_interval_minutes__gte=1)
                & models.Q(expected_interval_minutes__lte=MAX_EXPECTED_INTERVAL_MINUTES),
                name="catalogue_metricdefinition_expected_interval_range",
                violation_error_message="The expected interval is between 1 minute and 7 days.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def expected_interval_text(self) -> str:
        return interval_text(self.expected_interval_minutes)

    @property
    def is_builtin(self) -> bool:
        return self.team_id is None
