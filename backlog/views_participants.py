"""The participants page of a plan (``plans/<id>/participants``): the counts per segment and the
representativeness check for everyone who reads the plan; the list, add, import, export, the
enrolment link, withdraw and erase for the roles the permission table names.

Every write goes through ``backlog.participants`` (the API's services and words). Forms post and
redirect, so everything works without JavaScript; the filter form swaps the list in place with
HTMX. Erasure asks for confirmation on a page of its own.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from accounts.http import AuthedHtmxRequest
from accounts.permissions import Perm, allows, refusal
from backlog.forms_participants import (
    EnrolmentLinkForm,
    ImportForm,
    ParticipantFilterForm,
    ParticipantForm,
    VersionForm,
)
from backlog.models import DIMENSIONS, Participant
from backlog.participants import selectors
from backlog.participants.exchange import participants_csv, participants_csv_import
from backlog.participants.services import (
    ENROL_STATES,
    ParticipantConflict,
    enrolment_link_regenerate,
    enrolment_link_revoke,
    enrolment_link_save,
    participant_add,
    participant_erase,
    participant_withdraw,
    plan_segment_values,
)
from core.csvfile import upload_text
from core.exceptions import Conflict
from core.http import UNPROCESSABLE
from pilots.access import plan_for_user
from pilots.editable import plan_is_editable
from pilots.models import CohortSegment, PilotPlan

PAGE_SIZE = 50


def _query(request: AuthedHtmxRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _page_url(plan: PilotPlan) -> str:
    return reverse("backlog:participants", args=[plan.pk])


def _render(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    form: ParticipantForm | None = None,
    link_form: EnrolmentLinkForm | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> TemplateResponse:
    role = plan.viewer_role  # type: ignore[attr-defined]
    allowed = plan_segment_values(plan.pk)
    context: dict[str, Any] = {
        "plan": plan,
        "counts": selectors.cohort_counts(plan_id=plan.pk),
        "fits": selectors.cohort_fit_for_plan(plan_id=plan.pk),
        "dimensions": [d for d in DIMENSIONS if d in allowed],
        "dimension_labels": [CohortSegment.Dimension(d).label for d in DIMENSIONS if d in allowed],
        "hidden_reason": refusal(Perm.PARTICIPANTS_VIEW),
        "can_view": allows(role, Perm.PARTICIPANTS_VIEW),
        "can_manage": allows(role, Perm.PARTICIPANTS_MANAGE),
        "can_add": allows(role, Perm.PARTICIPANTS_MANAGE) and plan_is_editable(plan),
        "can_erase": allows(role, Perm.PARTICIPANTS_ERASE),
        "errors": errors or [],
        "query": _query(request),
    }
    if context["can_view"]:
        filters = ParticipantFilterForm(request.GET or None, allowed=allowed)
        try:
            rows = selectors.participants_for_plan(plan_id=plan.pk, filters=request.GET)
        except ValidationError as error:
            rows = Participant.objects.none()
            context["errors"] = [*context["errors"], *error.messages]
        context["filters"] = filters
        context["filtered"] = any(request.GET.get(n) for n in ("q", "status", *DIMENSIONS))
        page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
        for participant in page.object_list:
            # The segment columns the plan uses, in order (the template only displays).
            participant.cells = [getattr(participant, d) for d in context["dimensions"]]  # type: ignore[attr-defined]
        context["page"] = page
    if context["can_manage"]:
        link = selectors.enrolment_link_for_plan(plan_id=plan.pk)
        context["link"] = link
        context["link_url"] = (
            request.build_absolute_uri(reverse("backlog:join", args=[link.token])) if link else ""
        )
        context["link_open_states"] = ENROL_STATES
        context["link_form"] = link_form or EnrolmentLinkForm(
            initial={"consent_text": link.consent_text if link else ""}
        )
        context["form"] = form or ParticipantForm(
            allowed=allowed,
            initial={"consent_text": link.consent_text if link else ""},
        )
        context["import_form"] = ImportForm()
    template = "backlog/participants.html"
    if request.htmx and request.htmx.target == "participant-list":
        template += "#list"
    return TemplateResponse(request, template, context, status=status)


def _plan(request: AuthedHtmxRequest, plan_id: int, perm: Perm = Perm.PLAN_VIEW) -> PilotPlan:
    return plan_for_user(
        user=request.user,
        plan_id=plan_id,
        perm=perm,
        queryset=PilotPlan.objects.select_related("cohort"),  # the target size, opt-in rule
    )


@login_required
@require_http_methods(["GET"])
def participants_page(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    return _render(request, _plan(request, plan_id))


@login_required
@require_http_methods(["POST"])
def participant_new(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_MANAGE)
    form = ParticipantForm(request.POST, allowed=plan_segment_values(plan.pk))
    if form.is_valid():
        data = form.cleaned_data
        try:
            participant = participant_add(
                plan_id=plan.pk,
                user=request.user,
                name=data["name"],
                email=data["email"],
                external_ref=data["external_ref"],
                segments={d: data.get(d, "") for d in DIMENSIONS if d in form.fields},
                consent=data["consent"],
                consent_text=data["consent_text"],
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
    if form.errors:
        return _render(request, plan, form=form, status=UNPROCESSABLE)
    messages.success(request, f"Added {participant.display_name}.")
    return redirect(_page_url(plan))


@login_required
@require_http_methods(["POST"])
def participant_import(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_MANAGE)
    form = ImportForm(request.POST, request.FILES)
    errors: list[str] = []
    if not form.is_valid():
        errors = ["Choose a CSV file to import."]
    else:
        try:
            text = upload_text(form.cleaned_data["file"])
            result = participants_csv_import(plan_id=plan.pk, user=request.user, text=text)
        except ValidationError as error:
            errors = error.messages
    if errors:
        return _render(request, plan, errors=errors, status=UNPROCESSABLE)
    messages.success(
        request, f"Imported: {result.created} added, {result.unchanged} already in the cohort."
    )
    return redirect(_page_url(plan))


@login_required
@require_http_methods(["GET"])
def participant_export(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_VIEW)
    try:
        rows = selectors.participants_for_plan(plan_id=plan.pk, filters=request.GET)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400, content_type="text/plain")
    response = HttpResponse(participants_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="participants-plan-{plan.pk}.csv"'
    return response


def _participant(plan: PilotPlan, participant_id: int) -> Participant:
    participant = selectors.participant_get(plan_id=plan.pk, participant_id=participant_id)
    if participant is None:
        raise Http404("No such participant")
    return participant


def _versioned(
    request: AuthedHtmxRequest, plan: PilotPlan, participant_id: int, action: Any
) -> Participant | HttpResponse:
    """Run ``action`` (withdraw or erase) at the version the form was rendered with: the
    participant, or the page with the conflict (409)."""
    participant = _participant(plan, participant_id)
    form = VersionForm(request.POST)
    version = form.cleaned_data["version"] if form.is_valid() else participant.version
    try:
        done = action(
            plan_id=plan.pk,
            participant_id=participant.pk,
            user=request.user,
            expected_version=version,
        )
    except (ParticipantConflict, Conflict) as error:
        return _render(request, plan, errors=[error.message], status=409)
    return done


@login_required
@require_http_methods(["POST"])
def participant_withdraw_view(
    request: AuthedHtmxRequest, plan_id: int, participant_id: int
) -> HttpResponse:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_MANAGE)
    result = _versioned(request, plan, participant_id, participant_withdraw)
    if isinstance(result, HttpResponse):
        return result
    messages.success(request, f"{result.display_name} has withdrawn from the pilot.")
    return redirect(f"{_page_url(plan)}?{request.POST.get('return_query', '')}".rstrip("?"))


@login_required
@require_http_methods(["GET", "POST"])
def participant_erase_view(
    request: AuthedHtmxRequest, plan_id: int, participant_id: int
) -> HttpResponse:
    """GET: the confirmation page (who, and what will be gone); POST: erase."""
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_ERASE)
    participant = _participant(plan, participant_id)
    if request.method == "GET":
        context = {"plan": plan, "participant": participant}
        return TemplateResponse(request, "backlog/participant_erase.html", context)
    result = _versioned(request, plan, participant.pk, participant_erase)
    if isinstance(result, HttpResponse):
        return result
    messages.success(request, f"Erased the personal data of participant #{result.pk}.")
    return redirect(_page_url(plan))


@login_required
@require_http_methods(["POST"])
def enrolment_link_view(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Create the link or save its consent text; ``action=regenerate`` / ``revoke``."""
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_MANAGE)
    action = request.POST.get("action", "save")
    try:
        if action == "regenerate":
            enrolment_link_regenerate(plan_id=plan.pk, user=request.user)
            messages.success(request, "New enrolment link: the old one no longer works.")
        elif action == "revoke":
            enrolment_link_revoke(plan_id=plan.pk, user=request.user)
            messages.success(request, "Enrolment link revoked: nobody can join through it.")
        else:
            form = EnrolmentLinkForm(request.POST)
            if not form.is_valid():
                return _render(request, plan, link_form=form, status=UNPROCESSABLE)
            enrolment_link_save(
                plan_id=plan.pk, user=request.user, consent_text=form.cleaned_data["consent_text"]
            )
            messages.success(request, "Enrolment link saved.")
    except ValidationError as error:
        return _render(request, plan, errors=error.messages, status=UNPROCESSABLE)
    return redirect(f"{_page_url(plan)}#enrolment-link")


P = "plans/<int:plan_id>/participants"
urlpatterns = [
    path(P, participants_page, name="participants"),
    path(f"{P}/new", participant_new, name="participant_new"),
    path(f"{P}/import", participant_import, name="participant_import"),
    path(f"{P}/export.csv", participant_export, name="participant_export"),
    path(f"{P}/link", enrolment_link_view, name="enrolment_link"),
    path(
        f"{P}/<int:participant_id>/withdraw", participant_withdraw_view, name="participant_withdraw"
    ),
    path(f"{P}/<int:participant_id>/erase", participant_erase_view, name="participant_erase"),
]
