"""The whole plan on one printable page, and as a Markdown file.

Both read the plan through ``selectors.plan_detail`` (every section in a constant number of
queries, visible to the team's members only) and show the same document (``pilots.export``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from pilots.export import plan_document, plan_markdown, plan_markdown_filename
from pilots.selectors import plan_detail


@login_required
@require_http_methods(["GET"])
def plan_print(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = plan_detail(user=request.user, plan_id=plan_id)
    return TemplateResponse(
        request, "pilots/plan_print.html", {"plan": plan, "document": plan_document(plan)}
    )


@login_required
@require_http_methods(["GET"])
def plan_markdown_export(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = plan_detail(user=request.user, plan_id=plan_id)
    response = HttpResponse(plan_markdown(plan), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{plan_markdown_filename(plan)}"'
    return response


urlpatterns = [
    path("<int:plan_id>/print", plan_print, name="plan_print"),
    path("<int:plan_id>/export.md", plan_markdown_export, name="plan_markdown"),
]
