"""Writes about people and teams."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import Membership, Team, User


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def team_create(
    *,
    creator: User,
    name: str,
    time_zone: str = "UTC",
    creator_role: str = Membership.Role.PRODUCT_OWNER,
) -> Team:
    """Create a team with ``creator`` as its first member (a Product Owner unless told otherwise).

    Raises ``ValidationError`` naming the field on a blank name, an unknown time zone or role.
    """
    team = Team(name=name.strip(), time_zone=time_zone, slug="placeholder")
    team.full_clean(exclude=["slug"])
    membership = Membership(user=creator, team=team, role=creator_role)
    membership.full_clean(exclude=["team", "user"])
    for _attempt in range(3):
        team.slug = _unique_slug(team.name)
        try:
            with transaction.atomic():
                team.save()
            break
        except IntegrityError:  # a concurrent create took the slug between check and insert
            continue
    else:
        raise IntegrityError("could not choose a unique slug for the team")
    membership.team = team
    membership.save()
    return team


@transaction.atomic
def membership_set(*, team: Team, user: User, role: str) -> Membership:
    """Add ``user`` to ``team`` with ``role``, or change their role there (idempotent)."""
    membership = Membership(team=team, user=user, role=role)
    membership.full_clean(exclude=["team", "user"], validate_unique=False)
    obj, _created = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return obj
