"""Pushing metric samples over the REST API (docs/metrics-ingestion.md).

- ``POST plans/{plan_id}/samples``: a batch for one plan;
- ``POST teams/{team_id}/samples``: a batch for several plans of a team, each sample naming its
  ``plan``.

Who may push: the permission table's ``samples.push`` as every API endpoint asks it: a member of
the plan's team in any role but Stakeholder (session with the CSRF header, or their personal
token with the write scope), or an API key of that team with the ``ingest`` scope
(``Authorization: Bearer pp_…``). Another team's plan or key → 404, a Stakeholder or a key
without the scope → 403, no credentials or a revoked key → 401. Pushes have their own, stricter
rate limit per credential (``API_RATE_INGEST``).

The body is parsed once, by ``orjson`` over the raw bytes (also hashed for the
``Idempotency-Key``), or by ``json.loads`` when orjson refuses it (for the standard library's
exact answer); samples are validated by ``metrics.ingest`` in plain Python, never by a
serializer per row. The serializers below document the shapes in the OpenAPI schema only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import (
    api_view,
    parser_classes,
    throttle_classes,
)
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_keys import request_api_key
from accounts.models import Team, User
from accounts.permissions import Perm, team_for_member
from accounts.throttle import IngestRateThrottle
from core.api import ErrorOutputSerializer
from core.limits import parses_json_itself
from core.problems import INVALID_SAMPLES, problem, problem_response
from metrics.ingest import (
    BAD_REQUEST,
    MAX_BATCH,
    IngestRejected,
    IngestResult,
    samples_ingest,
)
from pilots.access import plan_for_user
from pilots.models import PilotPlan

# 10,000 samples of at most ~400 bytes each (long ids and sources), with room to spare.
MAX_BODY_BYTES = 16 * 1024 * 1024
TAGS = ["samples"]

# --- request handling --------------------------------------------------------------------------


class RawJSONParser(BaseParser):
    """Hands the view the body's bytes: it hashes them for the Idempotency-Key and parses them
    once with ``json.loads`` (DRF's JSONParser would parse before the hash, and again when the
    CSRF check of a session request reads ``request.POST``)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise exceptions.ParseError(
                f"The body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB; "
                f"send at most {MAX_BATCH:,} samples per request."
            )
        return body


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _samples(request: Request, *, hashed: bool) -> tuple[list[Any], str | None]:
    """The samples of the body (``{"samples": [...]}`` or a bare list) and, when ``hashed``
    (an Idempotency-Key came with it: nothing else reads it), the body's hash."""
    try:
        body = request.data
    except exceptions.ParseError as exc:
        raise IngestRejected(str(exc.detail), status_code=BAD_REQUEST) from None
    if not isinstance(body, bytes) or not body:
        raise IngestRejected(
            'Send a JSON body: {"samples": [...]} (or a JSON list of samples).',
            status_code=BAD_REQUEST,
        )
    try:
        # orjson reads a 5,000-sample body in a third of the time (measured); what it refuses
        # (invalid JSON, NaN, integers beyond 64 bits, UTF-16, deep nesting) the standard
        # library reads again, to accept or refuse it exactly as before, with its message.
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            payload = json.loads(body, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise IngestRejected(
                f"The body is not valid JSON: {exc}", status_code=BAD_REQUEST
            ) from None
    samples = payload.get("samples") if isinstance(payload, dict) else payload
    if not isinstance(samples, list):
        raise IngestRejected(
            'Send {"samples": [...]} or a JSON list of samples.', status_code=BAD_REQUEST
        )
    return samples, hashlib.sha256(body).hexdigest() if hashed else None


def _person(request: Request) -> User | None:
    """Who pushed, for the batch's record: the person (a session or their token); None for a
    team key (the batch records no person)."""
    return None if request_api_key(request) is not None else request.user  # type: ignore[return-value]


def _plan_for_push(request: Request, plan_id: int) -> PilotPlan:
    return plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.SAMPLES_PUSH)  # type: ignore[arg-type]


def _team_for_push(request: Request, team_id: int) -> Team:
    team, _role = team_for_member(user=request.user, team_id=team_id, perm=Perm.SAMPLES_PUSH)  # type: ignore[arg-type]
    key = request_api_key(request)
    if key is not None and key.plan_ids:
        # Each sample names its plan here; a key restricted to plans pushes plan by plan.
        raise PermissionDenied(
            "This API key is restricted to some of the team's plans: push to "
            "/api/v1/plans/{id}/samples for each of them."
        )
    return team


def _answer(push: Any) -> Response:
    try:
        result: IngestResult = push()
    except IngestRejected as exc:
        return problem_response(
            exc.status_code,
            exc.message,
            INVALID_SAMPLES,
            errors=exc.errors,
            error_count=exc.error_count,
        )
    return Response(
        result.response, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
    )


# --- schema (documentation only) -------------------------------------------------------------


class SampleInputSerializer(serializers.Serializer):
    metric = serializers.CharField(
        help_text="A metric key of the team's catalogue, e.g. `p95_latency`, `p1_defects`."
    )
    observed_at = serializers.DateTimeField(
        help_text="When it was measured: ISO 8601 with a time zone offset or `Z`. Inside the "
        "pilot window, and not more than 5 minutes ahead of the server's clock."
    )
    value = serializers.FloatField(
        help_text="A finite number (a numeric string is accepted); count metrics are never "
        "negative."
    )
    source = serializers.CharField(  # type: ignore[assignment]  # the sample's field, not DRF's
        required=False,
        max_length=50,
        default="api",
        help_text="Where it comes from; part of the sample's identity (metric, observed_at, "
        "source).",
    )
    id = serializers.CharField(
        required=False,
        max_length=100,
        help_text="Your id for the sample: a sample id is stored once per plan.",
    )


class TeamSampleInputSerializer(SampleInputSerializer):
    plan = serializers.IntegerField(help_text="The id of a Running or Evaluating plan of the team.")


class SamplesInputSerializer(serializers.Serializer):
    samples = SampleInputSerializer(many=True, help_text=f"1 to {MAX_BATCH:,} samples.")


class TeamSamplesInputSerializer(serializers.Serializer):
    samples = TeamSampleInputSerializer(many=True, help_text=f"1 to {MAX_BATCH:,} samples.")


class IngestOutputSerializer(serializers.Serializer):
    batch = serializers.IntegerField(help_text="The batch's id.")
    received = serializers.IntegerField(help_text="Samples in the request.")
    stored = serializers.IntegerField(help_text="Samples new to the database.")
    duplicates = serializers.IntegerField(
        help_text="Samples already stored (same id, or same metric, observed_at and source)."
    )
    replayed = serializers.BooleanField(
        help_text="True when this answers a retry of an Idempotency-Key: nothing was stored now."
    )


class IngestErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(
        allow_null=True, help_text="0-based position of the sample; null for the whole request."
    )
    field = serializers.CharField()
    message = serializers.CharField()


class IngestRejectedSerializer(ErrorOutputSerializer):
    errors = IngestErrorSerializer(many=True, help_text="The first 100 problems.")  # type: ignore[assignment]
    error_count = serializers.IntegerField(help_text="All problems found.")


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string up to 200 characters (e.g. a UUID), per team. Sending the same "
    "key with the same body again returns the first answer (200, `replayed: true`) and stores "
    "nothing; the same key with another body is refused (422).",
)

_REJECTED_EXAMPLE = OpenApiExample(
    "invalid sample",
    value=problem(
        422,
        "1 problem in the batch; nothing was stored. Fix them and send the whole batch again.",
        INVALID_SAMPLES,
        errors=[
            {"row": 3, "field": "observed_at", "message": "Timestamp has no time zone: add an "
             "offset such as +02:00 or Z."}
        ],
        error_count=1,
    ),
    status_codes=[422],
)  # fmt: skip

RESPONSES = {
    200: OpenApiResponse(IngestOutputSerializer, description="A replay: the first answer again."),
    201: OpenApiResponse(IngestOutputSerializer, description="Stored."),
    400: OpenApiResponse(
        IngestRejectedSerializer,
        description="Not a batch: invalid JSON, not a list, empty or more than 10,000 samples, "
        "a too long Idempotency-Key. Nothing stored.",
    ),
    401: OpenApiResponse(
        ErrorOutputSerializer, description="No credentials, or an invalid or revoked API key."
    ),
    403: OpenApiResponse(
        ErrorOutputSerializer,
        description="A Stakeholder, an API key without the `ingest` scope, or a session "
        "request without the CSRF header.",
    ),
    404: OpenApiResponse(ErrorOutputSerializer, description="Not a plan or team you may reach."),
    415: OpenApiResponse(
        ErrorOutputSerializer, description="The body is not sent as `application/json`."
    ),
    422: OpenApiResponse(
        IngestRejectedSerializer,
        description="Invalid samples (every problem listed with its row and field), a plan that "
        "is not Running or Evaluating, or an Idempotency-Key reused for another body. Nothing "
        "stored.",
        examples=[_REJECTED_EXAMPLE],
    ),
}


def _ingest_view(view: Any) -> Any:
    view = parser_classes([RawJSONParser])(view)
    # The API's limits and a stricter one for bursts of pushes, in one round trip to Redis
    # (accounts.throttle).
    view = throttle_classes([IngestRateThrottle])(view)
    # _samples parses the body once and answers a too deeply nested one with a 400 itself.
    return parses_json_itself(api_view(["POST"])(view))


def _push(request: Request, *, team: Team, plan: PilotPlan | None = None) -> Response:
    """Parse the body and ingest it for ``team`` (and ``plan``), answering as _answer does."""

    def push() -> IngestResult:
        key = request.headers.get("Idempotency-Key", "")
        samples, digest = _samples(request, hashed=bool(key.strip()))
        return samples_ingest(
            team=team,
            plan=plan,
            rows=samples,
            user=_person(request),
            idempotency_key=key,
            body_sha256=digest,
        )

    return _answer(push)


# --- endpoints ---------------------------------------------------------------------------------


@extend_schema(
    tags=TAGS,
    operation_id="plans_samples_create",
    summary="Push samples to a plan",
    description="A batch of 1 to 10,000 samples for one Running or Evaluating plan, validated "
    "whole: one invalid sample refuses the batch with every problem listed, nothing stored. "
    "Samples already stored (same `id`, or same metric, observed_at and source) are counted as "
    "duplicates, not stored again. A bare JSON list of samples is accepted too.",
    request=SamplesInputSerializer,
    parameters=[IDEMPOTENCY_KEY],
    responses=RESPONSES,
)
@_ingest_view
def plan_samples(request: Request, plan_id: int) -> Response:
    plan = _plan_for_push(request, plan_id)
    return _push(request, team=plan.team, plan=plan)


@extend_schema(
    tags=TAGS,
    operation_id="teams_samples_create",
    summary="Push samples to several plans of a team",
    description="Like `plans/{plan_id}/samples`, but each sample names its `plan`: any Running "
    "or Evaluating plan of the team. A sample naming another team's plan refuses the batch.",
    request=TeamSamplesInputSerializer,
    parameters=[IDEMPOTENCY_KEY],
    responses=RESPONSES,
)
@_ingest_view
def team_samples(request: Request, team_id: int) -> Response:
    return _push(request, team=_team_for_push(request, team_id))


urlpatterns = [
    path("plans/<int:plan_id>/samples", plan_samples, name="plan-samples"),
    path("teams/<int:team_id>/samples", team_samples, name="team-samples"),
]
