"""A plan's checks over the API: the scheduled ones, and the ones run on demand.

- ``GET plans/{plan_id}/check-runs``: the plan's check runs, newest first, paginated, each with
  its per-criterion results nested;
- ``POST plans/{plan_id}/check-runs``: run a check now (the plan's Product Owner or Scrum
  Master); 202 with the pending run, which the worker executes within a minute or two;
- ``GET plans/{plan_id}/check-runs/{id}``: one run.

Readable by everyone who reads the plan (team members and invited stakeholders); for anyone
else the plan does not exist (404). Constant queries per page.
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import UserOutputSerializer
from accounts.permissions import Perm
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from metrics.checks import check_run_request, check_runs_for_plan
from metrics.models import CheckRun, CriterionResult
from pilots.access import plan_for_user

TAGS = ["checks"]


class CriterionResultSerializer(serializers.ModelSerializer):
    criterion = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The live exit criterion (null once deleted)."
    )

    class Meta:
        model = CriterionResult
        fields = [
            "position", "criterion", "label", "comparator", "threshold", "blocking", "value",
            "low", "high", "sample_size", "method", "verdict", "reason",
        ]  # fmt: skip
        extra_kwargs = {
            "label": {"help_text": "The criterion as it read at the check."},
            "low": {"help_text": "Lower bound of the 95 % interval (= value when exact)."},
            "high": {"help_text": "Upper bound of the 95 % interval (= value when exact)."},
            "method": {"help_text": "t, wilson, poisson_exact, order_statistic, exact, …"},
        }


class CheckRunSerializer(serializers.ModelSerializer):
    results = CriterionResultSerializer(many=True, read_only=True)
    requested_by = UserOutputSerializer(
        read_only=True, allow_null=True, help_text="Who asked for an on-demand run."
    )

    class Meta:
        model = CheckRun
        fields = [
            "id", "trigger", "requested_by", "due_at", "local_date", "local_time", "status",
            "late", "attempts", "finished_at", "met", "not_met", "not_enough_evidence", "results",
        ]  # fmt: skip
        extra_kwargs = {
            "trigger": {"help_text": "scheduled (a slot of the plan's check times) or on_demand."},
            "due_at": {"help_text": "When the check was due (UTC); when asked for, on demand."},
            "local_date": {"help_text": "The scheduled day in the plan's time zone."},
            "local_time": {"help_text": "The scheduled check time in the plan's time zone."},
            "late": {"help_text": "Run after the scheduler had been down at the due time."},
        }


class CheckRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=CheckRun.Status.choices, label="Only runs in this status."
    )
    trigger = django_filters.ChoiceFilter(
        choices=CheckRun.Trigger.choices, label="Only scheduled or only on-demand runs."
    )
    late = django_filters.BooleanFilter(label="true: only runs made late after downtime.")
    due_after = django_filters.IsoDateTimeFilter(
        field_name="due_at", lookup_expr="gte", label="Due at or after this moment."
    )
    due_before = django_filters.IsoDateTimeFilter(
        field_name="due_at", lookup_expr="lt", label="Due before this moment."
    )


ORDERING = {"due_at": "due_at", "finished_at": "finished_at"}
DEFAULT = ["-due_at"]


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plan_check_runs_list",
    summary="A plan's check runs",
    description="Newest first, scheduled and on-demand runs together, each with its "
    "per-criterion results. Missed runs (the scheduler was down) and pending ones (queued) have "
    "no results.",
    parameters=[
        *filter_parameters(CheckRunFilter),
        ordering_parameter(ORDERING, DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(CheckRunSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plan_check_runs_create",
    summary="Run a check now",
    description="The plan's Product Owner or Scrum Master checks every exit criterion now, "
    "beside the scheduled checks. Answers 202 with the run, pending: the worker executes it "
    "within a minute or two (read it back at its `check-runs/{id}`). No body.",
    request=None,
    responses={
        202: CheckRunSerializer,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: OpenApiResponse(
            ErrorOutputSerializer,
            description="The pilot is not running (or its time-box has not started), or a "
            "check asked for is still waiting for the worker.",
        ),
    },
)
@api_view(["GET", "POST"])
def check_run_list(request: Request, plan_id: int) -> Response:
    if request.method == "POST":
        return _check_run_create(request, plan_id)
    plan = plan_for_user(user=request.user, plan_id=plan_id)  # type: ignore[arg-type]
    runs = check_runs_for_plan(plan_id=plan.pk).select_related("requested_by")
    runs = filtered(request, CheckRunFilter, runs)
    runs = ordered(request, runs, fields=ORDERING, default=DEFAULT)
    return paginate(request, runs, CheckRunSerializer)


def _check_run_create(request: Request, plan_id: int) -> Response:
    plan = plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.CHECK_RUN_NOW)  # type: ignore[arg-type]
    run = check_run_request(plan=plan, user=request.user)  # type: ignore[arg-type]
    return Response(CheckRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    tags=TAGS,
    operation_id="plan_check_runs_retrieve",
    summary="One check run",
    responses={200: CheckRunSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET"])
def check_run_detail(request: Request, plan_id: int, run_id: int) -> Response:
    plan = plan_for_user(user=request.user, plan_id=plan_id)  # type: ignore[arg-type]
    runs = check_runs_for_plan(plan_id=plan.pk).select_related("requested_by")
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise Http404("No such check run")
    return Response(CheckRunSerializer(run).data)


urlpatterns = [
    path("plans/<int:plan_id>/check-runs", check_run_list, name="plan-check-runs"),
    path("plans/<int:plan_id>/check-runs/<int:run_id>", check_run_detail, name="plan-check-run"),
]
