"""A team's holiday calendar: who may change it, and that plans' end dates follow it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts.models import TeamHoliday
from pilots.models import PilotPlan
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 12, 14)


def _plan(team, owner, **fields):
    plan = PilotPlanFactory(team=team, owner=owner, start_date=MONDAY, business_days=10)
    PilotPlan.objects.filter(pk=plan.pk).update(end_date=dt.date(2026, 12, 25), **fields)
    return plan


def test_adding_a_holiday_moves_the_end_date_of_open_plans(client_for, team, po):
    plan = _plan(team, po)
    decided = _plan(team, po, status=PilotPlan.Status.DECIDED)
    url = reverse("pilots:team_holiday_create", args=[team.pk])

    response = client_for(po).post(url, {"date": "2026-12-17", "name": "Team day"})

    assert response.status_code == 302
    plan.refresh_from_db()
    decided.refresh_from_db()
    assert plan.end_date == dt.date(2026, 12, 28)  # one business day later, over the weekend
    assert decided.end_date == dt.date(2026, 12, 25)  # a decided pilot's dates are history


def test_removing_a_holiday_moves_the_end_date_back(client_for, team, sm, po):
    plan = _plan(team, po)
    client_for(sm).post(
        reverse("pilots:team_holiday_create", args=[team.pk]), {"date": "2026-12-17"}
    )
    holiday = TeamHoliday.objects.get(team=team)

    response = client_for(sm).post(
        reverse("pilots:team_holiday_delete", args=[team.pk, holiday.pk]), HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "HX-Trigger" in response.headers
    assert b"<html" not in response.content
    assert not TeamHoliday.objects.exists()
    plan.refresh_from_db()
    assert plan.end_date == dt.date(2026, 12, 25)


def test_htmx_add_renders_the_partial_with_the_new_row(client_for, team, po):
    response = client_for(po).post(
        reverse("pilots:team_holiday_create", args=[team.pk]),
        {"date": "2026-12-25", "name": "Christmas"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert "Christmas" in body
    assert "holidaysChanged" in response.headers["HX-Trigger"]


def test_duplicate_or_invalid_date_is_refused_with_the_reason(client_for, team, po):
    client = client_for(po)
    url = reverse("pilots:team_holiday_create", args=[team.pk])
    client.post(url, {"date": "2026-12-25"})

    duplicate = client.post(url, {"date": "2026-12-25"}, HTTP_HX_REQUEST="true")
    garbage = client.post(url, {"date": "next tuesday"}, HTTP_HX_REQUEST="true")

    assert duplicate.status_code == 422
    assert "already a holiday" in duplicate.content.decode()
    assert garbage.status_code == 422
    assert "Enter a valid date" in garbage.content.decode()
    assert TeamHoliday.objects.count() == 1


@pytest.mark.parametrize("role", ["developer", "devops", "stakeholder"])
def test_members_without_the_calendar_role_can_read_but_not_change(request, client_for, team, role):
    user = request.getfixturevalue(role)
    TeamHoliday.objects.create(team=team, date=MONDAY, name="Kept")
    client = client_for(user)

    page = client.get(reverse("pilots:team_holidays", args=[team.pk]))
    add = client.post(reverse("pilots:team_holiday_create", args=[team.pk]), {"date": "2026-12-25"})
    remove = client.post(
        reverse("pilots:team_holiday_delete", args=[team.pk, TeamHoliday.objects.get().pk])
    )

    assert page.status_code == 200
    assert "Kept" in page.content.decode()
    assert "Add holiday" not in page.content.decode()
    assert add.status_code == 403
    assert remove.status_code == 403
    assert TeamHoliday.objects.count() == 1


def test_outsiders_get_404_and_anonymous_users_are_sent_to_login(
    client, client_for, team, outsider
):
    holiday = TeamHoliday.objects.create(team=team, date=MONDAY)
    urls = [
        ("get", reverse("pilots:team_holidays", args=[team.pk])),
        ("post", reverse("pilots:team_holiday_create", args=[team.pk])),
        ("post", reverse("pilots:team_holiday_delete", args=[team.pk, holiday.pk])),
    ]
    for method, url in urls:
        assert getattr(client_for(outsider), method)(url, {"date": "2026-12-25"}).status_code == 404
        response = getattr(client, method)(url, {"date": "2026-12-25"})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert TeamHoliday.objects.count() == 1


def test_holiday_page_query_count_does_not_grow_with_holidays(
    client_for, team, po, django_assert_num_queries
):
    client = client_for(po)
    url = reverse("pilots:team_holidays", args=[team.pk])
    client.get(url)  # warm the session
    TeamHoliday.objects.create(team=team, date=MONDAY)
    with django_assert_num_queries(4) as few:
        client.get(url)
    for day in range(1, 10):
        TeamHoliday.objects.create(team=team, date=MONDAY + dt.timedelta(days=day))
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)
