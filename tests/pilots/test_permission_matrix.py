"""The permission matrix: every role × every action × every channel, read from the one
permission table (``accounts.permissions.PERMISSIONS``).

Actions: view the plan, edit each of the 13 sections, sign each review, take each lifecycle step
(``decide`` included), start a plan, invite stakeholders, push samples, and the team settings
(metric catalogue, holidays, alert webhook, API keys, members), ask the deployment gate.
Channels: the HTML page (plain request), the same request from HTMX (``HX-Request``), and the
REST API (/api/v1/). Roles: each team role, a member of another team (``outsider``) and an anonymous
visitor.

Credentials (``test_permission_matrix_with_credentials``): every API action again, sent with a
team API key of each scope (and one of another team), and with personal access tokens of each
role (write scope: the role's answer; read scope: the role's answer for the rules that only read,
403 for the others), all with no session at all.

Only the *permission* outcome is asserted, never business success: the plan is put in the state
the action starts from so the role check is what decides, but an allowed role may still meet a
guard or an input rule (409, 412, 422, 400) — it must just not be refused for who it is.

- allowed role: not 401/403/404 and not sent to the login page;
- a member without the role: 403;
- a member of another team: 404 (the plan, or the team, does not exist for them);
- anonymous: the login page for HTML and HTMX, 401 for the API (it takes bearer tokens).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import ApiKey, Membership, Team, User
from accounts.permissions import PERMISSIONS, Perm, roles_for, token_scope
from accounts.tokens import personal_token_create
from backlog.models import BacklogItem, Feedback, Participant
from catalogue.selectors import metric_by_key
from decisions.services.review import post_pilot_review_open
from pilots.forms import SECTION_FORMS, section_form
from pilots.models import PilotPlan, PlanSection, Section
from pilots.review import REVIEWS
from pilots.services import ROW_KINDS
from pilots.services.lifecycle import TRANSITIONS
from tests.conftest import _member, rows_for_the_module
from tests.factories import PilotPlanFactory, TeamFactory

pytestmark = pytest.mark.django_db

Role = Membership.Role
Status = PilotPlan.Status

HTML, HTMX, API = "html", "htmx", "api"
CHANNELS = (HTML, HTMX, API)

# The role each user fixture holds in ``team`` (``outsider`` and ``anonymous`` hold none).
ROLE_OF = {
    "po": Role.PRODUCT_OWNER,
    "sm": Role.SCRUM_MASTER,
    "developer": Role.DEVELOPER,
    "devops": Role.DEVOPS,
    "stakeholder": Role.STAKEHOLDER,
}
PEOPLE = (*ROLE_OF, "outsider", "anonymous")

EVERY_MEMBER = frozenset(ROLE_OF.values())

ALLOWED, FORBIDDEN, HIDDEN, ANONYMOUS = "allowed", "forbidden", "hidden", "anonymous"

# Sections written through one row list (they have no form of their own): slug and a valid row.
ROW_SECTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    Section.SCOPE: ("scope-items", {"kind": "included", "title": "Saved cards"}),
    Section.ENTRY_CRITERIA: (
        "entry-criteria",
        {"text": "Runbook reviewed", "kind": "runbook", "status": "pending"},
    ),
    Section.EXIT_CRITERIA: (
        "exit-criteria",
        {
            "metric": "p1_defects",
            "aggregation": "total",
            "comparator": "le",
            "threshold": "1",
            "min_sample_size": "30",
        },
    ),
    Section.ROLLBACK_TRIGGERS: (
        "rollback-triggers",
        {"metric": "p1_defects", "comparator": "gt", "threshold": "3", "mode": "any"},
    ),
    Section.RISKS: (
        "risks",
        {"description": "Card tokens leak", "likelihood": "low", "impact": "high"},
    ),
}
assert set(ROW_SECTIONS) | set(SECTION_FORMS) == set(Section.values), "every section covered"
assert all(ROW_KINDS[slug].section == key for key, (slug, _) in ROW_SECTIONS.items())


# --- requests per action -------------------------------------------------------------------------


@dataclass
class Call:
    """One request: ``method`` and ``url``, form ``data`` (HTML/HTMX) or a JSON ``body`` (API)."""

    method: str
    url: str
    data: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def _version(plan: PilotPlan, key: str) -> int:
    return PlanSection.objects.get(plan=plan, key=key).version


def _unchanged_form_data(plan: PilotPlan, key: str) -> dict[str, Any]:
    """The section form's POST data with every field as saved (an edit that changes nothing)."""
    data: dict[str, Any] = {"version": _version(plan, key)}
    for bound in section_form(key, plan):
        value = bound.value()
        if isinstance(value, bool):
            if value:
                data[bound.name] = "on"
            continue
        data[bound.name] = "" if value is None else value
    return data


def _metric_id(plan: PilotPlan) -> int:
    return metric_by_key(key="p1_defects", team_id=plan.team_id).pk


def view_call(channel: str, plan: PilotPlan) -> Call:
    if channel == API:
        return Call("get", f"/api/v1/plans/{plan.pk}")
    return Call("get", reverse("pilots:plan_detail", args=[plan.pk]))


def cockpit_call(channel: str, plan: PilotPlan) -> Call:
    """The run cockpit (decisions.views_cockpit): the page, or its body for HTMX's refresh."""
    return Call("get", reverse("decisions:cockpit", args=[plan.pk]))


def edit_call(key: str) -> Callable[[str, PilotPlan], Call]:
    def call(channel: str, plan: PilotPlan) -> Call:
        version = _version(plan, key)
        if key in ROW_SECTIONS:
            slug, values = ROW_SECTIONS[key]
            if channel == API:
                return Call(
                    "post",
                    f"/api/v1/plans/{plan.pk}/rows/{slug}",
                    values,
                    {"If-Match": f'"{version}"'},
                )
            form = {**values}
            if "metric" in form:
                form["metric"] = _metric_id(plan)
            data = {f"{slug}-{name}": value for name, value in form.items()}
            data["version"] = version
            return Call("post", reverse("pilots:row_add", args=[plan.pk, slug]), data)
        if channel == API:
            # A partial update naming nothing: the section as it is, at its current version.
            return Call(
                "patch",
                f"/api/v1/plans/{plan.pk}/sections/{key}",
                {},
                {"If-Match": f'"{version}"'},
            )
        return Call(
            "post",
            reverse("pilots:section", args=[plan.pk, key]),
            _unchanged_form_data(plan, key),
        )

    return call


def sign_call(kind: str) -> Callable[[str, PilotPlan], Call]:
    def call(channel: str, plan: PilotPlan) -> Call:
        if channel == API:
            return Call("post", f"/api/v1/plans/{plan.pk}/reviews/{kind}/sign-off", {})
        return Call("post", reverse("pilots:review_sign", args=[plan.pk, kind]), {})

    return call


def transition_call(action: str) -> Callable[[str, PilotPlan], Call]:
    def call(channel: str, plan: PilotPlan) -> Call:
        # ``decide`` is refused for every role that holds it (400 / 422: the decision page
        # records it), never 403: the role rule still answers first.
        payload = {"reason": "Checked by the matrix."}
        if channel == API:
            return Call(
                "post", f"/api/v1/plans/{plan.pk}/transitions", {"action": action, **payload}
            )
        return Call("post", reverse("pilots:plan_transition", args=[plan.pk, action]), payload)

    return call


def decision_comment_call(channel: str, plan: PilotPlan) -> Call:
    return Call("post", f"/api/v1/plans/{plan.pk}/decision-comments", {"text": "Looks good."})


def plan_create_call(channel: str, plan: PilotPlan) -> Call:
    if channel == API:
        return Call("post", "/api/v1/plans", {"team": plan.team_id, "title": "Another pilot"})
    return Call("post", reverse("pilots:plan_new"), {"team": plan.team_id, "title": "Another"})


def gate_call(channel: str, plan: PilotPlan) -> Call:
    return Call("get", f"/api/v1/plans/{plan.pk}/gate")


def guests_call(channel: str, plan: PilotPlan) -> Call:
    return Call("post", reverse("pilots:plan_guests", args=[plan.pk]), {"email": "a@example.test"})


def samples_call(channel: str, plan: PilotPlan) -> Call:
    if channel == API:
        return Call("post", f"/api/v1/plans/{plan.pk}/samples", {"samples": []})
    return Call("post", reverse("metrics:sample_upload", args=[plan.pk]), {})


def timebox_extend_call(channel: str, plan: PilotPlan) -> Call:
    data = {"new_end_date": "2030-01-04", "reason": "Checked by the matrix."}
    return Call("post", reverse("pilots:timebox_extend", args=[plan.pk]), data)


def check_run_now_call(channel: str, plan: PilotPlan) -> Call:
    if channel == API:
        return Call("post", f"/api/v1/plans/{plan.pk}/check-runs", {})
    return Call("post", reverse("metrics:checks_run", args=[plan.pk]), {})


def post_pilot_review_call(complete: bool) -> Callable[[str, PilotPlan], Call]:
    def call(channel: str, plan: PilotPlan) -> Call:
        review = post_pilot_review_open(plan=plan, decided_at=timezone.now())
        if channel == API:  # three empty parts: 400 for those allowed to complete
            if_match = {"If-Match": f'"{review.version}"'}
            url = f"/api/v1/plans/{plan.pk}/post-pilot-review"
            if complete:
                return Call("post", f"{url}/complete", None, if_match)
            return Call("patch", url, {"findings": ""}, if_match)
        data = {"version": review.version, "findings": "", "went_well": "", "to_improve": ""}
        if complete:
            data["complete"] = "1"  # with three empty parts: 422 for those allowed
        return Call("post", reverse("decisions:post_pilot_review", args=[plan.pk]), data)

    return call


def backlog_create_call(channel: str, plan: PilotPlan) -> Call:
    return Call("post", f"/api/v1/teams/{plan.team_id}/backlog", {"title": "From the matrix"})


def backlog_move_call(channel: str, plan: PilotPlan) -> Call:
    n = BacklogItem.objects.filter(team_id=plan.team_id).count() + 1
    item = BacklogItem.objects.create(
        team_id=plan.team_id, number=n, reference=f"M-{n}", title="Moved", position=n
    )
    return Call("post", f"/api/v1/teams/{plan.team_id}/backlog/{item.pk}/move", {"before": None})


def feedback_triage_call(channel: str, plan: PilotPlan) -> Call:
    feedback = Feedback.objects.create(plan=plan, csat=4, comment="From the matrix")
    if channel == API:
        return Call(
            "patch",
            f"/api/v1/plans/{plan.pk}/feedback/{feedback.pk}",
            {"noise": True},
            {"If-Match": '"1"'},
        )
    return Call(
        "post", reverse("backlog:feedback_noise", args=[plan.pk, feedback.pk]), {"noise": "1"}
    )


def feedback_link_call(channel: str, plan: PilotPlan) -> Call:
    return Call("post", reverse("backlog:feedback_link_issue", args=[plan.pk]), {})


def participants_view_call(channel: str, plan: PilotPlan) -> Call:
    if channel == API:
        return Call("get", f"/api/v1/plans/{plan.pk}/participants")
    return Call("get", reverse("backlog:participant_export", args=[plan.pk]))


def participants_manage_call(channel: str, plan: PilotPlan) -> Call:
    data = {"name": "From the matrix", "consent": True, "consent_text": "Yes."}
    if channel == API:
        return Call("post", f"/api/v1/plans/{plan.pk}/participants", data)
    return Call(
        "post", reverse("backlog:participant_new", args=[plan.pk]), {**data, "consent": "on"}
    )


def participants_erase_call(channel: str, plan: PilotPlan) -> Call:
    person = Participant.objects.create(plan=plan, name="Ana")
    if channel == API:
        url = f"/api/v1/plans/{plan.pk}/participants/{person.pk}/erase"
        return Call("post", url, {}, {"If-Match": '"1"'})
    url = reverse("backlog:participant_erase", args=[plan.pk, person.pk])
    return Call("post", url, {"version": "1"})


def backlog_raise_call(channel: str, plan: PilotPlan) -> Call:
    """Log a defect against the running pilot from the change-control page."""
    data = {"title": "From the matrix", "kind": "defect", "severity": "p3", "source": "defect"}
    return Call("post", reverse("backlog:item_raise", args=[plan.pk]), data)


def backlog_reprioritise_call(channel: str, plan: PilotPlan) -> Call:
    n = BacklogItem.objects.filter(team_id=plan.team_id).count() + 1
    item = BacklogItem.objects.create(
        team_id=plan.team_id, number=n, reference=f"R-{n}", title="Moved", position=n
    )
    data = {"reference": item.reference, "to": "top", "reason": "The pilot", "source": "defect"}
    return Call("post", reverse("backlog:item_reprioritise", args=[plan.pk]), data)


def team_call(name: str, method: str = "post") -> Callable[[str, PilotPlan], Call]:
    def call(channel: str, plan: PilotPlan) -> Call:
        return Call(method, reverse(name, args=[plan.team_id]), {})

    return call


@dataclass(frozen=True)
class ActionSpec:
    name: str
    perm: Perm  # the permission table's rule that decides it
    status: str  # the state the plan is put in first
    call: Callable[[str, PilotPlan], Call]
    channels: tuple[str, ...] = CHANNELS
    anonymous_api: int = 401  # every endpoint takes bearer tokens (WWW-Authenticate)

    @property
    def roles(self) -> frozenset[str]:
        return roles_for(self.perm)


BROWSER = (HTML, HTMX)
ACTIONS: list[ActionSpec] = [
    ActionSpec("view", Perm.PLAN_VIEW, Status.DRAFT, view_call),
    ActionSpec("view-cockpit", Perm.PLAN_VIEW, Status.RUNNING, cockpit_call, BROWSER),
    *[
        ActionSpec(f"edit-{key}", Perm.PLAN_EDIT, Status.DRAFT, edit_call(key))
        for key in Section.values
    ],
    *[
        ActionSpec(f"sign-{kind}", spec.perm, Status.IN_REVIEW, sign_call(kind))
        for kind, spec in REVIEWS.items()
    ],
    *[
        ActionSpec(f"transition-{name}", step.perm, step.source, transition_call(name))
        for name, step in TRANSITIONS.items()
    ],
    # The new-plan page offers only the teams one is Product Owner of (a form error otherwise,
    # tests/pilots/test_plan_views.py); the API names the team, so the rule answers there.
    ActionSpec("plan-create", Perm.PLAN_CREATE, Status.DRAFT, plan_create_call, (API,)),
    ActionSpec("guests-manage", Perm.GUESTS_MANAGE, Status.DRAFT, guests_call, BROWSER),
    ActionSpec(
        "decision-comment", Perm.DECISION_COMMENT, Status.RUNNING, decision_comment_call, (API,)
    ),
    ActionSpec(
        "timebox-extend", Perm.TIMEBOX_EXTEND, Status.RUNNING, timebox_extend_call, BROWSER
    ),
    ActionSpec("samples-push", Perm.SAMPLES_PUSH, Status.RUNNING, samples_call),
    ActionSpec("gate", Perm.GATE_READ, Status.RUNNING, gate_call, (API,)),
    ActionSpec(
        "check-run-now", Perm.CHECK_RUN_NOW, Status.RUNNING, check_run_now_call, (HTML, API)
    ),
    ActionSpec(
        "catalogue-edit", Perm.CATALOGUE_EDIT, Status.DRAFT, team_call("catalogue:metric_add"),
        BROWSER,
    ),
    ActionSpec(
        "holidays-manage", Perm.HOLIDAYS_MANAGE, Status.DRAFT,
        team_call("pilots:team_holiday_create"), BROWSER,
    ),
    ActionSpec(
        "webhook-manage", Perm.WEBHOOK_MANAGE, Status.DRAFT, team_call("metrics:webhooks"), BROWSER
    ),
    ActionSpec(
        "webhook-manage-api", Perm.WEBHOOK_MANAGE, Status.DRAFT,
        team_call("api:team-webhooks"), (API,),
    ),
    ActionSpec(
        "api-keys-manage", Perm.API_KEYS_MANAGE, Status.DRAFT,
        team_call("accounts:api_key_list", "get"), BROWSER,
    ),
    ActionSpec(
        "team-members-manage", Perm.TEAM_MEMBERS_MANAGE, Status.DRAFT,
        team_call("accounts:team_invitation_add"), BROWSER,
    ),
    ActionSpec(
        "team-members-manage-api", Perm.TEAM_MEMBERS_MANAGE, Status.DRAFT,
        team_call("api:team-invitations", "get"), (API,),
    ),
    ActionSpec(
        "templates-manage", Perm.TEMPLATES_MANAGE, Status.DRAFT,
        team_call("pilots:team_template_save"), BROWSER,
    ),
    ActionSpec(
        "postpilot-edit", Perm.POSTPILOT_EDIT, Status.DECIDED, post_pilot_review_call(False)
    ),
    ActionSpec(
        "postpilot-complete", Perm.POSTPILOT_COMPLETE, Status.DECIDED,
        post_pilot_review_call(True),
    ),
    ActionSpec("backlog-edit", Perm.BACKLOG_EDIT, Status.DRAFT, backlog_create_call, (API,)),
    ActionSpec("backlog-order", Perm.BACKLOG_ORDER, Status.DRAFT, backlog_move_call, (API,)),
    ActionSpec("feedback-triage", Perm.FEEDBACK_TRIAGE, Status.RUNNING, feedback_triage_call),
    ActionSpec(
        "feedback-link", Perm.FEEDBACK_LINK_MANAGE, Status.RUNNING, feedback_link_call, BROWSER
    ),
    ActionSpec(
        "participants-view", Perm.PARTICIPANTS_VIEW, Status.RUNNING, participants_view_call,
        (HTML, API),
    ),
    ActionSpec(
        "participants-manage", Perm.PARTICIPANTS_MANAGE, Status.RUNNING, participants_manage_call
    ),
    ActionSpec(
        "participants-erase", Perm.PARTICIPANTS_ERASE, Status.RUNNING, participants_erase_call,
        (HTML, API),
    ),
    # Change control (backlog.change_control): the same two rules, from a running pilot.
    ActionSpec("backlog-raise", Perm.BACKLOG_EDIT, Status.RUNNING, backlog_raise_call, BROWSER),
    ActionSpec(
        "backlog-reprioritise", Perm.BACKLOG_ORDER, Status.RUNNING, backlog_reprioritise_call,
        BROWSER,
    ),
]  # fmt: skip

# Rules the matrix does not send requests for, and where they are tested instead.
ELSEWHERE = {
    # Acknowledging or resolving needs a fired trigger: tests/metrics/test_alerts.py checks
    # every role (buttons shown or not, 403 on POST).
    Perm.ALERTS_ACT,
    # Starting and working a rollback add a person rule (the plan's rollback executor) and need
    # a fired trigger or a Roll back decision: tests/decisions/test_rollback*.py check each role,
    # over the page and the API (test_rollback_api.py: keys and read-only tokens too).
    Perm.ROLLBACK_START,
    Perm.ROLLBACK_WORK,
    # Recording the decision is the writers' roles *and* the plan's decision owner (a person
    # rule the matrix's role columns cannot express): tests/decisions/test_record_api.py checks
    # every role, a named non-PO decision owner, guests and outsiders.
    Perm.DECISION_RECORD,
    # Not a refusal but a mask: contacts are shown masked to the roles without it;
    # tests/backlog/test_feedback_triage.py checks the page and the API for each side.
    Perm.FEEDBACK_CONTACT_VIEW,
}
assert {a.perm for a in ACTIONS} | ELSEWHERE == set(PERMISSIONS), "every rule of the table"

# The domain, spelled out: a change to the permission table must be a deliberate one.
assert {a.name: a.roles for a in ACTIONS if not a.name.startswith("edit-")} == {
    "view": EVERY_MEMBER,
    "view-cockpit": EVERY_MEMBER,
    "sign-business": {Role.PRODUCT_OWNER},
    "sign-readiness": {Role.SCRUM_MASTER},
    "sign-feasibility": {Role.DEVELOPER, Role.DEVOPS},
    "transition-submit": {Role.PRODUCT_OWNER},
    "transition-withdraw": {Role.PRODUCT_OWNER},
    "transition-approve": {Role.PRODUCT_OWNER},
    "transition-start": {Role.PRODUCT_OWNER, Role.DEVOPS},
    "transition-evaluate": {Role.PRODUCT_OWNER},
    "transition-decide": {Role.PRODUCT_OWNER},
    "transition-close": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "plan-create": {Role.PRODUCT_OWNER},
    "guests-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "decision-comment": EVERY_MEMBER,
    "timebox-extend": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "samples-push": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "check-run-now": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "catalogue-edit": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "holidays-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "webhook-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVOPS},
    "webhook-manage-api": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVOPS},
    "api-keys-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "team-members-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "team-members-manage-api": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "templates-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "postpilot-edit": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "postpilot-complete": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "backlog-edit": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "backlog-order": {Role.PRODUCT_OWNER},
    "feedback-triage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "feedback-link": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER},
    "participants-view": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "participants-manage": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "participants-erase": {Role.PRODUCT_OWNER},
    "backlog-raise": {Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS},
    "backlog-reprioritise": {Role.PRODUCT_OWNER},
    "gate": EVERY_MEMBER,
}
assert roles_for(Perm.PLAN_EDIT) == {
    Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS
}  # fmt: skip
assert roles_for(Perm.DECISION_RECORD) == roles_for(Perm.PLAN_EDIT)  # and the decision owner


def expected(action: ActionSpec, person: str) -> str:
    if person == "anonymous":
        return ANONYMOUS
    if person == "outsider":
        return HIDDEN
    return ALLOWED if ROLE_OF[person] in action.roles else FORBIDDEN


# Known permission bugs: {(action, channel, person): reason}. Each one xfails strictly.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _cases() -> list[Any]:
    cases = []
    for action in ACTIONS:
        for channel in action.channels:
            for person in PEOPLE:
                marks = []
                bug = KNOWN_BUGS.get((action.name, channel, person))
                if bug:
                    marks.append(pytest.mark.xfail(strict=True, reason=bug))
                cases.append(
                    pytest.param(
                        action,
                        channel,
                        person,
                        expected(action, person),
                        id=f"{action.name}-{channel}-{person}",
                        marks=marks,
                    )
                )
    return cases


# --- the matrix ----------------------------------------------------------------------------------


def _send(client: Client, channel: str, call: Call) -> HttpResponse:
    headers = dict(call.headers or {})
    if channel == API:
        body = json.dumps(call.data) if call.data is not None else ""
        return client.generic(
            call.method.upper(), call.url, body, content_type="application/json", headers=headers
        )
    if channel == HTMX:
        headers["HX-Request"] = "true"
    if call.method == "get":
        return client.get(call.url, headers=headers)
    return client.post(call.url, call.data or {}, headers=headers)


# --- the rows every case starts from, made once -------------------------------------------------

# The matrix has some 1,300 cases; making the team, six people and a plan for each one cost
# more than the request it checks. They are made once for the module (``rows_for_the_module``)
# exactly as the shared fixtures of tests/conftest.py make them, and each case reads fresh copies
# and is rolled back to them afterwards, so no case sees another's changes.


@pytest.fixture(scope="module")
def _matrix_rows(django_db_setup, django_db_blocker) -> Iterator[dict[str, int]]:  # type: ignore[no-untyped-def]
    with rows_for_the_module(django_db_blocker):
        team = TeamFactory(name="Checkout", slug="checkout")
        other_team = TeamFactory(name="Elsewhere", slug="elsewhere")
        ids = {"team": team.pk, "other_team": other_team.pk}
        for name, role in ROLE_OF.items():
            email = "dev@example.test" if name == "developer" else f"{name}@example.test"
            ids[name] = _member(team, role, email).pk
        ids["outsider"] = _member(other_team, Role.PRODUCT_OWNER, "outsider@example.test").pk
        po = User.objects.get(pk=ids["po"])
        ids["plan"] = PilotPlanFactory(team=team, owner=po, title="Saved cards").pk
        yield ids


def _shared(name: str, model: type[Any]) -> Any:
    """A function-scoped fixture ``name`` (overriding tests/conftest.py's) that reads the
    module's row afresh for each case."""

    @pytest.fixture(name=name)
    def fixture(_matrix_rows: dict[str, int]) -> Any:
        return model.objects.get(pk=_matrix_rows[name])

    return fixture


team_fixture = _shared("team", Team)
other_team_fixture = _shared("other_team", Team)
po_fixture, sm_fixture, developer_fixture, devops_fixture, stakeholder_fixture = (
    _shared(name, User) for name in ROLE_OF
)
outsider_fixture = _shared("outsider", User)


def _plan_in(rows: dict[str, int], status: str) -> PilotPlan:
    """The module's Draft plan "Saved cards", put in ``status`` for this case."""
    plan = PilotPlan.objects.get(pk=rows["plan"])
    if status != plan.status:
        PilotPlan.objects.filter(pk=plan.pk).update(status=status)
        plan.refresh_from_db()
    return plan


def _to_login(response: HttpResponse) -> bool:
    return response.status_code == 302 and response["Location"].startswith(
        reverse("accounts:login")
    )


@pytest.mark.parametrize(("action", "channel", "person", "outcome"), _cases())
def test_permission_matrix(
    request: pytest.FixtureRequest,
    client_for: Callable[[Any], Client],
    _matrix_rows: dict[str, int],
    action: ActionSpec,
    channel: str,
    person: str,
    outcome: str,
) -> None:
    plan = _plan_in(_matrix_rows, action.status)
    client = Client() if person == "anonymous" else client_for(request.getfixturevalue(person))

    response = _send(client, channel, action.call(channel, plan))

    status = response.status_code
    where = f"{action.name} over {channel} as {person}: {status}"
    if outcome == ALLOWED:
        assert status not in {401, 403, 404}, where
        assert not _to_login(response), where
    elif outcome == FORBIDDEN:
        assert status == 403, where
    elif outcome == HIDDEN:
        assert status == 404, where
    elif channel == API:
        assert status == action.anonymous_api, where
    else:
        assert _to_login(response), where


# --- the same table for team API keys and personal access tokens --------------------------------

# Team API keys by their scopes; "key-other-team" holds every scope, for another team.
KEY_SCOPES: dict[str, list[str]] = {
    "key-read": ["read"],
    "key-write": ["read", "write"],
    "key-ingest": ["ingest"],
    "key-gate": ["gate"],
    "key-other-team": ApiKey.Scope.values,
}
# Personal access tokens: with the write scope, of the Product Owner (who decides and signs the
# business review), a Developer (feasibility) and a Stakeholder (reads only); with the read scope,
# of the Product Owner and a Developer; and an outsider's (a member of another team only).
TOKENS: dict[str, tuple[str, list[str]]] = {
    **{f"token-{p}-write": (p, ["read", "write"]) for p in ("po", "developer", "stakeholder")},
    **{f"token-{p}-read": (p, ["read"]) for p in ("po", "developer")},
    "token-outsider-write": ("outsider", ["read", "write"]),
}
CREDENTIALS = (*KEY_SCOPES, *TOKENS)


def expected_for_credential(action: ActionSpec, credential: str) -> str:
    rule = PERMISSIONS[action.perm]
    if credential in KEY_SCOPES:
        if credential == "key-other-team":
            return HIDDEN
        return ALLOWED if rule.key_scopes & set(KEY_SCOPES[credential]) else FORBIDDEN
    person, scopes = TOKENS[credential]
    role_answer = expected(action, person)
    if role_answer == ALLOWED and token_scope(action.perm) not in scopes:
        return FORBIDDEN
    return role_answer


def _credential_cases() -> list[Any]:
    return [
        pytest.param(
            action,
            credential,
            expected_for_credential(action, credential),
            id=f"{action.name}-{credential}",
        )
        for action in ACTIONS
        if API in action.channels
        for credential in CREDENTIALS
    ]


def _bearer(request: pytest.FixtureRequest, credential: str, team: Any, po: Any) -> str:
    if credential in KEY_SCOPES:
        if credential == "key-other-team":
            other, other_po = (
                request.getfixturevalue("other_team"),
                request.getfixturevalue("outsider"),
            )
            return api_key_create(
                team=other, name="other", scopes=KEY_SCOPES[credential], created_by=other_po
            )[1]
        return api_key_create(
            team=team, name="matrix", scopes=KEY_SCOPES[credential], created_by=po
        )[1]
    person, scopes = TOKENS[credential]
    user = request.getfixturevalue(person)
    expires = timezone.now() + dt.timedelta(days=1)
    return personal_token_create(user=user, name="matrix", scopes=scopes, expires_at=expires)[1]


@pytest.mark.parametrize(("action", "credential", "outcome"), _credential_cases())
def test_permission_matrix_with_credentials(
    request: pytest.FixtureRequest, team: Any, po: Any, _matrix_rows: dict[str, int],
    action: ActionSpec, credential: str, outcome: str,
) -> None:  # fmt: skip
    plan = _plan_in(_matrix_rows, action.status)
    bearer = _bearer(request, credential, team, po)
    # No session, no CSRF token: a script with nothing but its credential.
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {bearer}"})

    response = _send(client, API, action.call(API, plan))

    status = response.status_code
    where = f"{action.name} with {credential}: {status} {response.content[:200]!r}"
    if outcome == ALLOWED:
        assert status not in {401, 403, 404}, where
    elif outcome == FORBIDDEN:
        assert status == 403, where
        assert "CSRF" not in response.json()["detail"], where
    else:
        assert status == 404, where


# --- the services refuse too, whoever calls them (API, HTMX, a script) -----------------------


def test_team_setting_services_enforce_the_table(team, po, stakeholder):
    from django.core.exceptions import PermissionDenied

    from accounts.api_keys import api_key_create
    from catalogue.services import metric_create
    from metrics.subscriptions import subscription_create
    from pilots.services.holidays import team_holiday_add

    calls = {
        Perm.API_KEYS_MANAGE: lambda user: api_key_create(
            team=team, name="k", scopes=["read"], created_by=user
        ),
        Perm.CATALOGUE_EDIT: lambda user: metric_create(
            team=team, user=user, key="k", name="K", unit="", kind="count", direction="lower"
        ),
        Perm.WEBHOOK_MANAGE: lambda user: subscription_create(
            team=team,
            user=user,
            name="Ops",
            kind="standard",
            url="https://hooks.example.test/x",
            events=["trigger.fired"],
        ),
        Perm.HOLIDAYS_MANAGE: lambda user: team_holiday_add(
            team=team, user=user, date=dt.date(2030, 1, 1)
        ),
    }
    for perm, call in calls.items():
        assert Role.STAKEHOLDER not in roles_for(perm)
        with pytest.raises(PermissionDenied, match=re.escape(PERMISSIONS[perm].message)):
            call(stakeholder)
        call(po)  # the Product Owner holds every one of them


def test_api_keys_answer_to_the_same_table_by_scope():
    from django.core.exceptions import PermissionDenied

    from accounts.permissions import require_key_scope

    require_key_scope([ApiKey.Scope.INGEST], Perm.SAMPLES_PUSH)
    with pytest.raises(PermissionDenied, match="may not push samples: it lacks the ingest scope"):
        require_key_scope([ApiKey.Scope.READ, ApiKey.Scope.WRITE], Perm.SAMPLES_PUSH)
    with pytest.raises(PermissionDenied, match="API keys may not"):
        require_key_scope(ApiKey.Scope.values, Perm.STEP_DECIDE)  # a person's decision, no key's
    granted = {scope for rule in PERMISSIONS.values() for scope in rule.key_scopes}
    assert granted == set(ApiKey.Scope.values)  # every scope grants something


def test_what_each_key_scope_grants_is_deliberate():
    by_scope = {
        scope: {perm for perm, rule in PERMISSIONS.items() if scope in rule.key_scopes}
        for scope in ApiKey.Scope.values
    }
    assert by_scope == {
        "read": {Perm.PLAN_VIEW, Perm.GATE_READ},
        "write": {Perm.PLAN_EDIT, Perm.BACKLOG_EDIT, Perm.ALERTS_ACT},
        "ingest": {Perm.SAMPLES_PUSH},
        "gate": {Perm.GATE_READ},
    }
    # What reads (a read-scope personal token may do it if the person may).
    assert {perm for perm, rule in PERMISSIONS.items() if rule.reads} == {
        Perm.PLAN_VIEW, Perm.GATE_READ, Perm.PARTICIPANTS_VIEW, Perm.FEEDBACK_CONTACT_VIEW
    }  # fmt: skip
