"""The plan pages: the list of plans, starting a plan, and the plan page whose sections swap
between view and edit in place (HTMX), with the plan health panel beside them.

Every section is a template of its own (``pilots/sections/<key>.html``) with a ``view`` and, for
single-valued sections, an ``edit`` partial; the plan page includes them in ``Section`` order
and HTMX requests get one of them back. Without JavaScript the same URLs answer with the whole
page (GET) or a redirect back to the section (successful POST). Every save names the section
version the person saw; a stale one is refused (409) with who saved, their values beside the
person's kept input, and nothing saved.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from accounts.http import AuthedHtmxRequest
from accounts.models import Membership, Team, User
from accounts.permissions import Perm, allows
from accounts.selectors import team_list_for_user
from accounts.ui import toast
from core.http import UNPROCESSABLE
from pilots import listing, selectors, services, timeline
from pilots.access import can_edit, plan_for_user, team_for_plan_creation
from pilots.extensions import (
    plan_home,
    plan_panels,
    scope_autocomplete_url,
    scope_item_statuses,
)
from pilots.forms import (
    BUILTIN_TEMPLATE,
    PLAN_START_FORMS,
    SECTION_FORMS,
    SectionForm,
    section_form,
)
from pilots.health import plan_health
from pilots.models import PilotPlan, PlanTemplate, Section
from pilots.services import ROW_KINDS, SectionConflict
from pilots.services.templates import plan_create_from_team_template, templates_of_teams

CONFLICT = 409
PLANS_PER_PAGE = 25

# The row lists of the list sections, by a name templates can use: row_kinds.exit_criteria.
ROW_KINDS_BY_NAME = {slug.replace("-", "_"): kind for slug, kind in ROW_KINDS.items()}


@dataclass
class SectionBlock:
    """One section as the page (or an HTMX response) shows it."""

    key: str
    mode: str = "view"  # or "edit"
    form: SectionForm | None = None
    version: int | None = None  # the version an edit form posts (edit mode)
    conflict: str = ""  # someone saved first: what happened
    error: str = ""  # a refused action of the view mode (e.g. compliance validation)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return f"pilots/sections/{self.key}.html#{self.mode}"

    @property
    def context(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "form_version": self.version,
            # Not "conflict": the row lists inside a section have their own.
            "section_conflict": self.conflict,
            "section_error": self.error,
            **self.extra,
        }


# --- helpers -----------------------------------------------------------------------------------


def _today(time_zone: str) -> dt.date:
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(time_zone)).date()


def _section_key(key: str) -> str:
    if key not in Section.values:
        raise Http404(f"No such section: {key}")
    return key


def _editable_key(key: str) -> str:
    """A section with fields of its own (list-only sections are edited row by row)."""
    if _section_key(key) not in SECTION_FORMS:
        raise Http404(f"The {Section(key).label} section is edited row by row.")
    return key


def _expected_version(request: AuthedHtmxRequest) -> int:
    try:
        return int(request.POST["version"])
    except (KeyError, ValueError):
        raise BadRequest("The form lacks the section version; reload the page.") from None


def _fresh(plan: PilotPlan) -> PilotPlan:
    """``plan`` again with every section, after a write (or a refused one) changed them."""
    fresh = selectors.plan_detail_queryset().get(pk=plan.pk)
    fresh.viewer_role = plan.viewer_role  # type: ignore[attr-defined]
    return fresh


def _plan_context(plan: PilotPlan) -> dict[str, Any]:
    """What every section template reads. Built from the loaded plan: no queries."""
    start, end = plan.start_date, plan.end_date
    return {
        "plan": plan,
        "versions": selectors.section_versions_loaded(plan),
        "can_edit": can_edit(plan),
        "can_save_template": allows(plan.viewer_role, Perm.TEMPLATES_MANAGE),  # type: ignore[attr-defined]
        "row_kinds": ROW_KINDS_BY_NAME,
        "next_monday": timeline.next_monday(_today(plan.time_zone)),
        "window_holidays": [
            h for h in plan.team.holidays.all() if start and end and start <= h.date <= end
        ],
    }


def _page(
    request: AuthedHtmxRequest,
    plan: PilotPlan,
    *,
    block: SectionBlock | None = None,
    status: int = 200,
) -> TemplateResponse:
    """The whole plan page, with ``block`` (an open form, an error) in place of its section."""
    blocks = [
        block if block is not None and block.key == key else SectionBlock(key)
        for key in Section.values
    ]
    context = {
        **_plan_context(plan),
        # The list whose every row is shown (``?all=<list>``, "Show all" without JavaScript);
        # the others show their first rows.
        "expanded": request.GET.get("all", ""),
        "sections": blocks,
        "sections_nav": Section.choices,
        "gaps": plan_health(plan),
        # What the layers above show on the plan page, e.g. metrics' red banner of fired
        # rollback triggers (pilots.extensions).
        "plan_panels": plan_panels(plan),
        **_scope_backlog(plan),
    }
    return TemplateResponse(request, "pilots/plan_detail.html", context, status=status)


def _scope_backlog(plan: PilotPlan) -> dict[str, Any]:
    """Each scope reference with its backlog item's status now (one query for the whole plan,
    none when no scope item names a reference), and the reference autocomplete's URL: the
    backlog registers both (pilots.extensions). The references of the scope items loaded: on
    the plan page, those of the rows its list shows."""
    items = list(plan.scope_items.all())
    if items and hasattr(items[0], selectors.ROWS_TOTAL):  # the first rows of a longer list
        items = items[: selectors.ROWS_SHOWN]
    referenced = [item for item in items if item.reference]
    statuses = scope_item_statuses(plan) if referenced else {}
    return {
        "scope_links": [(item, statuses.get(item.reference, "")) for item in referenced],
        "scope_autocomplete": scope_autocomplete_url(plan),
    }


def _section(
    request: AuthedHtmxRequest, plan: PilotPlan, block: SectionBlock, *, status: int = 200
) -> TemplateResponse:
    """The section's partial for HTMX; the whole page around it otherwise."""
    if not request.htmx:
        return _page(request, plan, block=block, status=status)
    context = {**_plan_context(plan), **block.context}
    if block.key == Section.SCOPE:
        context.update(_scope_backlog(plan))
    return TemplateResponse(request, block.template, context, status=status)


def _saved(request: AuthedHtmxRequest, plan: PilotPlan, key: str) -> HttpResponse:
    if not request.htmx:
        return redirect(f"{reverse('pilots:plan_document', args=[plan.pk])}#section-{key}")
    response = _section(request, _fresh(plan), SectionBlock(key, extra={"saved": True}))
    trigger_client_event(response, "planChanged", {"section": key})
    return toast(response, f"{Section(key).label} saved.")


def _edit_block(plan: PilotPlan, key: str, form: SectionForm, **kwargs: Any) -> SectionBlock:
    kwargs.setdefault("version", selectors.section_versions_loaded(plan)[key])
    return SectionBlock(key, "edit", form=form.focus(), **kwargs)


# --- the list of plans and starting one ----------------------------------------------------------


def _is_po(team: Team) -> bool:
    """On a team from ``team_list_for_user`` (annotated with the user's role)."""
    return team.my_role == Membership.Role.PRODUCT_OWNER  # type: ignore[attr-defined]


@login_required
@require_http_methods(["GET"])
def plan_list(request: AuthedHtmxRequest) -> HttpResponse:
    """Every plan of the user's teams; searched, filtered and sorted by the query string
    (``pilots.listing``), most recently changed first by default."""
    teams = list(listing.teams_with_members(team_list_for_user(user=request.user)))
    owners = listing.owner_choices(teams)
    filters = listing.PlanListFilters.from_query(request.GET, teams=teams, owners=owners)
    plans = filters.apply(
        listing.with_holidays(selectors.plan_list_for_user(user=request.user)).select_related(
            "owner"
        )
    )
    page = Paginator(plans, PLANS_PER_PAGE).get_page(request.GET.get("page"))
    for plan in page.object_list:
        plan.overdue = listing.plan_overdue(plan)  # type: ignore[attr-defined]
    context = {
        "page": page,
        "plans": page.object_list,
        "teams": teams,
        "may_start": any(_is_po(t) for t in teams),
        **listing.filter_context(filters, owners=owners),
    }
    return TemplateResponse(request, "pilots/plan_list.html", context)


def _start_plan(user: User, how: str, data: dict[str, Any]) -> PilotPlan:
    """Create the plan the way the person chose; the access layer decides who may."""
    if how == "clone":
        source = plan_for_user(user=user, plan_id=data["source"])
        team_for_plan_creation(user=user, team_id=source.team_id)
        return services.plan_clone(source=source, author=user, title=data["title"] or None)
    team: Team = team_for_plan_creation(user=user, team_id=data["team"])
    if how == "template":
        if data["template"] not in {"", BUILTIN_TEMPLATE}:
            template = PlanTemplate.objects.filter(pk=data["template"], team=team).first()
            if template is None:
                raise ValidationError(
                    {"template": "This template belongs to another team: choose its team."}
                )
            return plan_create_from_team_template(
                template=template, author=user, title=data["title"]
            )
        plan = services.plan_create_from_template(
            team=team, author=user, today=_today(team.time_zone)
        )
        if data["title"]:
            plan.title = data["title"].strip()
            plan.save(update_fields=["title"])
        return plan
    return services.plan_create(
        team=team, author=user, title=data["title"], summary=data["summary"]
    )


@login_required
@require_http_methods(["GET", "POST"])
def plan_new(request: AuthedHtmxRequest) -> HttpResponse:
    """Start a plan: from scratch, from the built-in template, or as a copy of an earlier one.
    Only a team's Product Owner may; everyone else is told why and whom to ask."""
    teams = list(team_list_for_user(user=request.user))
    po_teams = [t for t in teams if _is_po(t)]
    sources = list(
        selectors.plan_list_for_user(user=request.user)
        .filter(team__in=[t.pk for t in po_teams])
        .order_by("team__name", "-updated_at")
    )

    templates = list(templates_of_teams(team_ids=[t.pk for t in po_teams]))

    def make(how: str, data: Any = None) -> Any:
        extra: dict[str, Any] = {}
        if how == "clone":
            extra = {"sources": sources}
        elif how == "template":
            extra = {"templates": templates}
        return PLAN_START_FORMS[how](data, teams=po_teams, **extra)

    forms = {how: make(how) for how in PLAN_START_FORMS}
    status = 200
    if request.method == "POST":
        how = request.POST.get("how", "")
        if how not in PLAN_START_FORMS:
            raise BadRequest("Choose how to start the plan.")
        form = forms[how] = make(how, request.POST)
        if form.is_valid():
            try:
                plan = _start_plan(request.user, how, form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request,
                    f"Plan “{plan.title}” started. Plan health lists what is still missing.",
                )
                return redirect("pilots:plan_detail", plan_id=plan.pk)
        status = UNPROCESSABLE
    context = {
        "forms": forms,
        "po_teams": po_teams,
        "other_teams": [t for t in teams if not _is_po(t)],
        "sources": sources,
        "templates": templates,
    }
    return TemplateResponse(request, "pilots/plan_new.html", context, status=status)


# --- the plan page and its sections ------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def plan_detail(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The page a plan opens on: the run cockpit while it runs or is evaluated (a higher layer
    registers it, ``pilots.extensions.plan_home``), its document otherwise. The access check
    comes first, so the redirect tells nobody more than a 404 would."""
    plan = selectors.plan_page(user=request.user, plan_id=plan_id, prefetch=False)
    home = plan_home(plan)
    if home is not None:
        return redirect(home)
    return _page(request, selectors.plan_page_prefetch(plan, expanded=_expanded_lists(request)))


def _expanded_lists(request: AuthedHtmxRequest) -> list[Any]:
    """The row lists shown whole: ``?all=<list>`` ("Show all" without JavaScript) or ``?all=*``;
    every other list loads the rows it shows."""
    expanded = request.GET.get("all", "")
    return [
        kind.model for slug, kind in ROW_KINDS.items() if expanded in (slug, selectors.ALL_LISTS)
    ]


@login_required
@require_http_methods(["GET"])
def plan_document(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The plan document in every state: sections, section index and plan health."""
    plan = selectors.plan_page(
        user=request.user, plan_id=plan_id, expanded=_expanded_lists(request)
    )
    return _page(request, plan)


@login_required
@require_http_methods(["GET"])
def plan_health_panel(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The plan health panel alone: it reloads itself after every edit (``planChanged``)."""
    plan = selectors.plan_detail(user=request.user, plan_id=plan_id)
    context = {"plan": plan, "gaps": plan_health(plan)}
    return TemplateResponse(request, "pilots/_health.html", context)


# The plan pages' tabs (components/_plan_tabs.html): which one the reloaded header marks current.
PLAN_TABS = frozenset(
    {"cockpit", "plan", "review", "monitoring", "checks", "decision", "participants", "feedback",
     "alerts", "guests", "rollback", "history"}
)  # fmt: skip


@login_required
@require_http_methods(["GET"])
def plan_head(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """The plan's header alone (title, state, dates, next action, tabs): every plan page's header
    reloads itself after an edit or a lifecycle step (``planChanged``), so the state it shows is
    never older than the page's panels. ``?active=<tab>&access=1&lifecycle=1`` as the page
    included it."""
    plan = plan_for_user(user=request.user, plan_id=plan_id)
    active = request.GET.get("active", "")
    context = {
        "plan": plan,
        "active": active if active in PLAN_TABS else "",
        "show_access": request.GET.get("access") == "1",
        "lifecycle": request.GET.get("lifecycle") == "1",
        "can_edit": can_edit(plan),
        "can_save_template": allows(plan.viewer_role, Perm.TEMPLATES_MANAGE),  # type: ignore[attr-defined]
    }
    return TemplateResponse(request, "pilots/_plan_header.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def section(request: AuthedHtmxRequest, plan_id: int, key: str) -> HttpResponse:
    """GET: the section in view mode. POST: save its fields."""
    if request.method == "POST":
        return _section_save(request, plan_id, _editable_key(key))
    key = _section_key(key)
    plan = selectors.plan_detail(user=request.user, plan_id=plan_id)
    if not request.htmx:
        return redirect(f"{reverse('pilots:plan_document', args=[plan.pk])}#section-{key}")
    return _section(request, plan, SectionBlock(key))


@login_required
@require_http_methods(["GET"])
def section_edit(request: AuthedHtmxRequest, plan_id: int, key: str) -> HttpResponse:
    """The section as a form, in place of its view (HTMX) or on the whole page."""
    key = _editable_key(key)
    plan = selectors.plan_detail(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    return _section(request, plan, _edit_block(plan, key, section_form(key, plan)))


def _section_save(request: AuthedHtmxRequest, plan_id: int, key: str) -> HttpResponse:
    plan = selectors.plan_detail(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    version = _expected_version(request)
    data: QueryDict = request.POST
    if key == Section.TIMELINE and data.get("start") == "next_monday":
        data = data.copy()
        data["start_date"] = timeline.next_monday(_today(plan.time_zone)).isoformat()
    form = section_form(key, plan, data)
    if form.is_valid():
        try:
            services.section_update(
                plan=plan,
                key=key,
                user=request.user,
                expected_version=version,
                values=form.cleaned_data,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
            plan = _fresh(plan)  # the service set the refused values on the loaded plan
        except SectionConflict as conflict:
            fresh = _fresh(plan)
            form.theirs = form.saved_values(form.holder(fresh))
            block = _edit_block(
                fresh,
                key,
                form,
                conflict=_conflict_message(conflict),
                extra={"theirs_by": _who(conflict)},
            )
            return _section(request, fresh, block, status=CONFLICT)
        else:
            return _saved(request, plan, key)
    # Invalid: the form again with the errors and the version the person started from.
    return _section(
        request, plan, _edit_block(plan, key, form, version=version), status=UNPROCESSABLE
    )


def _who(conflict: SectionConflict) -> str:
    by = conflict.current.updated_by
    return by.display_name if by else "someone"


def _conflict_message(conflict: SectionConflict) -> str:
    return (
        f"{conflict.message} Their saved values are shown under each field; yours are still "
        "in the form — save again to replace theirs, or cancel to keep them."
    )


def _view_refusal(
    request: AuthedHtmxRequest, plan: PilotPlan, key: str, exc: Exception
) -> HttpResponse:
    """A one-click action of a view mode was refused: the fresh section with the reason."""
    fresh = _fresh(plan)
    if isinstance(exc, SectionConflict):
        block = SectionBlock(key, conflict=f"{exc.message} Check the values below and try again.")
        return _section(request, fresh, block, status=CONFLICT)
    assert isinstance(exc, ValidationError)
    block = SectionBlock(key, error=" ".join(exc.messages))
    return _section(request, fresh, block, status=UNPROCESSABLE)


@login_required
@require_http_methods(["POST"])
def environment_compliance(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Record that compliance and masking were validated (by the person, now), or withdraw it."""
    plan = selectors.plan_detail(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    version = _expected_version(request)
    try:
        services.environment_set_compliance(
            plan=plan,
            user=request.user,
            expected_version=version,
            validated=request.POST.get("validated") == "true",
        )
    except (ValidationError, SectionConflict) as exc:
        return _view_refusal(request, plan, Section.ENVIRONMENT, exc)
    return _saved(request, plan, Section.ENVIRONMENT)


@login_required
@require_http_methods(["POST"])
def timeline_start_next_monday(request: AuthedHtmxRequest, plan_id: int) -> HttpResponse:
    """Starts next Monday in one click: the start date only; the end date follows."""
    plan = selectors.plan_detail(user=request.user, plan_id=plan_id, perm=Perm.PLAN_EDIT)
    version = _expected_version(request)
    try:
        services.section_update(
            plan=plan,
            key=Section.TIMELINE,
            user=request.user,
            expected_version=version,
            values={"start_date": timeline.next_monday(_today(plan.time_zone))},
        )
    except (ValidationError, SectionConflict) as exc:
        return _view_refusal(request, plan, Section.TIMELINE, exc)
    return _saved(request, plan, Section.TIMELINE)


urlpatterns = [
    path("", plan_list, name="plan_list"),
    path("new", plan_new, name="plan_new"),
    path("<int:plan_id>/", plan_detail, name="plan_detail"),
    path("<int:plan_id>/document", plan_document, name="plan_document"),
    path("<int:plan_id>/health", plan_health_panel, name="plan_health"),
    path("<int:plan_id>/head", plan_head, name="plan_head"),
    path(
        "<int:plan_id>/sections/environment/compliance",
        environment_compliance,
        name="environment_compliance",
    ),
    path(
        "<int:plan_id>/sections/timeline/start-next-monday",
        timeline_start_next_monday,
        name="timeline_start_next_monday",
    ),
    path("<int:plan_id>/sections/<str:key>", section, name="section"),
    path("<int:plan_id>/sections/<str:key>/edit", section_edit, name="section_edit"),
]
