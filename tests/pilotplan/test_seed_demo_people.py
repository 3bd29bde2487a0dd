"""The demo's people and who owns what, as ``seed_demo`` (without metric history) leaves them:
logins with the demo password, one member per role in each team, plans owned by their team's
Product Owner, only the admin as staff.

Seeded once for the module (test_seed_demo.py runs the command itself): each test starts from
the seeded rows and whatever it changes is rolled back before the next one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from accounts.models import Membership, Team, User
from pilotplan.demo import DEMO_PASSWORD, TEAMS, demo_email, seed_demo
from pilots.models import PilotPlan
from tests.conftest import rows_for_the_module

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_logins")]


@pytest.fixture(scope="module")
def demo_logins(django_db_setup, django_db_blocker) -> Iterator[list[tuple[str, str, str]]]:  # type: ignore[no-untyped-def]
    """The demo seeded once for the module; its logins as ``seed_demo`` returned them."""
    with rows_for_the_module(django_db_blocker):
        yield seed_demo(metrics=False)


def _login_request():  # type: ignore[no-untyped-def]
    """What the log-in form hands to ``authenticate``: the lockout backend (django-axes) needs
    the request to count failures per address."""
    return RequestFactory().post("/login/")


def test_every_demo_login_authenticates_with_the_demo_password(demo_logins):
    assert len(demo_logins) == 2 + 5 * len(TEAMS)
    for email, _team, _role in demo_logins:
        user = authenticate(_login_request(), username=email, password=DEMO_PASSWORD)
        assert user is not None, email
        assert user.email == email


def test_a_demo_login_works_through_the_login_page(client):
    response = client.post("/login/", {"username": "po@checkout.demo", "password": DEMO_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_seed_demo_resets_a_changed_demo_password():
    user = User.objects.get(email="dev@mobile.demo")
    user.set_password("something-else-entirely")
    user.save(update_fields=["password"])

    seed_demo(metrics=False)

    assert (
        authenticate(_login_request(), username="dev@mobile.demo", password=DEMO_PASSWORD)
        is not None
    )


def test_each_demo_team_has_one_member_per_role_plus_the_portfolio_stakeholder():
    for spec in TEAMS:
        team = Team.objects.get(slug=spec.slug)
        assert team.name == spec.name
        assert team.time_zone == spec.time_zone
        roles = dict(
            Membership.objects.filter(team=team)
            .exclude(user__email="portfolio@pilotplan.demo")
            .values_list("user__email", "role")
        )
        assert roles == {demo_email(role, spec.slug): role.value for role in Membership.Role}
        assert Membership.objects.get(team=team, user__email="portfolio@pilotplan.demo").role == (
            Membership.Role.STAKEHOLDER
        )


def test_demo_plans_belong_to_their_team_and_its_product_owner():
    for spec in TEAMS:
        plans = PilotPlan.objects.filter(team__slug=spec.slug)
        assert sorted(plans.values_list("title", flat=True)) == sorted(t for t, _ in spec.plans)
        po_email = demo_email(Membership.Role.PRODUCT_OWNER, spec.slug)
        assert {p.created_by.email for p in plans} == {po_email}


def test_only_the_admin_is_staff():
    assert list(User.objects.filter(is_staff=True).values_list("email", flat=True)) == [
        "admin@pilotplan.demo"
    ]
    assert User.objects.get(email="admin@pilotplan.demo").is_superuser
