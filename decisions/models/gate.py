"""The deployment gate's call log: every answer the gate gave a pipeline (docs/gate.md).

One row per call of ``GET /api/v1/plans/{id}/gate`` or ``…/gate/rollback`` that reached the plan
(a refusal by strict mode included; a 401 or 404 never reaches a plan, so it is not logged here).
The decision page lists the latest calls: who asked, from which pipeline run, what they were told.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.constraints import FieldConstraints

PIPELINE_RUN_MAX = 200


class GateCall(FieldConstraints):
    class Endpoint(models.TextChoices):
        GATE = "gate", "Promotion gate"
        ROLLBACK = "rollback", "Rollback check"

    class Mode(models.TextChoices):
        JSON = "json", "JSON (always 200)"
        STRICT = "strict", "Strict (409 when not)"

    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="gate_calls"
    )
    called_at = models.DateTimeField(default=timezone.now)
    endpoint = models.CharField(max_length=10, choices=Endpoint.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who asked, as it read then: "dana@example.com" or "API key ‘deploy-bot’" (kept when the
    # user or key is deleted later).
    caller = models.CharField(max_length=200)
    pipeline_run = models.CharField(
        max_length=PIPELINE_RUN_MAX,
        blank=True,
        help_text="The pipeline's run identifier, from the X-Pipeline-Run header or ?run=.",
    )
    status_code = models.PositiveSmallIntegerField()
    # For the gate: promotion allowed; for the rollback check: a rollback called for.
    allowed = models.BooleanField()
    recommendation = models.CharField(max_length=20)

    CONSTRAINT_FIELDS = {
        "decisions_gatecall_endpoint_valid": ("endpoint", "Choose gate or rollback."),
        "decisions_gatecall_mode_valid": ("mode", "Choose json or strict."),
    }

    class Meta:
        ordering = ["-called_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(endpoint__in=["gate", "rollback"]),
                name="decisions_gatecall_endpoint_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(mode__in=["json", "strict"]),
                name="decisions_gatecall_mode_valid",
            ),
        ]
        indexes = [models.Index(fields=["plan", "-called_at"], name="decisions_gatecall_plan_idx")]

    def __str__(self) -> str:
        return (
            f"{self.caller} → {self.endpoint} {self.status_code} ({self.called_at:%Y-%m-%d %H:%M})"
        )
