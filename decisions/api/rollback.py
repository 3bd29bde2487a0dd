"""The rollback checklist over the API: the same services, rules and words as the rollback page.

- ``GET plans/{plan_id}/rollback``: the plan's rollback runs (filter ``open``,
  ``emergency``; ``ordering``), paginated, without their steps;
- ``POST plans/{plan_id}/rollback``: start an emergency rollback from a fired trigger
  episode (``episode``). A Roll back decision starts its own run (``POST …/decisions``);
- ``GET plans/{plan_id}/rollback/{run_id}``: one run with its steps and the verification
  (did the triggering metric recover?), ``ETag`` per step in each step's ``version``;
- ``PATCH plans/{plan_id}/rollback/steps/{step_id}``: mark a step done, skipped
  (with a reason) or failed (with a note), or set it back to not done (with a note); the step's
  ETag in ``If-Match`` (428 without, 412 when stale);
- ``POST plans/{plan_id}/rollback/{run_id}/end``: end the run once every step is marked.

Everyone who reads the plan reads its runs; for anyone else the plan does not exist (404).
Starting: the plan's rollback executor, the Product Owner or DevOps; working the checklist: the
executor or DevOps (``Perm.ROLLBACK_START`` / ``Perm.ROLLBACK_WORK``, 403 with the words). People
only: a team API key reads, never starts or works a rollback. Whether a rollback is called for
is the gate's question: ``GET plans/{plan_id}/gate/rollback``.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Count, Q, QuerySet
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
from core.api_preconditions import IF_MATCH, etag_header, if_match_versions, with_etag
from core.exceptions import PreconditionFailed
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from decisions.models import RollbackRun, RollbackStepRun
from decisions.services import rollback as service
from metrics.models import TriggerEpisode
from pilots.access import plan_for_user
from pilots.models import PilotPlan

TAGS = ["rollback"]
ORDERING = {"started_at": "started_at", "ended_at": "ended_at"}
DEFAULT = ["-started_at"]
STEP_NOTE_MAX = 5_000

CONFLICT = OpenApiResponse(
    ErrorOutputSerializer,
    description="Refused in the run's or the plan's current state (a rollback already in "
    "progress, the pilot not Running or Evaluating, the run ended, steps not marked yet): "
    "`detail` says why. Nothing changed.",
)
STALE = OpenApiResponse(
    ErrorOutputSerializer,
    description="If-Match names a version of the step that is no longer current: someone "
    "marked it first (`detail` says who and how). Nothing was saved.",
)


# --- shapes --------------------------------------------------------------------------------------


class RollbackStepOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=RollbackStepRun.Kind.choices,
        help_text="`verification` for the last step: did the triggering metric recover?",
    )
    action = serializers.CharField()
    owner_name = serializers.CharField(help_text="Who the runbook names for it; may be empty.")
    expected_minutes = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=RollbackStepRun.Status.choices)
    status_label = serializers.CharField(source="get_status_display")
    note = serializers.CharField(
        help_text="Why it was skipped, what went wrong, or why a mark was undone."
    )
    done_by = UserOutputSerializer(allow_null=True, help_text="Who marked it last.")
    done_at = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(help_text="Send it back as If-Match to mark the step.")


class RollbackRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    plan = serializers.IntegerField(source="plan_id")
    emergency = serializers.BooleanField(
        help_text="Started from a fired trigger before the decision."
    )
    decision = serializers.IntegerField(
        source="decision_id", allow_null=True, help_text="The Roll back decision it carries out."
    )
    episode = serializers.IntegerField(
        source="episode_id", allow_null=True, help_text="The trigger episode that called for it."
    )
    started_by = UserOutputSerializer()
    started_at = serializers.DateTimeField()
    ended_by = UserOutputSerializer(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    is_open = serializers.BooleanField(help_text="In progress: not ended yet.")
    step_count = serializers.IntegerField(help_text="Steps, the verification included.")
    marked_count = serializers.IntegerField(help_text="Steps marked done, skipped or failed.")
    communication_plan = serializers.CharField(
        help_text="The plan's communication plan as it read when the run started."
    )


class TriggerCheckOutputSerializer(serializers.Serializer):
    trigger = serializers.IntegerField(source="trigger_id")
    text = serializers.CharField()
    state = serializers.CharField(help_text="The trigger's state; empty: never evaluated.")
    state_label = serializers.CharField()
    recovered = serializers.BooleanField(
        allow_null=True, help_text="Null: no fresh data, cannot tell (never shown as recovered)."
    )
    value_text = serializers.CharField()
    threshold_text = serializers.CharField()
    words = serializers.CharField()


class VerificationOutputSerializer(serializers.Serializer):
    recovered = serializers.BooleanField(allow_null=True)
    verdict = serializers.ChoiceField(choices=["recovered", "not_recovered", "unknown"])
    label = serializers.CharField()
    words = serializers.CharField()
    checks = TriggerCheckOutputSerializer(many=True)


class RollbackRunDetailOutputSerializer(RollbackRunOutputSerializer):
    steps = RollbackStepOutputSerializer(many=True, source="steps_list")
    verification = VerificationOutputSerializer()


class RollbackStartInputSerializer(serializers.Serializer):
    episode = serializers.IntegerField(
        min_value=1, help_text="The fired trigger episode that calls for the rollback."
    )


class RollbackStepMarkInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RollbackStepRun.Status.choices)
    note = serializers.CharField(
        max_length=STEP_NOTE_MAX,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to skip (why), for a failure (what went wrong) and to set a step "
        "back to not done (why).",
    )


class RunFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(
        field_name="ended_at", lookup_expr="isnull", label="In progress (true) or ended (false)."
    )
    emergency = django_filters.BooleanFilter(label="Emergency rollbacks (true) or not (false).")


# --- views ---------------------------------------------------------------------------------------


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _plan(request: Request, plan_id: int) -> PilotPlan:
    return plan_for_user(
        user=_user(request),
        plan_id=plan_id,
        queryset=PilotPlan.objects.select_related("rollback_executor", "owner"),
    )


def _runs(plan: PilotPlan) -> QuerySet[RollbackRun]:
    return (
        RollbackRun.objects.filter(plan=plan)
        .select_related("started_by", "ended_by")
        .annotate(
            step_count=Count("steps"),
            marked_count=Count("steps", filter=~Q(steps__status=RollbackStepRun.Status.PENDING)),
        )
    )


def _run(plan: PilotPlan, run_id: int) -> RollbackRun:
    run = _runs(plan).select_related("plan", "episode").filter(pk=run_id).first()
    if run is None:
        raise Http404("No such rollback run")
    return run


def _detail(plan: PilotPlan, run_id: int) -> dict[str, Any]:
    run = _run(plan, run_id)
    run.steps_list = service.rollback_steps(run=run)  # type: ignore[attr-defined]
    run.verification = service.rollback_verification(run)  # type: ignore[attr-defined]
    return RollbackRunDetailOutputSerializer(run).data


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_rollback_runs_list",
    summary="The plan's rollback runs, newest first",
    description="Without their steps: read one run for them. Whether a rollback is called for "
    "is the deployment gate's answer: `GET /api/v1/plans/{plan_id}/gate/rollback`.",
    parameters=[
        *filter_parameters(RunFilter),
        ordering_parameter(ORDERING, DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(RollbackRunOutputSerializer), 400: INVALID, 404: NOT_FOUND},
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plans_rollback_runs_create",
    summary="Start an emergency rollback from a fired trigger",
    description="The plan's rollback executor, the Product Owner or DevOps, while the pilot is "
    "Running or Evaluating and no rollback is in progress. The plan's runbook steps are copied "
    "into the checklist, then a last verification step; the owner, the executor and the team "
    "are told. A Roll back decision (`POST …/decisions`) starts, or links to, the run itself.",
    request=RollbackStartInputSerializer,
    responses={
        201: RollbackRunDetailOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["GET", "POST"])
def rollback_run_list(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id)
    if request.method == "GET":
        runs = filtered(request, RunFilter, _runs(plan))
        runs = ordered(request, runs, fields=ORDERING, default=DEFAULT)
        return paginate(request, runs, RollbackRunOutputSerializer)
    user = _user(request)
    service.rollback_require_start(plan, user, role=plan.viewer_role)  # type: ignore[attr-defined]  # 403 before 400
    payload = RollbackStartInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    episode = TriggerEpisode.objects.filter(plan=plan, pk=payload.validated_data["episode"]).first()
    if episode is None:
        raise serializers.ValidationError({"episode": ["This plan has no such trigger episode."]})
    run = service.rollback_start(plan=plan, user=user, episode=episode)
    return Response(_detail(plan, run.pk), status=status.HTTP_201_CREATED)


@extend_schema(
    tags=TAGS,
    operation_id="plans_rollback_runs_retrieve",
    summary="One rollback run with its checklist and the verification",
    responses={200: RollbackRunDetailOutputSerializer, 404: NOT_FOUND},
)
@api_view(["GET"])
def rollback_run_detail(request: Request, plan_id: int, run_id: int) -> Response:
    plan = _plan(request, plan_id)
    return Response(_detail(plan, run_id))


@extend_schema(
    tags=TAGS,
    operation_id="plans_rollback_steps_mark",
    summary="Mark a step of the checklist",
    description="The plan's rollback executor or DevOps, while the run is open. Done; skipped "
    "with a reason (not the verification); failed with a note; or back to not done with a "
    "note. Send the step's `version` as `If-Match`.",
    request=RollbackStepMarkInputSerializer,
    parameters=[IF_MATCH, etag_header([200], "The step's new version.")],
    responses={
        200: RollbackStepOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
        412: STALE,
    },
)
@api_view(["PATCH"])
def rollback_step_mark(request: Request, plan_id: int, step_id: int) -> Response:
    plan = _plan(request, plan_id)
    step = RollbackStepRun.objects.filter(pk=step_id, run__plan=plan).first()
    if step is None:
        raise Http404("No such rollback step")
    user = _user(request)
    service.rollback_require_work(plan, user)  # 403 with the words before any 400
    payload = RollbackStepMarkInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    if step.version not in if_match_versions(request):
        raise PreconditionFailed(
            f"Step {step.position} changed since you read it (now version {step.version}): "
            "read the run again and mark it if still needed."
        )
    step = service.rollback_step_mark(
        step=step,
        user=user,
        status=payload.validated_data["status"],
        note=payload.validated_data["note"],
        expected_version=step.version,
    )
    step = RollbackStepRun.objects.select_related("done_by").get(pk=step.pk)
    return with_etag(Response(RollbackStepOutputSerializer(step).data), step.version)


@extend_schema(
    tags=TAGS,
    operation_id="plans_rollback_runs_end",
    summary="End the rollback",
    description="The plan's rollback executor or DevOps, once every step is marked (409 lists "
    "the steps not done yet). The plan's owner is told.",
    request=None,
    responses={
        200: RollbackRunDetailOutputSerializer,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["POST"])
def rollback_run_end(request: Request, plan_id: int, run_id: int) -> Response:
    plan = _plan(request, plan_id)
    run = _run(plan, run_id)
    service.rollback_end(run=run, user=_user(request))
    return Response(_detail(plan, run.pk))


# The browser's paths and nouns (decisions.views_rollback): plans/<id>/rollback is the plan's
# rollback checklist, each run below it by id, each step by its own id.
P = "plans/<int:plan_id>/rollback"

urlpatterns = [
    path(P, rollback_run_list, name="plan-rollback"),
    path(f"{P}/steps/<int:step_id>", rollback_step_mark, name="plan-rollback-step"),
    path(f"{P}/<int:run_id>", rollback_run_detail, name="plan-rollback-run"),
    path(f"{P}/<int:run_id>/end", rollback_run_end, name="plan-rollback-run-end"),
]
