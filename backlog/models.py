"""Product backlog items, cohort feedback, findings and change control.

Only findings exist so far: a pilot cannot close until its review findings are recorded.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


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
