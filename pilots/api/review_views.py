"""Review, sign-off, lifecycle and history of a plan over the REST API.

Resources under /api/v1/ (pilots/api/review_urls.py):

- ``plans/{id}/reviews``: the three reviews (notes, checklist, open concerns, version), each with
  its active sign-off and its voided ones;
- ``plans/{id}/reviews/{kind}`` (PATCH): a reviewer's notes / checklist / concerns. If-Match names
  the review's version: missing → 428, stale → 412, nothing saved;
- ``plans/{id}/reviews/{kind}/sign-off`` (POST): sign the review at the plan's current version;
  refused (409) with every reason when it may not be signed now;
- ``plans/{id}/transitions``: the lifecycle record and the next steps with what each still lacks
  (GET); take a step (POST; 409 listing what is missing, 403 for a role that may not);
- ``plans/{id}/timebox-extensions``: the time-box's extensions (GET); extend it (POST: a new
  last day and a reason, both required; 409 unless running or just ended by itself);
- ``plans/{id}/history``: the audit trail (trigger-recorded, django-pghistory), newest first.

Access goes through ``pilots.access.plan_for_user`` like every other view: not a member → 404,
not logged in → 403, a role that may not → 403. The services enforce roles, guards and
segregation of duties; these views only translate.
"""

from __future__ import annotations

from typing import Any

import django_filters
import pghistory.models
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import Perm, require
from core.api import FORBIDDEN, INVALID, NOT_FOUND, PRECONDITION_REQUIRED, ErrorOutputSerializer
from core.api_preconditions import IF_MATCH, etag_header, if_match_versions, with_etag
from core.exceptions import Conflict, PreconditionFailed
from core.listing import IdFilter, filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from core.problems import STEP_REFUSED, problem_response
from pilots.access import plan_for_user
from pilots.api.errors import PRECONDITION_FAILED
from pilots.api.review_serializers import (
    HistoryEventSerializer,
    ReviewInputSerializer,
    ReviewOutputSerializer,
    ReviewsOutputSerializer,
    SignOffOutputSerializer,
    TimeboxExtensionInputSerializer,
    TimeboxExtensionOutputSerializer,
    TransitionInputSerializer,
    TransitionOutputSerializer,
    TransitionsOutputSerializer,
)
from pilots.models import PilotPlan, PlanTransition, Review, SignOff, TimeboxExtension
from pilots.review import REVIEWS
from pilots.selectors_review import QUESTIONS
from pilots.services import lifecycle
from pilots.services import review as review_services
from pilots.services.timebox import timebox_extend

TAGS = ["review and lifecycle"]


class StepRefusedOutputSerializer(ErrorOutputSerializer):
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Every missing thing.")
    confirm_with = serializers.CharField(
        required=False,
        help_text="A step that asks a question: the flag that answers it (send it true).",
    )


CONFLICT = OpenApiResponse(
    StepRefusedOutputSerializer,
    description="Refused in the plan's current state (type `urn:pilotplan:problem:step-refused`): "
    "`detail` says why, `reasons` lists every missing thing. Nothing changed.",
)
KIND_PARAMETER = OpenApiParameter(
    "kind", str, OpenApiParameter.PATH, enum=list(REVIEWS), description="Which review."
)
REVIEW_ETAG = etag_header([200], 'The review\'s version, e.g. `"3"`: send it back in If-Match.')


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _plan(request: Request, plan_id: int, *, edit: bool = False) -> PilotPlan:
    return plan_for_user(
        user=_user(request), plan_id=plan_id, perm=Perm.PLAN_EDIT if edit else Perm.PLAN_VIEW
    )


def _spec(kind: str) -> Any:
    spec = REVIEWS.get(kind)
    if spec is None:
        raise Http404(f"No review “{kind}”: one of {', '.join(REVIEWS)}.")
    return spec


def _review_data(kind: str, review: Review | None, sign_offs: list[SignOff]) -> dict[str, Any]:
    spec = REVIEWS[kind]
    answers = review.checklist if review is not None else {}
    notes = review.checklist_notes if review is not None else {}
    mine = [s for s in sign_offs if s.kind == kind]
    return {
        "kind": kind,
        "label": str(spec.kind.label),
        "roles": sorted(spec.roles),
        "covers": sorted(spec.covers),
        "notes": review.notes if review else "",
        "checklist": [
            {
                "key": key,
                "question": question,
                "answer": answers.get(key),
                "note": notes.get(key, ""),
            }
            for key, question in spec.checklist
        ],
        "concerns": review.concerns if review else "",
        # A review nobody has written yet is created at version 1 by the first save.
        "version": review.version if review else 1,
        "updated_by": review.updated_by if review else None,
        "updated_at": review.updated_at if review else None,
        "sign_off": next((s for s in mine if s.voided_at is None), None),
        "voided_sign_offs": [s for s in mine if s.voided_at is not None],
    }


def _sign_offs(plan: PilotPlan) -> list[SignOff]:
    return list(
        SignOff.objects.filter(plan=plan)
        .select_related("signed_by", "voided_by")
        .order_by("-signed_at", "-pk")
    )


# --- reviews -------------------------------------------------------------------------------------


@extend_schema(
    tags=TAGS,
    operation_id="plans_reviews_list",
    summary="The plan's three reviews and their sign-offs",
    responses={200: ReviewsOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET"])
def review_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    reviews = {r.kind: r for r in Review.objects.filter(plan=plan).select_related("updated_by")}
    sign_offs = _sign_offs(plan)
    data = {
        "plan_version": plan.version,
        "reviews": [_review_data(kind, reviews.get(kind), sign_offs) for kind in REVIEWS],
    }
    return Response(ReviewsOutputSerializer(data).data)


@extend_schema(
    tags=TAGS,
    operation_id="plans_reviews_partial_update",
    summary="Fill in your review: notes, checklist answers, open concerns",
    description="Only the team's members with the review's role (see `roles`). Open concerns "
    "block the sign-off until they are cleared.",
    parameters=[KIND_PARAMETER, IF_MATCH, REVIEW_ETAG],
    request=ReviewInputSerializer,
    responses={
        200: ReviewOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        412: PRECONDITION_FAILED,
        428: PRECONDITION_REQUIRED,
    },
)
@api_view(["PATCH"])
def review_detail(request: Request, plan_id: int, kind: str) -> Response:
    plan = _plan(request, plan_id, edit=True)
    spec = _spec(kind)
    require(plan.viewer_role, spec.perm)  # type: ignore[attr-defined]  (403 before 428)
    versions = if_match_versions(request)  # 428 without If-Match
    review = Review.objects.filter(plan=plan, kind=kind).first()
    current = review.version if review is not None else 1
    if current not in versions:
        raise PreconditionFailed(
            f"The {spec.short_label} review is at version {current} now, not the one you sent: "
            "read it again, reapply your change and send its new version. Nothing was saved."
        )
    payload = ReviewInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    review = review_services.review_update(
        plan=plan,
        kind=kind,
        user=_user(request),
        expected_version=current,
        values=dict(payload.validated_data),
    )
    data = _review_data(kind, review, _sign_offs(plan))
    return with_etag(Response(ReviewOutputSerializer(data).data), review.version)


@extend_schema(
    tags=TAGS,
    operation_id="plans_reviews_sign_off",
    summary="Sign off a review at the plan's current version",
    description="Records who signed, when, and the exact plan and section versions approved. An "
    "edit to a covered section later voids it. Refused (409) while the plan is not in review, "
    "with open concerns, or when you edited covered content this round and another member with "
    "the role could sign (segregation of duties).",
    parameters=[KIND_PARAMETER],
    request=None,
    responses={201: SignOffOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
@api_view(["POST"])
def review_sign_off(request: Request, plan_id: int, kind: str) -> Response:
    plan = _plan(request, plan_id, edit=True)
    _spec(kind)
    user = _user(request)
    try:
        sign_off = review_services.signoff_create(plan=plan, kind=kind, user=user)
    except Conflict as exc:
        plan.refresh_from_db()
        reasons = review_services.signoff_blockers(plan=plan, kind=kind, user=user)
        return problem_response(409, exc.message, STEP_REFUSED, reasons=reasons or [exc.message])
    sign_off = SignOff.objects.select_related("signed_by", "voided_by").get(pk=sign_off.pk)
    return Response(SignOffOutputSerializer(sign_off).data, status=status.HTTP_201_CREATED)


# --- lifecycle -----------------------------------------------------------------------------------


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_transitions_list",
    summary="The plan's lifecycle: steps taken, and the next steps with what each lacks",
    responses={200: TransitionsOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plans_transitions_create",
    summary="Take a lifecycle step",
    description="submit, withdraw, approve, start, evaluate, close. Refused (409) with "
    "everything that is missing; 403 when your role may not take this step. `decide` is "
    "answered 400 on `action`: the decision is recorded, with the evidence it rests on, at "
    "`POST /api/v1/plans/{id}/decisions`.",
    request=TransitionInputSerializer,
    responses={
        201: TransitionOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["GET", "POST"])
def transition_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    user = _user(request)
    if request.method == "POST":
        return _transition_create(request, plan, user)
    transitions = PlanTransition.objects.filter(plan=plan).select_related("actor")
    available = [
        {
            "action": step.action,
            "label": step.label,
            "target": step.target,
            "blockers": lifecycle.transition_blockers(plan=plan, action=step.action, user=user),
        }
        for step in lifecycle.transitions_from(plan.status)
    ]
    data = {"status": plan.status, "transitions": list(transitions), "available": available}
    return Response(TransitionsOutputSerializer(data).data)


def _transition_create(request: Request, plan: PilotPlan, user: User) -> Response:
    payload = TransitionInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = payload.validated_data
    try:
        transition = lifecycle.plan_transition(
            plan=plan,
            action=data["action"],
            user=user,
            reason=data["reason"],
            decision=data["decision"],
            override_gaps=data["override_gaps"],
            confirm_early_start=data["confirm_early_start"],
        )
    except Conflict as exc:
        plan.refresh_from_db()
        reasons = lifecycle.transition_blockers(plan=plan, action=data["action"], user=user)
        extra: dict[str, Any] = {"reasons": reasons or [exc.message]}
        # A step that asks a question: which flag answers it (with a reason, for submit).
        for action, keyword in QUESTIONS:
            if data["action"] == action and not lifecycle.transition_blockers(
                plan=plan, action=action, user=user, **{keyword: True}
            ):
                extra["confirm_with"] = keyword
        return problem_response(409, exc.message, STEP_REFUSED, **extra)
    transition = PlanTransition.objects.select_related("actor").get(pk=transition.pk)
    return Response(TransitionOutputSerializer(transition).data, status=status.HTTP_201_CREATED)


# --- history -------------------------------------------------------------------------------------


class HistoryFilter(django_filters.FilterSet):
    label = django_filters.CharFilter(
        field_name="pgh_label", label="Only events with this label (`insert`, `update`, …)."
    )
    model = django_filters.CharFilter(
        field_name="pgh_model", label="Only events of this record type (the event's `model`)."
    )
    since = django_filters.IsoDateTimeFilter(
        field_name="pgh_created_at", lookup_expr="gte", label="At or after this moment."
    )
    before = django_filters.IsoDateTimeFilter(
        field_name="pgh_created_at", lookup_expr="lt", label="Before this moment."
    )


class TimeboxExtensionFilter(django_filters.FilterSet):
    actor = IdFilter(field_name="actor_id", label="Only this person's extensions.")
    since = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="gte", label="Made at or after this moment."
    )


EXTENSION_ORDERING = {"at": "at", "new_end_date": "new_end_date"}
EXTENSION_DEFAULT = ["at"]
HISTORY_ORDERING = {"at": "pgh_created_at"}
HISTORY_DEFAULT = ["-at"]


@extend_schema(
    tags=TAGS,
    operation_id="plans_history_list",
    summary="The plan's audit trail, newest first",
    description="Every recorded change to the plan and everything that references it (sections, "
    "rows, reviews, sign-offs), with the database trigger's before/after `diff` "
    "(`{field: [before, after]}`) and the id of the user whose request made it.",
    parameters=[
        *filter_parameters(HistoryFilter),
        ordering_parameter(HISTORY_ORDERING, HISTORY_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(HistoryEventSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@api_view(["GET"])
def history_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    events = filtered(request, HistoryFilter, pghistory.models.Events.objects.references(plan))
    events = ordered(request, events, fields=HISTORY_ORDERING, default=HISTORY_DEFAULT)
    return paginate(request, events, HistoryEventSerializer)


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_timebox_extensions_list",
    summary="The extensions of the plan's time-box, oldest first",
    parameters=[
        *filter_parameters(TimeboxExtensionFilter),
        ordering_parameter(EXTENSION_ORDERING, EXTENSION_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(TimeboxExtensionOutputSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plans_timebox_extensions_create",
    summary="Extend the time-box: a new last day and the reason",
    description="For the Product Owner and Scrum Master of a running pilot, or one whose "
    "time-box has just ended by itself (it returns to running). `new_end_date` must be a "
    "business day after the current end, not in the past; `reason` is required.",
    request=TimeboxExtensionInputSerializer,
    responses={
        201: TimeboxExtensionOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["GET", "POST"])
def timebox_extension_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    if request.method == "POST":
        payload = TimeboxExtensionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        extension = timebox_extend(
            plan=plan,
            user=_user(request),
            new_end_date=payload.validated_data["new_end_date"],
            reason=payload.validated_data["reason"],
        )
        return Response(
            TimeboxExtensionOutputSerializer(extension).data, status=status.HTTP_201_CREATED
        )
    extensions = TimeboxExtension.objects.filter(plan=plan).select_related("actor")
    extensions = filtered(request, TimeboxExtensionFilter, extensions)
    extensions = ordered(request, extensions, fields=EXTENSION_ORDERING, default=EXTENSION_DEFAULT)
    return paginate(request, extensions, TimeboxExtensionOutputSerializer)
