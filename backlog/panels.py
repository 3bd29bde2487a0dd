"""The cohort's representativeness on the plan page (``pilots.extensions.plan_panel_register``,
from ``backlog.apps``): the stored check per segment dimension, the skewed ones first, with a
link to the participants page. A plan without segments shows nothing and costs no query (the
plan page has its segments loaded already)."""

from __future__ import annotations

from backlog.participants.selectors import cohort_fit_for_plan
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan


def cohort_fit_plan_panel(plan: PilotPlan) -> PlanPanel | None:
    if not plan.segments.all():
        return None
    fits = sorted(cohort_fit_for_plan(plan_id=plan.pk), key=lambda f: (not f.skewed, f.dimension))
    return PlanPanel(
        "backlog/_cohort_fit_panel.html",
        {"plan": plan, "fits": fits, "skewed": any(f.skewed for f in fits)},
    )
