"""Writes about the backlog."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from backlog.models import Finding
from pilots.models import PilotPlan


@transaction.atomic
def finding_create(*, plan: PilotPlan, user: User, text: str) -> Finding:
    finding = Finding(plan=plan, created_by=user, text=text.strip())
    finding.full_clean()
    finding.save()
    return finding
