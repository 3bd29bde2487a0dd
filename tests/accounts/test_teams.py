"""Teams: the ``team_create`` service and the teams page with its inline (HTMX) form."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts import services
from accounts.models import Membership, Team
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

TEAMS = "/teams/"
NEW_TEAM = "/teams/new"
HTMX = {"HTTP_HX_REQUEST": "true"}


def valid_form(**overrides: str) -> dict[str, str]:
    return {"name": "Payments", "time_zone": "America/New_York", "role": "scrum_master"} | overrides


# --- service -------------------------------------------------------------------------------------


def test_team_create_makes_the_creator_a_member_with_the_given_role(po):
    team = services.team_create(
        creator=po, name="  Payments  ", time_zone="Asia/Tokyo", creator_role="devops"
    )

    team.refresh_from_db()
    assert team.name == "Payments"
    assert team.slug == "payments"
    assert team.time_zone == "Asia/Tokyo"
    membership = Membership.objects.get(team=team)
    assert membership.user == po
    assert membership.role == Membership.Role.DEVOPS


def test_team_create_makes_the_creator_product_owner_by_default(developer):
    team = services.team_create(creator=developer, name="Payments")

    assert Membership.objects.get(team=team, user=developer).role == "product_owner"
    assert team.time_zone == "UTC"


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("name", {"name": "   "}),
        ("name", {"name": "x" * 101}),
        ("time_zone", {"time_zone": "Mars/Olympus"}),
        ("time_zone", {"time_zone": ""}),
        ("role", {"creator_role": "captain"}),
    ],
)
def test_team_create_refuses_invalid_input_and_saves_nothing(po, field, overrides):
    teams_before, memberships_before = Team.objects.count(), Membership.objects.count()
    arguments = {"name": "Payments", "time_zone": "UTC", "creator_role": "developer"} | overrides

    with pytest.raises(ValidationError) as caught:
        services.team_create(creator=po, **arguments)

    assert field in caught.value.message_dict
    assert Team.objects.count() == teams_before
    assert Membership.objects.count() == memberships_before


def test_team_create_gives_teams_of_the_same_name_distinct_slugs(po, sm):
    first = services.team_create(creator=po, name="Payments")
    second = services.team_create(creator=sm, name="Payments")
    third = services.team_create(creator=sm, name="payments!")

    assert first.slug == "payments"
    assert second.slug == "payments-2"
    assert third.slug == "payments-3"
    assert first.name == second.name


def test_team_create_of_a_name_without_letters_still_gets_a_slug(po):
    team = services.team_create(creator=po, name="!!!")

    assert team.slug == "team"


# --- the teams page ------------------------------------------------------------------------------


def test_teams_page_lists_only_the_users_teams(client_for, team, po, other_team, outsider):
    response = client_for(po).get(TEAMS)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="team-row"') == 1
    assert team.name in html
    assert "Product Owner" in html
    assert other_team.name not in html


def test_teams_page_shows_the_users_role_and_the_member_count(client_for, team, po, sm, developer):
    html = client_for(sm).get(TEAMS).content.decode()

    assert "Scrum Master" in html
    assert '<td data-label="Members" class="num">3</td>' in html  # po, sm, developer


def test_teams_page_of_a_user_without_teams_shows_the_empty_state(client_for, db):
    html = client_for(UserFactory()).get(TEAMS).content.decode()

    assert 'data-testid="teams-empty"' in html
    assert "<details open>" in html  # the form is unfolded when there is nothing to show


def test_teams_page_sends_anonymous_visitors_to_login(client):
    response = client.get(TEAMS)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={TEAMS}"


def test_teams_page_query_count_does_not_grow_with_teams(
    client_for, team, po, django_assert_num_queries
):
    client = client_for(po)
    # session, user, teams (with role and member count)
    with django_assert_num_queries(3):
        response = client.get(TEAMS)
    assert response.content.decode().count('data-testid="team-row"') == 1

    for _ in range(4):
        extra = TeamFactory()
        MembershipFactory(team=extra, user=po)
        MembershipFactory.create_batch(2, team=extra)
    with django_assert_num_queries(3):
        response = client.get(TEAMS)

    assert response.content.decode().count('data-testid="team-row"') == 5


# --- creating a team from the page ---------------------------------------------------------------


def test_htmx_create_renders_only_the_section_with_the_new_team(client_for, po):
    response = client_for(po).post(NEW_TEAM, valid_form(), **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="teams"')
    assert html.count('data-testid="team-row"') == 2
    assert "Team “Payments” created" in html
    assert "America/New_York" in html
    team = Team.objects.get(name="Payments")
    assert Membership.objects.get(team=team, user=po).role == "scrum_master"


def test_htmx_create_triggers_teams_changed(client_for, po):
    response = client_for(po).post(NEW_TEAM, valid_form(), **HTMX)

    team = Team.objects.get(name="Payments")
    assert json.loads(response["HX-Trigger"]) == {"teamsChanged": {"id": team.pk}}


def test_htmx_create_resets_the_form(client_for, po):
    html = client_for(po).post(NEW_TEAM, valid_form(), **HTMX).content.decode()

    assert 'value="Payments"' not in html  # the name field starts empty for the next team


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("name", valid_form(name="   ")),
        ("time_zone", valid_form(time_zone="Mars/Olympus")),
        ("role", valid_form(role="captain")),
    ],
)
def test_htmx_invalid_create_answers_422_with_the_field_error(client_for, po, field, data):
    teams_before = Team.objects.count()

    response = client_for(po).post(NEW_TEAM, data, **HTMX)

    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" not in html
    assert 'class="field-error"' in html
    assert response.context["team_form"].errors.keys() == {field}
    assert "HX-Trigger" not in response
    assert Team.objects.count() == teams_before


def test_plain_post_create_redirects_to_the_teams_page(client_for, po):
    response = client_for(po).post(NEW_TEAM, valid_form())

    assert response.status_code == 302
    assert response["Location"] == TEAMS
    assert Team.objects.filter(name="Payments", memberships__user=po).exists()


def test_plain_post_invalid_create_answers_422_with_the_full_page(client_for, po):
    teams_before = Team.objects.count()

    response = client_for(po).post(NEW_TEAM, valid_form(name=""))

    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" in html
    assert "This field is required." in html
    assert "<details open>" in html  # the form with its error is visible without JavaScript
    assert Team.objects.count() == teams_before


def test_anonymous_create_is_sent_to_login_and_saves_nothing(client, db):
    response = client.post(NEW_TEAM, valid_form())

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not Team.objects.exists()


def test_anonymous_htmx_create_saves_nothing(client, db):
    response = client.post(NEW_TEAM, valid_form(), **HTMX)

    assert response.status_code == 302
    assert not Team.objects.exists()


def test_get_on_create_is_not_allowed(client_for, po):
    response = client_for(po).get(NEW_TEAM)

    assert response.status_code == 405


def test_create_without_csrf_token_is_refused(po):
    client = Client(enforce_csrf_checks=True)
    client.force_login(po)

    response = client.post(NEW_TEAM, valid_form(), **HTMX)

    assert response.status_code == 403
    assert not Team.objects.filter(name="Payments").exists()


def test_create_with_the_csrf_header_htmx_sends_is_accepted(po):
    client = Client(enforce_csrf_checks=True)
    client.force_login(po)
    client.get(TEAMS)  # sets the CSRF cookie; base.html puts the token in hx-headers
    token = client.cookies["csrftoken"].value

    response = client.post(NEW_TEAM, valid_form(), HTTP_X_CSRFTOKEN=token, **HTMX)

    assert response.status_code == 200
    assert Team.objects.filter(name="Payments").exists()


def test_htmx_create_query_count(client_for, po, django_assert_num_queries):
    client = client_for(po)

    # session, user; the service: its savepoint, the role check constraint (in its own
    # savepoint), the slug lookup, the team insert (in a savepoint), the membership insert,
    # release; then the section's one query for the teams.
    with django_assert_num_queries(13) as captured:
        response = client.post(NEW_TEAM, valid_form(), **HTMX)

    assert response.status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    assert sum('INSERT INTO "accounts_team"' in s for s in sql) == 1
    assert sum('INSERT INTO "accounts_membership"' in s for s in sql) == 1


def test_htmx_invalid_create_query_count(client_for, po, django_assert_num_queries):
    client = client_for(po)

    with django_assert_num_queries(3):  # session, user, teams
        response = client.post(NEW_TEAM, valid_form(name=""), **HTMX)

    assert response.status_code == 422
