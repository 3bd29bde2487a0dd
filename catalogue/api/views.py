"""The metric catalogue over the API: ``GET teams/{team_id}/metrics``.

The built-in metrics every team sees plus the team's own, for every member (others: 404).
Filter by ``?kind=``, ``?key=`` or ``?builtin=``; order by key (default), name or kind. A
script reads the keys here before it pushes samples (docs/api.md).
"""

from __future__ import annotations

import django_filters
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import team_for_member
from catalogue.models import MetricDefinition
from catalogue.selectors import metric_list_for_team
from core.listing import filter_parameters, filtered, ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated


class CatalogueMetricOutputSerializer(serializers.ModelSerializer):
    builtin = serializers.SerializerMethodField(help_text="True for the built-in catalogue.")

    class Meta:
        model = MetricDefinition
        fields = [
            "id", "key", "name", "unit", "kind", "direction", "description",
            "expected_interval_minutes", "builtin",
        ]  # fmt: skip

    def get_builtin(self, metric: MetricDefinition) -> bool:
        return metric.team_id is None


class MetricFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        choices=MetricDefinition.Kind.choices, label="Only this kind."
    )
    key = django_filters.CharFilter(label="Only the metric with this key.")
    builtin = django_filters.BooleanFilter(
        field_name="team", lookup_expr="isnull", label="true: the built-in ones; false: the team's."
    )

    class Meta:
        model = MetricDefinition
        fields = ["kind", "key", "builtin"]


ORDERING = {"key": "key", "name": "name", "kind": "kind"}
DEFAULT = ["key"]


@extend_schema(
    tags=["metrics"],
    operation_id="team_metrics_list",
    summary="The metric catalogue a team uses",
    parameters=[
        *filter_parameters(MetricFilter),
        ordering_parameter(ORDERING, DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(CatalogueMetricOutputSerializer)},
)
@api_view(["GET"])
def metric_list(request: Request, team_id: int) -> Response:
    team, _role = team_for_member(user=request.user, team_id=team_id)  # type: ignore[arg-type]
    metrics = filtered(request, MetricFilter, metric_list_for_team(team_id=team.pk))
    metrics = ordered(request, metrics, fields=ORDERING, default=DEFAULT)
    return paginate(request, metrics, CatalogueMetricOutputSerializer)


urlpatterns = [path("teams/<int:team_id>/metrics", metric_list, name="team-metrics")]
