"""A team's webhook subscriptions over the REST API (under /api/v1/, namespace "api";
docs/webhooks.md):

- ``teams/{team_id}/webhooks`` (GET, POST): the subscriptions; a new one answers 201 with its
  signing secret, the only time it is shown;
- ``teams/{team_id}/webhooks/{id}`` (GET, PUT, DELETE): one subscription;
- ``…/{id}/rotate-secret`` (POST): a new secret, shown once; ``…/{id}/test`` (POST): a ping;
- ``…/{id}/deliveries`` (GET): the delivery log, newest first;
- ``…/{id}/deliveries/{delivery_id}/redeliver`` (POST): send one again (202).

Every member reads; the roles holding ``Perm.WEBHOOK_MANAGE`` write (403 for the others); a
team the caller is not in is 404. The services check the same rules (metrics.subscriptions).
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import UserOutputSerializer
from accounts.events import SUBSCRIBABLE
from accounts.models import (
    WEBHOOK_PAYLOAD_VERSIONS,
    EventType,
    Team,
    User,
    WebhookDelivery,
    WebhookSubscription,
)
from accounts.permissions import Perm, team_for_member
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from metrics import subscriptions

TAGS = ["webhooks"]
CONFLICT = OpenApiResponse(
    ErrorOutputSerializer,
    description="Not possible now: the subscription is switched off, or the team has the most "
    "subscriptions it may have.",
)


class SubscriptionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=WebhookSubscription.Kind.choices)
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=SUBSCRIBABLE))
    is_active = serializers.BooleanField()
    payload_version = serializers.ChoiceField(
        choices=WEBHOOK_PAYLOAD_VERSIONS,
        help_text="The payload version it receives (docs/webhooks.md, “Payload versions”).",
    )
    disabled_reason = serializers.CharField(
        help_text="Why Pilotplan switched it off (persistent failure); empty otherwise."
    )
    created_by = UserOutputSerializer(allow_null=True)
    created_at = serializers.DateTimeField()


class SubscriptionSecretOutputSerializer(SubscriptionOutputSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (whsec_…), shown only in this answer."
    )


class SubscriptionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(
        choices=WebhookSubscription.Kind.choices, default=WebhookSubscription.Kind.STANDARD
    )
    url = serializers.CharField(max_length=subscriptions.URL_MAX)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE), min_length=1, max_length=50
    )
    is_active = serializers.BooleanField(default=True)
    payload_version = serializers.ChoiceField(
        choices=WEBHOOK_PAYLOAD_VERSIONS,
        required=False,
        help_text="The payload version to receive: a new subscription gets the current one, a "
        "change without it keeps the one pinned.",
    )


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.CharField(help_text="The webhook-id header; kept by a redelivery.")
    event = serializers.CharField()
    created_at = serializers.DateTimeField()
    attempts = serializers.IntegerField()
    state = serializers.SerializerMethodField(
        help_text="`queued`, `retrying`, `delivered`, `failed`."
    )
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    last_duration_ms = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField()
    payload = serializers.JSONField()

    def get_state(self, delivery: WebhookDelivery) -> str:
        if delivery.delivered_at is not None:
            return "delivered"
        if delivery.failed_at is not None:
            return "failed"
        return "retrying" if delivery.attempts else "queued"


def _team(request: Request, team_id: int, *, change: bool) -> Team:
    user: User = request.user  # type: ignore[assignment]
    team, _role = team_for_member(
        user=user, team_id=team_id, perm=Perm.WEBHOOK_MANAGE if change else None
    )
    return team


def _with_secret(subscription: WebhookSubscription, secret: str) -> dict[str, object]:
    data = dict(SubscriptionOutputSerializer(subscription).data)
    data["secret"] = secret
    return data


class SubscriptionFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(
        field_name="is_active", label="`true`: only active subscriptions; `false`: disabled ones."
    )
    kind = django_filters.ChoiceFilter(
        choices=WebhookSubscription.Kind.choices, label="Only this destination kind."
    )


class DeliveryFilter(django_filters.FilterSet):
    event = django_filters.ChoiceFilter(
        choices=EventType.choices, label="Only deliveries of this event."
    )
    state = django_filters.ChoiceFilter(
        choices=[("delivered", "delivered"), ("failed", "failed"), ("pending", "pending")],
        method="filter_state",
        label="`delivered`, `failed` (gave up) or `pending` (still being tried).",
    )

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "delivered":
            return queryset.filter(delivered_at__isnull=False)
        if value == "failed":
            return queryset.filter(failed_at__isnull=False)
        return queryset.filter(delivered_at__isnull=True, failed_at__isnull=True)


SUBSCRIPTION_ORDERING = {"name": "name", "created_at": "created_at"}
SUBSCRIPTION_DEFAULT = ["name"]
DELIVERY_ORDERING = {"created_at": "created_at", "last_attempt_at": "last_attempt_at"}
DELIVERY_DEFAULT = ["-created_at"]


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="teams_webhooks_list",
    summary="The team's webhook subscriptions",
    parameters=[
        *filter_parameters(SubscriptionFilter),
        ordering_parameter(SUBSCRIPTION_ORDERING, SUBSCRIPTION_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(SubscriptionOutputSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@extend_schema(
    methods=["POST"],
    tags=TAGS,
    operation_id="teams_webhooks_create",
    summary="Subscribe to events (the answer holds the signing secret, once)",
    request=SubscriptionInputSerializer,
    responses={
        201: SubscriptionSecretOutputSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        409: CONFLICT,
    },
)
@api_view(["GET", "POST"])
def webhook_list(request: Request, team_id: int) -> Response:
    if request.method == "GET":
        team = _team(request, team_id, change=False)
        rows = filtered(
            request, SubscriptionFilter, subscriptions.subscriptions_for_team(team_id=team.pk)
        )
        rows = ordered(request, rows, fields=SUBSCRIPTION_ORDERING, default=SUBSCRIPTION_DEFAULT)
        return paginate(request, rows, SubscriptionOutputSerializer)
    team = _team(request, team_id, change=True)
    data = SubscriptionInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    fields = {k: v for k, v in data.validated_data.items() if k != "is_active"}
    subscription, secret = subscriptions.subscription_create(
        team=team,
        user=request.user,  # type: ignore[arg-type]
        **fields,
    )
    if not data.validated_data["is_active"]:
        subscription = subscriptions.subscription_update(
            team=team,
            user=request.user,  # type: ignore[arg-type]
            subscription_id=subscription.pk,
            **data.validated_data,
        )
    return Response(_with_secret(subscription, secret), status=status.HTTP_201_CREATED)


@extend_schema(
    methods=["GET"],
    tags=TAGS,
    operation_id="teams_webhooks_retrieve",
    summary="One webhook subscription",
    responses={200: SubscriptionOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    methods=["PUT"],
    tags=TAGS,
    operation_id="teams_webhooks_update",
    summary="Change a subscription (switching it on again clears why it was switched off)",
    request=SubscriptionInputSerializer,
    responses={200: SubscriptionOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    methods=["DELETE"],
    tags=TAGS,
    operation_id="teams_webhooks_destroy",
    summary="Remove a subscription and its delivery log",
    responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET", "PUT", "DELETE"])
def webhook_detail(request: Request, team_id: int, subscription_id: int) -> Response:
    if request.method == "GET":
        team = _team(request, team_id, change=False)
        subscription = subscriptions.subscription_for_team(
            team_id=team.pk, subscription_id=subscription_id
        )
        return Response(SubscriptionOutputSerializer(subscription).data)
    team = _team(request, team_id, change=True)
    if request.method == "DELETE":
        subscriptions.subscription_delete(
            team=team,
            user=request.user,  # type: ignore[arg-type]
            subscription_id=subscription_id,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
    subscriptions.subscription_for_team(team_id=team.pk, subscription_id=subscription_id)
    data = SubscriptionInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    subscription = subscriptions.subscription_update(
        team=team,
        user=request.user,  # type: ignore[arg-type]
        subscription_id=subscription_id,
        **data.validated_data,
    )
    return Response(SubscriptionOutputSerializer(subscription).data)


@extend_schema(
    tags=TAGS,
    operation_id="teams_webhooks_rotate_secret",
    summary="A new signing secret (shown once, in this answer)",
    request=None,
    responses={200: SubscriptionSecretOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
def webhook_rotate(request: Request, team_id: int, subscription_id: int) -> Response:
    team = _team(request, team_id, change=True)
    subscription, secret = subscriptions.subscription_secret_rotate(
        team=team,
        user=request.user,  # type: ignore[arg-type]
        subscription_id=subscription_id,
    )
    return Response(_with_secret(subscription, secret))


@extend_schema(
    tags=TAGS,
    operation_id="teams_webhooks_test",
    summary="Send a test event (type ping) to this subscription",
    request=None,
    responses={202: DeliveryOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
@api_view(["POST"])
def webhook_test(request: Request, team_id: int, subscription_id: int) -> Response:
    team = _team(request, team_id, change=True)
    delivery = subscriptions.subscription_test_send(
        team=team,
        user=request.user,  # type: ignore[arg-type]
        subscription_id=subscription_id,
    )
    return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    tags=TAGS,
    operation_id="teams_webhooks_deliveries_list",
    summary="A subscription's delivery log, newest first",
    parameters=[
        *filter_parameters(DeliveryFilter),
        ordering_parameter(DELIVERY_ORDERING, DELIVERY_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={
        200: paginated(DeliveryOutputSerializer),
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
@api_view(["GET"])
def webhook_deliveries(request: Request, team_id: int, subscription_id: int) -> Response:
    team = _team(request, team_id, change=False)
    subscription = subscriptions.subscription_for_team(
        team_id=team.pk, subscription_id=subscription_id
    )
    rows = filtered(
        request,
        DeliveryFilter,
        subscriptions.deliveries_for_subscription(subscription_id=subscription.pk),
    )
    rows = ordered(request, rows, fields=DELIVERY_ORDERING, default=DELIVERY_DEFAULT)
    return paginate(request, rows, DeliveryOutputSerializer)


@extend_schema(
    tags=TAGS,
    operation_id="teams_webhooks_deliveries_redeliver",
    summary="Send a delivery again (a new delivery with the same webhook-id)",
    request=None,
    responses={202: DeliveryOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
@api_view(["POST"])
def webhook_redeliver(
    request: Request, team_id: int, subscription_id: int, delivery_id: int
) -> Response:
    team = _team(request, team_id, change=True)
    delivery = subscriptions.delivery_redeliver(
        team=team,
        user=request.user,  # type: ignore[arg-type]
        subscription_id=subscription_id,
        delivery_id=delivery_id,
    )
    return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


T = "teams/<int:team_id>/webhooks"

urlpatterns = [
    path(T, webhook_list, name="team-webhooks"),
    path(f"{T}/<int:subscription_id>", webhook_detail, name="team-webhook"),
    path(f"{T}/<int:subscription_id>/rotate-secret", webhook_rotate, name="team-webhook-rotate"),
    path(f"{T}/<int:subscription_id>/test", webhook_test, name="team-webhook-test"),
    path(
        f"{T}/<int:subscription_id>/deliveries",
        webhook_deliveries,
        name="team-webhook-deliveries",
    ),
    path(
        f"{T}/<int:subscription_id>/deliveries/<int:delivery_id>/redeliver",
        webhook_redeliver,
        name="team-webhook-redeliver",
    ),
]
