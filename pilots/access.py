"""Who may see and do what with a plan: the one access layer for pages, partials and the API.

A plan is visible to the members of its team and to the stakeholders the team invited to it
(``PlanGuest``: read only, that one plan); to anyone else it does not exist (404, never 403, so
outsiders cannot probe for plans). Within the team, what a member may do is the permission
table's answer for their role (``accounts.permissions``).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import Membership, Team, User
from accounts.permissions import Perm, allows, require, role_in_team, team_for_member
from pilots.editable import plan_is_editable, plan_require_editable
from pilots.models import PilotPlan, PlanGuest

Role = Membership.Role


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
    *, user: User, plan_id: int, perm: Perm = Perm.PLAN_VIEW, queryset: QuerySet | None = None
) -> PilotPlan:
    """The plan if ``user`` may do ``perm`` on it; 404 if they may not see it, 403 if they see
    it but may not do this. ``queryset`` lets callers add select/prefetch."""
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
    require(role, perm)
    if perm == Perm.PLAN_EDIT:
        plan_require_editable(plan)  # Decided and Closed plans are read-only (pilots.editable)
    plan.viewer_role = role  # type: ignore[attr-defined]
    plan.viewer_is_guest = guest  # type: ignore[attr-defined]
    return plan


def team_for_plan_creation(*, user: User, team_id: int) -> Team:
    """The team, if ``user`` may start a plan in it (its Product Owner)."""
    team, _role = team_for_member(user=user, team_id=team_id, perm=Perm.PLAN_CREATE)
    return team


def can_edit(plan: PilotPlan) -> bool:
    """Whether the page shows edit controls: the viewer's role may edit and the plan is not
    Decided or Closed. ``plan`` comes from ``plan_for_user``."""
    role = plan.viewer_role  # type: ignore[attr-defined]
    return allows(role, Perm.PLAN_EDIT) and plan_is_editable(plan)
