"""The public side of a cohort: opt in through the plan's enrolment link (``/join/<token>``) and
withdraw through one's personal link (``/join/withdraw/<token>``). No login; small, phone-first
pages on the site's shell (no inline script or style: the CSP refuses them).

An unknown or revoked token, or a plan that does not take enrolments now, answers 404 with a page
that says so in plain words, and nothing about the plan.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.throttle import client_address
from backlog.forms_participants import EnrolForm
from backlog.models import DIMENSIONS
from backlog.participants.services import (
    EnrolRateLimited,
    enrolment_link_open,
    participant_by_withdraw_token,
    participant_enrol,
    participant_enrol_rate_check,
    participant_withdraw_by_token,
    plan_segment_values,
)
from core.http import UNPROCESSABLE

NOT_OPEN = 404


def _closed(request: HttpRequest, template: str) -> TemplateResponse:
    return TemplateResponse(request, template, {}, status=NOT_OPEN)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = enrolment_link_open(token)
    except Http404:
        return _closed(request, "backlog/join_closed.html")
    plan = link.plan
    allowed = plan_segment_values(plan.pk)
    label = "I agree to take part, as described above."
    form = EnrolForm(request.POST or None, allowed=allowed, consent_label=label)
    status = 200
    if request.method == "POST":
        try:
            participant_enrol_rate_check(token=token, address=client_address(request))
        except EnrolRateLimited as error:
            response = TemplateResponse(
                request, "backlog/join_limited.html", {"message": error.message}, status=429
            )
            response["Retry-After"] = str(error.retry_after)
            return response
        if form.is_valid():
            data = form.cleaned_data
            try:
                participant = participant_enrol(
                    token=token,
                    name=data["name"],
                    email=data["email"],
                    segments={d: data.get(d, "") for d in DIMENSIONS if d in form.fields},
                    consent=data["consent"],
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            except Http404:  # revoked while the form was open
                return _closed(request, "backlog/join_closed.html")
        if not form.errors:
            withdraw_url = request.build_absolute_uri(
                reverse("backlog:join_withdraw", args=[participant.withdraw_token])
            )
            context = {"plan": plan, "participant": participant, "withdraw_url": withdraw_url}
            return TemplateResponse(request, "backlog/join_done.html", context, status=201)
        status = UNPROCESSABLE
    context = {
        "plan": plan,
        "link": link,
        "form": form,
        "opt_in_required": plan.cohort.opt_in_required,
    }
    return TemplateResponse(request, "backlog/join.html", context, status=status)


@require_http_methods(["GET", "POST"])
def join_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    """GET: "Withdraw from <pilot>?"; POST: withdrawn (the link then stops working)."""
    try:
        if request.method == "POST":
            participant = participant_withdraw_by_token(token=token)
            return TemplateResponse(
                request, "backlog/join_withdrawn.html", {"plan": participant.plan}
            )
        participant = participant_by_withdraw_token(token)
    except Http404:
        return _closed(request, "backlog/join_withdraw_closed.html")
    return TemplateResponse(
        request,
        "backlog/join_withdraw.html",
        {"plan": participant.plan, "participant": participant},
    )


urlpatterns = [
    path("join/<str:token>", join, name="join"),
    path("join/withdraw/<str:token>", join_withdraw, name="join_withdraw"),
]
