"""Who may see and do what with a plan: the one access layer for pages, partials and the API.

A plan is visible to the members of its team and to the stakeholders the team invited to it
(``PlanGuest``: read only, that one plan); to anyone else it does not exist (404, never 403, so
outsiders cannot probe for plans). Within the team, what a member may do is the permission
table's answer for their role (``accounts.permissions``).

Credentials: a personal access token sees what its person sees, and may do what their role
allows within the token's scopes; a team API key sees its own team's plans (only the named ones
when it is restricted to plans, and none in lists without the read scope) and may do what its
scopes allow. Both come here through ``role_in_team`` / ``team_key_of``, so nothing else needs to
know which credential a request used.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet, Subquery
from django.http import Http404

from accounts.models import Membership, Team, User
from accounts.permissions import (
    Perm,
    allows,
    held_role,
    require,
    role_in_team,
    team_for_member,
    team_key_of,
)
from core.precompiled import Precompiled, run_together
from pilots.editable import plan_is_editable, plan_require_editable
from pilots.models import PilotPlan, PlanGuest

Role = Membership.Role


def visible_plans_q(*, user: User) -> Q:
    """Plans of the user's teams, or plans they were invited to. Subqueries, not joins: one row
    per plan however the user reaches it, and no ``.distinct()`` needed."""
    key = team_key_of(user)
    if key is not None:
        if "read" not in key.scopes:
            return Q(pk__in=[])  # an ingest- or gate-only key lists nothing
        return Q(team_id=key.team_id) & (Q(pk__in=key.plan_ids) if key.plan_ids else Q())
    return Q(team_id__in=Membership.objects.filter(user=user).values("team_id")) | Q(
        pk__in=PlanGuest.objects.filter(user=user).values("plan_id")
    )


def plans_visible_to(*, user: User) -> QuerySet[PilotPlan]:
    return PilotPlan.objects.filter(visible_plans_q(user=user))


def is_guest(*, user: User, plan_id: int) -> bool:
    if team_key_of(user) is not None:
        return False
    return PlanGuest.objects.filter(user=user, plan_id=plan_id).exists()


def plan_for_user(
    *, user: User, plan_id: int, perm: Perm = Perm.PLAN_VIEW, queryset: QuerySet | None = None
) -> PilotPlan:
    """The plan if ``user`` may do ``perm`` on it; 404 if they may not see it, 403 if they see
    it but may not do this. ``queryset`` lets callers add select/prefetch."""
    if queryset is not None:
        plan = queryset.filter(pk=plan_id).select_related("team").first()
        return plan_checked_for_user(user=user, plan=plan, plan_id=plan_id, perm=perm)
    if team_key_of(user) is not None or user.pk is None:
        found = _PLAN_WITH_TEAM.run(plan_id=plan_id)
        return plan_checked_for_user(
            user=user, plan=found[0] if found else None, plan_id=plan_id, perm=perm
        )
    # A person: the plan and their role in its team in one round trip.
    plans, roles = run_together(
        _PLAN_WITH_TEAM.bind(plan_id=plan_id),
        _ROLE_IN_PLANS_TEAM.bind(user_id=user.pk, plan_id=plan_id),
    )
    if not plans:
        raise Http404("No such plan")
    return _plan_checked(
        user=user, plan=plans[0], perm=perm, role=held_role(user, roles[0] if roles else None)
    )


# The plan of most views and API endpoints, and the person's role in its team: compiled once
# per process, run as prepared statements (core.precompiled).
_PLAN_WITH_TEAM = Precompiled(
    lambda *, plan_id: PilotPlan.objects.filter(pk=plan_id).select_related("team")
)
_ROLE_IN_PLANS_TEAM = Precompiled(
    lambda *, user_id, plan_id: Membership.objects.filter(
        user_id=user_id,
        team_id=Subquery(PilotPlan.objects.filter(pk=plan_id).values("team_id")),
    ).values_list("role", flat=True)
)


def plan_checked_for_user(
    *, user: User, plan: PilotPlan | None, plan_id: int, perm: Perm = Perm.PLAN_VIEW
) -> PilotPlan:
    """``plan_for_user``'s rule on a plan its caller loaded (``None``: no plan ``plan_id``):
    the plan with ``viewer_role`` and ``viewer_is_guest`` set, or 404 / 403 as there."""
    if plan is None or not key_reaches_plan(user=user, plan_id=plan_id):
        raise Http404("No such plan")
    role = role_in_team(user=user, team_id=plan.team_id)
    return _plan_checked(user=user, plan=plan, perm=perm, role=role)


def _plan_checked(*, user: User, plan: PilotPlan, perm: Perm, role: str | None) -> PilotPlan:
    """The rule once the plan is known to be reachable and ``role`` is the user's role in its
    team (None: not a member)."""
    guest = role is None and is_guest(user=user, plan_id=plan.pk)
    if guest:
        # Invited to this one plan: reads it like a team stakeholder.
        role = held_role(user, Role.STAKEHOLDER)
    if role is None:
        raise Http404("No such plan")
    require(role, perm)
    if perm == Perm.PLAN_EDIT:
        plan_require_editable(plan)  # Decided and Closed plans are read-only (pilots.editable)
    plan.viewer_role = role  # type: ignore[attr-defined]
    plan.viewer_is_guest = guest  # type: ignore[attr-defined]
    return plan


def key_reaches_plan(*, user: User, plan_id: int) -> bool:
    """False for a team key restricted to other plans of its team (the plan does not exist for
    it: 404); True for everyone else (their access is decided by the role)."""
    key = team_key_of(user)
    return key is None or not key.plan_ids or plan_id in key.plan_ids


def team_for_plan_creation(*, user: User, team_id: int) -> Team:
    """The team, if ``user`` may start a plan in it (its Product Owner)."""
    team, _role = team_for_member(user=user, team_id=team_id, perm=Perm.PLAN_CREATE)
    return team


def can_edit(plan: PilotPlan) -> bool:
    """Whether the page shows edit controls: the viewer's role may edit and the plan is not
    Decided or Closed. ``plan`` comes from ``plan_for_user``."""
    role = plan.viewer_role  # type: ignore[attr-defined]
    return allows(role, Perm.PLAN_EDIT) and plan_is_editable(plan)
