"""My work (``/my-work``): what waits for the signed-in person across their teams; and its summary,
which the home page loads on top (``/my-work/summary``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from decisions.my_work import my_work, my_work_count

# The home page's block shows the first few of each kind; the page shows them all.
SUMMARY_PER_GROUP = 3


@login_required
@require_http_methods(["GET"])
def my_work_page(request: AuthedHtmxRequest) -> HttpResponse:
    groups = my_work(user=request.user)
    context = {"groups": groups, "count": my_work_count(groups)}
    return TemplateResponse(request, "decisions/my_work.html", context)


@login_required
@require_http_methods(["GET"])
def my_work_summary(request: AuthedHtmxRequest) -> HttpResponse:
    groups = my_work(user=request.user)
    shown = [
        (group, group.tasks[:SUMMARY_PER_GROUP], len(group.tasks) - SUMMARY_PER_GROUP)
        for group in groups
        if group.tasks
    ]
    context = {"shown": shown, "count": my_work_count(groups)}
    return TemplateResponse(request, "decisions/my_work.html#summary", context)


urlpatterns = [
    path("my-work", my_work_page, name="my_work"),
    path("my-work/summary", my_work_summary, name="my_work_summary"),
]
