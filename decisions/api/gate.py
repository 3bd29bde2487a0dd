"""The deployment gate over the REST API (docs/gate.md): what a delivery pipeline asks.

- ``GET plans/{plan_id}/gate``: may this release be promoted?
- ``GET plans/{plan_id}/gate/rollback``: is a rollback called for?

Both answer ``POST`` the same way, for Flagger, whose webhooks POST a JSON payload and cannot send
headers: its ``metadata`` may carry the key (``{"metadata": {"api_key": "pp_…", "run": "…"}}``).
Otherwise the body is ignored.

``?mode=json`` (the default) always answers 200 with the body, for tools that judge the body
(Argo Rollouts' web metric, Azure DevOps' REST gate, Spinnaker's webhook stage). ``?mode=strict``
answers 200 when the answer is yes and **409 Conflict** with the same body when it is no, for
tools that judge the status code (Flagger's webhooks, a ``curl --fail`` step). 409 because it is
none of the codes that mean something else here — 401 (no credentials), 403 (a key without
the ``gate`` or ``read`` scope), 404 (not your plan), 429 (throttled), 5xx (our failure) — so a
pipeline can tell "the gate says no" from "the gate could not answer"; and it is above 202, which
Flagger's webhooks treat as a refusal.

Who may ask: the permission table's ``gate.read``: a member of the plan's team or an invited
stakeholder (session or personal token), or an API key of the plan's team with the ``gate`` or
``read`` scope (``Authorization: Bearer pp_…``). Another team's key or plan → 404, a key
without either scope → 403, no credentials → 401. Every answered call is
logged against the plan (``decisions.services.gate.gate_call_log``), a strict refusal included.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.api_keys import ApiKeyAuthentication, request_api_key
from accounts.permissions import Perm
from core.api import INVALID, ErrorOutputSerializer
from decisions.models import GateCall
from decisions.services.gate import gate_answer, gate_call_log, pipeline_run_clean
from pilots.access import plan_for_user
from pilots.models import PilotPlan

TAGS = ["gate"]
STRICT_NO = 409  # see the module's docstring: why this code
TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no", ""}


class FlaggerMetadataKeyAuthentication(ApiKeyAuthentication):
    """The API key in a Flagger webhook's payload, ``metadata.api_key`` (Flagger sends no
    headers). Only for POST, and only when no Authorization header was sent."""

    def authenticate(self, request: Request) -> Any:
        if request.method != "POST" or request.headers.get("Authorization"):
            return None
        token = _metadata(request).get("api_key")
        if not isinstance(token, str) or not token.startswith("pp_"):
            return None
        return self.authenticate_token(request, token)


class FlaggerMetadataKeyScheme(OpenApiAuthenticationExtension):
    """For the schema: no scheme of its own (OpenAPI has none for a key inside the body); the
    POST operations say where Flagger puts the key, and ``apiKey`` documents the key itself."""

    target_class = FlaggerMetadataKeyAuthentication
    name: list[str] = []  # type: ignore[assignment]  # no component to register

    def get_security_requirement(self, auto_schema: Any) -> None:  # type: ignore[override]
        return None

    def get_security_definition(self, auto_schema: Any) -> list[Any]:  # type: ignore[override]
        return []


def _metadata(request: Request) -> dict[str, Any]:
    """Flagger's ``metadata`` object of a POSTed payload, or {}."""
    try:
        data = request.data
    except Exception:
        return {}
    metadata = data.get("metadata") if isinstance(data, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _plan(request: Request, plan_id: int) -> PilotPlan:
    return plan_for_user(user=request.user, plan_id=plan_id, perm=Perm.GATE_READ)  # type: ignore[arg-type]


def _options(request: Request) -> tuple[str, bool, str]:
    """``(mode, require_decision, pipeline_run)`` from the query and headers; 400 when bad."""
    mode = request.query_params.get("mode", GateCall.Mode.JSON).strip().lower() or "json"
    if mode not in GateCall.Mode.values:
        raise ValidationError({"mode": "Choose json (always 200) or strict (200 or 409)."})
    flag = request.query_params.get("require_decision", "").strip().lower()
    if flag not in TRUE | FALSE:
        raise ValidationError({"require_decision": "Say true or false."})
    run = (
        request.headers.get("X-Pipeline-Run")
        or request.query_params.get("run", "")
        or (str(_metadata(request).get("run", "")) if request.method == "POST" else "")
    )
    return mode, flag in TRUE, pipeline_run_clean(run)


def _gate(request: Request, plan_id: int, endpoint: str) -> Response:
    mode, require_decision, run = _options(request)
    plan = _plan(request, plan_id)
    answer = gate_answer(plan, require_decision=require_decision)
    yes = answer.allowed(endpoint)
    status_code = 200 if mode == GateCall.Mode.JSON or yes else STRICT_NO
    key = request_api_key(request)
    gate_call_log(
        plan=plan,
        endpoint=endpoint,
        mode=mode,
        answer=answer,
        status_code=status_code,
        user=None if key is not None else request.user,  # type: ignore[arg-type]
        api_key=key,
        pipeline_run=run,
    )
    return Response(answer.body, status=status_code)


# --- schema (documentation only: the service builds the body) ------------------------------------


class GatePlanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField(help_text="draft, in_review, approved, running, …")


class GateRecommendationSerializer(serializers.Serializer):
    value = serializers.ChoiceField(["go", "iterate", "roll_back", "not_yet_decidable"])
    label = serializers.CharField(help_text="Go, Iterate, Roll back, Not yet decidable.")
    rule = serializers.CharField(help_text="The rule that produced it (docs/decisions.md).")
    words = serializers.CharField(help_text="The rule applied to this plan, in words.")


class GateDecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    outcome = serializers.ChoiceField(["go", "iterate", "roll_back"])
    outcome_label = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    recorded_by = serializers.CharField()
    is_override = serializers.BooleanField(help_text="Against the recommendation of its time.")
    override_reason = serializers.CharField(allow_blank=True)


class GateCriterionSerializer(serializers.Serializer):
    name = serializers.CharField()
    blocking = serializers.BooleanField()
    verdict = serializers.ChoiceField(["met", "not_met", "not_enough_evidence"])
    value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    comparator = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    low = serializers.FloatField(allow_null=True, help_text="Lower bound of the 95 % interval.")
    high = serializers.FloatField(allow_null=True, help_text="Upper bound of the 95 % interval.")
    sample_size = serializers.IntegerField()
    method = serializers.CharField(allow_blank=True)


class GateTriggerSerializer(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.CharField()
    unresolved_episodes = serializers.IntegerField()


class GateOutputSerializer(serializers.Serializer):
    plan = GatePlanSerializer()
    recommendation = GateRecommendationSerializer()
    decision = GateDecisionSerializer(
        allow_null=True, help_text="The current decision record (not superseded), or null."
    )
    promotion_allowed = serializers.BooleanField(
        help_text="True iff the current decision is Go or — none recorded and "
        "`require_decision` false — the recommendation is Go."
    )
    promotion_reason = serializers.CharField()
    rollback_called_for = serializers.BooleanField(
        help_text="A Roll back decision, or a fired rollback trigger nobody resolved."
    )
    rollback_reason = serializers.CharField()
    require_decision = serializers.BooleanField()
    criteria = GateCriterionSerializer(many=True)
    triggers = GateTriggerSerializer(many=True)
    checked_at = serializers.DateTimeField(
        allow_null=True, help_text="The latest check run the verdicts come from."
    )
    computed_at = serializers.DateTimeField()


MODE = OpenApiParameter(
    "mode",
    OpenApiTypes.STR,
    enum=["json", "strict"],
    required=False,
    description="`json` (default): always 200 with the body. `strict`: 200 when the answer is "
    "yes, 409 with the same body when it is no.",
)
REQUIRE_DECISION = OpenApiParameter(
    "require_decision",
    OpenApiTypes.BOOL,
    required=False,
    description="true: promotion needs a recorded Go decision; the recommendation alone is not "
    "enough.",
)
RUN = OpenApiParameter(
    "run",
    OpenApiTypes.STR,
    required=False,
    description="The pipeline's run identifier (≤ 200 printable characters), kept in the gate's "
    "call log. The `X-Pipeline-Run` header says the same and wins.",
)
RUN_HEADER = OpenApiParameter(
    "X-Pipeline-Run",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The pipeline's run identifier (≤ 200 printable characters).",
)


def _responses(yes: str, no: str) -> dict[int, OpenApiResponse]:
    return {
        200: OpenApiResponse(GateOutputSerializer, description=f"json mode; strict mode: {yes}."),
        400: INVALID,
        401: OpenApiResponse(
            ErrorOutputSerializer, description="No credentials, or an invalid or revoked API key."
        ),
        403: OpenApiResponse(
            ErrorOutputSerializer, description="An API key without the `read` scope."
        ),
        404: OpenApiResponse(ErrorOutputSerializer, description="Not a plan you may reach."),
        409: OpenApiResponse(
            GateOutputSerializer, description=f"strict mode only: {no}; the same body as 200."
        ),
    }


def _gate_view(view: Any) -> Any:
    # The API's credentials, plus Flagger's key in the body (tokens first: their
    # WWW-Authenticate header makes missing credentials a 401).
    view = authentication_classes(
        [
            *api_settings.DEFAULT_AUTHENTICATION_CLASSES[:-1],
            FlaggerMetadataKeyAuthentication,
            SessionAuthentication,
        ]
    )(view)
    return api_view(["GET", "POST"])(view)


class FlaggerMetadataSerializer(serializers.Serializer):
    api_key = serializers.CharField(
        required=False, help_text="A `read` key of the plan's team, when no header is sent."
    )
    run = serializers.CharField(required=False, help_text="The pipeline's run identifier.")


class FlaggerPayloadSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, help_text="The canary (Flagger sends it).")
    namespace = serializers.CharField(required=False)
    phase = serializers.CharField(required=False)
    metadata = FlaggerMetadataSerializer(required=False)


GATE_WORDS = (
    "The recommendation, the current decision, every exit criterion's verdict and interval, the "
    "rollback triggers' states and `promotion_allowed` with its reason in words. See "
    "docs/gate.md for recipes (Argo Rollouts, Flagger, Azure DevOps, Spinnaker, GitHub Actions, "
    "GitLab CI)."
)
ROLLBACK_WORDS = (
    "The same body as the gate; strict mode answers 200 when `rollback_called_for` (a Roll back "
    "decision, or a fired rollback trigger nobody resolved), else 409. For Flagger's `rollback` "
    "webhook."
)
POST_WORDS = (
    " POST answers as GET, for Flagger's webhooks: they POST a JSON payload and send no headers, "
    "so the key may come in `metadata.api_key`."
)
PARAMETERS = [MODE, REQUIRE_DECISION, RUN, RUN_HEADER]


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="plans_gate_retrieve",
    summary="May this release be promoted?",
    description=GATE_WORDS,
    parameters=PARAMETERS,
    responses=_responses("promotion allowed", "promotion not allowed"),
)
@extend_schema(
    methods=["POST"],
    tags=TAGS,
    operation_id="plans_gate_check",
    summary="May this release be promoted? (Flagger's webhook)",
    description=GATE_WORDS + POST_WORDS,
    parameters=PARAMETERS,
    request=FlaggerPayloadSerializer,
    responses=_responses("promotion allowed", "promotion not allowed"),
)
@_gate_view
def plan_gate(request: Request, plan_id: int) -> Response:
    return _gate(request, plan_id, GateCall.Endpoint.GATE)


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="plans_gate_rollback_retrieve",
    summary="Is a rollback called for?",
    description=ROLLBACK_WORDS,
    parameters=PARAMETERS,
    responses=_responses("a rollback is called for", "no rollback called for"),
)
@extend_schema(
    methods=["POST"],
    tags=TAGS,
    operation_id="plans_gate_rollback_check",
    summary="Is a rollback called for? (Flagger's webhook)",
    description=ROLLBACK_WORDS + POST_WORDS,
    parameters=PARAMETERS,
    request=FlaggerPayloadSerializer,
    responses=_responses("a rollback is called for", "no rollback called for"),
)
@_gate_view
def plan_gate_rollback(request: Request, plan_id: int) -> Response:
    return _gate(request, plan_id, GateCall.Endpoint.ROLLBACK)


urlpatterns = [
    path("plans/<int:plan_id>/gate", plan_gate, name="plan-gate"),
    path("plans/<int:plan_id>/gate/rollback", plan_gate_rollback, name="plan-gate-rollback"),
]
