"""The one rule for what may still change on a plan: Decided and Closed plans are read-only.

Every write to a plan's content (sections, rows, reviews, compliance, the timeline) calls
``plan_require_editable`` in its service; the access helper calls it for the ``plan.edit``
permission, so pages and the API refuse before any form is shown. Samples have their own window
(``metrics.ingest``: Running and Evaluating only), and the lifecycle's own steps (record the
decision, close) are guarded by the lifecycle.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from pilots.models import PilotPlan

READ_ONLY = frozenset({PilotPlan.Status.DECIDED, PilotPlan.Status.CLOSED})


class PlanReadOnly(PermissionDenied):
    """A write to a Decided or Closed plan (403, with the state in ``status``)."""

    def __init__(self, plan: PilotPlan):
        self.status = plan.status
        self.message = (
            f"This plan is {plan.get_status_display()}: it is read-only. Its sections, lists, "
            "reviews and timeline can no longer change."
        )
        super().__init__(self.message)


def plan_is_editable(plan: PilotPlan) -> bool:
    return not plan.is_read_only


def plan_require_editable(plan: PilotPlan) -> None:
    """Raise ``PlanReadOnly`` when ``plan`` is Decided or Closed."""
    if not plan_is_editable(plan):
        raise PlanReadOnly(plan)
