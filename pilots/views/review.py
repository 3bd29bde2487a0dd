"""Review, sign-off and the lifecycle on the plan page (HTMX panels, each also usable without
JavaScript through the plan's review page).

The plan page loads three panels (``hx-trigger="load"``) so the plan page itself stays as cheap
as it was: the lifecycle panel (state, the next steps with what blocks them), the review cards
(notes, checklist, concerns, sign-off) and the timeline. Role checks live in the services: a
refused step answers 403 (wrong role) or 409 (the plan is not ready), re-rendering the panel with
the reason and changing nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows, require
from accounts.ui import day_text, toast
from core.exceptions import Conflict, PreconditionFailed
from core.http import UNPROCESSABLE
from pilots import selectors_review
from pilots.access import plan_for_user
from pilots.forms_review import ReviewForm, TimeboxExtendForm, TransitionForm
from pilots.models import PilotPlan, Review
from pilots.review import REVIEWS
from pilots.services.lifecycle import plan_transition, transition_for
from pilots.services.review import review_update, signoff_create
from pilots.services.timebox import timebox_extend, timebox_extend_blockers

CONFLICT = 409
FORBIDDEN = 403


def _kind(kind: str) -> str:
    if kind not in REVIEWS:
        raise Http404(f"No such review: {kind}")
    return kind


def _lifecycle_context(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    message: str = "",
    failed: str = "",
    extend_form: TimeboxExtendForm | None = None,
) -> dict[str, Any]:
    role = plan.viewer_role  # type: ignore[attr-defined]
    return {
        "plan": plan,
        # Offered to the Product Owner and Scrum Master of a running pilot, or one whose
        # time-box has just ended by itself (the state rule is the service's).
        "can_extend": allows(role, Perm.TIMEBOX_EXTEND) and not timebox_extend_blockers(plan=plan),
        "extend_form": extend_form or TimeboxExtendForm(),
        # Lifecycle steps stay for Decided plans (close), which are otherwise read-only.
        "can_step": allows(plan.viewer_role, Perm.PLAN_EDIT),  # type: ignore[attr-defined]
        "steps": selectors_review.lifecycle_steps(plan=plan, user=request.user),
        "gaps_override": selectors_review.gaps_override(plan),
        "rereview": selectors_review.rereview_needed(plan),
        "lifecycle_message": message,
        "failed_action": failed,
    }


def _reviews_context(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    editing: str = "",
    form: ReviewForm | None = None,
    message: str = "",
    message_kind: str = "",
    message_for: str = "",
) -> dict[str, Any]:
    return {
        "message_for": message_for,
        "plan": plan,
        "cards": selectors_review.review_cards(plan=plan, user=request.user),
        "editing": editing,
        "form": form,
        "review_message": message,
        "message_kind": message_kind,
    }


def _page(
    request: AuthedHtmxRequest, plan: PilotPlan, status: int = 200, **kw: Any
) -> HttpResponse:
    """The plan's review page: all three panels, for people without JavaScript."""
    context = {
        **_lifecycle_context(
            request,
            plan,
            message=kw.get("message", ""),
            failed=kw.get("failed", ""),
            extend_form=kw.get("extend_form"),
        ),
        **_reviews_context(
            request,
            plan,
            editing=kw.get("editing", ""),
            form=kw.get("form"),
            message=kw.get("review_message", ""),
            message_kind=kw.get("message_kind", ""),
            message_for=kw.get("message_for", ""),
        ),
        "entries": selectors_review.plan_timeline(plan=plan),
    }
    return TemplateResponse(request, "pilots/review/page.html", context, status=status)


def _plan(request: AuthedHtmxRequest, plan_id: int) -> PilotPlan:
    return plan_for_user(user=request.user, plan_id=plan_id)


def _lifecycle_template(request: AuthedHtmxRequest) -> str:
    """The lifecycle as the plan header's buttons (``in=header``: the plan page and the
    cockpit), or as the review page's panel."""
    where = request.POST.get("in") if request.method == "POST" else request.GET.get("in")
    return "pilots/review/lifecycle.html#" + ("header" if where == "header" else "panel")


def _back(plan: PilotPlan, anchor: str) -> HttpResponse:
    return redirect(f"{reverse('pilots:plan_review', args=[plan.pk])}#{anchor}")


# --- the review page (no JavaScript) -------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def plan_review(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    return _page(request, _plan(request, plan_id))


# --- lifecycle ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def lifecycle_panel(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id)
    if not request.htmx:
        return _back(plan, "plan-lifecycle")
    context = _lifecycle_context(request, plan)
    return TemplateResponse(request, _lifecycle_template(request), context)


@login_required
@require_http_methods(["POST"])
def lifecycle_transition(request: AuthedHtmxRequest, plan_id: int, action: str) -> HttpResponse:
    """Take one step; a refused one re-renders the panel with exactly what is missing."""
    plan = _plan(request, plan_id)
    try:
        transition_for(action)
    except ValidationError:
        raise Http404(f"No such step: {action}") from None
    form = TransitionForm(request.POST)
    if not form.is_valid():
        raise BadRequest("Invalid step form.")
    try:
        plan_transition(
            plan=plan,
            action=action,
            user=request.user,
            reason=form.cleaned_data["reason"],
            override_gaps=form.cleaned_data["override_gaps"],
            confirm_early_start=form.cleaned_data["confirm_early_start"],
        )
    except (Conflict, PermissionDenied, ValidationError) as exc:
        if isinstance(exc, Conflict):
            status, message = CONFLICT, exc.message
        elif isinstance(exc, PermissionDenied):
            status, message = FORBIDDEN, str(exc)
        else:
            status, message = UNPROCESSABLE, " ".join(exc.messages)
        fresh = _plan(request, plan_id)
        if not request.htmx:
            return _page(request, fresh, status=status, message=message, failed=action)
        context = _lifecycle_context(request, fresh, message=message, failed=action)
        return TemplateResponse(request, _lifecycle_template(request), context, status=status)
    if not request.htmx:
        return _back(plan, "plan-lifecycle")
    fresh = _plan(request, plan_id)
    response = TemplateResponse(
        request, _lifecycle_template(request), _lifecycle_context(request, fresh)
    )
    trigger_client_event(response, "planChanged", {"section": "lifecycle"})
    return toast(response, f"The pilot is now {fresh.get_status_display()}.")


@login_required
@require_http_methods(["POST"])
def timebox_extend_view(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Extend the time-box: a new last day and the reason, both required (422 names the field;
    403 for a role that may not, 409 for a plan that is not running)."""
    plan = _plan(request, plan_id)
    form = TimeboxExtendForm(request.POST)
    status, message = 200, ""
    if form.is_valid():
        try:
            timebox_extend(
                plan=plan,
                user=request.user,
                new_end_date=form.cleaned_data["new_end_date"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except Conflict as exc:
            status, message = CONFLICT, exc.message
        except PermissionDenied as exc:
            status, message = FORBIDDEN, str(exc)
    if form.errors and status == 200:
        status = UNPROCESSABLE
    fresh = _plan(request, plan_id)
    if status != 200:
        if not request.htmx:
            return _page(request, fresh, status=status, message=message, extend_form=form)
        context = _lifecycle_context(request, fresh, message=message, extend_form=form)
        return TemplateResponse(request, _lifecycle_template(request), context, status=status)
    if not request.htmx:
        return _back(plan, "plan-lifecycle")
    response = TemplateResponse(
        request, _lifecycle_template(request), _lifecycle_context(request, fresh)
    )
    trigger_client_event(response, "planChanged", {"section": "timeline"})
    return toast(response, f"The time-box now ends on {day_text(fresh.end_date)}.")


# --- reviews -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def reviews_panel(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id)
    if not request.htmx:
        return _back(plan, "plan-reviews")
    return TemplateResponse(
        request, "pilots/review/reviews.html#reviews", _reviews_context(request, plan)
    )


def _card(
    request: AuthedHtmxRequest, plan: PilotPlan, kind: str, *, status: int = 200, **kw: Any
) -> HttpResponse:
    """One review card (HTMX), or the whole review page around it."""
    if not request.htmx:
        return _page(
            request,
            plan,
            status=status,
            editing=kw.get("editing", ""),
            form=kw.get("form"),
            review_message=kw.get("message", ""),
            message_kind=kw.get("message_kind", ""),
            message_for=kind,
        )
    context = _reviews_context(request, plan, message_for=kind, **kw)
    context["card"] = next(c for c in context["cards"] if c.kind == kind)
    return TemplateResponse(request, "pilots/review/reviews.html#card", context, status=status)


def _require_reviewer(plan: PilotPlan, kind: str) -> None:
    require(plan.viewer_role, REVIEWS[kind].perm)  # type: ignore[attr-defined]


@login_required
@require_http_methods(["GET"])
def review_edit(request: AuthedHtmxRequest, plan_id: int, kind: str) -> HttpResponse:
    kind = _kind(kind)
    plan = _plan(request, plan_id)
    _require_reviewer(plan, kind)
    review = Review.objects.filter(plan=plan, kind=kind).first()
    form = ReviewForm(spec=REVIEWS[kind], review=review)
    return _card(request, plan, kind, editing=kind, form=form)


@login_required
@require_http_methods(["GET", "POST"])
def review_save(request: AuthedHtmxRequest, plan_id: int, kind: str) -> HttpResponse:
    """GET: the card in view mode. POST: save notes, checklist and concerns (compare-and-set)."""
    kind = _kind(kind)
    plan = _plan(request, plan_id)
    if request.method == "GET":
        if not request.htmx:
            return _back(plan, f"review-{kind}")
        return _card(request, plan, kind)
    try:
        version = int(request.POST["version"])
    except (KeyError, ValueError):
        raise BadRequest("The form lacks the review version; reload the page.") from None
    review = Review.objects.filter(plan=plan, kind=kind).first()
    form = ReviewForm(request.POST, spec=REVIEWS[kind], review=review)
    if not form.is_valid():
        return _card(request, plan, kind, status=UNPROCESSABLE, editing=kind, form=form)
    try:
        review_update(
            plan=plan, kind=kind, user=request.user, expected_version=version, values=form.values()
        )
    except PreconditionFailed as exc:
        return _card(
            request, plan, kind, status=CONFLICT, editing=kind, form=form, message=exc.message
        )
    except ValidationError as exc:
        # Keyed by the service's field names (checklist_notes), not the form's: shown atop it.
        form.add_error(None, " ".join(exc.messages))
        return _card(request, plan, kind, status=UNPROCESSABLE, editing=kind, form=form)
    if not request.htmx:
        return _back(plan, f"review-{kind}")
    response = _card(request, plan, kind, message="Saved.", message_kind="saved")
    return trigger_client_event(response, "reviewChanged", {"review": kind})


@login_required
@require_http_methods(["POST"])
def review_sign(request: AuthedHtmxRequest, plan_id: int, kind: str) -> HttpResponse:
    """Sign the review at the plan's current version; refused with the reasons otherwise."""
    kind = _kind(kind)
    plan = _plan(request, plan_id)
    try:
        signoff_create(plan=plan, kind=kind, user=request.user)
    except (Conflict, PermissionDenied) as exc:
        status = CONFLICT if isinstance(exc, Conflict) else FORBIDDEN
        message = exc.message if isinstance(exc, Conflict) else str(exc)
        return _card(request, _plan(request, plan_id), kind, status=status, message=message)
    if not request.htmx:
        return _back(plan, f"review-{kind}")
    response = _card(
        request, _plan(request, plan_id), kind, message="Signed off.", message_kind="saved"
    )
    return trigger_client_event(response, "reviewChanged", {"review": kind})


# --- timeline ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def timeline_panel(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id)
    if not request.htmx:
        return _back(plan, "plan-timeline")
    context = {"plan": plan, "entries": selectors_review.plan_timeline(plan=plan)}
    return TemplateResponse(request, "pilots/review/timeline.html#timeline", context)


urlpatterns = [
    path("<int:plan_id>/review", plan_review, name="plan_review"),
    path("<int:plan_id>/lifecycle", lifecycle_panel, name="plan_lifecycle"),
    path("<int:plan_id>/lifecycle/<str:action>", lifecycle_transition, name="plan_transition"),
    path("<int:plan_id>/timebox-extensions", timebox_extend_view, name="timebox_extend"),
    path("<int:plan_id>/reviews", reviews_panel, name="plan_reviews"),
    path("<int:plan_id>/reviews/<str:kind>", review_save, name="review_save"),
    path("<int:plan_id>/reviews/<str:kind>/edit", review_edit, name="review_edit"),
    path("<int:plan_id>/reviews/<str:kind>/sign-off", review_sign, name="review_sign"),
    path("<int:plan_id>/timeline", timeline_panel, name="plan_timeline"),
]
