"""The team backlog over the API: the same services, rules and words as the backlog page.

- ``GET teams/{team_id}/backlog``: the items in priority order, filtered (``type``, ``severity``,
  ``status``, ``origin``, ``plan``, each comma-separated; ``q`` searches reference and title),
  paginated; ``POST``: add an item (at the bottom, or ``at_top``);
- ``GET / PATCH / DELETE teams/{team_id}/backlog/{item_id}``: one item; a change sends the ETag
  it read in ``If-Match`` (428 without, 412 when stale);
- ``POST teams/{team_id}/backlog/{item_id}/move``: put it just above ``before`` (null: bottom);
- ``POST teams/{team_id}/backlog/status``: one status for many items, all or nothing;
- ``GET teams/{team_id}/backlog.csv`` and ``POST teams/{team_id}/backlog/import``: CSV out and in.

Members of the team only (404 for anyone else); stakeholders read. A team API key reads with the
``read`` scope and changes items with ``write``, never the order (accounts.permissions).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import team_for_member
from backlog import selectors
from backlog.exchange import backlog_csv, backlog_csv_import
from backlog.models import BacklogItem
from backlog.services import (
    ItemConflict,
    backlog_item_create,
    backlog_item_delete,
    backlog_item_move,
    backlog_item_update,
    backlog_items_status_set,
)
from core.api import FORBIDDEN, INVALID, NOT_FOUND, ErrorOutputSerializer
from core.api_preconditions import IF_MATCH, etag_header, if_match_versions, with_etag
from core.csvfile import csv_body_text
from core.limits import SafeJSONParser
from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from pilots.models import PilotPlan

TAGS = ["backlog"]
FILTER_PARAMETERS = [
    OpenApiParameter(
        name, OpenApiTypes.STR, required=False, description=f"Comma-separated {name} values."
    )
    for name in selectors.FILTERS
] + [
    OpenApiParameter(
        "q", OpenApiTypes.STR, required=False, description="Reference or title contains."
    )
]
ETAG = etag_header([200, 201], 'The item\'s version, e.g. `"3"`: send it back in If-Match.')
STALE = OpenApiResponse(
    ErrorOutputSerializer, description="The item changed since your version: nothing saved."
)


class BacklogItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    type = serializers.ChoiceField(source="kind", choices=BacklogItem.Kind.choices)
    severity = serializers.CharField(help_text="Defects only: p1 to p4; empty for other types.")
    status = serializers.ChoiceField(choices=BacklogItem.Status.choices)
    priority = serializers.IntegerField(source="position", help_text="1 is the top.")
    estimate = serializers.IntegerField(allow_null=True)
    origin = serializers.ChoiceField(choices=BacklogItem.Origin.choices)
    plan = serializers.IntegerField(source="plan_id", allow_null=True)
    criterion = serializers.IntegerField(source="criterion_id", allow_null=True)
    trigger = serializers.IntegerField(source="trigger_id", allow_null=True)
    finding = serializers.IntegerField(source="finding_id", allow_null=True)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class BacklogItemInputSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(
        choices=BacklogItem.Kind.choices, required=False, default=BacklogItem.Kind.STORY
    )
    severity = serializers.ChoiceField(
        choices=BacklogItem.Severity.choices, required=False, allow_blank=True, default=""
    )
    status = serializers.ChoiceField(
        choices=BacklogItem.Status.choices, required=False, default=BacklogItem.Status.NEW
    )
    estimate = serializers.IntegerField(
        min_value=0, max_value=32767, required=False, allow_null=True, default=None
    )
    plan = serializers.IntegerField(required=False, allow_null=True, default=None)
    at_top = serializers.BooleanField(required=False, default=False)


class BacklogItemPatchSerializer(BacklogItemInputSerializer):
    title = serializers.CharField(max_length=200, required=False)


class BacklogMoveInputSerializer(serializers.Serializer):
    before = serializers.IntegerField(
        allow_null=True, help_text="The item it lands just above; null puts it at the bottom."
    )


class BacklogStatusInputSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField(), max_length=5000)
    status = serializers.ChoiceField(choices=BacklogItem.Status.choices)


class BacklogStatusOutputSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="How many items were given the status.")


class BacklogImportOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


_UPLOAD = {
    "type": "object",
    "properties": {"file": {"type": "string", "format": "binary"}},
}


class CsvParser(BaseParser):
    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> str:
        return stream.read().decode("utf-8-sig")


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _team_id(request: Request, team_id: int) -> int:
    team, _role = team_for_member(user=_user(request), team_id=team_id)  # 404 for outsiders
    return team.pk


def _item(team_id: int, item_id: int) -> BacklogItem:
    item = BacklogItem.objects.filter(team_id=team_id, pk=item_id).first()
    if item is None:
        raise Http404("No such backlog item")
    return item


def _out(item: BacklogItem, code: int = 200) -> Response:
    return with_etag(Response(BacklogItemOutputSerializer(item).data, status=code), item.version)


def _plan(team_id: int, plan_id: int | None) -> PilotPlan | None:
    if plan_id is None:
        return None
    plan = PilotPlan.objects.filter(team_id=team_id, pk=plan_id).first()
    if plan is None:
        raise serializers.ValidationError({"plan": ["Not one of the team's plans."]})
    return plan


# The priority order (position) unless asked otherwise; ``number`` is the reference's running
# number (US-2 before US-10).
ORDERING = {
    "position": "position",
    "number": "number",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
DEFAULT = ["position"]


@extend_schema(
    tags=TAGS, methods=["GET"], operation_id="teams_backlog_list",
    summary="The team's backlog in priority order",
    parameters=[PAGE_PARAMETER, *FILTER_PARAMETERS, ordering_parameter(ORDERING, DEFAULT)],
    responses={200: paginated(BacklogItemOutputSerializer), 400: INVALID, 404: NOT_FOUND},
)  # fmt: skip
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="teams_backlog_create",
    summary="Add a backlog item",
    request=BacklogItemInputSerializer,
    description="At the bottom, or the top with `at_top`. The reference is generated from the "
    "type (US-, DE-, IM-, SP- and the team's running number) unless given. A defect needs a "
    "severity; other types have none.",
    parameters=[ETAG],
    responses={201: BacklogItemOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["GET", "POST"])
def backlog_list(request: Request, team_id: int) -> Response:
    team_id = _team_id(request, team_id)
    if request.method == "GET":
        items = selectors.backlog_items(team_id=team_id, filters=request.query_params)
        items = ordered(request, items, fields=ORDERING, default=DEFAULT)
        return paginate(request, items, BacklogItemOutputSerializer)
    payload = BacklogItemInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = dict(payload.validated_data)
    item = backlog_item_create(
        team_id=team_id,
        user=_user(request),
        kind=data.pop("type"),
        plan=_plan(team_id, data.pop("plan")),
        **data,
    )
    return _out(item, status.HTTP_201_CREATED)


@extend_schema(
    tags=TAGS, methods=["GET"], operation_id="teams_backlog_retrieve", summary="One backlog item",
    responses={200: BacklogItemOutputSerializer, 404: NOT_FOUND}, parameters=[ETAG],
)  # fmt: skip
@extend_schema(
    tags=TAGS, methods=["PATCH"], operation_id="teams_backlog_update",
    summary="Change a backlog item", request=BacklogItemPatchSerializer,
    parameters=[IF_MATCH, ETAG],
    responses={200: BacklogItemOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND,
               412: STALE},
)  # fmt: skip
@extend_schema(
    tags=TAGS, methods=["DELETE"], operation_id="teams_backlog_destroy",
    summary="Delete a backlog item (the items below move up)",
    responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET", "PATCH", "DELETE"])
def backlog_detail(request: Request, team_id: int, item_id: int) -> Response:
    team_id = _team_id(request, team_id)
    item = _item(team_id, item_id)
    if request.method == "GET":
        return _out(item)
    if request.method == "DELETE":
        backlog_item_delete(team_id=team_id, item_id=item.pk, user=_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
    payload = BacklogItemPatchSerializer(data=request.data, partial=True)
    payload.is_valid(raise_exception=True)
    values = dict(payload.validated_data)
    values.pop("at_top", None)
    if "plan" in values:
        raise serializers.ValidationError({"plan": ["The plan an item came from is kept."]})
    if "type" in values:
        values["kind"] = values.pop("type")
    versions = if_match_versions(request)
    if item.version not in versions:
        raise ItemConflict(item)
    item = backlog_item_update(
        team_id=team_id, item_id=item.pk, user=_user(request),
        expected_version=item.version, values=values,
    )  # fmt: skip
    return _out(item)


@extend_schema(
    tags=TAGS, operation_id="teams_backlog_move", summary="Move an item in the priority order",
    description="The Product Owner's call. Naming the neighbour (`before`) rather than a "
    "position keeps a move right when someone else reordered other items meanwhile.",
    request=BacklogMoveInputSerializer,
    responses={200: BacklogItemOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["POST"])
def backlog_move(request: Request, team_id: int, item_id: int) -> Response:
    team_id = _team_id(request, team_id)
    item = _item(team_id, item_id)
    payload = BacklogMoveInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    before = payload.validated_data["before"]
    if before is not None and not BacklogItem.objects.filter(team_id=team_id, pk=before).exists():
        raise serializers.ValidationError({"before": ["No such item in this team's backlog."]})
    item = backlog_item_move(
        team_id=team_id, item_id=item.pk, user=_user(request), before_id=before
    )
    return _out(item)


@extend_schema(
    tags=TAGS, operation_id="teams_backlog_status", summary="Give many items one status",
    request=BacklogStatusInputSerializer,
    responses={200: BacklogStatusOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["POST"])
def backlog_status(request: Request, team_id: int) -> Response:
    team_id = _team_id(request, team_id)
    payload = BacklogStatusInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    changed = backlog_items_status_set(
        team_id=team_id, user=_user(request), item_ids=payload.validated_data["items"],
        status=payload.validated_data["status"],
    )  # fmt: skip
    return Response({"changed": changed})


@extend_schema(
    tags=TAGS, operation_id="teams_backlog_csv", summary="The backlog as CSV",
    parameters=FILTER_PARAMETERS,
    responses={(200, "text/csv"): OpenApiTypes.STR, 400: INVALID, 404: NOT_FOUND},
)  # fmt: skip
@api_view(["GET"])
def backlog_export(request: Request, team_id: int) -> HttpResponse:
    team_id = _team_id(request, team_id)
    items = selectors.backlog_items(team_id=team_id, filters=request.query_params)
    response = HttpResponse(backlog_csv(items), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backlog-team-{team_id}.csv"'
    return response


@extend_schema(
    tags=TAGS,
    operation_id="teams_backlog_import",
    summary="Import items from CSV",
    description="A `text/csv` body, or a multipart upload in `file`. Rows whose `reference` "
    "the team knows update that item; the others are added at the bottom in the file's order. "
    "One bad row refuses the whole file: `file` lists every bad line.",
    request={"text/csv": OpenApiTypes.STR, "multipart/form-data": _UPLOAD},
    responses={200: BacklogImportOutputSerializer, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND},
)
@api_view(["POST"])
@parser_classes([CsvParser, MultiPartParser, SafeJSONParser])
def backlog_import(request: Request, team_id: int) -> Response:
    team_id = _team_id(request, team_id)
    text = csv_body_text(request.data)
    result = backlog_csv_import(team_id=team_id, user=_user(request), text=text)
    return Response(BacklogImportOutputSerializer(result).data)


T = "teams/<int:team_id>/backlog"

urlpatterns = [
    path(T, backlog_list, name="team-backlog"),
    path(f"{T}.csv", backlog_export, name="team-backlog-csv"),
    path(f"{T}/import", backlog_import, name="team-backlog-import"),
    path(f"{T}/status", backlog_status, name="team-backlog-status"),
    path(f"{T}/<int:item_id>", backlog_detail, name="team-backlog-item"),
    path(f"{T}/<int:item_id>/move", backlog_move, name="team-backlog-move"),
]
