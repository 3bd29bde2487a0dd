"""A plan's cohort participants over the API: the same services, rules and words as the page.

- ``GET plans/{id}/participants``: the participants, newest first, filtered (``status``,
  ``region``, ``customer_type``, ``audience``, ``other``, ``q``), paginated; ``POST``: add one
  (consent recorded by the team);
- ``GET plans/{id}/participants/{pid}``: one participant, with its ETag;
- ``POST plans/{id}/participants/{pid}/withdraw`` and ``…/erase``: each sends the ETag it read in
  ``If-Match`` (428 without, 412 when stale); 409 when already done;
- ``GET plans/{id}/participants/export.csv`` and ``POST plans/{id}/participants/import``: CSV
  out and in (all or nothing);
- ``GET plans/{id}/participants/cohort-fit``: the counts per segment and the representativeness
  check, for everyone who may read the plan (no personal data).

Personal data is for the writers' roles; stakeholders and invited guests get 403 on the list and
read the counts. Erasure is the Product Owner's. Everyone else: 404.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import Perm
from backlog.api.items import CsvParser
from backlog.models import DIMENSIONS, CohortFit, Participant
from backlog.participants import selectors
from backlog.participants.exchange import participants_csv, participants_csv_import
from backlog.participants.services import (
    ParticipantConflict,
    participant_add,
    participant_erase,
    participant_withdraw,
)
from core.api import FORBIDDEN, INVALID, NOT_FOUND, PRECONDITION_REQUIRED
from core.api_preconditions import IF_MATCH, etag_header, if_match_versions, with_etag
from core.csvfile import csv_body_text
from core.limits import SafeJSONParser
from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from pilots.access import plan_for_user
from pilots.models import PilotPlan

TAGS = ["participants"]
FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, required=False, description="active or withdrawn"),
    *(
        OpenApiParameter(d, OpenApiTypes.STR, required=False, description=f"The {d} segment value.")
        for d in DIMENSIONS
    ),
    OpenApiParameter(
        "q", OpenApiTypes.STR, required=False, description="Name, e-mail or reference contains."
    ),
]
ETAG = etag_header([200, 201], 'The participant\'s version, e.g. `"2"`: send it in If-Match.')
CONFLICT = OpenApiResponse(description="Already withdrawn, or already erased.")
STALE = OpenApiResponse(description="The participant changed since your version: nothing done.")


class SegmentsSerializer(serializers.Serializer):
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    customer_type = serializers.CharField(max_length=100, required=False, allow_blank=True)
    audience = serializers.CharField(max_length=100, required=False, allow_blank=True)
    other = serializers.CharField(max_length=100, required=False, allow_blank=True)


class ParticipantOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Empty once erased.")
    email = serializers.CharField(help_text="Empty once erased, or when not given.")
    external_ref = serializers.CharField()
    segments = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=Participant.Status.choices)
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    erased_at = serializers.DateTimeField(allow_null=True)
    consent_method = serializers.CharField(
        help_text="How consent was given: import, enrolment_link or recorded_by_team; empty "
        "when none is recorded."
    )
    consent_given_at = serializers.DateTimeField(allow_null=True)
    consent_text = serializers.CharField()
    created_at = serializers.DateTimeField()
    version = serializers.IntegerField()

    @extend_schema_field(SegmentsSerializer)
    def get_segments(self, participant: Participant) -> dict[str, str]:
        return participant.segment_values()


class ParticipantInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    external_ref = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    segments = SegmentsSerializer(required=False, default=dict)
    consent = serializers.BooleanField(
        required=False, default=False, help_text="The team records the person's consent now."
    )
    consent_text = serializers.CharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        default="",
        help_text="What they agreed to (required with consent).",
    )


class SegmentCountSerializer(serializers.Serializer):
    value = serializers.CharField()
    active = serializers.IntegerField()
    withdrawn = serializers.IntegerField()


class FitSegmentSerializer(serializers.Serializer):
    value = serializers.CharField()
    observed = serializers.IntegerField()
    intended_percent = serializers.FloatField()
    observed_percent = serializers.FloatField()


class CohortFitOutputSerializer(serializers.Serializer):
    dimension = serializers.ChoiceField(choices=CohortFit._meta.get_field("dimension").choices)
    status = serializers.ChoiceField(choices=CohortFit.Status.choices)
    skewed = serializers.BooleanField()
    participants = serializers.IntegerField(help_text="Active participants counted.")
    p_value = serializers.FloatField(allow_null=True)
    method = serializers.CharField(help_text="chi_square, exact_multinomial or monte_carlo_…")
    practical_bound = serializers.DecimalField(
        max_digits=4, decimal_places=1, coerce_to_string=False
    )
    largest_segment = serializers.CharField()
    largest_gap_points = serializers.FloatField(help_text="Actual minus intended, in points.")
    headline = serializers.CharField()
    summary = serializers.CharField()
    segments = FitSegmentSerializer(many=True)
    computed_at = serializers.DateTimeField()


class CohortOutputSerializer(serializers.Serializer):
    active = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    erased = serializers.IntegerField()
    consented = serializers.IntegerField()
    segments = serializers.DictField(
        child=SegmentCountSerializer(many=True), help_text="Per dimension: counts per value."
    )
    fit = CohortFitOutputSerializer(many=True, help_text="The check per segment dimension.")


class ImportOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Rows the cohort already had.")


_UPLOAD = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _plan(request: Request, plan_id: int, perm: Perm) -> PilotPlan:
    return plan_for_user(user=_user(request), plan_id=plan_id, perm=perm)


def _participant(plan: PilotPlan, participant_id: int) -> Participant:
    participant = selectors.participant_get(plan_id=plan.pk, participant_id=participant_id)
    if participant is None:
        raise Http404("No such participant")
    return participant


def _out(participant: Participant, code: int = 200) -> Response:
    data = ParticipantOutputSerializer(participant).data
    return with_etag(Response(data, status=code), participant.version)


ORDERING = {"created_at": "created_at", "name": "name"}
DEFAULT = ["-created_at"]


@extend_schema(
    tags=TAGS, methods=["GET"], operation_id="plans_participants_list",
    summary="The plan's participants",
    parameters=[PAGE_PARAMETER, *FILTERS, ordering_parameter(ORDERING, DEFAULT)],
    responses={200: paginated(ParticipantOutputSerializer), 400: INVALID, 403: FORBIDDEN,
               404: NOT_FOUND},
)  # fmt: skip
@extend_schema(
    tags=TAGS, methods=["POST"], operation_id="plans_participants_create",
    summary="Add a participant", request=ParticipantInputSerializer,
    description="One value per segment dimension the plan uses, each one of its segment values. "
    "An opt-in-only cohort needs `consent` (with the `consent_text` the person agreed to).",
    parameters=[ETAG],
    responses={201: ParticipantOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET", "POST"])
def participant_list(request: Request, plan_id: int) -> Response:
    if request.method == "GET":
        plan = _plan(request, plan_id, Perm.PARTICIPANTS_VIEW)
        rows = selectors.participants_for_plan(plan_id=plan.pk, filters=request.query_params)
        rows = ordered(request, rows, fields=ORDERING, default=DEFAULT)
        return paginate(request, rows, ParticipantOutputSerializer)
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_MANAGE)
    payload = ParticipantInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    participant = participant_add(plan_id=plan.pk, user=_user(request), **payload.validated_data)
    return _out(participant, status.HTTP_201_CREATED)


@extend_schema(
    tags=TAGS, operation_id="plans_participants_retrieve", summary="One participant",
    parameters=[ETAG], responses={200: ParticipantOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET"])
def participant_detail(request: Request, plan_id: int, participant_id: int) -> Response:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_VIEW)
    return _out(_participant(plan, participant_id))


def _versioned(
    request: Request, plan_id: int, participant_id: int, perm: Perm, action: Any
) -> Response:
    plan = _plan(request, plan_id, perm)
    participant = _participant(plan, participant_id)
    versions = if_match_versions(request)  # 428 without
    if participant.version not in versions:
        raise ParticipantConflict(participant)
    done = action(
        plan_id=plan.pk,
        participant_id=participant.pk,
        user=_user(request),
        expected_version=participant.version,
    )
    return _out(done)


@extend_schema(
    tags=TAGS, operation_id="plans_participants_withdraw", summary="Withdraw a participant",
    description="They stop counting in the cohort; the row, segments and consent record stay.",
    request=None, parameters=[IF_MATCH, ETAG],
    responses={200: ParticipantOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT,
               412: STALE, 428: PRECONDITION_REQUIRED},
)  # fmt: skip
@api_view(["POST"])
def participant_withdraw_api(request: Request, plan_id: int, participant_id: int) -> Response:
    return _versioned(
        request, plan_id, participant_id, Perm.PARTICIPANTS_MANAGE, participant_withdraw
    )


@extend_schema(
    tags=TAGS, operation_id="plans_participants_erase",
    summary="Erase a participant's personal data on request",
    description="Name, e-mail and external reference are deleted for good (the audit trail "
    "never held them); the anonymised row stays so counts and segments stay. Product Owner only.",
    request=None, parameters=[IF_MATCH, ETAG],
    responses={200: ParticipantOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT,
               412: STALE, 428: PRECONDITION_REQUIRED},
)  # fmt: skip
@api_view(["POST"])
def participant_erase_api(request: Request, plan_id: int, participant_id: int) -> Response:
    return _versioned(request, plan_id, participant_id, Perm.PARTICIPANTS_ERASE, participant_erase)


@extend_schema(
    tags=TAGS, operation_id="plans_participants_csv", summary="The participants as CSV",
    parameters=FILTERS,
    responses={(200, "text/csv"): OpenApiTypes.STR, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET"])
def participant_export_api(request: Request, plan_id: int) -> HttpResponse:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_VIEW)
    rows = selectors.participants_for_plan(plan_id=plan.pk, filters=request.query_params)
    response = HttpResponse(participants_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="participants-plan-{plan.pk}.csv"'
    return response


@extend_schema(
    tags=TAGS, operation_id="plans_participants_import", summary="Import participants from CSV",
    description="A `text/csv` body, or a multipart upload in `file`, with the export's columns. "
    "People the cohort already has (same e-mail or external reference) are left as they are. "
    "One bad row refuses the whole file: `file` lists every bad line.",
    request={"text/csv": OpenApiTypes.STR, "multipart/form-data": _UPLOAD},
    responses={200: ImportOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["POST"])
@parser_classes([CsvParser, MultiPartParser, SafeJSONParser])
def participant_import_api(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id, Perm.PARTICIPANTS_MANAGE)
    text = csv_body_text(request.data)
    result = participants_csv_import(plan_id=plan.pk, user=_user(request), text=text)
    return Response(ImportOutputSerializer(result).data)


@extend_schema(
    tags=TAGS, operation_id="plans_cohort_fit_retrieve",
    summary="The cohort's counts per segment and its representativeness",
    description="No personal data: for everyone who may read the plan. `fit` is the stored "
    "check per segment dimension (skewed only when p < 0.001 and a segment is off its intended "
    "share by more than the plan's practical bound).",
    responses={200: CohortOutputSerializer, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET"])
def cohort_detail(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id, Perm.PLAN_VIEW)
    counts = selectors.cohort_counts(plan_id=plan.pk)
    data = {
        "active": counts.active,
        "withdrawn": counts.withdrawn,
        "erased": counts.erased,
        "consented": counts.consented,
        "segments": counts.by_dimension,
        "fit": selectors.cohort_fit_for_plan(plan_id=plan.pk),
    }
    return Response(CohortOutputSerializer(data).data)


P = "plans/<int:plan_id>/participants"
urlpatterns = [
    path(P, participant_list, name="plan-participants"),
    path(f"{P}/export.csv", participant_export_api, name="plan-participants-csv"),
    path(f"{P}/import", participant_import_api, name="plan-participants-import"),
    path(f"{P}/<int:participant_id>", participant_detail, name="plan-participant"),
    path(
        f"{P}/<int:participant_id>/withdraw",
        participant_withdraw_api,
        name="plan-participant-withdraw",
    ),
    path(f"{P}/<int:participant_id>/erase", participant_erase_api, name="plan-participant-erase"),
    path(f"{P}/cohort-fit", cohort_detail, name="plan-cohort-fit"),
]
