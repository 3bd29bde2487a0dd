"""A team's members, administered by its Product Owner and Scrum Master (``TEAM_MEMBERS_MANAGE``).

- Add a person who has an account (the API, by e-mail or user id), change a member's role,
  remove a member. **The last-Product-Owner rule**: a team always keeps at least one Product
  Owner, so the last one can be neither removed nor given another role (a clear field error).
  The team's memberships are locked while the rule is checked, so two managers demoting the
  last two Product Owners at once cannot both succeed.
- Invite by e-mail: an invitation with a role and an expiry, e-mailed after commit as a link
  with a random token (only its SHA-256 is stored). The person accepts it signed in with that
  address, or signs up with it from the link; revocable until then.

Every function here checks the permission table itself, whoever calls it (page, HTMX, API).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Team, TeamInvitation, User
from accounts.permissions import Perm, require, role_in_team

Role = Membership.Role

LAST_PO = "A team keeps at least one Product Owner: make someone else Product Owner first."
TOKEN_BYTES = 32


def _require_manager(*, team: Team, by: User) -> None:
    require(role_in_team(user=by, team_id=team.pk), Perm.TEAM_MEMBERS_MANAGE)


def _lock_members(team: Team) -> dict[int, Membership]:
    """The team's memberships by user id, locked until the transaction ends (the last-PO rule
    reads them all)."""
    rows = Membership.objects.select_for_update().filter(team=team).order_by("pk")
    return {m.user_id: m for m in rows}


def _keeps_a_po(members: dict[int, Membership], *, without: int) -> bool:
    return any(m.role == Role.PRODUCT_OWNER for uid, m in members.items() if uid != without)


def _valid_role(role: str) -> str:
    if role not in Role.values:
        raise ValidationError({"role": "Choose one of the roles."})
    return role


def members_of(*, team: Team) -> QuerySet[Membership]:
    """The team's members with their users, by name then e-mail."""
    return (
        Membership.objects.filter(team=team)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


@transaction.atomic
def member_add(
    *, team: Team, by: User, role: str, email: str = "", user_id: int | None = None
) -> Membership:
    """Add a person who has an account to ``team`` with ``role``. For an address without an
    account, invite it instead (``invitation_create``)."""
    _require_manager(team=team, by=by)
    _valid_role(role)
    users = User.objects.filter(is_active=True)
    if user_id is not None:
        user = users.filter(pk=user_id).first()
        field = "user_id"
    else:
        user = users.filter(email__iexact=(email or "").strip()).first()
        field = "email"
    if user is None:
        raise ValidationError(
            {field: "No one has an account with this address yet: send an invitation instead."}
        )
    if user.machine_keys.exists():  # a team API key's principal is no person
        raise ValidationError({field: "An API key cannot be a member of a team."})
    members = _lock_members(team)
    if user.pk in members:
        raise ValidationError({field: "This person is already a member of the team."})
    return Membership.objects.create(team=team, user=user, role=role)


@transaction.atomic
def member_role_change(*, team: Team, by: User, user_id: int, role: str) -> Membership:
    """Give member ``user_id`` another role; 404 if they are no member."""
    _require_manager(team=team, by=by)
    _valid_role(role)
    members = _lock_members(team)
    membership = members.get(user_id)
    if membership is None:
        raise Http404("No such member")
    if membership.role == role:
        return membership
    if membership.role == Role.PRODUCT_OWNER and not _keeps_a_po(members, without=user_id):
        raise ValidationError({"role": LAST_PO})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, team: Team, by: User, user_id: int) -> None:
    """Take member ``user_id`` out of the team (they no longer see its plans); 404 if they are
    no member. Plans keep naming them where they did (owner, approver …) until edited."""
    _require_manager(team=team, by=by)
    members = _lock_members(team)
    membership = members.get(user_id)
    if membership is None:
        raise Http404("No such member")
    if membership.role == Role.PRODUCT_OWNER and not _keeps_a_po(members, without=user_id):
        raise ValidationError({"user": LAST_PO})
    membership.delete()


# --- invitations ---------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitations_open(*, team: Team, now: dt.datetime) -> QuerySet[TeamInvitation]:
    """The team's invitations not yet accepted nor revoked (expired ones included: the team
    page shows them as expired, to revoke or send again)."""
    return (
        TeamInvitation.objects.filter(team=team, accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at", "-pk")
    )


def invitation_url(token: str) -> str:
    return f"{settings.SITE_URL}{reverse('accounts:team_invitation', args=[token])}"


def _send_invitation(*, invitation: TeamInvitation, token: str) -> None:
    inviter = invitation.invited_by.display_name if invitation.invited_by else "Someone"
    send_mail(
        subject=f"[Pilotplan] Join the team {invitation.team.name}",
        message=(
            f"{inviter} invites you to the team “{invitation.team.name}” on Pilotplan as "
            f"{invitation.get_role_display()}.\n\n"
            f"Accept the invitation here (sign in with this address, or create your account):\n"
            f"{invitation_url(token)}\n\n"
            f"The link works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_create(
    *, team: Team, by: User, email: str, role: str, now: dt.datetime | None = None
) -> tuple[TeamInvitation, str]:
    """Invite ``email`` to join ``team`` as ``role``; returns the invitation and its token (for
    the e-mail only: it is stored hashed). The e-mail goes out after commit. An expired open
    invitation to the same address is replaced; a live one is an error."""
    _require_manager(team=team, by=by)
    now = now or timezone.now()
    email = (email or "").strip().lower()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = TeamInvitation(
        team=team,
        token_sha256=token_digest(token),
        email=email,
        role=role,
        invited_by=by,
        created_at=now,
        expires_at=now + dt.timedelta(days=settings.TEAM_INVITATION_DAYS),
    )
    invitation.full_clean(
        exclude=["team", "invited_by", "token_sha256"], validate_constraints=False
    )
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise ValidationError({"email": "This person is already a member of the team."})
    TeamInvitation.objects.filter(
        team=team, email=email, accepted_at__isnull=True, revoked_at__isnull=True,
        expires_at__lte=now,
    ).update(revoked_at=now)  # fmt: skip
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:  # an open invitation exists (or was just made by someone else)
        raise ValidationError(
            {"email": "This address already has an open invitation to this team."}
        ) from None
    transaction.on_commit(lambda: _send_invitation(invitation=invitation, token=token))
    return invitation, token


@transaction.atomic
def invitation_revoke(
    *, team: Team, by: User, invitation_id: int, now: dt.datetime | None = None
) -> TeamInvitation:
    """Withdraw an open invitation: its link stops working. 404 unless it is an open one of
    ``team``."""
    _require_manager(team=team, by=by)
    invitation = (
        TeamInvitation.objects.select_for_update()
        .filter(team=team, pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is None:
        raise Http404("No such invitation")
    invitation.revoked_at = now or timezone.now()
    invitation.save(update_fields=["revoked_at"])
    return invitation


class InvitationUnusable(Exception):
    """The link's invitation cannot be accepted; ``message`` says why, in the person's words."""

    def __init__(self, message: str, invitation: TeamInvitation | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.invitation = invitation


def invitation_by_token(*, token: str, now: dt.datetime, lock: bool = False) -> TeamInvitation:
    """The invitation behind a link, if it can still be accepted; ``InvitationUnusable``
    otherwise, naming why (unknown, revoked, used, expired)."""
    rows = TeamInvitation.objects.select_related("team", "invited_by")
    if lock:
        rows = rows.select_for_update(of=("self",))
    invitation = rows.filter(token_sha256=token_digest(token)).first()
    if invitation is None:
        raise InvitationUnusable("This invitation link is not valid. Check that it is complete.")
    state = invitation.state(now)
    if state == "accepted":
        raise InvitationUnusable("This invitation has already been used.", invitation)
    if state == "revoked":
        raise InvitationUnusable("This invitation was withdrawn by the team.", invitation)
    if state == "expired":
        raise InvitationUnusable(
            "This invitation has expired. Ask the team's Product Owner or Scrum Master for a new "
            "one.",
            invitation,
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User, now: dt.datetime | None = None) -> Membership:
    """``user`` accepts the invitation behind ``token``: they join its team with its role (a
    member already keeps their role). Only the address it was sent to may accept it."""
    now = now or timezone.now()
    invitation = invitation_by_token(token=token, now=now, lock=True)
    if invitation.email != user.email.lower():
        raise InvitationUnusable(
            f"This invitation was sent to {invitation.email}; you are signed in as {user.email}. "
            "Sign in with that address to accept it.",
            invitation,
        )
    membership, _created = Membership.objects.get_or_create(
        team=invitation.team, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = now
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def invitation_sign_up(
    *, token: str, full_name: str, password: str, now: dt.datetime | None = None
) -> tuple[User, Membership]:
    """Create the account of the invitation's address (the link proves they read its mail)
    and accept the invitation. An address that has an account signs in instead."""
    now = now or timezone.now()
    invitation = invitation_by_token(token=token, now=now, lock=True)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise InvitationUnusable(
            "You already have an account: sign in to accept the invitation.", invitation
        )
    user = User(email=invitation.email, full_name=full_name.strip()[:150])
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user, invitation_accept(token=token, user=user, now=now)
