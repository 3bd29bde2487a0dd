"""A plan's rollback triggers with their current state: ``GET plans/{plan_id}/triggers``.

Each trigger as the plan defines it (its wording) and its latest evaluation: ok, breaching,
fired, no data or stale (``metrics.triggers`` writes it after each ingestion and each minute);
``state`` is null for a trigger not evaluated yet (never shown as ok). Everyone who reads the plan
reads them; for anyone else the plan does not exist (404). Filter ``?state=``; in the plan's
order. The episodes (each breach, acknowledged and resolved) are at ``plans/{plan_id}/alerts``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from metrics.models import TriggerState
from pilots import wording
from pilots.access import plan_for_user
from pilots.models import RollbackTrigger

STATES = [*TriggerState.State.values, "not_evaluated"]


class TriggerStateOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The rollback trigger (its row in the plan).")
    position = serializers.IntegerField()
    text = serializers.SerializerMethodField(help_text="The trigger in words.")
    mode = serializers.CharField(help_text="sustained or any (occurrence).")
    state = serializers.SerializerMethodField(
        help_text="ok, breaching, fired, no_data, stale; null when not evaluated yet."
    )
    detail = serializers.SerializerMethodField(help_text="What the latest evaluation saw.")
    evaluated_at = serializers.SerializerMethodField()

    def _state(self, trigger: RollbackTrigger) -> TriggerState | None:
        return getattr(trigger, "state", None)

    def get_text(self, trigger: RollbackTrigger) -> str:
        return wording.trigger_text(trigger)

    def get_state(self, trigger: RollbackTrigger) -> str | None:
        state = self._state(trigger)
        return state.state if state else None

    def get_detail(self, trigger: RollbackTrigger) -> str:
        state = self._state(trigger)
        return state.detail if state else ""

    def get_evaluated_at(self, trigger: RollbackTrigger) -> str | None:
        state = self._state(trigger)
        return serializers.DateTimeField().to_representation(state.evaluated_at) if state else None


STATE_PARAMETER = OpenApiParameter(
    "state",
    OpenApiTypes.STR,
    required=False,
    enum=STATES,
    description="Only triggers in this state.",
)


ORDERING = {"position": "position", "state": "state__state", "evaluated_at": "state__evaluated_at"}
DEFAULT = ["position"]


@extend_schema(
    tags=["alerts"],
    operation_id="plan_triggers_list",
    summary="A plan's rollback triggers and their current state",
    parameters=[STATE_PARAMETER, ordering_parameter(ORDERING, DEFAULT), PAGE_PARAMETER],
    responses={200: paginated(TriggerStateOutputSerializer)},
)
@api_view(["GET"])
def trigger_list(request: Request, plan_id: int) -> Response:
    plan = plan_for_user(user=request.user, plan_id=plan_id)  # type: ignore[arg-type]
    triggers = RollbackTrigger.objects.filter(plan=plan).select_related("metric", "state")
    triggers = ordered(request, triggers, fields=ORDERING, default=DEFAULT)
    wanted = request.query_params.get("state", "")
    if wanted:
        if wanted not in STATES:
            raise ValidationError({"state": [f"Choose one of {', '.join(STATES)}."]})
        if wanted == "not_evaluated":
            triggers = triggers.filter(state__isnull=True)
        else:
            triggers = triggers.filter(state__state=wanted)
    return paginate(request, triggers, TriggerStateOutputSerializer)


urlpatterns = [path("plans/<int:plan_id>/triggers", trigger_list, name="plan-triggers")]
