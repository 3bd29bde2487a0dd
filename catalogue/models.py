"""The metric catalogue: what exit criteria and rollback triggers can measure."""

from __future__ import annotations

from django.db import models

from core.constraints import FieldConstraints


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

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "metrics_metricdefinition_kind_valid": ("kind", "Choose a kind: gauge, count or score."),
        "metrics_metricdefinition_direction_valid": (
            "direction",
            "Choose whether lower or higher is better.",
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
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def is_builtin(self) -> bool:
        return self.team_id is None
