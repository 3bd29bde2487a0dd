"""The go/no-go decision over the API: the same service, rules and words as the decision page.

- ``GET plans/{plan_id}/decisions``: the plan's decision records, newest first (the current
  decision, then each one it corrected), paginated;
- ``POST plans/{plan_id}/decisions``: record the decision, or correct it (``supersedes``: the
  current record's id). Only the plan's decision owner (403 with words for anyone else);
  400 naming the field (an override reason is demanded when the outcome goes against the
  recommendation); 409 when the plan's state or the current record says no;
- ``GET plans/{plan_id}/decisions/{record_id}``: one record with its frozen evidence, hashes,
  the records it corrects and that correct it, and ``intact`` (the hashes still match);
- ``GET / POST plans/{plan_id}/decision-comments``: the decision page's comments (every team
  member may write; invited stakeholders read).

Readable by everyone who reads the plan; for anyone else the plan does not exist (404). People
only: a team API key may not decide (the session's own person decides).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import UserOutputSerializer
from accounts.models import User
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.listing import IdFilter, filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from decisions import selectors
from decisions.models import DecisionRecord
from decisions.services.decision import (
    TEXT_MAX,
    decision_comment_add,
    decision_record,
    decision_record_verify,
    decision_require_owner,
)
from pilots.access import plan_for_user
from pilots.models import PilotPlan

TAGS = ["decisions"]

CONFLICT = OpenApiResponse(
    ErrorOutputSerializer,
    description="Refused in the plan's current state (not Running or Evaluating for a first "
    "decision, not Decided for a correction, or the correction does not supersede the current "
    "record): `detail` says why. Nothing changed.",
)


# --- shapes --------------------------------------------------------------------------------------


class DecisionRecordOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    plan = serializers.IntegerField(source="plan_id")
    outcome = serializers.ChoiceField(choices=DecisionRecord.Outcome.choices)
    outcome_label = serializers.CharField(source="get_outcome_display")
    rationale = serializers.CharField()
    override_reason = serializers.CharField(
        help_text="Why the decision goes against the recommendation; empty when it does not."
    )
    is_override = serializers.BooleanField(help_text="The outcome differs from the recommendation.")
    recommendation = serializers.ChoiceField(
        choices=DecisionRecord.Recommendation.choices,
        help_text="The decision page's recommendation when the decision was recorded.",
    )
    recommendation_label = serializers.CharField(source="get_recommendation_display")
    recommendation_rule = serializers.CharField(help_text="The rule that produced it.")
    recommendation_words = serializers.CharField(help_text="The rule's explanation, in words.")
    evidence_hash = serializers.CharField(
        help_text="SHA-256 of the frozen evidence (canonical JSON)."
    )
    supersedes = serializers.IntegerField(
        source="supersedes_id", allow_null=True, help_text="The record this one corrects."
    )
    supersedes_hash = serializers.CharField(
        help_text="The corrected record's `record_hash`; empty for a first decision."
    )
    superseded_by = serializers.SerializerMethodField(
        help_text="The record that corrects this one; null for the current decision."
    )
    record_hash = serializers.CharField(help_text="SHA-256 over every other field.")
    recorded_by = UserOutputSerializer()
    recorded_at = serializers.DateTimeField()

    def get_superseded_by(self, record: DecisionRecord) -> int | None:
        later = getattr(record, "superseded_by", None)  # a reverse one-to-one: absent → None
        return later.pk if later is not None else None


class DecisionRecordDetailOutputSerializer(DecisionRecordOutputSerializer):
    evidence = serializers.JSONField(
        help_text="The decision page's evidence as it stood: every criterion's value, verdict, "
        "interval and sample size, the rollback triggers and their episodes, defects, "
        "sign-offs and what was missing."
    )
    intact = serializers.BooleanField(
        help_text="The hashes of this record and of every record it corrects still match."
    )
    problems = serializers.ListField(
        child=serializers.CharField(), help_text="What no longer matches, in words."
    )
    iteration = serializers.IntegerField(
        allow_null=True, help_text="The plan iteration an Iterate decision drafted."
    )


class DecisionRecordInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=DecisionRecord.Outcome.choices)
    rationale = serializers.CharField(
        max_length=TEXT_MAX, trim_whitespace=False, help_text="Why: the record keeps it."
    )
    override_reason = serializers.CharField(
        max_length=TEXT_MAX,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="Required when the outcome goes against the recommendation.",
    )
    supersedes = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="For a correction: the id of the current record, which this one supersedes.",
    )


class DecisionCommentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = UserOutputSerializer()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class DecisionCommentInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=TEXT_MAX, allow_blank=True)


class DecisionRecordFilter(django_filters.FilterSet):
    outcome = django_filters.ChoiceFilter(
        choices=DecisionRecord.Outcome.choices, label="Only records with this outcome."
    )
    current = django_filters.BooleanFilter(
        field_name="superseded_by",
        lookup_expr="isnull",
        label="`true`: only the current decision; `false`: only the records it corrected.",
    )


class DecisionCommentFilter(django_filters.FilterSet):
    author = IdFilter(field_name="author_id", label="Only this person's.")
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Written at or after this moment."
    )


RECORD_ORDERING = {"recorded_at": "recorded_at"}
RECORD_DEFAULT = ["-recorded_at"]
COMMENT_ORDERING = {"created_at": "created_at"}
COMMENT_DEFAULT = ["created_at"]


# --- views ---------------------------------------------------------------------------------------


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _plan(request: Request, plan_id: int) -> PilotPlan:
    return plan_for_user(user=_user(request), plan_id=plan_id)


def _detail(record: DecisionRecord) -> dict[str, Any]:
    """The record with its evidence, whether its chain is intact, and the iteration it drafted."""
    problems = decision_record_verify(record)
    iteration = selectors.decision_iteration(record)
    record.intact = not problems  # type: ignore[attr-defined]
    record.problems = problems  # type: ignore[attr-defined]
    record.iteration = iteration.pk if iteration is not None else None  # type: ignore[attr-defined]
    return DecisionRecordDetailOutputSerializer(record).data


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_decisions_list",
    summary="The plan's decision records, newest first",
    description="The current decision first, then each record it corrected (records are never "
    "edited or deleted). Without the frozen evidence: read one record for it.",
    parameters=[
        *filter_parameters(DecisionRecordFilter),
        ordering_parameter(RECORD_ORDERING, RECORD_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(DecisionRecordOutputSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plans_decisions_create",
    summary="Record the go/no-go decision, or correct it",
    description="Only the plan's decision owner (the Product Owner unless the plan names "
    "someone else). A first decision for a Running or Evaluating plan takes it to Decided; a "
    "correction (`supersedes`: the current record) for a Decided one. The evidence is frozen "
    "as the decision page shows it now. Going against the recommendation needs "
    "`override_reason`. Go marks the plan for full release and tells the team and the invited "
    "stakeholders; Iterate drafts the next iteration; Roll back opens the rollback checklist.",
    request=DecisionRecordInputSerializer,
    responses={
        201: DecisionRecordDetailOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["GET", "POST"])
def decision_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    if request.method == "POST":
        return _decision_create(request, plan)
    records = filtered(request, DecisionRecordFilter, selectors.decision_records_queryset(plan.pk))
    records = ordered(request, records, fields=RECORD_ORDERING, default=RECORD_DEFAULT)
    return paginate(request, records, DecisionRecordOutputSerializer)


def _decision_create(request: Request, plan: PilotPlan) -> Response:
    user = _user(request)
    decision_require_owner(plan=plan, user=user)  # 403 with words before any 400
    payload = DecisionRecordInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = payload.validated_data
    supersedes = None
    if data["supersedes"] is not None:
        supersedes = DecisionRecord.objects.filter(plan=plan, pk=data["supersedes"]).first()
        if supersedes is None:
            raise serializers.ValidationError(
                {"supersedes": [f"This plan has no decision record #{data['supersedes']}."]}
            )
    record = decision_record(
        plan=plan,
        user=user,
        outcome=data["outcome"],
        rationale=data["rationale"],
        override_reason=data["override_reason"],
        supersedes=supersedes,
    )
    record = selectors.decision_record_get(plan_id=plan.pk, record_id=record.pk)
    assert record is not None
    return Response(_detail(record), status=status.HTTP_201_CREATED)


@extend_schema(
    tags=TAGS,
    operation_id="plans_decisions_retrieve",
    summary="One decision record, with its frozen evidence and whether it is intact",
    responses={200: DecisionRecordDetailOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET"])
def decision_detail(request: Request, plan_id: int, record_id: int) -> Response:
    plan = _plan(request, plan_id)
    record = selectors.decision_record_get(plan_id=plan.pk, record_id=record_id)
    if record is None:
        raise Http404("No such decision record")
    return Response(_detail(record))


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_decision_comments_list",
    summary="The comments on the plan's decision page, oldest first",
    parameters=[
        *filter_parameters(DecisionCommentFilter),
        ordering_parameter(COMMENT_ORDERING, COMMENT_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(DecisionCommentOutputSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plans_decision_comments_create",
    summary="Comment on the decision",
    description="Every team member, stakeholders included; invited stakeholders (guests) read "
    "only. For a Running, Evaluating or Decided plan; 1 to 5,000 characters.",
    request=DecisionCommentInputSerializer,
    responses={
        201: DecisionCommentOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: OpenApiResponse(
            ErrorOutputSerializer, description="The plan is not Running, Evaluating or Decided."
        ),
    },
)
@api_view(["GET", "POST"])
def decision_comment_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    if request.method == "POST":
        payload = DecisionCommentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        comment = decision_comment_add(
            plan=plan, user=_user(request), text=payload.validated_data["text"]
        )
        return Response(
            DecisionCommentOutputSerializer(comment).data, status=status.HTTP_201_CREATED
        )
    comments = filtered(
        request, DecisionCommentFilter, selectors.decision_comments_for_plan(plan.pk)
    )
    comments = ordered(request, comments, fields=COMMENT_ORDERING, default=COMMENT_DEFAULT)
    return paginate(request, comments, DecisionCommentOutputSerializer)


P = "plans/<int:plan_id>"

urlpatterns = [
    path(f"{P}/decisions", decision_list, name="plan-decisions"),
    path(f"{P}/decisions/<int:record_id>", decision_detail, name="plan-decision"),
    path(f"{P}/decision-comments", decision_comment_list, name="plan-decision-comments"),
]
