"""Samples read back: ``GET plans/{plan_id}/metrics/{key}/samples?since=…&until=…``.

One metric's raw samples in a plan, in a bounded window (at most 31 days; by default the last 24
hours up to ``until``, itself now by default), oldest first (``?ordering=-observed_at`` for newest
first), paginated. Everyone who reads the plan reads them; for anyone else the plan does not
exist (404). A metric key the plan's team does not know is 404. The (plan, metric, observed_at)
unique index serves the read.
"""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from catalogue.selectors import metric_by_key
from core.api import INVALID
from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from metrics.models import Sample
from pilots.access import plan_for_user

MAX_WINDOW = dt.timedelta(days=31)
DEFAULT_WINDOW = dt.timedelta(hours=24)
ORDERING = {"observed_at": "observed_at"}
DEFAULT = ["observed_at"]


class WindowInputSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="From (inclusive), with offset.")
    until = serializers.DateTimeField(required=False, help_text="Up to (exclusive), with offset.")

    def validate(self, attrs: dict) -> dict:
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - DEFAULT_WINDOW
        if since >= until:
            raise serializers.ValidationError({"since": "Choose a moment before until."})
        if until - since > MAX_WINDOW:
            raise serializers.ValidationError(
                {"since": "Read at most 31 days at a time: move since or until."}
            )
        return {"since": since, "until": until}


class SampleOutputSerializer(serializers.Serializer):
    observed_at = serializers.DateTimeField()
    value = serializers.FloatField()
    source = serializers.CharField()
    id = serializers.CharField(
        source="external_id", help_text="The id the pusher gave; may be empty."
    )


@extend_schema(
    tags=["samples"],
    operation_id="plan_metric_samples_list",
    summary="One metric's samples in a plan, in a window",
    parameters=[
        OpenApiParameter(
            "since",
            OpenApiTypes.DATETIME,
            required=False,
            description="From (inclusive); default: 24 hours before until.",
        ),
        OpenApiParameter(
            "until",
            OpenApiTypes.DATETIME,
            required=False,
            description="Up to (exclusive); default: now. At most 31 days after since.",
        ),
        ordering_parameter(ORDERING, DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(SampleOutputSerializer), 400: INVALID},
)
@api_view(["GET"])
def sample_list(request: Request, plan_id: int, key: str) -> Response:
    plan = plan_for_user(user=request.user, plan_id=plan_id)  # type: ignore[arg-type]
    metric = metric_by_key(key=key, team_id=plan.team_id)
    if metric is None:
        raise Http404("No such metric")
    window = WindowInputSerializer(data=request.query_params)
    window.is_valid(raise_exception=True)
    samples = Sample.objects.filter(
        plan=plan,
        metric=metric,
        observed_at__gte=window.validated_data["since"],
        observed_at__lt=window.validated_data["until"],
    ).only("observed_at", "value", "source", "external_id")
    samples = ordered(request, samples, fields=ORDERING, default=DEFAULT)
    return paginate(request, samples, SampleOutputSerializer)


urlpatterns = [
    path("plans/<int:plan_id>/metrics/<slug:key>/samples", sample_list, name="plan-metric-samples")
]
