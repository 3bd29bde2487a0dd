"""A team's members and one's own notifications over the API.

- ``GET teams/{team_id}/members``: who is in the team, with their role (every member reads it;
  for anyone else the team does not exist, 404). Filter ``?role=``, order by name, email, role
  or joined_at.
- ``POST teams/{team_id}/members`` (add a person with an account, by ``email`` or ``user_id``),
  ``PATCH``/``DELETE teams/{team_id}/members/{user_id}`` (change the role, remove), and
  ``GET``/``POST teams/{team_id}/invitations``, ``DELETE …/invitations/{id}`` (invite by e-mail,
  revoke): the team's Product Owner or Scrum Master (``TEAM_MEMBERS_MANAGE``), with a session or
  a personal token with the write scope; never a team API key (a machine does not choose a
  team's people). A team keeps at least one Product Owner (400 on ``role`` or ``user``).
- ``GET notifications``: the caller's own notifications, newest first; ``?unread=true``,
  ``?kind=``. ``POST notifications/{id}/read`` marks one read (another person's is 404);
  ``POST notifications/read`` marks all the caller's unread ones read.
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services, teams
from accounts.api.serializers import (
    InvitationInputSerializer,
    InvitationOutputSerializer,
    MemberAddInputSerializer,
    MemberOutputSerializer,
    MemberRoleInputSerializer,
    NotificationOutputSerializer,
    NotificationsReadOutputSerializer,
)
from accounts.models import Membership, Notification, Team, TeamInvitation
from accounts.permissions import Perm, team_for_member
from core.api import FORBIDDEN, INVALID, NOT_FOUND
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
    methods=["GET"],
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
@extend_schema(
    methods=["POST"],
    tags=["teams"],
    operation_id="team_members_add",
    summary="Add a person with an account to the team",
    request=MemberAddInputSerializer,
    responses={201: MemberOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET", "POST"])
def member_list(request: Request, team_id: int) -> Response:
    if request.method == "POST":
        team, _role = team_for_member(
            user=request.user,  # type: ignore[arg-type]
            team_id=team_id,
            perm=Perm.TEAM_MEMBERS_MANAGE,
        )
        payload = MemberAddInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = teams.member_add(team=team, by=request.user, **payload.validated_data)  # type: ignore[arg-type]
        return Response(MemberOutputSerializer(membership).data, status=status.HTTP_201_CREATED)
    team, _role = team_for_member(user=request.user, team_id=team_id)  # type: ignore[arg-type]
    members = Membership.objects.filter(team=team).select_related("user")
    members = filtered(request, MemberFilter, members)
    members = ordered(request, members, fields=MEMBER_ORDERING, default=MEMBER_DEFAULT)
    return paginate(request, members, MemberOutputSerializer)


def _managed_team(request: Request, team_id: int) -> Team:
    team, _role = team_for_member(
        user=request.user,  # type: ignore[arg-type]
        team_id=team_id,
        perm=Perm.TEAM_MEMBERS_MANAGE,
    )
    return team


@extend_schema(
    methods=["PATCH"],
    tags=["teams"],
    operation_id="team_members_update",
    summary="Change a member's role",
    request=MemberRoleInputSerializer,
    responses={200: MemberOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    methods=["DELETE"],
    tags=["teams"],
    operation_id="team_members_remove",
    summary="Remove a member from the team",
    responses={204: None, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["PATCH", "DELETE"])
def member_detail(request: Request, team_id: int, user_id: int) -> Response:
    team = _managed_team(request, team_id)
    if request.method == "DELETE":
        teams.member_remove(team=team, by=request.user, user_id=user_id)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)
    payload = MemberRoleInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    membership = teams.member_role_change(
        team=team,
        by=request.user,  # type: ignore[arg-type]
        user_id=user_id,
        role=payload.validated_data["role"],
    )
    return Response(MemberOutputSerializer(membership).data)


class InvitationFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Membership.Role.choices, label="Only this role.")

    class Meta:
        model = TeamInvitation
        fields = ["role"]


INVITATION_ORDERING = {
    "created_at": "created_at",
    "expires_at": "expires_at",
    "email": "email",
    "role": "role",
}
INVITATION_DEFAULT = ["-created_at"]


@extend_schema(
    methods=["GET"],
    tags=["teams"],
    operation_id="team_invitations_list",
    summary="The team's open invitations (expired ones included)",
    parameters=[
        *filter_parameters(InvitationFilter),
        ordering_parameter(INVITATION_ORDERING, INVITATION_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(InvitationOutputSerializer), 403: FORBIDDEN, 404: NOT_FOUND},
)
@extend_schema(
    methods=["POST"],
    tags=["teams"],
    operation_id="team_invitations_create",
    summary="Invite someone by e-mail",
    request=InvitationInputSerializer,
    responses={201: InvitationOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET", "POST"])
def invitation_list(request: Request, team_id: int) -> Response:
    """GET: the open invitations, newest first. POST: invite ``email`` as ``role``; the link is
    e-mailed to that address only (never in the answer)."""
    team = _managed_team(request, team_id)
    now = timezone.now()
    if request.method == "GET":
        invitations = teams.invitations_open(team=team, now=now)
        invitations = filtered(request, InvitationFilter, invitations)
        invitations = ordered(
            request, invitations, fields=INVITATION_ORDERING, default=INVITATION_DEFAULT
        )
        return paginate(request, invitations, InvitationOutputSerializer, context={"now": now})
    payload = InvitationInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    invitation, _token = teams.invitation_create(
        team=team,
        by=request.user,
        now=now,
        **payload.validated_data,  # type: ignore[arg-type]
    )
    body = InvitationOutputSerializer(invitation, context={"now": now}).data
    return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["teams"],
    operation_id="team_invitations_revoke",
    summary="Withdraw an open invitation",
    responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["DELETE"])
def invitation_detail(request: Request, team_id: int, invitation_id: int) -> Response:
    team = _managed_team(request, team_id)
    teams.invitation_revoke(team=team, by=request.user, invitation_id=invitation_id)  # type: ignore[arg-type]
    return Response(status=status.HTTP_204_NO_CONTENT)


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
    path("teams/<int:team_id>/members/<int:user_id>", member_detail, name="team-member"),
    path("teams/<int:team_id>/invitations", invitation_list, name="team-invitations"),
    path(
        "teams/<int:team_id>/invitations/<int:invitation_id>",
        invitation_detail,
        name="team-invitation",
    ),
    path("notifications", notification_list, name="notifications"),
    path("notifications/read", notifications_read_all, name="notifications-read"),
    path("notifications/<int:notification_id>/read", notification_read, name="notification-read"),
]
