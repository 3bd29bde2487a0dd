"""A plan's rollback trigger episodes over the REST API (under /api/v1/, namespace "api"):

- ``plans/{plan_id}/episodes`` (GET): every breach episode, newest first (``?unresolved=true``
  for the open ones: what the red banner shows);
- ``plans/{plan_id}/episodes/{id}/acknowledge`` (POST): record who is on it (idempotent);
- ``plans/{plan_id}/episodes/{id}/resolve`` (POST ``{"resolution": "…"}``): close it.

Access goes through ``pilots.access.plan_for_user``: not a member → 404, not logged in → 403,
stakeholders read but may not acknowledge or resolve (403).
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import UserOutputSerializer
from accounts.models import User
from accounts.permissions import Perm
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.pagination import PAGE_PARAMETER, paginate, paginated
from metrics import alerts
from metrics.models import TriggerEpisode
from pilots.access import plan_for_user

TAGS = ["alerts"]


class EpisodeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    trigger = serializers.IntegerField(
        source="trigger_id", allow_null=True, help_text="Null once the trigger was deleted."
    )
    description = serializers.CharField(help_text="The trigger as it read when it fired.")
    state = serializers.SerializerMethodField(
        help_text="`active` (still breaching or never cleared), `cleared` (stopped breaching, "
        "not resolved yet) or `resolved`."
    )
    breach_started_at = serializers.DateTimeField()
    fired_at = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True, help_text="The value observed when it fired.")
    cleared_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = UserOutputSerializer(allow_null=True)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_by = UserOutputSerializer(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField()

    def get_state(self, episode: TriggerEpisode) -> str:
        if episode.resolved_at is not None:
            return "resolved"
        return "cleared" if episode.cleared_at is not None else "active"


class ResolveInputSerializer(serializers.Serializer):
    resolution = serializers.CharField(
        max_length=2000, help_text="What was done: rolled back, false alarm, fixed…"
    )


CONFLICT = OpenApiResponse(
    ErrorOutputSerializer, description="The episode is already resolved; nothing changed."
)
UNRESOLVED_PARAMETER = OpenApiParameter(
    "unresolved",
    OpenApiTypes.BOOL,
    required=False,
    description="`true`: only episodes nobody resolved yet.",
)


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


@extend_schema(
    tags=TAGS,
    operation_id="plans_episodes_list",
    summary="The plan's rollback trigger episodes, newest first",
    parameters=[PAGE_PARAMETER, UNRESOLVED_PARAMETER],
    responses={200: paginated(EpisodeOutputSerializer), 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET"])
def episode_list(request: Request, plan_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id)
    episodes = alerts.episodes_for_plan(plan_id=plan.pk)
    if request.query_params.get("unresolved", "").lower() in {"1", "true", "yes"}:
        episodes = episodes.filter(resolved_at__isnull=True)
    return paginate(request, episodes, EpisodeOutputSerializer)


@extend_schema(
    tags=TAGS,
    operation_id="plans_episodes_acknowledge",
    summary="Acknowledge an episode (idempotent: the first acknowledgement is kept)",
    request=None,
    responses={200: EpisodeOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
@api_view(["POST"])
def episode_acknowledge(request: Request, plan_id: int, episode_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id, perm=Perm.ALERTS_ACT)
    episode = alerts.episode_acknowledge(plan=plan, episode_id=episode_id, user=_user(request))
    return Response(EpisodeOutputSerializer(episode).data)


@extend_schema(
    tags=TAGS,
    operation_id="plans_episodes_resolve",
    summary="Resolve an episode, saying what was done",
    request=ResolveInputSerializer,
    responses={
        200: EpisodeOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["POST"])
def episode_resolve(request: Request, plan_id: int, episode_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id, perm=Perm.ALERTS_ACT)
    data = ResolveInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    episode = alerts.episode_resolve(
        plan=plan,
        episode_id=episode_id,
        user=_user(request),
        resolution=data.validated_data["resolution"],
    )
    return Response(EpisodeOutputSerializer(episode).data)


urlpatterns = [
    path("plans/<int:plan_id>/episodes", episode_list, name="plan-episodes"),
    path(
        "plans/<int:plan_id>/episodes/<int:episode_id>/acknowledge",
        episode_acknowledge,
        name="plan-episode-acknowledge",
    ),
    path(
        "plans/<int:plan_id>/episodes/<int:episode_id>/resolve",
        episode_resolve,
        name="plan-episode-resolve",
    ),
]
