"""The decision's panel on the plan page (``pilots.extensions.plan_panel_register``, from
``decisions.apps``): from Running onwards, a link to the decision page and, once recorded, the
decision with its override reason. A record exists only once the plan is Decided, so Running
and Evaluating plans cost the plan page no query."""

from __future__ import annotations

from pilots.extensions import PlanPanel
from pilots.models import PilotPlan

Status = PilotPlan.Status
PANEL_STATES = frozenset({Status.RUNNING, Status.EVALUATING, Status.DECIDED, Status.CLOSED})


def decision_plan_panel(plan: PilotPlan) -> PlanPanel | None:
    from decisions.models import DecisionRecord, IterateItem

    if plan.status not in PANEL_STATES:
        return None
    record = None
    if plan.status in (Status.DECIDED, Status.CLOSED):
        record = (
            DecisionRecord.objects.filter(plan=plan)
            .select_related("recorded_by")
            .order_by("-recorded_at", "-pk")
            .first()
        )
    lines = []
    if record is not None and record.outcome == DecisionRecord.Outcome.ITERATE:
        lines = list(IterateItem.objects.filter(record=record).select_related("item"))
    return PlanPanel(
        "decisions/_decision_plan_panel.html",
        {"plan": plan, "record": record, "iterate_lines": lines},
    )
