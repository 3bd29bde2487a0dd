"""Who may see and do what with a plan: the one access layer for pages, partials and the API.

A plan is visible to the members of its team and to the stakeholders the team invited to it
(``PlanGuest``: read only, that one plan); to anyone else it does not exist (404, never 403, so
outsiders cannot probe for plans). Within the team, what a member may do depends on their role.
"""

from __future__ import annotations

from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import Membership, Team, User
from pilots.models import PilotPlan, PlanGuest

Role = Membership.Role


class Action(StrEnum):
    VIEW = "view"
    EDIT = "edit"


# Stakeholders read; the people who write the plan edit it (docs/user-guide.md, "Who may do what").
EDITORS = frozenset({Role.PRODUCT_OWNER, Role.SCRUM_MASTER, Role.DEVELOPER, Role.DEVOPS})
PLAN_CREATORS = frozenset({Role.PRODUCT_OWNER})

_MESSAGES = {
    Action.EDIT: "Stakeholders can read this plan but not change it.",
}


def role_in_team(*, user: User, team_id: int) -> str | None:
    return (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )


def team_for_member(
    *, user: User, team_id: int, roles: frozenset[str] | None = None, refusal: str = ""
) -> tuple[Team, str]:
    """The team and ``user``'s role in it, in one query: 404 unless they are a member
    (outsiders cannot probe for teams), 403 with ``refusal`` when ``roles`` is given and
    theirs is not in it."""
    membership = (
        Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()
    )
    if membership is None:
        raise Http404("No such team")
    if roles is not None and membership.role not in roles:
        raise PermissionDenied(refusal)
    return membership.team, membership.role


def visible_plans_q(*, user: User) -> Q:
    """Plans of the user's teams, or plans they were invited to. Subqueries, not joins: one row
    per plan however the user reaches it, and no ``.distinct()`` needed."""
    return Q(team_id__in=Membership.objects.filter(user=user).values("team_id")) | Q(
        pk__in=PlanGuest.objects.filter(user=user).values("plan_id")
    )


def plans_visible_to(*, user: User) -> QuerySet[PilotPlan]:
    return PilotPlan.objects.filter(visible_plans_q(user=user))


def is_guest(*, user: User, plan_id: int) -> bool:
    return PlanGuest.objects.filter(user=user, plan_id=plan_id).exists()


def plan_for_user(
    *, user: User, plan_id: int, action: Action = Action.VIEW, queryset: QuerySet | None = None
) -> PilotPlan:
    """The plan if ``user`` may perform ``action`` on it; 404 if they may not see it, 403 if
    they see it but may not do this. ``queryset`` lets callers add select/prefetch."""
    base = queryset if queryset is not None else PilotPlan.objects.all()
    plan = base.filter(pk=plan_id).select_related("team").first()
    if plan is None:
        raise Http404("No such plan")
    role = role_in_team(user=user, team_id=plan.team_id)
    guest = role is None and is_guest(user=user, plan_id=plan.pk)
    if guest:
        role = Role.STAKEHOLDER  # invited to this one plan: reads it like a team stakeholder
    if role is None:
        raise Http404("No such plan")
    if action == Action.EDIT and role not in EDITORS:
        raise PermissionDenied(_MESSAGES[Action.EDIT])
    plan.viewer_role = role  # type: ignore[attr-defined]
    plan.viewer_is_guest = guest  # type: ignore[attr-defined]
    return plan


def team_for_plan_creation(*, user: User, team_id: int) -> Team:
    """The team, if ``user`` may start a plan in it (its Product Owner)."""
    role = role_in_team(user=user, team_id=team_id)
    if role is None:
        raise Http404("No such team")
    if role not in PLAN_CREATORS:
        raise PermissionDenied("Only the team's Product Owner can start a pilot plan.")
    return Team.objects.get(pk=team_id)


CALENDAR_KEEPERS = frozenset({Role.PRODUCT_OWNER, Role.SCRUM_MASTER})


def team_for_calendar(*, user: User, team_id: int, change: bool) -> tuple[Team, str]:
    """The team and the user's role, if they may see (any member) or change (PO, SM) its
    holidays; 404 for non-members."""
    role = role_in_team(user=user, team_id=team_id)
    if role is None:
        raise Http404("No such team")
    if change and role not in CALENDAR_KEEPERS:
        raise PermissionDenied("Only the team's Product Owner or Scrum Master can change holidays.")
    return Team.objects.get(pk=team_id), role


def can_edit(role: str | None) -> bool:
    return role in EDITORS
