"""Plans over the REST API: the same services, validation and permissions as the pages.

Resources (paths under /api/v1/, see pilots/api/urls.py and docs/api-plans.md):

- ``plans``: the caller's plans (GET, paginated) and a new plan (POST);
- ``plans/{id}``: the whole plan document; its ETag is the plan's version;
- ``plans/{id}/sections/{key}``: a single-valued section (overview, timeline, …); ETag = the
  section's version;
- ``plans/{id}/rows/{kind}`` and ``…/{row_id}`` (and ``…/move``): the rows of a list, keyed by
  ``pilots.services.ROW_KINDS`` slugs (the same slugs as the pages' URLs). A kind belongs to one
  section, so the path needs no section key; the ETag of a list and of its rows is the version of
  the section the list belongs to.

Every change names the section version it is based on in ``If-Match``; missing → 428, stale → 412
with nothing saved (``core.api_preconditions``). Order of refusals: not logged in or not a
member (403 / 404), role may not edit (403), precondition (428 / 412), invalid input (400).

Each section and list has its own literal path (built below from one handler), so the OpenAPI
schema describes each one's exact fields; a catch-all path per shape answers unknown keys with a
JSON 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.paginator import InvalidPage, Paginator
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.utils.urls import replace_query_param

from accounts.models import User
from accounts.permissions import Perm
from core.api import FORBIDDEN, INVALID, NOT_FOUND, PRECONDITION_REQUIRED
from core.api_preconditions import (
    IF_MATCH,
    IF_NONE_MATCH,
    etag_header,
    if_match_versions,
    not_modified,
    with_etag,
)
from core.listing import ordered, ordering_parameter
from core.pagination import PAGE_PARAMETER, paginate, paginated
from pilots import selectors, services
from pilots.access import can_edit, plan_for_user, team_for_plan_creation
from pilots.api.errors import PRECONDITION_FAILED
from pilots.api.serializers import (
    ROW_SERIALIZERS,
    ROWS_PER_PAGE,
    SECTION_SERIALIZERS,
    ComplianceInputSerializer,
    EnvironmentSectionSerializer,
    MoveInputSerializer,
    PlanCreateInputSerializer,
    PlanDocumentSerializer,
    PlanListFilterSerializer,
    PlanSummarySerializer,
    References,
    rows_in_order,
    rows_output_serializer,
)
from pilots.models import PilotPlan, PlanSection, Section
from pilots.services import ROW_KINDS, RowKind, SectionConflict

# --- helpers -------------------------------------------------------------------------------------


def _user(request: Request) -> User:
    return request.user  # type: ignore[return-value]  # IsAuthenticated ran first


def _plan(request: Request, plan_id: int, *, edit: bool = False) -> PilotPlan:
    """The plan with every section loaded (constant queries); 404 / 403 from the access layer."""
    return selectors.plan_detail(
        user=_user(request), plan_id=plan_id, perm=Perm.PLAN_EDIT if edit else Perm.PLAN_VIEW
    )


def _context(plan: PilotPlan) -> dict[str, Any]:
    """What output serializers need: section versions (no query) and whether the caller edits."""
    return {
        "versions": selectors.section_versions_loaded(plan),
        "can_edit": can_edit(plan),
    }


def _expected_version(request: Request, plan: PilotPlan, key: str) -> int:
    """The version of section ``key`` this change is based on: 428 without If-Match, 412 when
    it is not the current one. Checked before the input (a stale edit is refused whatever it
    says); the service's compare-and-set still catches a save that lands after this check."""
    current: PlanSection = next(s for s in plan.sections.all() if s.key == key)
    if current.version not in if_match_versions(request):
        raise SectionConflict(section=key, current=current)
    return current.version


def _rows_url(request: Request, plan: PilotPlan, slug: str, page: int = 1) -> str:
    url = reverse("api:plan-rows", kwargs={"plan_id": plan.pk, "slug": slug}, request=request)
    return url if page == 1 else replace_query_param(url, "page", page)


def _row_lists(request: Request, plan: PilotPlan) -> dict[str, dict[str, Any]]:
    """Each row list's count and where its rows are, for the document (no query)."""
    lists = {}
    for slug, kind in ROW_KINDS.items():
        rows = _loaded_rows(plan, kind)
        # The list's total where only its first rows were loaded (``selectors.plan_document``).
        count = getattr(rows[0], selectors.ROWS_TOTAL, len(rows)) if rows else 0
        lists[slug] = {
            "count": count,
            "complete": count <= ROWS_PER_PAGE,
            "url": _rows_url(request, plan, slug),
            "next": _rows_url(request, plan, slug, 2) if count > ROWS_PER_PAGE else None,
        }
    return lists


def _document(request: Request, plan: PilotPlan) -> Response:
    context = {**_context(plan), "row_lists": _row_lists(request, plan)}
    data = PlanDocumentSerializer(plan, context=context).data
    return with_etag(Response(data), plan.version)


def _kind(slug: str) -> RowKind:
    return services.row_kind(slug)  # 404 for an unknown list


def _loaded_rows(plan: PilotPlan, kind: RowKind) -> list[Any]:
    related = kind.model._meta.get_field("plan").remote_field.related_name
    return list(getattr(plan, related).all())


def _rows_response(request: Request, plan: PilotPlan, kind: RowKind, version: int) -> Response:
    """One page of the list (``?page=``, from 1; ``ROWS_PER_PAGE`` rows each)."""
    rows = rows_in_order(_loaded_rows(plan, kind))
    paginator = Paginator(rows, ROWS_PER_PAGE, allow_empty_first_page=True)
    try:
        page = paginator.page(request.query_params.get("page", 1))
    except InvalidPage:
        raise NotFound("Invalid page.") from None
    data = {
        "kind": kind.slug,
        "section": kind.section,
        "version": version,
        "count": paginator.count,
        "next": _rows_url(request, plan, kind.slug, page.next_page_number())
        if page.has_next()
        else None,
        "previous": _rows_url(request, plan, kind.slug, page.previous_page_number())
        if page.has_previous()
        else None,
        "rows": page.object_list,
    }
    return with_etag(Response(ROWS_OUTPUT[kind.slug](data).data), version)


# --- schema building blocks ----------------------------------------------------------------------

TAGS = ["plans"]
NOT_MODIFIED = OpenApiResponse(description="Not modified: If-None-Match names the current ETag.")
NO_CONTENT = OpenApiResponse(description="Removed.")
DOCUMENT_ETAG = etag_header([200, 201, 304], 'The plan\'s version, e.g. `"12"`.')
ROWS_OUTPUT = {slug: rows_output_serializer(slug) for slug in ROW_SERIALIZERS}


def _section_etag(statuses: list[int]) -> OpenApiParameter:
    return etag_header(
        statuses, 'The section\'s version, e.g. `"3"`: send it back in If-Match to change it.'
    )


def _reading(ok: Any) -> dict[int, Any]:
    return {200: ok, 304: NOT_MODIFIED, 403: FORBIDDEN, 404: NOT_FOUND}


def _writing(ok_status: int, ok: Any) -> dict[int, Any]:
    return {
        ok_status: ok,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
        412: PRECONDITION_FAILED,
        428: PRECONDITION_REQUIRED,
    }


# --- plans ---------------------------------------------------------------------------------------


PLAN_ORDERING = {
    "updated_at": "updated_at",
    "created_at": "created_at",
    "title": "title",
    "start_date": "start_date",
    "end_date": "end_date",
}
PLAN_DEFAULT = ["-updated_at"]


@extend_schema(
    tags=TAGS,
    methods=["GET"],
    operation_id="plans_list",
    summary="Your plans",
    parameters=[
        PlanListFilterSerializer,
        ordering_parameter(PLAN_ORDERING, PLAN_DEFAULT),
        PAGE_PARAMETER,
    ],
    responses={200: paginated(PlanSummarySerializer), 400: INVALID},
)
@extend_schema(
    tags=TAGS,
    methods=["POST"],
    operation_id="plans_create",
    summary="Start a plan",
    description="From scratch, from the built-in example plan (the template) or by cloning an "
    "earlier plan of the team. Only the team's Product Owner may start a plan.",
    request=PlanCreateInputSerializer,
    responses={
        201: PlanDocumentSerializer,
        400: INVALID,
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
    parameters=[DOCUMENT_ETAG],
)
@api_view(["GET", "POST"])
def plan_list(request: Request) -> Response:
    """GET: the caller's plans across their teams, most recently changed first (paginated;
    ``?team=<id>&status=<status>``). POST: start a plan; answers with the whole document."""
    user = _user(request)
    if request.method == "POST":
        return _plan_create(request, user)
    filters = PlanListFilterSerializer(data=request.query_params)
    filters.is_valid(raise_exception=True)
    plans = selectors.plan_list_for_user(user=user).select_related("owner")
    if "team" in filters.validated_data:
        plans = plans.filter(team_id=filters.validated_data["team"])
    if "status" in filters.validated_data:
        plans = plans.filter(status=filters.validated_data["status"])
    plans = ordered(request, plans, fields=PLAN_ORDERING, default=PLAN_DEFAULT)
    return paginate(request, plans, PlanSummarySerializer)


def _plan_create(request: Request, user: User) -> Response:
    payload = PlanCreateInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    data = payload.validated_data
    team = team_for_plan_creation(user=user, team_id=data["team"])
    overview: dict[str, str] = {}
    with transaction.atomic():  # a refused title must not leave a half-made plan behind
        if data["from_template"]:
            plan = services.plan_create_from_template(team=team, author=user)
            overview = {name: data[name] for name in ("title", "summary") if name in data}
        elif data.get("clone_of") is not None:
            source = _clone_source(user, team.pk, data["clone_of"])
            plan = services.plan_clone(source=source, author=user, title=data.get("title") or None)
            overview = {"summary": data["summary"]} if "summary" in data else {}
        else:
            plan = services.plan_create(
                team=team, author=user, title=data.get("title", ""), summary=data.get("summary", "")
            )
        if overview:  # the template's / source's overview, with what the caller gave instead
            versions = services.section_versions(plan=plan)
            services.section_update(
                plan=plan,
                key=Section.OVERVIEW,
                user=user,
                expected_version=versions[Section.OVERVIEW],
                values=overview,
            )
    response = _document(request, _plan(request, plan.pk))
    response.status_code = status.HTTP_201_CREATED
    response["Location"] = reverse("api:plan-detail", kwargs={"plan_id": plan.pk}, request=request)
    return response


def _clone_source(user: User, team_id: int, plan_id: int) -> PilotPlan:
    try:
        source = plan_for_user(user=user, plan_id=plan_id)
    except Http404:
        source = None
    if source is None or source.team_id != team_id:
        raise ValidationError({"clone_of": "No such plan in this team."})
    return source


@extend_schema(
    tags=TAGS,
    operation_id="plans_retrieve",
    summary="The whole plan",
    description="Every section with its version and rows, the computed end date and plan health. "
    "ETag: the plan's version (bumped by any change); to change a section, send that section's "
    "version (`sections.<key>.version`) in If-Match.",
    parameters=[IF_NONE_MATCH, DOCUMENT_ETAG],
    responses=_reading(PlanDocumentSerializer),
)
@api_view(["GET"])
def plan_detail(request: Request, plan_id: int) -> Response:
    # The document holds the first ROWS_PER_PAGE rows of each list: only those are loaded.
    plan = selectors.plan_document(user=_user(request), plan_id=plan_id, rows=ROWS_PER_PAGE)
    return not_modified(request, plan.version) or _document(request, plan)


# --- single-valued sections ----------------------------------------------------------------------


def _section(request: Request, plan_id: int, key: str) -> Response:
    plan = _plan(request, plan_id, edit=request.method != "GET")
    serializer_class = SECTION_SERIALIZERS.get(key)
    if serializer_class is None:
        raise Http404(_no_such_section(key))
    spec = services.SECTION_FIELDS[key]
    holder = plan if spec.holder is None else getattr(plan, spec.holder)
    context = _context(plan)
    if request.method == "GET":
        version = context["versions"][key]
        response = not_modified(request, version)
        return response or with_etag(
            Response(serializer_class(holder, context=context).data), version
        )
    expected = _expected_version(request, plan, key)
    payload = serializer_class(
        data=request.data,
        partial=request.method == "PATCH",
        context={"references": References(team_id=plan.team_id)},
    )
    payload.is_valid(raise_exception=True)
    services.section_update(
        plan=plan,
        key=key,
        user=_user(request),
        expected_version=expected,
        values=dict(payload.validated_data),
    )
    context["versions"][key] = expected + 1
    return with_etag(Response(serializer_class(holder, context=context).data), expected + 1)


def _no_such_section(key: str) -> str:
    lists = [kind.slug for kind in ROW_KINDS.values() if kind.section == key]
    if lists:
        return f"“{key}” is a list section: change its rows at …/rows/{' or …/rows/'.join(lists)}."
    return f"No section “{key}” with fields of its own."


def _section_endpoint(key: str) -> Callable[..., Response]:
    serializer = SECTION_SERIALIZERS[key]
    label = Section(key).label
    view = api_view(["GET", "PUT", "PATCH"])(_section)
    for method, action, summary in (
        ("PUT", "update", f"Replace the {label} section (every field)"),
        ("PATCH", "partial_update", f"Change some fields of the {label} section"),
    ):
        view = extend_schema(
            methods=[method],
            operation_id=f"plans_sections_{key}_{action}",
            summary=summary,
            parameters=[IF_MATCH, _section_etag([200])],
            request=serializer,
            responses=_writing(200, serializer),
        )(view)
    return extend_schema(
        tags=TAGS,
        methods=["GET"],
        operation_id=f"plans_sections_{key}_retrieve",
        summary=f"The {label} section",
        parameters=[IF_NONE_MATCH, _section_etag([200, 304])],
        responses=_reading(serializer),
    )(view)


SECTION_VIEWS = {key: _section_endpoint(key) for key in SECTION_SERIALIZERS}
section_any = extend_schema(exclude=True)(api_view(["GET", "PUT", "PATCH"])(_section))


@extend_schema(
    tags=TAGS,
    operation_id="plans_sections_environment_compliance",
    summary="Validate (or withdraw) compliance and masking",
    description="Records that you validated the privacy / compliance constraints and masking "
    "rules of the environment, with your name and the time. Needs masking rules first.",
    request=ComplianceInputSerializer,
    parameters=[IF_MATCH, _section_etag([200])],
    responses=_writing(200, EnvironmentSectionSerializer),
)
@api_view(["POST"])
def environment_compliance(request: Request, plan_id: int) -> Response:
    plan = _plan(request, plan_id, edit=True)
    expected = _expected_version(request, plan, Section.ENVIRONMENT)
    payload = ComplianceInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    environment = services.environment_set_compliance(
        plan=plan,
        user=_user(request),
        expected_version=expected,
        validated=payload.validated_data["validated"],
    )
    context = _context(plan)
    context["versions"][Section.ENVIRONMENT] = expected + 1
    data = EnvironmentSectionSerializer(environment, context=context).data
    return with_etag(Response(data), expected + 1)


# --- rows of list sections -----------------------------------------------------------------------


def _rows(request: Request, plan_id: int, slug: str) -> Response:
    plan = _plan(request, plan_id, edit=request.method != "GET")
    kind = _kind(slug)
    if request.method == "GET":
        version = selectors.section_versions_loaded(plan)[kind.section]
        return not_modified(request, version) or _rows_response(request, plan, kind, version)
    expected = _expected_version(request, plan, kind.section)
    serializer_class = ROW_SERIALIZERS[slug]
    payload = serializer_class(
        data=request.data, context={"references": References(team_id=plan.team_id)}
    )
    payload.is_valid(raise_exception=True)
    row = services.row_add(
        plan=plan,
        kind=kind,
        user=_user(request),
        expected_version=expected,
        values=dict(payload.validated_data),
    )
    location = reverse(
        "api:plan-row", kwargs={"plan_id": plan.pk, "slug": slug, "row_id": row.pk}, request=request
    )
    response = Response(
        serializer_class(row).data, status=status.HTTP_201_CREATED, headers={"Location": location}
    )
    return with_etag(response, expected + 1)


def _row(request: Request, plan_id: int, slug: str, row_id: int) -> Response:
    plan = _plan(request, plan_id, edit=request.method != "GET")
    kind = _kind(slug)
    serializer_class = ROW_SERIALIZERS[slug]
    if request.method == "GET":
        row = next((r for r in _loaded_rows(plan, kind) if r.pk == row_id), None)
        if row is None:
            raise Http404(f"No such {kind.label}.")
        version = selectors.section_versions_loaded(plan)[kind.section]
        response = not_modified(request, version)
        return response or with_etag(Response(serializer_class(row).data), version)
    expected = _expected_version(request, plan, kind.section)
    user = _user(request)
    if request.method == "DELETE":
        services.row_remove(
            plan=plan, kind=kind, row_id=row_id, user=user, expected_version=expected
        )
        return with_etag(Response(status=status.HTTP_204_NO_CONTENT), expected + 1)
    payload = serializer_class(
        data=request.data, partial=True, context={"references": References(team_id=plan.team_id)}
    )
    payload.is_valid(raise_exception=True)
    row = services.row_update(
        plan=plan,
        kind=kind,
        row_id=row_id,
        user=user,
        expected_version=expected,
        values=dict(payload.validated_data),
    )
    return with_etag(Response(serializer_class(row).data), expected + 1)


def _row_move(request: Request, plan_id: int, slug: str, row_id: int) -> Response:
    plan = _plan(request, plan_id, edit=True)
    kind = _kind(slug)
    expected = _expected_version(request, plan, kind.section)
    payload = MoveInputSerializer(data=request.data)
    payload.is_valid(raise_exception=True)
    services.row_move(
        plan=plan,
        kind=kind,
        row_id=row_id,
        user=_user(request),
        expected_version=expected,
        offset=int(payload.validated_data["offset"]),
    )
    return _rows_response(request, _plan(request, plan_id), kind, expected + 1)


def _row_endpoints(kind: RowKind) -> dict[str, Callable[..., Response]]:
    """The documented views of one list: its rows, one row, and (if ordered) moving a row."""
    name = kind.slug.replace("-", "_")
    row = ROW_SERIALIZERS[kind.slug]
    rows_out = ROWS_OUTPUT[kind.slug]
    label = kind.label
    section = Section(kind.section).label
    collection = api_view(["GET", "POST"])(_rows)
    collection = extend_schema(
        tags=TAGS,
        methods=["POST"],
        operation_id=f"plans_rows_{name}_create",
        summary=f"Add a {label}",
        description=f"Appended at the end. If-Match: the version of the {section} section.",
        parameters=[IF_MATCH, _section_etag([201])],
        request=row,
        responses=_writing(201, row),
    )(collection)
    collection = extend_schema(
        tags=TAGS,
        methods=["GET"],
        operation_id=f"plans_rows_{name}_list",
        summary=f"The {label} list, in order, page by page",
        description=f"At most {ROWS_PER_PAGE} rows a page; `next` and `previous` link the pages "
        "and `count` gives the rows in the list.",
        parameters=[PAGE_PARAMETER, IF_NONE_MATCH, _section_etag([200, 304])],
        responses=_reading(rows_out),
    )(collection)
    one = api_view(["GET", "PATCH", "DELETE"])(_row)
    one = extend_schema(
        tags=TAGS,
        methods=["DELETE"],
        operation_id=f"plans_rows_{name}_destroy",
        summary=f"Remove a {label}",
        parameters=[IF_MATCH, _section_etag([204])],
        responses=_writing(204, NO_CONTENT),
    )(one)
    one = extend_schema(
        tags=TAGS,
        methods=["PATCH"],
        operation_id=f"plans_rows_{name}_partial_update",
        summary=f"Change a {label}",
        parameters=[IF_MATCH, _section_etag([200])],
        request=row,
        responses=_writing(200, row),
    )(one)
    one = extend_schema(
        tags=TAGS,
        methods=["GET"],
        operation_id=f"plans_rows_{name}_retrieve",
        summary=f"One {label}",
        parameters=[IF_NONE_MATCH, _section_etag([200, 304])],
        responses=_reading(row),
    )(one)
    views = {"rows": collection, "row": one}
    if kind.ordered:
        views["move"] = extend_schema(
            tags=TAGS,
            operation_id=f"plans_rows_{name}_move",
            summary=f"Move a {label} up or down",
            request=MoveInputSerializer,
            parameters=[IF_MATCH, _section_etag([200])],
            responses=_writing(200, rows_out),
        )(api_view(["POST"])(_row_move))
    return views


ROW_VIEWS = {slug: _row_endpoints(kind) for slug, kind in ROW_KINDS.items()}
rows_any = extend_schema(exclude=True)(api_view(["GET", "POST"])(_rows))
row_any = extend_schema(exclude=True)(api_view(["GET", "PATCH", "DELETE"])(_row))
row_move_any = extend_schema(exclude=True)(api_view(["POST"])(_row_move))
