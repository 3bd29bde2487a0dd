"""After a trigger fires: acknowledge and resolve (services, browser, API), who may, the red
banner on the plan page and the marker in the portfolio, the episode history page, and the team's
webhook settings page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Team, User, WebhookDelivery, WebhookSubscription
from core.exceptions import Conflict
from metrics import alerts
from metrics.models import TriggerEpisode
from pilots.models import PilotPlan, PlanGuest
from tests.factories import UserFactory, running_plan
from tests.metrics.test_triggers import DAY, SECONDS, T0, evaluate, sample
from tests.metrics.webhook_docs import assert_documented

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _local_receivers_allowed(settings):  # type: ignore[no-untyped-def]
    """The fake receivers listen on 127.0.0.1, which webhooks refuse unless allow-listed."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def plan(team: Team, po: User, devops: User) -> PilotPlan:
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


@pytest.fixture
def episode(plan: PilotPlan) -> TriggerEpisode:
    """The P1 trigger fired: a P1 defect was reported."""
    sample(plan, T0, 1)
    [fired] = evaluate(plan, T0 + SECONDS)
    return TriggerEpisode.objects.get(pk=fired.pk)


def page_url(name: str, *args: int) -> str:
    return reverse(f"metrics:{name}", args=args)


def api_url(name: str, *args: int) -> str:
    return reverse(f"api:{name}", args=args)


# --- services ------------------------------------------------------------------------------------


def test_acknowledge_records_who_and_when_once(plan, episode, sm, developer):
    at = T0 + dt.timedelta(minutes=3)
    alerts.episode_acknowledge(plan=plan, episode_id=episode.pk, user=sm, now=at)
    alerts.episode_acknowledge(plan=plan, episode_id=episode.pk, user=developer)

    episode.refresh_from_db()
    assert (episode.acknowledged_by, episode.acknowledged_at) == (sm, at)
    assert episode.resolved_at is None


def test_resolve_needs_a_note_and_records_who_and_when(plan, episode, developer):
    with pytest.raises(Exception, match="Say how the alert was resolved"):
        alerts.episode_resolve(plan=plan, episode_id=episode.pk, user=developer, resolution="  ")
    at = T0 + dt.timedelta(minutes=9)
    alerts.episode_resolve(
        plan=plan, episode_id=episode.pk, user=developer, resolution=" Rolled back ", now=at
    )

    episode.refresh_from_db()
    assert (episode.resolved_by, episode.resolved_at, episode.resolution) == (
        developer,
        at,
        "Rolled back",
    )
    # Resolving what nobody acknowledged acknowledges it too.
    assert (episode.acknowledged_by, episode.acknowledged_at) == (developer, at)
    with pytest.raises(Conflict):
        alerts.episode_resolve(plan=plan, episode_id=episode.pk, user=developer, resolution="x")
    with pytest.raises(Conflict):
        alerts.episode_acknowledge(plan=plan, episode_id=episode.pk, user=developer)


def test_an_episode_of_another_plan_is_not_found(team, po, episode):
    from django.http import Http404

    other = running_plan(team=team, owner=po, start_date=DAY)
    with pytest.raises(Http404):
        alerts.episode_acknowledge(plan=other, episode_id=episode.pk, user=po)


def test_acknowledge_and_resolve_are_owed_to_the_subscriptions(plan, episode, team, sm):
    subscription = WebhookSubscription.objects.create(
        team=team,
        name="Ops",
        url="http://127.0.0.1:9/",
        secret="whsec_eA==",
        events=["trigger.acknowledged", "trigger.resolved"],
    )
    alerts.episode_acknowledge(plan=plan, episode_id=episode.pk, user=sm)
    alerts.episode_resolve(plan=plan, episode_id=episode.pk, user=sm, resolution="Hotfix 1.2.3")

    deliveries = WebhookDelivery.objects.filter(subscription=subscription)
    events = {d.event: d.payload for d in deliveries}
    assert set(events) == {"trigger.acknowledged", "trigger.resolved"}
    resolved = events["trigger.resolved"]
    assert_documented(resolved)
    assert_documented(events["trigger.acknowledged"])
    assert (resolved["type"], resolved["version"]) == ("trigger.resolved", 1)
    assert resolved["data"]["plan"]["id"] == plan.pk
    assert resolved["data"]["episode"]["id"] == episode.pk
    assert resolved["data"]["episode"]["resolution"] == "Hotfix 1.2.3"
    assert resolved["data"]["episode"]["resolved_by"] == {"id": sm.pk, "name": sm.display_name}
    acknowledged = events["trigger.acknowledged"]["data"]["episode"]
    assert acknowledged["acknowledged_by"]["id"] == sm.pk
    summary = {d.event: d.summary for d in deliveries}
    assert "Hotfix 1.2.3" in summary["trigger.resolved"]


# --- the banner on the plan page, the portfolio marker ------------------------------------------


def test_plan_page_shows_the_red_banner_with_buttons(client_for, plan, episode, po):
    body = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()

    banner = body[body.index('id="trigger-banner"') :]
    assert "Rollback trigger fired" in banner
    assert "P1 defects &gt; 0 (any occurrence)" in banner
    assert 'data-testid="acknowledge"' in banner
    assert "Not acknowledged" in banner
    assert page_url("alert_resolve", plan.pk, episode.pk) in banner


def test_stakeholders_see_the_banner_without_buttons(client_for, plan, episode, stakeholder):
    body = client_for(stakeholder).get(reverse("pilots:plan_document", args=[plan.pk]))
    text = body.content.decode()
    assert "Rollback trigger fired" in text
    assert 'data-testid="acknowledge"' not in text
    assert 'data-testid="resolve"' not in text


def test_no_banner_without_unresolved_episodes(client_for, plan, episode, po):
    alerts.episode_resolve(plan=plan, episode_id=episode.pk, user=po, resolution="Fixed")
    body = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()
    assert 'id="trigger-banner"' in body
    assert "Rollback trigger fired" not in body


def test_portfolio_marks_plans_with_unresolved_episodes(client_for, plan, episode, team, po):
    quiet = running_plan(team=team, owner=po, start_date=DAY)
    body = client_for(po).get(reverse("decisions:portfolio")).content.decode()

    rows = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r'href="/plans/(\d+)/">.*?</td>(.*?)</tr>', body, re.S)
    }
    assert 'data-testid="trigger-marker"' in rows[plan.pk]
    assert "1 fired" in rows[plan.pk]
    assert 'data-testid="trigger-marker"' not in rows[quiet.pk]


# --- acknowledge / resolve in the browser --------------------------------------------------------


def test_acknowledge_with_htmx_answers_with_the_banner(client_for, plan, episode, sm):
    response = client_for(sm).post(
        page_url("alert_acknowledge", plan.pk, episode.pk), {"next": "/x"}, **HTMX
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert f"Acknowledged by {sm.display_name}" in body
    assert "episodesChanged" in response["HX-Trigger"]
    episode.refresh_from_db()
    assert episode.acknowledged_by == sm


def test_acknowledge_without_javascript_redirects_back(client_for, plan, episode, sm):
    back = reverse("pilots:plan_detail", args=[plan.pk])
    response = client_for(sm).post(
        page_url("alert_acknowledge", plan.pk, episode.pk), {"next": back}
    )
    assert response.status_code == 302
    assert response["Location"] == back

    # A foreign "next" is ignored: back to the plan page.
    response = client_for(sm).post(
        page_url("alert_acknowledge", plan.pk, episode.pk), {"next": "https://evil.test/"}
    )
    assert response["Location"] == back


def test_resolve_without_a_note_is_422_and_keeps_the_draft(client_for, plan, episode, developer):
    url = page_url("alert_resolve", plan.pk, episode.pk)
    client = client_for(developer)

    response = client.post(url, {"resolution": ""}, **HTMX)
    assert response.status_code == 422
    assert "Say how the alert was resolved." in response.content.decode()
    plain = client.post(url, {"resolution": "   "})
    assert plain.status_code == 422
    assert "<html" in plain.content.decode()
    episode.refresh_from_db()
    assert episode.resolved_at is None


def test_resolve_in_the_browser(client_for, plan, episode, developer):
    response = client_for(developer).post(
        page_url("alert_resolve", plan.pk, episode.pk),
        {"resolution": "False alarm: test data"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "Rollback trigger fired" not in response.content.decode()
    episode.refresh_from_db()
    assert (episode.resolved_by, episode.resolution) == (developer, "False alarm: test data")


def test_resolving_twice_is_a_conflict(client_for, plan, episode, developer, po):
    alerts.episode_resolve(plan=plan, episode_id=episode.pk, user=po, resolution="Done")
    response = client_for(developer).post(
        page_url("alert_resolve", plan.pk, episode.pk), {"resolution": "Me too"}, **HTMX
    )
    assert response.status_code == 409
    assert "already resolved" in response.content.decode()


def test_the_alerts_page_lists_episodes_with_who_and_when(client_for, plan, episode, sm, po):
    alerts.episode_acknowledge(plan=plan, episode_id=episode.pk, user=sm)
    alerts.episode_resolve(plan=plan, episode_id=episode.pk, user=po, resolution="Hotfix")
    response = client_for(po).get(page_url("alerts", plan.pk))

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="episode-row"' in body
    assert sm.display_name in body and po.display_name in body and "Hotfix" in body
    assert "Triggers now" in body
    assert "p95 latency &gt; 300 ms for 30 minutes" in body


def test_the_alerts_page_history_partial_for_htmx(client_for, plan, episode, po):
    response = client_for(po).get(page_url("alerts", plan.pk), **HTMX)
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="episode-history"' in body


@pytest.mark.parametrize("episodes", [1, 12])
def test_alerts_page_query_count_does_not_grow(
    client_for, plan, po, sm, episodes, django_assert_num_queries
):
    for i in range(episodes):
        TriggerEpisode.objects.create(
            plan=plan,
            trigger=None,
            description=f"Old {i}",
            breach_started_at=T0,
            value=1,
            acknowledged_by=sm,
            acknowledged_at=T0,
            resolved_by=po,
            resolved_at=T0,
            resolution="Done",
        )
    sample(plan, T0, 1)
    evaluate(plan, T0 + SECONDS)  # one unresolved episode
    client = client_for(po)
    client.get(page_url("alerts", plan.pk))
    # Session, user, plan, role; paginator count, page; states; triggers; the banner's episodes
    # and its triggers without fresh data.
    with django_assert_num_queries(10):
        response = client.get(page_url("alerts", plan.pk))
    assert response.content.decode().count('data-testid="episode-row"') == episodes + 1


def test_banner_partial_query_count(client_for, plan, episode, po, django_assert_num_queries):
    client = client_for(po)
    with django_assert_num_queries(6):
        response = client.get(page_url("alerts_banner", plan.pk), **HTMX)
    assert "P1 defects &gt; 0 (any occurrence)" in response.content.decode()


# --- who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["alert_acknowledge", "alert_resolve"])
def test_stakeholders_may_not_acknowledge_or_resolve(
    client_for, plan, episode, stakeholder, action
):
    response = client_for(stakeholder).post(
        page_url(action, plan.pk, episode.pk), {"resolution": "x"}
    )
    assert response.status_code == 403
    episode.refresh_from_db()
    assert episode.acknowledged_at is None and episode.resolved_at is None


@pytest.mark.parametrize("action", ["alert_acknowledge", "alert_resolve"])
def test_invited_stakeholders_may_not_either(client_for, plan, episode, po, action):
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    response = client_for(guest).post(page_url(action, plan.pk, episode.pk), {"resolution": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "alert_acknowledge"),
        ("post", "alert_resolve"),
        ("get", "alerts"),
        ("get", "alerts_banner"),
    ],
)
def test_outsiders_get_404_and_anonymous_go_to_login(
    client_for, plan, episode, outsider, method, name
):
    args = (plan.pk, episode.pk) if name.startswith("alert_") else (plan.pk,)
    url = page_url(name, *args)
    assert getattr(client_for(outsider), method)(url, {"resolution": "x"}).status_code == 404
    anonymous = getattr(Client(), method)(url, {"resolution": "x"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    episode.refresh_from_db()
    assert episode.acknowledged_at is None


def test_stakeholders_read_the_alerts_page(client_for, plan, episode, stakeholder):
    response = client_for(stakeholder).get(page_url("alerts", plan.pk))
    assert response.status_code == 200
    assert 'data-testid="acknowledge"' not in response.content.decode()


# --- the API -------------------------------------------------------------------------------------


def test_api_lists_episodes(client_for, plan, episode, stakeholder):
    response = client_for(stakeholder).get(api_url("plan-alerts", plan.pk))
    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["id"] == episode.pk
    assert item["state"] == "active"
    assert item["description"] == "P1 defects > 0 (any occurrence)"
    assert item["value"] == 1
    assert item["breach_started_at"].startswith("2026-03-02T12:00:00")
    assert item["acknowledged_by"] is None


def test_api_acknowledge_and_resolve(client_for, plan, episode, devops):
    client = client_for(devops)
    response = client.post(api_url("plan-alert-acknowledge", plan.pk, episode.pk))
    assert response.status_code == 200
    assert response.json()["acknowledged_by"]["email"] == devops.email

    missing = client.post(
        api_url("plan-alert-resolve", plan.pk, episode.pk), {}, content_type="application/json"
    )
    assert missing.status_code == 400
    assert "resolution" in missing.json()["errors"]

    done = client.post(
        api_url("plan-alert-resolve", plan.pk, episode.pk),
        {"resolution": "Rolled back"},
        content_type="application/json",
    )
    assert done.status_code == 200
    assert done.json()["state"] == "resolved"
    assert done.json()["resolved_by"]["id"] == devops.pk

    again = client.post(
        api_url("plan-alert-resolve", plan.pk, episode.pk),
        {"resolution": "Again"},
        content_type="application/json",
    )
    assert again.status_code == 409
    unresolved = client.get(api_url("plan-alerts", plan.pk), {"unresolved": "true"})
    assert unresolved.json()["count"] == 0


@pytest.mark.parametrize("name", ["plan-alert-acknowledge", "plan-alert-resolve"])
def test_api_permissions(client_for, plan, episode, stakeholder, outsider, name):
    url = api_url(name, plan.pk, episode.pk)
    body = {"resolution": "x"}
    json_ = "application/json"
    assert client_for(stakeholder).post(url, body, content_type=json_).status_code == 403
    assert client_for(outsider).post(url, body, content_type=json_).status_code == 404
    assert Client().post(url, body, content_type=json_).status_code == 401
    episode.refresh_from_db()
    assert episode.acknowledged_at is None


def test_api_list_permissions(client_for, plan, episode, outsider):
    url = api_url("plan-alerts", plan.pk)
    assert client_for(outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 401


def test_api_episode_of_another_plan_is_404(client_for, plan, episode, team, po):
    other = running_plan(team=team, owner=po, start_date=DAY)
    response = client_for(po).post(api_url("plan-alert-acknowledge", other.pk, episode.pk))
    assert response.status_code == 404


def test_plan_page_banner_costs_one_query_whatever_the_episodes(
    client_for, team, po, plan, django_assert_num_queries, django_assert_max_num_queries
):
    """tests/pilots asserts the plan page's count. Nothing fired: the banner's flag comes with
    the plan's query and costs no query; fired: one query, for 1 episode as for 6."""
    page = reverse("pilots:plan_document", args=[plan.pk])
    client = client_for(po)
    client.get(page)
    with django_assert_max_num_queries(40) as quiet:
        client.get(page)
    for count in (1, 6):
        for i in range(TriggerEpisode.objects.filter(plan=plan).count(), count):
            TriggerEpisode.objects.create(
                plan=plan, trigger=None, description=f"Trigger {i}", breach_started_at=T0,
                value=i, acknowledged_by=po if i % 2 else None,
                acknowledged_at=T0 if i % 2 else None,
            )  # fmt: skip
        with django_assert_num_queries(len(quiet.captured_queries) + 1):
            response = client.get(page)
        assert response.content.decode().count('data-testid="episode"') == count
