"""Plan templates: a team's own plans saved as a starting point for the next ones.

A template holds a snapshot (JSON) of the plan's content at the moment it was saved: the
sections' texts and rows, without dates, people or anything that belongs to one pilot
(``pilots.services.templates`` decides what is copied). Later edits of the plan do not change
the template, and deleting the plan keeps it.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils import timezone

from pilots.models.plan import PilotPlan, audited


@pghistory.track(*audited())
class PlanTemplate(models.Model):
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, related_name="plan_templates"
    )
    name = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    content = models.JSONField(default=dict)
    source_plan = models.ForeignKey(
        PilotPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="pilots_plantemplate_name_once"),
        ]

    def __str__(self) -> str:
        return self.name
