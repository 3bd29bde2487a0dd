"""A team's holidays over the API: the days its pilots' business days skip.

- ``GET teams/{team_id}/holidays``: every member reads them (others: 404); ``?after=`` /
  ``?before=`` (dates, inclusive), ordered by ``date`` (default) or ``-date``.
- ``POST teams/{team_id}/holidays``: add one (Product Owner or Scrum Master); the end dates of the
  team's open plans move (``pilots.services.holidays``).
- ``DELETE teams/{team_id}/holidays/{holiday_id}``: remove one (the same roles).
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import TeamHoliday
from accounts.permissions import Perm, team_for_member
from core.api import INVALID
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from core.validators import validate_sane_date
from pilots.services.holidays import team_holiday_add, team_holiday_remove

TAGS = ["teams"]


class HolidayOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    date = serializers.DateField()
    name = serializers.CharField()


class HolidayInputSerializer(serializers.Serializer):
    date = serializers.DateField(validators=[validate_sane_date])
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class HolidayFilter(django_filters.FilterSet):
    after = django_filters.DateFilter(field_name="date", lookup_expr="gte", label="From this day.")
    before = django_filters.DateFilter(
        field_name="date", lookup_expr="lte", label="Up to this day."
    )

    class Meta:
        model = TeamHoliday
        fields = ["after", "before"]


ORDERING = {"date": "date"}
DEFAULT = ["date"]


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="team_holidays_list",
    summary="A team's holidays",
    parameters=[
        *filter_parameters(HolidayFilter),
        ordering_parameter(ORDERING, DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(HolidayOutputSerializer)},
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="team_holidays_create",
    summary="Add a holiday",
    description="The Product Owner or Scrum Master. The end dates of the team's open plans move.",
    request=HolidayInputSerializer,
    responses={201: HolidayOutputSerializer, 400: INVALID},
)
@api_view(["GET", "POST"])
def holiday_list(request: Request, team_id: int) -> Response:
    if request.method == "POST":
        team, _role = team_for_member(user=request.user, team_id=team_id, perm=Perm.HOLIDAYS_MANAGE)  # type: ignore[arg-type]
        payload = HolidayInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        holiday = team_holiday_add(team=team, user=request.user, **payload.validated_data)  # type: ignore[arg-type]
        return Response(HolidayOutputSerializer(holiday).data, status=status.HTTP_201_CREATED)
    team, _role = team_for_member(user=request.user, team_id=team_id)  # type: ignore[arg-type]
    holidays = filtered(request, HolidayFilter, TeamHoliday.objects.filter(team=team))
    holidays = ordered(request, holidays, fields=ORDERING, default=DEFAULT)
    return paginate(request, holidays, HolidayOutputSerializer)


@extend_schema(
    tags=TAGS,
    operation_id="team_holidays_destroy",
    summary="Remove a holiday",
    description="The Product Owner or Scrum Master. The end dates of the team's open plans move.",
    responses={204: None},
)
@api_view(["DELETE"])
def holiday_detail(request: Request, team_id: int, holiday_id: int) -> Response:
    team, _role = team_for_member(user=request.user, team_id=team_id, perm=Perm.HOLIDAYS_MANAGE)  # type: ignore[arg-type]
    if not TeamHoliday.objects.filter(team=team, pk=holiday_id).exists():
        raise Http404("No such holiday")
    team_holiday_remove(team=team, user=request.user, holiday_id=holiday_id)  # type: ignore[arg-type]
    return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("teams/<int:team_id>/holidays", holiday_list, name="team-holidays"),
    path("teams/<int:team_id>/holidays/<int:holiday_id>", holiday_detail, name="team-holiday"),
]
