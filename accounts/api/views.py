from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.serializers import (
    MeOutputSerializer,
    TeamCreateInputSerializer,
    TeamOutputSerializer,
)
from accounts.permissions import require_team_creation
from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated


@extend_schema(responses=MeOutputSerializer)
@api_view(["GET"])
def me(request: Request) -> Response:
    """The authenticated user and the teams they belong to, with their role in each."""
    user = request.user
    data = {
        "id": user.pk,
        "email": user.email,
        "full_name": user.full_name,
        "teams": selectors.team_list_for_user(user=user),
    }
    return Response(MeOutputSerializer(data).data)


TEAM_ORDERING = {"name": "name", "created_at": "created_at"}
TEAM_DEFAULT = ["name"]


@extend_schema(
    methods=["GET"],
    operation_id="teams_list",
    parameters=[ordering_parameter(TEAM_ORDERING, TEAM_DEFAULT), PAGE_PARAMETER],
    responses=paginated(TeamOutputSerializer),
)
@extend_schema(
    methods=["POST"],
    operation_id="teams_create",
    request=TeamCreateInputSerializer,
    responses={201: TeamOutputSerializer},
)
@api_view(["GET", "POST"])
def team_list(request: Request) -> Response:
    """GET: the caller's teams (paginated). POST: create a team with the caller as first member."""
    if request.method == "POST":
        require_team_creation(request.user)  # before validating: a refused caller learns no more
        payload = TeamCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        team = services.team_create(
            creator=request.user,
            name=payload.validated_data["name"],
            time_zone=payload.validated_data["time_zone"],
            creator_role=payload.validated_data["role"],
        )
        created = selectors.team_for_user(user=request.user, team_id=team.pk)
        return Response(TeamOutputSerializer(created).data, status=status.HTTP_201_CREATED)
    teams = ordered(
        request,
        selectors.team_list_for_user(user=request.user),
        fields=TEAM_ORDERING,
        default=TEAM_DEFAULT,
    )
    return paginate(request, teams, TeamOutputSerializer)


@extend_schema(operation_id="teams_retrieve", responses=TeamOutputSerializer)
@api_view(["GET"])
def team_detail(request: Request, team_id: int) -> Response:
    """One of the caller's teams; 404 for a team the caller does not belong to."""
    team = selectors.team_for_user(user=request.user, team_id=team_id)
    return Response(TeamOutputSerializer(team).data)
