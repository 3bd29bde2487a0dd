"""A metric's series, as the monitoring page charts it:
``GET plans/{plan_id}/metrics/{key}/series?since=…&until=…&bucket=minute|hour|day``.

One point per bucket with samples (the sum for a count metric, the mean otherwise, with the
bucket's count, sum, min and max), oldest first, from the hour and day rollups (minutes: the raw
samples grouped by UTC minute, as the page's last-24-hours chart does). The window is bounded per
bucket, so one answer is at most a few thousand points and is not paginated: 2 days of minutes,
92 days of hours, 400 days of days; a wider or reversed window is a 400 naming ``since``.
Everyone who reads the plan reads it; for anyone else the plan does not exist (404). A metric
key the plan's team does not know is 404.
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

from catalogue.models import MetricDefinition
from catalogue.selectors import metric_by_key
from core.api import INVALID, NOT_FOUND
from metrics.selectors import BUCKETS, bucket_floor, metric_series
from pilots.access import plan_for_user

# The widest window per bucket, and the default one (ending at ``until``, itself now).
MAX_WINDOW = {
    "minute": dt.timedelta(days=2),
    "hour": dt.timedelta(days=92),
    "day": dt.timedelta(days=400),
}
DEFAULT_WINDOW = {
    "minute": dt.timedelta(hours=24),
    "hour": dt.timedelta(days=7),
    "day": dt.timedelta(days=90),
}
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)
MAX_WORDS = {"minute": "2 days", "hour": "92 days", "day": "400 days"}


class SeriesQueryInputSerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=list(BUCKETS), required=False, default="hour")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict) -> dict:
        bucket = attrs["bucket"]
        until = attrs.get("until") or timezone.now()
        if until > LATEST:  # a bucket's end past it would leave the calendar
            raise serializers.ValidationError({"until": "Choose an earlier moment."})
        try:
            since = attrs.get("since") or until - DEFAULT_WINDOW[bucket]
            first = bucket_floor(since, bucket)
        except OverflowError:  # a moment at the edge of the calendar (year 1)
            raise serializers.ValidationError({"until": "Choose a later moment."}) from None
        if since >= until:
            raise serializers.ValidationError({"since": "Choose a moment before until."})
        if until - first > MAX_WINDOW[bucket]:
            raise serializers.ValidationError(
                {
                    "since": f"Read at most {MAX_WORDS[bucket]} of {bucket} buckets at a time: "
                    "move since or until, or choose a larger bucket."
                }
            )
        return {"bucket": bucket, "since": since, "until": until}


class SeriesPointOutputSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="The bucket's start (UTC).")
    value = serializers.FloatField(
        help_text="What the chart draws: the sum for a count metric, the mean otherwise."
    )
    count = serializers.IntegerField(help_text="Samples in the bucket.")
    sum = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()


class SeriesOutputSerializer(serializers.Serializer):
    metric = serializers.CharField(source="metric.key")
    unit = serializers.CharField(source="metric.unit")
    kind = serializers.ChoiceField(source="metric.kind", choices=MetricDefinition.Kind.choices)
    bucket = serializers.ChoiceField(choices=list(BUCKETS))
    since = serializers.DateTimeField(help_text="The first bucket's start: `since`, floored.")
    until = serializers.DateTimeField(help_text="Up to (exclusive).")
    points = SeriesPointOutputSerializer(many=True)


@extend_schema(
    tags=["samples"],
    operation_id="plan_metric_series_retrieve",
    summary="One metric's series in a plan, per minute, hour or day",
    description="The points the monitoring page charts: one per bucket with samples, oldest "
    "first. Buckets without samples are absent (never zero). At most 2 days of minutes, 92 "
    "days of hours or 400 days of days.",
    parameters=[
        OpenApiParameter(
            "bucket",
            OpenApiTypes.STR,
            enum=list(BUCKETS),
            required=False,
            description="The bucket size; default `hour`.",
        ),
        OpenApiParameter(
            "since",
            OpenApiTypes.DATETIME,
            required=False,
            description="From: the bucket holding it is the first; default: 24 hours (minute), "
            "7 days (hour) or 90 days (day) before until.",
        ),
        OpenApiParameter(
            "until",
            OpenApiTypes.DATETIME,
            required=False,
            description="Up to (exclusive); default: now.",
        ),
    ],
    responses={200: SeriesOutputSerializer, 400: INVALID, 404: NOT_FOUND},
)
@api_view(["GET"])
def metric_series_view(request: Request, plan_id: int, key: str) -> Response:
    plan = plan_for_user(user=request.user, plan_id=plan_id)  # type: ignore[arg-type]
    metric = metric_by_key(key=key, team_id=plan.team_id)
    if metric is None:
        raise Http404("No such metric")
    query = SeriesQueryInputSerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    bucket, since, until = (query.validated_data[k] for k in ("bucket", "since", "until"))
    points = metric_series(plan_id=plan.pk, metric=metric, bucket=bucket, since=since, until=until)
    body = {
        "metric": metric,
        "bucket": bucket,
        "since": bucket_floor(since, bucket),
        "until": until,
        "points": points,
    }
    return Response(SeriesOutputSerializer(body).data)


urlpatterns = [
    path(
        "plans/<int:plan_id>/metrics/<slug:key>/series",
        metric_series_view,
        name="plan-metric-series",
    )
]
