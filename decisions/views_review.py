"""The post-pilot review page: ``/plans/<id>/post-pilot-review``.

One section, swapped whole by HTMX after a save (no reload), and the same form posting and
redirecting without JavaScript. Writers edit the three parts; the Product Owner and Scrum Master
also see "Complete the review", which saves and completes in one step. Stakeholders, invited
guests and everyone after the pilot is Closed read it. Role rules are the services'
(``decisions.services.review``); this module maps their answers to statuses: 403 a role that may
not, 409 a stale save (with the other person's text) or a plan in the wrong state, 422 a field.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows, require
from accounts.ui import toast
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from decisions.models.review import PART_MAX_LENGTH, PARTS, PostPilotReview
from decisions.services.review import (
    ReviewConflict,
    plan_today,
    post_pilot_review_complete,
    post_pilot_review_due_state,
    post_pilot_review_for_plan,
    post_pilot_review_save,
)
from pilots.access import can_edit, plan_for_user
from pilots.models import PilotPlan

CONFLICT = 409
FORBIDDEN = 403
PARTIAL = "decisions/review.html#review"


class PostPilotReviewForm(forms.Form):
    findings = forms.CharField(
        label="Findings",
        required=False,
        max_length=PART_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What the pilot showed: the evidence behind the decision, and what it means.",
    )
    went_well = forms.CharField(
        label="What went well",
        required=False,
        max_length=PART_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    to_improve = forms.CharField(
        label="What to improve",
        required=False,
        max_length=PART_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For the next pilot; the Scrum Master turns these into backlog items.",
    )


def _review(plan: PilotPlan) -> PostPilotReview | None:
    return post_pilot_review_for_plan(plan)


def _context(
    plan: PilotPlan,
    review: PostPilotReview | None,
    *,
    form: PostPilotReviewForm | None = None,
    theirs: PostPilotReview | None = None,
    version: int | None = None,
    message: str = "",
    message_kind: str = "",
) -> dict[str, Any]:
    role = plan.viewer_role  # type: ignore[attr-defined]
    writable = review is not None and plan.status == PilotPlan.Status.DECIDED
    may_write = writable and allows(role, Perm.POSTPILOT_EDIT)
    if review is not None and form is None:
        form = PostPilotReviewForm(initial={field: getattr(review, field) for field, *_ in PARTS})
    rows = [
        (form[field] if form else None, label, getattr(review, field) if review else "",
         getattr(theirs, field) if theirs else None)
        for field, label, _ in PARTS
    ]  # fmt: skip
    return {
        "plan": plan,
        "can_edit": can_edit(plan),  # the plan header's actions
        "review": review,
        "state": post_pilot_review_due_state(review, today=plan_today(plan)) if review else None,
        "rows": rows,
        "form": form,
        "version": version if version is not None else (review.version if review else 0),
        "may_write": may_write,
        "may_complete": may_write and allows(role, Perm.POSTPILOT_COMPLETE),
        "theirs": theirs,
        "message": message,
        "message_kind": message_kind,
        # "Post-pilot review findings convert to backlog items in one step": one link per
        # finding (a line of the findings part), for members who change the backlog.
        "finding_lines": finding_lines(review.findings if review else ""),
        "can_raise": allows(role, Perm.BACKLOG_EDIT) and not plan.viewer_is_guest,  # type: ignore[attr-defined]
    }


FINDING_MAX = 500


def finding_lines(text: str) -> list[str]:
    """The findings part, one finding per non-empty line, without list markers."""
    lines = (line.strip().lstrip("-*•").strip() for line in text.splitlines())
    return [line[:FINDING_MAX] for line in lines if line]


def _render(
    request: AuthedHtmxRequest, context: dict[str, Any], *, status: int = 200
) -> TemplateResponse:
    template = PARTIAL if request.htmx else "decisions/review.html"
    return TemplateResponse(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def post_pilot_review(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """GET: the review (or, before the decision, what opens it). POST: save the three parts
    (compare-and-set on ``version``); with ``complete``, save and complete in one step."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    if request.method == "GET":
        return _render(request, _context(plan, _review(plan)))
    complete = "complete" in request.POST
    # Who may is answered before what state the plan is in: a stakeholder reads 403 alike.
    require(plan.viewer_role, Perm.POSTPILOT_COMPLETE if complete else Perm.POSTPILOT_EDIT)  # type: ignore[attr-defined]
    try:
        version = int(request.POST["version"])
    except (KeyError, ValueError):
        raise BadRequest("The form lacks the review's version; reload the page.") from None
    review = _review(plan)
    form = PostPilotReviewForm(request.POST)
    if review is None:
        context = _context(plan, review, message="The post-pilot review opens when the "
                           "decision is recorded.")  # fmt: skip
        return _render(request, context, status=CONFLICT)
    if not form.is_valid():
        return _render(request, _context(plan, review, form=form, version=version),
                       status=UNPROCESSABLE)  # fmt: skip
    try:
        # Complete = save what is on the screen and complete it, or neither.
        with transaction.atomic():
            saved = post_pilot_review_save(
                review=review, user=request.user, expected_version=version, **form.cleaned_data
            )
            if complete:
                saved = post_pilot_review_complete(review=saved, user=request.user)
    except ReviewConflict as exc:
        # Their text beside the person's own; the form is now based on their version, so
        # saving again keeps the person's text knowingly.
        context = _context(plan, exc.current, form=form, theirs=exc.current,
                           version=exc.current.version, message=exc.message)  # fmt: skip
        return _render(request, context, status=CONFLICT)
    except Conflict as exc:
        return _render(request, _context(plan, review, form=form, version=version,
                                         message=exc.message), status=CONFLICT)  # fmt: skip
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _render(request, _context(plan, review, form=form, version=version),
                       status=UNPROCESSABLE)  # fmt: skip
    url = reverse("decisions:post_pilot_review", args=[plan.pk])
    if not request.htmx:
        return redirect(f"{url}#post-pilot-review")
    done = "The post-pilot review is completed." if complete else "Post-pilot review saved."
    response = _render(request, _context(plan, saved, message=done, message_kind="saved"))
    trigger_client_event(response, "planChanged", {"section": "post_pilot_review"})
    return toast(response, done)


urlpatterns = [
    path("plans/<int:plan_id>/post-pilot-review", post_pilot_review, name="post_pilot_review"),
]
