"""STUB (h-record): the rollback helper owns this module; the lead takes the real one at merge.

Only the signature ``decisions.services.decision`` calls is here, so the record's Roll back
outcome can be written and tested before the rollback checklist lands."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from pilots.models import PilotPlan


def rollback_start(
    *, plan: PilotPlan, user: User, decision: Any = None, episode: Any = None
) -> Any:
    return None
