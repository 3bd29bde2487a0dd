"""The read resources added to the API: team members, holidays, the metric catalogue,
notifications and trigger states — each scoped, filtered, ordered and paginated, with a
negative permission test."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from accounts.models import Notification, TeamHoliday
from catalogue.models import MetricDefinition
from metrics.models import TriggerState
from pilots.models import RollbackTrigger
from tests.factories import running_plan
from tests.metrics.test_checks_support import store

pytestmark = pytest.mark.django_db


# --- members -------------------------------------------------------------------------------------


def test_members_lists_the_team_with_roles_filtered_and_ordered(
    client_for, team, po, sm, developer, stakeholder
):
    client = client_for(developer)
    body = client.get(f"/api/v1/teams/{team.pk}/members").json()
    assert body["count"] == 4
    assert {m["role"] for m in body["results"]} == {
        "product_owner", "scrum_master", "developer", "stakeholder"
    }  # fmt: skip
    only = client.get(f"/api/v1/teams/{team.pk}/members?role=scrum_master").json()
    assert [m["user"]["email"] for m in only["results"]] == [sm.email]
    by_role = client.get(f"/api/v1/teams/{team.pk}/members?ordering=-role").json()
    roles = [m["role"] for m in by_role["results"]]
    assert roles == sorted(roles, reverse=True)


def test_members_refuse_a_bad_filter_or_ordering_with_400_naming_it(client_for, team, po):
    client = client_for(po)
    bad_role = client.get(f"/api/v1/teams/{team.pk}/members?role=boss")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["errors"]
    bad_order = client.get(f"/api/v1/teams/{team.pk}/members?ordering=password")
    assert bad_order.status_code == 400
    assert "order by email, joined_at, name, role" in bad_order.json()["errors"]["ordering"][0]


def test_outsiders_do_not_see_a_teams_members(client_for, team, po, outsider):
    assert client_for(outsider).get(f"/api/v1/teams/{team.pk}/members").status_code == 404


# --- holidays ------------------------------------------------------------------------------------


def test_holidays_are_read_by_members_and_written_by_the_po_or_sm(client_for, team, sm, developer):
    url = f"/api/v1/teams/{team.pk}/holidays"
    created = client_for(sm).post(
        url, {"date": "2025-12-25", "name": "Christmas"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    client_for(sm).post(url, {"date": "2025-12-26"}, content_type="application/json")
    body = client_for(developer).get(f"{url}?after=2025-12-26&ordering=-date").json()
    assert [h["date"] for h in body["results"]] == ["2025-12-26"]
    everything = client_for(developer).get(f"{url}?ordering=-date").json()
    assert [h["date"] for h in everything["results"]] == ["2025-12-26", "2025-12-25"]

    deleted = client_for(sm).delete(f"{url}/{created.json()['id']}")
    assert deleted.status_code == 204
    assert list(TeamHoliday.objects.filter(team=team).values_list("name", flat=True)) == [""]


def test_holiday_writes_are_refused_to_other_roles_and_outsiders(
    client_for, team, sm, developer, outsider
):
    url = f"/api/v1/teams/{team.pk}/holidays"
    body = {"date": "2025-12-25"}
    refused = client_for(developer).post(url, body, content_type="application/json")
    assert refused.status_code == 403
    assert client_for(outsider).post(url, body, content_type="application/json").status_code == 404
    assert client_for(outsider).get(url).status_code == 404
    holiday = TeamHoliday.objects.create(team=team, date=dt.date(2025, 12, 25))
    assert client_for(developer).delete(f"{url}/{holiday.pk}").status_code == 403
    assert client_for(sm).delete(f"{url}/{holiday.pk + 1000}").status_code == 404
    assert TeamHoliday.objects.filter(pk=holiday.pk).exists()


def test_a_holiday_twice_or_a_bad_date_is_400_on_date(client_for, team, po):
    url = f"/api/v1/teams/{team.pk}/holidays"
    client_for(po).post(url, {"date": "2025-12-25"}, content_type="application/json")
    again = client_for(po).post(url, {"date": "2025-12-25"}, content_type="application/json")
    assert again.status_code == 400 and "already a holiday" in again.json()["errors"]["date"][0]
    bad = client_for(po).post(url, {"date": "25/12"}, content_type="application/json")
    assert bad.status_code == 400 and "date" in bad.json()["errors"]


# --- metric catalogue ----------------------------------------------------------------------------


def test_the_catalogue_lists_built_in_and_the_teams_own_metrics(client_for, team, other_team, po):
    MetricDefinition.objects.create(
        team=team, key="ours", name="Ours", kind="count", direction="lower"
    )
    MetricDefinition.objects.create(
        team=other_team, key="theirs", name="Theirs", kind="count", direction="lower"
    )
    client = client_for(po)
    body = client.get(f"/api/v1/teams/{team.pk}/metrics?builtin=false").json()
    assert [m["key"] for m in body["results"]] == ["ours"]
    everything = client.get(f"/api/v1/teams/{team.pk}/metrics?kind=count").json()
    keys = [m["key"] for m in everything["results"]]
    assert "ours" in keys and "theirs" not in keys and "p1_defects" in keys
    assert keys == sorted(keys)


def test_outsiders_do_not_see_a_teams_catalogue(client_for, team, outsider):
    assert client_for(outsider).get(f"/api/v1/teams/{team.pk}/metrics").status_code == 404


# --- notifications -------------------------------------------------------------------------------


def test_notifications_are_ones_own_and_can_be_marked_read(client_for, po, sm):
    first = Notification.objects.create(user=po, kind="plan_approved", message="Approved")
    Notification.objects.create(user=po, kind="pilot_started", message="Started")
    theirs = Notification.objects.create(user=sm, kind="plan_approved", message="Not yours")
    client = client_for(po)
    body = client.get("/api/v1/notifications").json()
    assert [n["message"] for n in body["results"]] == ["Started", "Approved"]

    read = client.post(f"/api/v1/notifications/{first.pk}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = client.get("/api/v1/notifications?unread=true").json()
    assert [n["message"] for n in unread["results"]] == ["Started"]
    assert client.post("/api/v1/notifications/read").json() == {"marked": 1}

    assert client.post(f"/api/v1/notifications/{theirs.pk}/read").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_notifications_need_a_person(db):
    assert Client().get("/api/v1/notifications").status_code == 401


# --- trigger states ------------------------------------------------------------------------------


def test_trigger_states_show_each_trigger_and_never_an_unevaluated_one_as_ok(
    client_for, team, po, stakeholder, outsider
):
    plan = running_plan(team=team, owner=po, start_date=dt.date(2025, 1, 6))
    triggers = list(RollbackTrigger.objects.filter(plan=plan).order_by("position"))
    assert len(triggers) >= 2
    TriggerState.objects.create(trigger=triggers[0], plan=plan, state="fired", detail="p95 high")
    url = f"/api/v1/plans/{plan.pk}/triggers"

    body = client_for(stakeholder).get(url).json()
    first, second = body["results"][:2]
    assert (first["id"], first["state"], first["detail"]) == (triggers[0].pk, "fired", "p95 high")
    assert second["state"] is None and second["evaluated_at"] is None
    fired = client_for(po).get(f"{url}?state=fired").json()
    assert [t["id"] for t in fired["results"]] == [triggers[0].pk]
    assert client_for(po).get(f"{url}?state=green").status_code == 400
    assert client_for(outsider).get(url).status_code == 404


# --- samples read back ---------------------------------------------------------------------------


def test_samples_are_read_back_by_metric_and_bounded_window(
    client_for, team, po, stakeholder, outsider
):
    plan = running_plan(team=team, owner=po, start_date=dt.date(2025, 1, 6))
    at = dt.datetime(2025, 1, 6, 12, tzinfo=dt.UTC)
    store(plan, "p95_latency", [(at + dt.timedelta(minutes=m), 200 + m) for m in range(5)])
    store(plan, "p1_defects", [(at, 1)])
    url = f"/api/v1/plans/{plan.pk}/metrics/p95_latency/samples"
    window = "since=2025-01-06T12:01:00Z&until=2025-01-06T12:04:00Z"

    body = client_for(stakeholder).get(f"{url}?{window}").json()
    assert [s["value"] for s in body["results"]] == [201, 202, 203]
    newest = client_for(stakeholder).get(f"{url}?{window}&ordering=-observed_at").json()
    assert [s["value"] for s in newest["results"]] == [203, 202, 201]

    too_long = client_for(po).get(f"{url}?since=2024-01-01T00:00:00Z&until=2025-01-06T00:00:00Z")
    assert too_long.status_code == 400 and "31 days" in too_long.json()["errors"]["since"][0]
    naive = client_for(po).get(f"{url}?since=yesterday")
    assert naive.status_code == 400 and "since" in naive.json()["errors"]
    assert client_for(po).get(f"/api/v1/plans/{plan.pk}/metrics/nope/samples").status_code == 404
    assert client_for(outsider).get(f"{url}?{window}").status_code == 404
