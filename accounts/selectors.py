"""Reads about people and teams, always scoped to what the asking user may see."""

from __future__ import annotations

from django.db.models import CharField, Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.http import Http404

from accounts.models import Membership, Team, User
from accounts.permissions import team_key_of


def team_list_for_user(*, user: User) -> QuerySet[Team]:
    """The teams ``user`` belongs to, annotated with ``my_role`` and ``member_count``."""
    member_count = (
        Membership.objects.filter(team=OuterRef("pk"))
        .order_by()
        .values("team")
        .annotate(n=Count("pk"))
        .values("n")
    )
    key = team_key_of(user)
    if key is not None:  # a team key's principal belongs to its key's team only
        return Team.objects.filter(pk=key.team_id).annotate(
            my_role=Value("api_key", output_field=CharField()),
            member_count=Subquery(member_count, output_field=IntegerField()),
        )
    return (
        Team.objects.filter(memberships__user=user)
        .annotate(
            # Reuses the join filtered to this user, so this is the user's own role.
            my_role=F("memberships__role"),
            member_count=Subquery(member_count, output_field=IntegerField()),
        )
        .order_by("name")
    )


def team_for_user(*, user: User, team_id: int) -> Team:
    """The team, if ``user`` is a member; otherwise 404 (outsiders may not learn it exists)."""
    try:
        return team_list_for_user(user=user).get(pk=team_id)
    except Team.DoesNotExist:
        raise Http404("No such team") from None
