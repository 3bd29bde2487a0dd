"""Invited stakeholders: the team's Product Owner or Scrum Master lets a person outside the team
read one plan (and takes that back). Reading rights are enforced in pilots/access.py.

No notification is sent: accounts.models.Notification.Kind has no kind for "you were invited to
read a plan", and reusing one that means something else (e.g. "review requested") would mislead.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404

from accounts.models import Membership, User
from accounts.permissions import Perm, require, role_in_team
from pilots.models import PilotPlan, PlanGuest

Role = Membership.Role

DUPLICATE = "This person is already invited to this plan."


def _require_keeper(*, plan: PilotPlan, user: User) -> None:
    require(role_in_team(user=user, team_id=plan.team_id), Perm.GUESTS_MANAGE)


def plan_guest_invite(*, plan: PilotPlan, email: str, invited_by: User) -> PlanGuest:
    """Let the existing user with ``email`` read ``plan``. We never create accounts."""
    _require_keeper(plan=plan, user=invited_by)
    email = (email or "").strip()
    if not email:
        raise ValidationError({"email": "Enter the e-mail address of the person to invite."})
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        raise ValidationError(
            {"email": "Nobody with this e-mail address uses Pilotplan; ask them to sign up first."}
        )
    if Membership.objects.filter(user=user, team_id=plan.team_id).exists():
        raise ValidationError({"email": "This person is already a member of the plan's team."})
    if PlanGuest.objects.filter(plan=plan, user=user).exists():
        raise ValidationError({"email": DUPLICATE})
    try:
        with transaction.atomic():
            return PlanGuest.objects.create(plan=plan, user=user, invited_by=invited_by)
    except IntegrityError:  # invited by someone else at the same moment
        raise ValidationError({"email": DUPLICATE}) from None


@transaction.atomic
def plan_guest_remove(*, plan: PilotPlan, guest_id: int, by: User) -> None:
    """Take back an invitation; 404 if ``guest_id`` is not an invitation to ``plan``."""
    _require_keeper(plan=plan, user=by)
    deleted, _ = PlanGuest.objects.filter(plan=plan, pk=guest_id).delete()
    if not deleted:
        raise Http404("No such invitation")
