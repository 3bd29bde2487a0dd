"""The post-pilot review over the API: the same services, rules and words as its page.

- ``GET plans/{plan_id}/post-pilot-review``: the review, with its ``ETag``. Before the decision
  there is none (404 saying so); a Decided plan that lacks one gets it now, as on the page;
- ``PATCH plans/{plan_id}/post-pilot-review``: write its parts (findings, what went well, what to
  improve; the parts not sent stay as they are), the ETag in ``If-Match`` (428 without, 412 when
  stale). The team's writers, while the plan is Decided (409 otherwise);
- ``POST plans/{plan_id}/post-pilot-review/complete``: complete it once all three parts are
  written (400 naming each missing part). The Product Owner or Scrum Master.

Everyone who reads the plan reads its review; for anyone else the plan does not exist (404).
People only: a team API key reads it, never writes it (``Perm.POSTPILOT_EDIT`` /
``Perm.POSTPILOT_COMPLETE``).
"""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import UserOutputSerializer
from accounts.models import User
from accounts.permissions import Perm, require
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.api_preconditions import IF_MATCH, etag_header, if_match_versions, with_etag
from core.exceptions import PreconditionFailed
from decisions.models.review import PART_MAX_LENGTH, PARTS, PostPilotReview
from decisions.services.review import (
    plan_today,
    post_pilot_review_complete,
    post_pilot_review_due_state,
    post_pilot_review_for_plan,
    post_pilot_review_save,
)
from pilots.access import plan_for_user
from pilots.models import PilotPlan

TAGS = ["post-pilot review"]
ETAG = etag_header([200], "The review's version: send it back in If-Match to change it.")
CONFLICT = OpenApiResponse(
    ErrorOutputSerializer,
    description="The plan is not Decided (the review is written between the decision and "
    "closing), or the review is already completed. Nothing changed.",
)
STALE = OpenApiResponse(
    ErrorOutputSerializer,
    description="If-Match names a version that is no longer current: someone else saved "
    "first. Nothing was saved.",
)


class DueStateOutputSerializer(serializers.Serializer):
    value = serializers.ChoiceField(choices=["completed", "open", "due_today", "overdue"])
    label = serializers.CharField()
    words = serializers.CharField()


class PostPilotReviewOutputSerializer(serializers.Serializer):
    plan = serializers.IntegerField(source="plan_id")
    findings = serializers.CharField()
    went_well = serializers.CharField(help_text="What went well.")
    to_improve = serializers.CharField(help_text="What to improve.")
    due_on = serializers.DateField(help_text="The last business day to complete it (local).")
    state = DueStateOutputSerializer(help_text="Where the review stands, in words.")
    parts_written = serializers.IntegerField()
    parts_total = serializers.IntegerField()
    is_completed = serializers.BooleanField()
    completed_by = UserOutputSerializer(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField()
    updated_by = UserOutputSerializer(allow_null=True)
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class PostPilotReviewInputSerializer(serializers.Serializer):
    findings = serializers.CharField(
        max_length=PART_MAX_LENGTH, allow_blank=True, required=False, trim_whitespace=False
    )
    went_well = serializers.CharField(
        max_length=PART_MAX_LENGTH, allow_blank=True, required=False, trim_whitespace=False
    )
    to_improve = serializers.CharField(
        max_length=PART_MAX_LENGTH, allow_blank=True, required=False, trim_whitespace=False
    )


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _review(plan: PilotPlan) -> PostPilotReview:
    review = post_pilot_review_for_plan(plan)
    if review is None:
        raise Http404("The post-pilot review opens when the decision is recorded.")
    return review


def _out(plan: PilotPlan, review: PostPilotReview) -> Response:
    review.state = post_pilot_review_due_state(review, today=plan_today(plan))  # type: ignore[attr-defined]
    return with_etag(Response(PostPilotReviewOutputSerializer(review).data), review.version)


def _require_current(request: Request, review: PostPilotReview) -> None:
    if review.version not in if_match_versions(request):
        who = review.updated_by.display_name if review.updated_by else "Someone"
        raise PreconditionFailed(
            f"{who} saved this review since you read it (now version {review.version}): "
            "read it again and reapply your change."
        )


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_post_pilot_review_retrieve",
    summary="The plan's post-pilot review",
    description="404 before the decision is recorded (the review opens then).",
    parameters=[ETAG],
    responses={200: PostPilotReviewOutputSerializer, 404: NOT_FOUND},
)
@extend_schema(
    tags=TAGS,
    methods=["PATCH"],
    operation_id="plans_post_pilot_review_update",
    summary="Write the post-pilot review",
    description="The team's writers (not stakeholders), while the plan is Decided. The parts "
    "not sent stay as they are; a completed review keeps all three parts written.",
    request=PostPilotReviewInputSerializer,
    parameters=[IF_MATCH, ETAG],
    responses={
        200: PostPilotReviewOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
        412: STALE,
    },
)
@api_view(["GET", "PATCH"])
def post_pilot_review(request: Request, plan_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id)
    if request.method == "GET":
        return _out(plan, _review(plan))
    require(plan.viewer_role, Perm.POSTPILOT_EDIT)  # type: ignore[attr-defined]  # 403 first
    payload = PostPilotReviewInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    review = _review(plan)
    _require_current(request, review)
    parts = {field: getattr(review, field) for field, _label, _words in PARTS}
    saved = post_pilot_review_save(
        review=review,
        user=_user(request),
        expected_version=review.version,
        **(parts | payload.validated_data),
    )
    return _out(plan, saved)


@extend_schema(
    tags=TAGS,
    operation_id="plans_post_pilot_review_complete",
    summary="Complete the post-pilot review",
    description="The Product Owner or Scrum Master, once findings, what went well and what to "
    "improve are all written (400 names each missing part). The pilot may then close. Send the "
    "ETag of the review you read in `If-Match`: you complete what you read.",
    request=None,
    parameters=[IF_MATCH, ETAG],
    responses={
        200: PostPilotReviewOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
        412: STALE,
    },
)
@api_view(["POST"])
def post_pilot_review_completion(request: Request, plan_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id)
    require(plan.viewer_role, Perm.POSTPILOT_COMPLETE)  # type: ignore[attr-defined]
    review = _review(plan)
    _require_current(request, review)
    return _out(plan, post_pilot_review_complete(review=review, user=_user(request)))


urlpatterns = [
    path("plans/<int:plan_id>/post-pilot-review", post_pilot_review, name="plan-post-pilot-review"),
    path(
        "plans/<int:plan_id>/post-pilot-review/complete",
        post_pilot_review_completion,
        name="plan-post-pilot-review-complete",
    ),
]
