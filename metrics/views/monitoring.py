"""A plan's Monitoring page (``plans/<id>/monitoring``): charts, check history, today's status,
links to the external dashboards. The module, template and assets still say "dashboard" (see
docs/glossary.md)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from metrics.monitoring import Span, monitoring_page
from pilots.access import can_edit, plan_for_user


@login_required
@require_http_methods(["GET"])
def monitoring(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Everyone who reads the plan reads its Monitoring page; ``?span=24h`` charts the last 24
    hours per minute instead of the whole pilot per hour (a link, so it works without
    JavaScript)."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    page = monitoring_page(plan=plan, span=request.GET.get("span", Span.PILOT))
    context = {
        "plan": plan,
        "page": page,
        "data": page.data,
        "spans": Span,
        "can_edit": can_edit(plan),
    }
    return TemplateResponse(request, "metrics/monitoring.html", context)


urlpatterns = [
    path("plans/<int:plan_id>/monitoring", monitoring, name="monitoring"),
]
