"""Invited stakeholders: the team's Product Owner or Scrum Master invites a person outside the team
to read one plan (and takes that back). Reading rights are enforced in pilots/access.py.

An invitation is addressed to an e-mail address and stays pending until the person, logged in
with that address, accepts it on their Invitations page (``/invitations/``): no plan enters
anyone's list without their consent. Whether the address belongs to an account is never told:
the answer to an invitation is the same either way, and someone who gets an account with that
address later finds the invitation waiting. No notification is sent (there is no account to
notify for an unknown address, and a notification only for known ones would tell the difference).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import Membership, User
from accounts.permissions import Perm, require, role_in_team
from pilots.models import PilotPlan, PlanGuest, PlanInvitation

Role = Membership.Role

DUPLICATE = "This person is already invited to this plan."


def _require_keeper(*, plan: PilotPlan, user: User) -> None:
    require(role_in_team(user=user, team_id=plan.team_id), Perm.GUESTS_MANAGE)


def plan_guest_invite(*, plan: PilotPlan, email: str, invited_by: User) -> PlanInvitation:
    """A pending invitation for ``email`` to read ``plan``. We never create accounts, and the
    outcome does not depend on whether one exists for ``email``."""
    _require_keeper(plan=plan, user=invited_by)
    email = (email or "").strip().lower()
    if not email:
        raise ValidationError({"email": "Enter the e-mail address of the person to invite."})
    # The inviter knows their own team, so saying that a member is a member tells them nothing.
    if Membership.objects.filter(user__email__iexact=email, team_id=plan.team_id).exists():
        raise ValidationError({"email": "This person is already a member of the plan's team."})
    already = (
        PlanInvitation.objects.filter(plan=plan, email=email).exists()
        or PlanGuest.objects.filter(plan=plan, user__email__iexact=email).exists()
    )
    if already:
        raise ValidationError({"email": DUPLICATE})
    try:
        with transaction.atomic():
            return PlanInvitation.objects.create(plan=plan, email=email, invited_by=invited_by)
    except IntegrityError:  # invited by someone else at the same moment
        raise ValidationError({"email": DUPLICATE}) from None


@transaction.atomic
def plan_guest_remove(*, plan: PilotPlan, guest_id: int, by: User) -> None:
    """Take back an accepted invitation; 404 if ``guest_id`` is not a guest of ``plan``."""
    _require_keeper(plan=plan, user=by)
    deleted, _ = PlanGuest.objects.filter(plan=plan, pk=guest_id).delete()
    if not deleted:
        raise Http404("No such invitation")


@transaction.atomic
def plan_invitation_cancel(*, plan: PilotPlan, invitation_id: int, by: User) -> None:
    """Take back a pending invitation; 404 if it is not one of ``plan``."""
    _require_keeper(plan=plan, user=by)
    deleted, _ = PlanInvitation.objects.filter(plan=plan, pk=invitation_id).delete()
    if not deleted:
        raise Http404("No such invitation")


# --- the invitee's side --------------------------------------------------------------------------


def invitations_pending_for(*, user: User) -> QuerySet[PlanInvitation]:
    """Invitations addressed to ``user``'s e-mail address, oldest first."""
    return PlanInvitation.objects.filter(email__iexact=user.email).select_related(
        "plan", "plan__team", "invited_by"
    )


def _own_invitation(*, user: User, invitation_id: int) -> PlanInvitation:
    invitation = (
        PlanInvitation.objects.select_for_update()
        .filter(pk=invitation_id, email__iexact=user.email)
        .first()
    )
    if invitation is None:  # not addressed to this person: as if it did not exist
        raise Http404("No such invitation")
    return invitation


@transaction.atomic
def invitation_accept(*, user: User, invitation_id: int) -> PlanGuest | None:
    """Accept: ``user`` may read the plan from now on. None when they are meanwhile a member of
    its team (nothing to grant); the invitation is used up either way."""
    invitation = _own_invitation(user=user, invitation_id=invitation_id)
    plan_id, invited_by_id = invitation.plan_id, invitation.invited_by_id
    invitation.delete()
    if Membership.objects.filter(user=user, team__plans__pk=plan_id).exists():
        return None
    guest, _ = PlanGuest.objects.get_or_create(
        plan_id=plan_id,
        user=user,
        defaults={"invited_by_id": invited_by_id, "invited_at": timezone.now()},
    )
    return guest


@transaction.atomic
def invitation_decline(*, user: User, invitation_id: int) -> None:
    _own_invitation(user=user, invitation_id=invitation_id).delete()
