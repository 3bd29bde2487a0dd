"""The cohort's representativeness on the plan page (``pilots.extensions.plan_panel_register``,
from ``backlog.apps``): the stored check per segment dimension, the skewed ones first, with a
link to the participants page. A plan without segments shows nothing and costs no query (the
plan page has its segments loaded already)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from backlog.models import CohortFit
from backlog.participants.selectors import cohort_fit_for_plan
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan


def cohort_fit_plan_flags() -> dict[str, Exists]:
    """Whether the plan has a stored check: an ``Exists`` of the plan page's plan query."""
    return {"has_cohort_fit": Exists(CohortFit.objects.filter(plan=OuterRef("pk")))}


def cohort_fit_plan_panel(plan: PilotPlan) -> PlanPanel | None:
    if not plan.segments.all():
        return None
    stored = cohort_fit_for_plan(plan_id=plan.pk) if getattr(plan, "has_cohort_fit", True) else []
    fits = sorted(stored, key=lambda f: (not f.skewed, f.dimension))
    return PlanPanel(
        "backlog/_cohort_fit_panel.html",
        {"plan": plan, "fits": fits, "skewed": any(f.skewed for f in fits)},
    )
