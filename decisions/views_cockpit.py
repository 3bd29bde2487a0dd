"""The run cockpit (``plans/<id>/cockpit``): a Running or Evaluating pilot on one screen.

What a team looks at every morning of a pilot: how long the time-box still runs (or how overdue
it is), each rollback trigger's state, each exit criterion's latest verdict with how much more
evidence would decide it, who is on call now, the latest check, the open trigger episodes with
their Acknowledge button, and the way to the decision page. The plan document is one tab away.

It crosses metrics (triggers, checks, episodes), pilots (on-call, time-box) and the decision's
evidence, so it lives here, in the top app; ``pilots`` sends ``/plans/<id>/`` here for Running and
Evaluating plans through ``pilots.extensions.plan_home_register`` (``decisions.apps``).

The page refreshes its body by itself (HTMX: every minute, and on ``planChanged``,
``episodesChanged`` and ``samplesChanged``); the same URL answers an HTMX request with the body
alone. Its queries are a constant number: ``decision_evidence`` plus one each for the on-call
shifts and the latest check, whatever the plan's history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from accounts.http import AuthedHtmxRequest
from accounts.models import TeamHoliday
from accounts.ui import zone_of
from decisions.evidence import decision_evidence
from decisions.views_decision import SYMBOLS, criterion_rows
from metrics.models import CheckRun
from pilots.access import can_edit, plan_for_user
from pilots.extensions import plan_panel_flags, plan_panels
from pilots.listing import decision_due_on
from pilots.models import OnCallShift, PilotPlan

Status = PilotPlan.Status
# The states whose plan opens on the cockpit (and the only ones it shows).
COCKPIT_STATES = frozenset({Status.RUNNING, Status.EVALUATING})
# On-call shifts shown: the ones covering today, then the next few.
ON_CALL_SHOWN = 4
# How often the open page asks for a fresh body (also on the events above).
REFRESH_SECONDS = 60


def cockpit_home(plan: PilotPlan) -> str | None:
    """``pilots.extensions.plan_home``: Running and Evaluating plans open on the cockpit."""
    if plan.status in COCKPIT_STATES:
        return reverse("decisions:cockpit", args=[plan.pk])
    return None


@dataclass(frozen=True)
class TimeBox:
    """The time-box in the plan's own days: what the cockpit's first card says."""

    end_date: dt.date | None
    days_left: int | None  # business days, today and the last day counted (Running)
    overdue_days: int  # calendar days past the last day (Running) or the decision's due day
    decision_due: dt.date | None  # Evaluating: the last day to record the decision


def _time_box(plan: PilotPlan, today: dt.date, days_left: int | None) -> TimeBox:
    due = decision_due_on(plan) if plan.status == Status.EVALUATING else None
    late_after = plan.end_date if plan.status == Status.RUNNING else due
    overdue = (today - late_after).days if late_after and today > late_after else 0
    return TimeBox(
        end_date=plan.end_date,
        days_left=days_left if not overdue else None,
        overdue_days=overdue,
        decision_due=due,
    )


def _plan(request: AuthedHtmxRequest, plan_id: int) -> PilotPlan:
    """The plan if the person may read it (404 otherwise), with what the panels and the
    time-box read: the panels' flags (one EXISTS each) and the team's holidays."""
    queryset = (
        PilotPlan.objects.select_related("owner", "decision_owner")
        .prefetch_related(Prefetch("team__holidays", queryset=TeamHoliday.objects.order_by("date")))
        .annotate(**plan_panel_flags())
    )
    return plan_for_user(user=request.user, plan_id=plan_id, queryset=queryset)


def _on_call(plan: PilotPlan, today: dt.date) -> tuple[list[OnCallShift], list[OnCallShift]]:
    """The shifts covering ``today`` and the next ones (one query)."""
    shifts = list(
        OnCallShift.objects.filter(plan=plan, ends_on__gte=today)
        .select_related("person")
        .order_by("starts_on", "ends_on", "pk")[:ON_CALL_SHOWN]
    )
    now = [s for s in shifts if s.starts_on <= today]
    return now, [s for s in shifts if s.starts_on > today]


def _latest_check(plan: PilotPlan) -> CheckRun | None:
    """The newest check that ran or was missed (pending ones have no result yet)."""
    return (
        CheckRun.objects.filter(plan=plan)
        .exclude(status=CheckRun.Status.PENDING)
        .order_by("-due_at", "-pk")
        .first()
    )


def cockpit_context(request: AuthedHtmxRequest, plan: PilotPlan) -> dict[str, Any]:
    evidence = decision_evidence(plan)
    today = timezone.localtime(evidence.computed_at, zone_of(plan)).date()
    on_call_now, on_call_next = _on_call(plan, today)
    return {
        "plan": plan,
        "can_edit": can_edit(plan),
        "evidence": evidence,
        "result": evidence.result,
        "symbol": SYMBOLS.get(evidence.recommendation, ""),
        "rows": criterion_rows(evidence.criteria),
        "time_box": _time_box(plan, today, evidence.days_left),
        "on_call_now": on_call_now,
        "on_call_next": on_call_next,
        "latest_check": _latest_check(plan),
        # The metrics panels (unresolved trigger episodes with Acknowledge, failing jobs) and
        # the decisions ones, as the plan page shows them.
        "plan_panels": plan_panels(plan),
        "refresh_seconds": REFRESH_SECONDS,
    }


@login_required
@require_http_methods(["GET"])
def cockpit(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The cockpit page; for HTMX (its own refresh) the body alone. A plan that is no longer
    Running or Evaluating opens on its document instead."""
    plan = _plan(request, plan_id)
    if plan.status not in COCKPIT_STATES:
        document = reverse("pilots:plan_detail", args=[plan.pk])
        return HttpResponseClientRedirect(document) if request.htmx else redirect(document)
    context = cockpit_context(request, plan)
    template = "decisions/cockpit.html" + ("#cockpit" if request.htmx else "")
    return TemplateResponse(request, template, context)


urlpatterns = [
    path("plans/<int:plan_id>/cockpit", cockpit, name="cockpit"),
]
