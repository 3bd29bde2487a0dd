"""A plan's alerts over the REST API (under /api/v1/, namespace "api"). An alert is a rollback
trigger firing, stored as a ``TriggerEpisode`` (docs/glossary.md):

- ``plans/{plan_id}/alerts`` (GET): every alert, newest first (``?unresolved=true`` for the open
  ones: what the red banner shows);
- ``plans/{plan_id}/alerts/{alert_id}/acknowledge`` (POST): record who is on it (idempotent);
- ``plans/{plan_id}/alerts/{alert_id}/resolve`` (POST ``{"resolution": "…"}``): close it.

The same under ``plans/{plan_id}/episodes…``, their first name, answer as before with a
``Deprecation`` header (``core.deprecation``) for one more release.

Access goes through ``pilots.access.plan_for_user``: not a member → 404, not logged in → 403,
stakeholders read but may not acknowledge or resolve (403).
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import UserOutputSerializer
from accounts.models import User
from accounts.permissions import Perm
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.deprecation import View, deprecated
from core.listing import IdFilter, filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from metrics import alerts
from metrics.models import TriggerEpisode
from pilots.access import plan_for_user

TAGS = ["alerts"]
# The day the episodes paths became alerts: the date of their Deprecation header.
EPISODES_DEPRECATED = dt.date(2026, 12, 6)


class AlertOutputSerializer(serializers.Serializer):
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
    ErrorOutputSerializer, description="The alert is already resolved; nothing changed."
)


class AlertFilter(django_filters.FilterSet):
    unresolved = django_filters.BooleanFilter(
        field_name="resolved_at",
        lookup_expr="isnull",
        label="`true`: only alerts nobody resolved yet; `false`: only resolved ones.",
    )
    acknowledged = django_filters.BooleanFilter(
        field_name="acknowledged_at",
        lookup_expr="isnull",
        exclude=True,
        label="`true`: only acknowledged alerts; `false`: only those nobody acknowledged.",
    )
    trigger = IdFilter(field_name="trigger_id", label="Only this trigger's.")
    fired_after = django_filters.IsoDateTimeFilter(
        field_name="fired_at", lookup_expr="gte", label="Fired at or after this moment."
    )
    fired_before = django_filters.IsoDateTimeFilter(
        field_name="fired_at", lookup_expr="lt", label="Fired before this moment."
    )


ORDERING = {"fired_at": "fired_at", "breach_started_at": "breach_started_at"}
DEFAULT = ["-fired_at"]


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


@extend_schema(
    tags=TAGS,
    operation_id="plans_alerts_list",
    summary="The plan's alerts (rollback triggers that fired), newest first",
    parameters=[
        *filter_parameters(AlertFilter),
        ordering_parameter(ORDERING, DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(AlertOutputSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@api_view(["GET"])
def alert_list(request: Request, plan_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id)
    episodes = filtered(request, AlertFilter, alerts.episodes_for_plan(plan_id=plan.pk))
    episodes = ordered(request, episodes, fields=ORDERING, default=DEFAULT)
    return paginate(request, episodes, AlertOutputSerializer)


@extend_schema(
    tags=TAGS,
    operation_id="plans_alerts_acknowledge",
    summary="Acknowledge an alert (idempotent: the first acknowledgement is kept)",
    request=None,
    responses={200: AlertOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
@api_view(["POST"])
def alert_acknowledge(request: Request, plan_id: int, alert_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id, perm=Perm.ALERTS_ACT)
    episode = alerts.episode_acknowledge(plan=plan, episode_id=alert_id, user=_user(request))
    return Response(AlertOutputSerializer(episode).data)


@extend_schema(
    tags=TAGS,
    operation_id="plans_alerts_resolve",
    summary="Resolve an alert, saying what was done",
    request=ResolveInputSerializer,
    responses={
        200: AlertOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["POST"])
def alert_resolve(request: Request, plan_id: int, alert_id: int) -> Response:
    plan = plan_for_user(user=_user(request), plan_id=plan_id, perm=Perm.ALERTS_ACT)
    data = ResolveInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    episode = alerts.episode_resolve(
        plan=plan,
        episode_id=alert_id,
        user=_user(request),
        resolution=data.validated_data["resolution"],
    )
    return Response(AlertOutputSerializer(episode).data)


P = "plans/<int:plan_id>"

urlpatterns = [
    path(f"{P}/alerts", alert_list, name="plan-alerts"),
    path(
        f"{P}/alerts/<int:alert_id>/acknowledge",
        alert_acknowledge,
        name="plan-alert-acknowledge",
    ),
    path(f"{P}/alerts/<int:alert_id>/resolve", alert_resolve, name="plan-alert-resolve"),
]


def _episodes(view: View, successor: str, operation_id: str) -> View:
    return deprecated(
        view, successor=successor, since=EPISODES_DEPRECATED, operation_id=operation_id
    )


# Their first names, kept for one more release: unnamed (nothing of ours links to them), with a
# Deprecation header and marked deprecated in the schema, under their old operation ids.
urlpatterns += [
    path(f"{P}/episodes", _episodes(alert_list, "plan-alerts", "plans_episodes_list")),
    path(
        f"{P}/episodes/<int:alert_id>/acknowledge",
        _episodes(alert_acknowledge, "plan-alert-acknowledge", "plans_episodes_acknowledge"),
    ),
    path(
        f"{P}/episodes/<int:alert_id>/resolve",
        _episodes(alert_resolve, "plan-alert-resolve", "plans_episodes_resolve"),
    ),
]
