"""A team's members and one's own notifications over the API.

- ``GET teams/{team_id}/members``: who is in the team, with their role (every member reads it;
  for anyone else the team does not exist, 404). Filter ``?role=``, order by name, email, role
  or joined_at.
- ``GET notifications``: the caller's own notifications, newest first; ``?unread=true``,
  ``?kind=``. ``POST notifications/{id}/read`` marks one read (another person's is 404);
  ``POST notifications/read`` marks all the caller's unread ones read.
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.api.serializers import (
    MemberOutputSerializer,
    NotificationOutputSerializer,
    NotificationsReadOutputSerializer,
)
from accounts.models import Membership, Notification
from accounts.permissions import team_for_member
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated

# --- members --------------------------------------------------------------------------------------


class MemberFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Membership.Role.choices, label="Only this role.")

    class Meta:
        model = Membership
        fields = ["role"]


MEMBER_ORDERING = {
    "name": "user__full_name",
    "email": "user__email",
    "role": "role",
    "joined_at": "joined_at",
}
MEMBER_DEFAULT = ["name", "email"]


@extend_schema(
    tags=["teams"],
    operation_id="team_members_list",
    summary="A team's members and their roles",
    parameters=[
        *filter_parameters(MemberFilter),
        ordering_parameter(MEMBER_ORDERING, MEMBER_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(MemberOutputSerializer)},
)
@api_view(["GET"])
def member_list(request: Request, team_id: int) -> Response:
    team, _role = team_for_member(user=request.user, team_id=team_id)  # type: ignore[arg-type]
    members = Membership.objects.filter(team=team).select_related("user")
    members = filtered(request, MemberFilter, members)
    members = ordered(request, members, fields=MEMBER_ORDERING, default=MEMBER_DEFAULT)
    return paginate(request, members, MemberOutputSerializer)


# --- notifications --------------------------------------------------------------------------------


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(
        field_name="read_at", lookup_expr="isnull", label="true: unread only; false: read only."
    )
    kind = django_filters.ChoiceFilter(choices=Notification.Kind.choices, label="Only this kind.")

    class Meta:
        model = Notification
        fields = ["unread", "kind"]


NOTIFICATION_ORDERING = {"created_at": "created_at"}
NOTIFICATION_DEFAULT = ["-created_at"]


@extend_schema(
    tags=["notifications"],
    operation_id="notifications_list",
    summary="Your notifications",
    parameters=[
        *filter_parameters(NotificationFilter),
        ordering_parameter(NOTIFICATION_ORDERING, NOTIFICATION_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(NotificationOutputSerializer)},
)
@api_view(["GET"])
def notification_list(request: Request) -> Response:
    mine = Notification.objects.filter(user=request.user)  # one's own, never anyone else's
    mine = filtered(request, NotificationFilter, mine)
    mine = ordered(request, mine, fields=NOTIFICATION_ORDERING, default=NOTIFICATION_DEFAULT)
    return paginate(request, mine, NotificationOutputSerializer)


@extend_schema(
    tags=["notifications"],
    operation_id="notifications_read_one",
    summary="Mark one of your notifications read",
    request=None,
    responses={200: NotificationOutputSerializer},
)
@api_view(["POST"])
def notification_read(request: Request, notification_id: int) -> Response:
    notification = Notification.objects.filter(user=request.user, pk=notification_id).first()
    if notification is None:
        raise Http404("No such notification")
    services.notifications_mark_read(user=request.user, notification_ids=[notification.pk])  # type: ignore[arg-type]
    notification.refresh_from_db(fields=["read_at"])
    return Response(NotificationOutputSerializer(notification).data)


@extend_schema(
    tags=["notifications"],
    operation_id="notifications_read_all",
    summary="Mark all your unread notifications read",
    request=None,
    responses={200: NotificationsReadOutputSerializer},
)
@api_view(["POST"])
def notifications_read_all(request: Request) -> Response:
    marked = services.notifications_mark_read(user=request.user)  # type: ignore[arg-type]
    return Response({"marked": marked})


urlpatterns = [
    path("teams/<int:team_id>/members", member_list, name="team-members"),
    path("notifications", notification_list, name="notifications"),
    path("notifications/read", notifications_read_all, name="notifications-read"),
    path("notifications/<int:notification_id>/read", notification_read, name="notification-read"),
]
