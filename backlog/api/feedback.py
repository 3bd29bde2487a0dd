"""A plan's cohort feedback over the API, for the team (the public submission endpoint is
``decisions.api.feedback``).

- ``GET plans/{plan_id}/feedback``: newest first, paginated; filters ``noise``, ``tagged``,
  ``comment``, ``item`` (``yes`` / ``no``) and ``tag``. Contacts are masked for roles without
  ``feedback.contact_view`` (stakeholders), as on the triage page.
- ``PATCH plans/{plan_id}/feedback/{feedback_id}``: ``tags`` and/or ``noise``, with ``If-Match``
  (428 without, 412 when stale).
- ``POST plans/{plan_id}/feedback/{feedback_id}/backlog-item``: turn it into a backlog item
  (201 with the item; 409 if it already is one).

Members of the plan's team only (404 for anyone else, invited guests included); people only.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.models import User
from backlog import selectors_feedback as selectors
from backlog.api.items import BacklogItemOutputSerializer
from backlog.models import FEEDBACK_TAG_MAX, FEEDBACK_TAGS_MAX, BacklogItem, Feedback
from backlog.services_feedback import (
    FeedbackConflict,
    feedback_plan_for_member,
    feedback_to_backlog_item,
    feedback_triage,
)
from core.api import FORBIDDEN, INVALID, NOT_FOUND, PRECONDITION_REQUIRED, ErrorOutputSerializer
from core.api_preconditions import IF_MATCH, etag_header, if_match_versions, with_etag
from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginated

TAGS = ["feedback"]
FILTER_PARAMETERS = [
    *(
        OpenApiParameter(
            name, OpenApiTypes.STR, required=False, enum=["yes", "no"], description=label + "?"
        )
        for name, (label, _q) in selectors.YES_NO_FILTERS.items()
    ),
    OpenApiParameter("tag", OpenApiTypes.STR, required=False, description="Has this tag."),
]
ETAG = etag_header([200], 'The feedback\'s version, e.g. `"2"`: send it back in If-Match.')


class FeedbackOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    plan = serializers.IntegerField(source="plan_id")
    created_at = serializers.DateTimeField()
    csat = serializers.IntegerField(allow_null=True)
    nps = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField()
    contact = serializers.SerializerMethodField(
        help_text="Masked (j***@example.com) for roles that may not see personal data."
    )
    tags = serializers.ListField(child=serializers.CharField())
    noise = serializers.BooleanField()
    backlog_item = serializers.IntegerField(source="backlog_item_id", allow_null=True)
    backlog_item_reference = serializers.SerializerMethodField()
    version = serializers.IntegerField()

    def get_contact(self, feedback: Feedback) -> str:
        return selectors.contact_for(self.context.get("role"), feedback.contact)

    def get_backlog_item_reference(self, feedback: Feedback) -> str | None:
        item = feedback.backlog_item
        return item.reference if item is not None else None


class FeedbackPatchSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=FEEDBACK_TAG_MAX, allow_blank=True),
        max_length=FEEDBACK_TAGS_MAX,
        required=False,
    )
    noise = serializers.BooleanField(required=False)


class FeedbackItemInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=BacklogItem.Kind.choices, required=False, default=BacklogItem.Kind.IMPROVEMENT
    )


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _out(feedback: Feedback, role: str) -> Response:
    data = FeedbackOutputSerializer(feedback, context={"role": role}).data
    return with_etag(Response(data), feedback.version)


def _feedback(plan_id: int, feedback_id: int) -> Feedback:
    feedback = (
        Feedback.objects.select_related("backlog_item")
        .filter(plan_id=plan_id, pk=feedback_id)
        .first()
    )
    if feedback is None:
        raise Http404("No such feedback")
    return feedback


ORDERING = {"created_at": "created_at", "csat": "csat", "nps": "nps"}
DEFAULT = ["-created_at"]


@extend_schema(
    tags=TAGS, operation_id="plans_feedback_list", summary="The plan's cohort feedback",
    parameters=[PAGE_PARAMETER, *FILTER_PARAMETERS, ordering_parameter(ORDERING, DEFAULT)],
    responses={200: paginated(FeedbackOutputSerializer), 400: INVALID, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET"])
def feedback_list(request: Request, plan_id: int) -> Response:
    plan, role = feedback_plan_for_member(user=_user(request), plan_id=plan_id)
    items = selectors.feedback_list(plan_id=plan.pk, filters=request.query_params)
    items = ordered(request, items, fields=ORDERING, default=DEFAULT)
    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(items.select_related("backlog_item"), request)
    data = FeedbackOutputSerializer(page, many=True, context={"role": role}).data
    return paginator.get_paginated_response(data)


@extend_schema(
    tags=TAGS, methods=["GET"], operation_id="plans_feedback_retrieve", summary="One feedback",
    parameters=[ETAG], responses={200: FeedbackOutputSerializer, 404: NOT_FOUND},
)  # fmt: skip
@extend_schema(
    tags=TAGS, methods=["PATCH"], operation_id="plans_feedback_update",
    summary="Tag a feedback or mark it as noise", request=FeedbackPatchSerializer,
    parameters=[IF_MATCH, ETAG],
    responses={
        200: FeedbackOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND,
        412: OpenApiResponse(ErrorOutputSerializer, description="Changed since your version."),
        428: PRECONDITION_REQUIRED,
    },
)  # fmt: skip
@api_view(["GET", "PATCH"])
def feedback_detail(request: Request, plan_id: int, feedback_id: int) -> Response:
    plan, role = feedback_plan_for_member(user=_user(request), plan_id=plan_id)
    feedback = _feedback(plan.pk, feedback_id)
    if request.method == "GET":
        return _out(feedback, role)
    payload = FeedbackPatchSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    values: dict[str, Any] = dict(payload.validated_data)
    versions = if_match_versions(request)
    if feedback.version not in versions:
        raise FeedbackConflict(feedback)
    feedback = feedback_triage(
        plan_id=plan.pk, feedback_id=feedback.pk, user=_user(request),
        expected_version=feedback.version, **values,
    )  # fmt: skip
    return _out(_feedback(plan.pk, feedback.pk), role)


@extend_schema(
    tags=TAGS, operation_id="plans_feedback_backlog_item",
    summary="Turn a feedback into a backlog item",
    description="Origin “Cohort feedback”, the plan set, the title from the comment's first "
    "line, the comment and scores in the description; the feedback then names the item.",
    request=FeedbackItemInputSerializer,
    responses={
        201: BacklogItemOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND,
        409: OpenApiResponse(ErrorOutputSerializer, description="Already a backlog item."),
    },
)  # fmt: skip
@api_view(["POST"])
def feedback_backlog_item(request: Request, plan_id: int, feedback_id: int) -> Response:
    plan, _role = feedback_plan_for_member(user=_user(request), plan_id=plan_id)
    feedback = _feedback(plan.pk, feedback_id)
    payload = FeedbackItemInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    item = feedback_to_backlog_item(
        plan_id=plan.pk, feedback_id=feedback.pk, user=_user(request),
        kind=payload.validated_data["type"],
    )  # fmt: skip
    return with_etag(
        Response(BacklogItemOutputSerializer(item).data, status=status.HTTP_201_CREATED),
        item.version,
    )


P = "plans/<int:plan_id>/feedback"
urlpatterns = [
    path(P, feedback_list, name="plan-feedback"),
    path(f"{P}/<int:feedback_id>", feedback_detail, name="plan-feedback-detail"),
    path(
        f"{P}/<int:feedback_id>/backlog-item",
        feedback_backlog_item,
        name="plan-feedback-backlog-item",
    ),
]
