"""A person's own clock (``User.time_zone``, set on the settings page): pages keep each time on
its plan's or team's clock and add the person's own on hover where it reads differently."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

URL = reverse("accounts:time_zone_set")
SETTINGS = reverse("accounts:token_list")


def test_a_person_sets_and_clears_their_own_zone(client_for, po: User, sm: User) -> None:
    client = client_for(po)
    response = client.post(URL, {"time_zone": "America/New_York"}, follow=True)
    assert response.redirect_chain == [(SETTINGS, 302)]
    po.refresh_from_db()
    sm.refresh_from_db()
    assert po.time_zone == "America/New_York" and sm.time_zone == ""  # only one's own
    html = response.content.decode()
    assert "America/New_York" in html and '<option value="America/New_York" selected>' in html
    client.post(URL, {"time_zone": ""})
    po.refresh_from_db()
    assert po.time_zone == ""


def test_an_unknown_zone_is_refused_with_a_field_error(client_for, po: User) -> None:
    response = client_for(po).post(URL, {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    po.refresh_from_db()
    assert po.time_zone == ""


def test_anonymous_visitors_get_the_login_and_get_is_not_allowed(client, client_for, po) -> None:
    response = client.post(URL, {"time_zone": "Europe/Paris"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client_for(po).get(URL).status_code == 405


def test_a_plan_page_adds_the_viewers_clock_on_hover_only_where_it_differs(
    client_for, team, po: User, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    plan = PilotPlanFactory(team=team, owner=po, time_zone="Europe/Berlin")
    history = reverse("pilots:plan_history", args=[plan.pk])
    client = client_for(po)
    assert "In your zone" not in client.get(history).content.decode()  # not set
    User.objects.filter(pk=po.pk).update(time_zone="America/New_York")
    with django_assert_max_num_queries(12):
        html = client.get(history).content.decode()
    assert 'title="In your zone (America/New_York): ' in html and " EST" in html
    User.objects.filter(pk=po.pk).update(time_zone="Europe/Berlin")
    assert "In your zone" not in client.get(history).content.decode()


def test_the_settings_page_keeps_its_query_count_with_the_zone_form(
    client_for, po: User, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    client.get(SETTINGS)
    with django_assert_max_num_queries(4):  # session, user, tokens, the bell's none
        html = client.get(SETTINGS).content.decode()
    assert 'data-testid="time-zone-form"' in html
