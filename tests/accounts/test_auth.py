"""Logging in and out, and the home page every login lands on."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import Membership, User
from tests.factories import MembershipFactory, PilotPlanFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
LOGOUT = "/logout/"
HOME = "/"


def logged_in_user_id(client: Client) -> str | None:
    return client.session.get(SESSION_KEY)


# --- login -------------------------------------------------------------------------------------


def test_login_page_renders_the_form(client):
    response = client.get(LOGIN)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert "csrfmiddlewaretoken" in html


def test_login_page_names_the_demo_accounts_only_in_the_demo(client, settings):
    """A real deployment's login page says nothing of demo accounts nor of repository files;
    ``make run`` (DEMO_LOGIN_HINT) names them and their password."""
    settings.DEMO_LOGIN_HINT = False
    html = client.get(LOGIN).content.decode()
    assert 'data-testid="demo-login-hint"' not in html
    assert "pilotplan-demo" not in html
    assert "README" not in html

    settings.DEMO_LOGIN_HINT = True
    html = client.get(LOGIN).content.decode()
    assert 'data-testid="demo-login-hint"' in html
    assert "po@checkout.demo" in html and "pilotplan-demo" in html


def test_login_with_the_right_password_goes_home(client, po, password):
    response = client.post(LOGIN, {"username": po.email, "password": password})

    assert response.status_code == 302
    assert response["Location"] == HOME
    assert logged_in_user_id(client) == str(po.pk)


def test_login_follows_next_to_a_local_page(client, po, password):
    response = client.post(LOGIN, {"username": po.email, "password": password, "next": "/teams/"})

    assert response.status_code == 302
    assert response["Location"] == "/teams/"


def test_login_does_not_follow_next_to_another_site(client, po, password):
    response = client.post(
        LOGIN, {"username": po.email, "password": password, "next": "https://evil.example/"}
    )

    assert response.status_code == 302
    assert response["Location"] == HOME


def test_login_with_a_wrong_password_shows_an_error_and_stays_anonymous(client, po):
    response = client.post(LOGIN, {"username": po.email, "password": "not-the-password"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "Please enter a correct e-mail address and password" in html
    assert po.email in html  # the e-mail is kept in the field
    assert logged_in_user_id(client) is None


def test_login_of_an_unknown_e_mail_shows_the_same_error(client, db):
    response = client.post(LOGIN, {"username": "nobody@example.test", "password": "whatever1"})

    assert response.status_code == 200
    assert "Please enter a correct e-mail address and password" in response.content.decode()
    assert logged_in_user_id(client) is None


def test_login_of_an_inactive_user_is_refused(client, password):
    user = UserFactory(email="gone@example.test", is_active=False)

    client.post(LOGIN, {"username": user.email, "password": password})

    assert logged_in_user_id(client) is None


def test_login_e_mail_is_case_insensitive(client, password):
    user = User.objects.create_user("Ada.Lovelace@Example.test", password)
    assert user.email == "ada.lovelace@example.test"  # stored lower-case

    response = client.post(LOGIN, {"username": "ADA.LOVELACE@EXAMPLE.TEST", "password": password})

    assert response.status_code == 302
    assert logged_in_user_id(client) == str(user.pk)


def test_user_added_in_the_admin_with_a_mixed_case_e_mail_is_stored_lower_case(client, password):
    admin = User.objects.create_superuser("root@example.test", password)
    client.force_login(admin)
    form = {"email": "Grace@Example.TEST", "password1": password, "password2": password}

    response = client.post("/admin/accounts/user/add/", {**form, "usable_password": "true"})

    assert response.status_code == 302
    assert User.objects.filter(email="grace@example.test").exists()

    again = client.post(
        "/admin/accounts/user/add/",
        {**form, "email": "GRACE@example.test", "usable_password": "true"},
    )

    assert again.status_code == 200
    assert "already exists" in again.content.decode()
    assert User.objects.filter(email__iexact="grace@example.test").count() == 1


def test_admin_user_pages_are_closed_to_non_staff(client_for, po):
    response = client_for(po).get("/admin/accounts/user/add/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_logged_in_user_visiting_login_is_sent_home(client_for, po):
    response = client_for(po).get(LOGIN)

    assert response.status_code == 302
    assert response["Location"] == HOME


def test_login_page_query_count(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(LOGIN)

    assert response.status_code == 200


# --- logout ------------------------------------------------------------------------------------


def test_logout_by_post_ends_the_session(client_for, po):
    client = client_for(po)

    response = client.post(LOGOUT)

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert logged_in_user_id(client) is None
    assert client.get(HOME).status_code == 302  # home now wants a login


def test_logout_by_get_is_refused_and_keeps_the_session(client_for, po):
    client = client_for(po)

    response = client.get(LOGOUT)

    assert response.status_code == 405
    assert logged_in_user_id(client) == str(po.pk)


def test_logout_needs_the_csrf_token(po):
    client = Client(enforce_csrf_checks=True)
    client.force_login(po)

    response = client.post(LOGOUT)

    assert response.status_code == 403
    assert logged_in_user_id(client) == str(po.pk)


# --- home ----------------------------------------------------------------------------------------


def test_home_sends_anonymous_visitors_to_login(client):
    response = client.get(HOME)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/"


def test_home_of_a_user_without_a_team_says_to_create_one(client_for, db):
    loner = UserFactory(email="loner@example.test")

    response = client_for(loner).get(HOME)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="pilots-empty"' in html
    assert "start by creating your team" in html
    assert 'data-testid="teams-empty"' in html
    assert 'data-testid="plan-row"' not in html


def test_home_of_a_team_member_without_plans_names_the_next_step(client_for, developer):
    response = client_for(developer).get(HOME)

    assert response.status_code == 200
    html = response.content.decode()
    assert "A team's Product Owner starts one" in html
    assert "start by creating your team" not in html
    assert 'data-testid="team-row"' in html


def test_home_lists_the_plans_of_the_users_teams_only(client_for, team, po, other_team, outsider):
    mine = PilotPlanFactory(team=team, owner=po, created_by=po, title="Saved cards")
    PilotPlanFactory(
        team=other_team, owner=outsider, created_by=outsider, title="Secret elsewhere plan"
    )

    response = client_for(po).get(HOME)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="plan-row"') == 1
    assert mine.title in html
    assert "Secret elsewhere plan" not in html
    assert "No pilots yet" not in html


def test_home_of_a_member_of_several_teams_lists_plans_of_each(client_for, team, po, other_team):
    MembershipFactory(team=other_team, user=po, role=Membership.Role.STAKEHOLDER)
    PilotPlanFactory(team=team, owner=po, created_by=po, title="Plan in Checkout")
    PilotPlanFactory(team=other_team, owner=po, created_by=po, title="Plan in Elsewhere")

    html = client_for(po).get(HOME).content.decode()

    assert html.count('data-testid="plan-row"') == 2
    assert "Plan in Checkout" in html
    assert "Plan in Elsewhere" in html


def test_home_query_count_does_not_grow_with_teams_and_plans(
    client_for, team, po, django_assert_num_queries
):
    client = client_for(po)
    PilotPlanFactory(team=team, owner=po, created_by=po)
    # session, user, teams, plans
    with django_assert_num_queries(4):
        assert client.get(HOME).status_code == 200

    for _ in range(4):
        extra = TeamFactory()
        MembershipFactory(team=extra, user=po)
        PilotPlanFactory.create_batch(3, team=extra, owner=po, created_by=po)
    with django_assert_num_queries(4):
        response = client.get(HOME)

    assert response.content.decode().count('data-testid="plan-row"') == 13
