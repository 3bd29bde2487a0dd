"""Demo data for ``manage.py seed_demo``: teams, one user per role in each, a few plans.

Idempotent: running it twice leaves the same rows (users are matched by e-mail, teams by slug,
plans by team and title). Passwords are reset to ``DEMO_PASSWORD`` each run so the README's
logins always work.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import Membership, Team, User
from accounts.services import membership_set
from pilots.models import PilotPlan
from pilots.services import plan_create

DEMO_PASSWORD = "pilotplan-demo"  # noqa: S105 - documented demo password, demo data only

ROLE_PREFIX = {
    Membership.Role.PRODUCT_OWNER: "po",
    Membership.Role.SCRUM_MASTER: "sm",
    Membership.Role.DEVELOPER: "dev",
    Membership.Role.DEVOPS: "devops",
    Membership.Role.STAKEHOLDER: "stakeholder",
}


@dataclass(frozen=True)
class DemoTeam:
    slug: str
    name: str
    time_zone: str
    plans: tuple[tuple[str, str], ...]


TEAMS = (
    DemoTeam(
        "checkout",
        "Checkout",
        "Europe/Berlin",
        (
            (
                "Saved cards for returning shoppers",
                "US-145, US-152 to 200 internal users in Region A",
            ),
            ("One-page checkout", "Shorter checkout for mobile web"),
        ),
    ),
    DemoTeam(
        "mobile",
        "Mobile App",
        "America/New_York",
        (("Offline order history", "Order history without a connection"),),
    ),
    DemoTeam(
        "platform",
        "Platform",
        "Asia/Tokyo",
        (("Regional read replicas", "Serve APAC reads from Tokyo"),),
    ),
)


def demo_email(role: str, team_slug: str) -> str:
    return f"{ROLE_PREFIX[Membership.Role(role)]}@{team_slug}.demo"


def _user(email: str, full_name: str, *, superuser: bool = False) -> User:
    user, _ = User.objects.get_or_create(email=email, defaults={"full_name": full_name})
    user.full_name = full_name
    user.is_staff = user.is_superuser = superuser
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


@transaction.atomic
def seed_demo() -> list[tuple[str, str, str]]:
    """Create or refresh the demo; return (e-mail, team, role label) for every demo login."""
    logins: list[tuple[str, str, str]] = []
    admin = _user("admin@pilotplan.demo", "Ada Admin", superuser=True)
    logins.append((admin.email, "—", "site administrator (/admin/)"))
    portfolio = _user("portfolio@pilotplan.demo", "Pat Portfolio")
    for spec in TEAMS:
        team, _ = Team.objects.update_or_create(
            slug=spec.slug, defaults={"name": spec.name, "time_zone": spec.time_zone}
        )
        po = None
        for role in Membership.Role:
            email = demo_email(role, spec.slug)
            user = _user(email, f"{role.label} ({spec.name})")
            membership_set(team=team, user=user, role=role)
            logins.append((email, spec.name, str(role.label)))
            if role == Membership.Role.PRODUCT_OWNER:
                po = user
        # One person in every team, to show the cross-team view.
        membership_set(team=team, user=portfolio, role=Membership.Role.STAKEHOLDER)
        assert po is not None
        for title, summary in spec.plans:
            if not PilotPlan.objects.filter(team=team, title=title).exists():
                plan_create(team=team, author=po, title=title, summary=summary)
    logins.append((portfolio.email, "every team", "Stakeholder"))
    return logins
