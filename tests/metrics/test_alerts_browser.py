"""The red banner in a real browser: a sustained latency trigger fires, the plan page shows it at
the top, a developer acknowledges it and the rollback executor resolves it with a note (HTMX);
the episode list keeps who did what. The portfolio marks the plan while it is unresolved."""

from __future__ import annotations

import os

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from metrics import triggers
from metrics.models import TriggerEpisode
from tests.factories import running_plan
from tests.metrics.test_triggers import BAD, DAY, SECONDS, T0, minutes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR", "")


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def test_banner_shows_a_fired_trigger_and_it_is_acknowledged_and_resolved(
    page, live_server, login, team, po, developer, devops
):
    plan = running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)
    end = minutes(plan, T0, [BAD] * 30)
    [episode] = triggers.triggers_evaluate_plan(plan_id=plan.pk, now=end + SECONDS)
    # A running plan opens on its cockpit, which shows the banner first.
    plan_url = f"{live_server.url}/plans/{plan.pk}/cockpit"

    login(page, developer)
    page.goto(plan_url)
    banner = page.get_by_test_id("trigger-banner")
    expect(banner).to_contain_text("Rollback trigger fired")
    expect(banner).to_contain_text("p95 latency > 300 ms for 30 minutes")
    expect(banner.get_by_test_id("episode-value")).to_have_text("450")
    expect(banner.get_by_test_id("episode-ack")).to_have_text("Not acknowledged")
    _shot(page, "trigger-banner")

    banner.get_by_role("button", name="Acknowledge").click()
    expect(banner.get_by_test_id("episode-ack")).to_contain_text(
        f"Acknowledged by {developer.display_name}"
    )
    expect(banner.get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert page.url == plan_url  # swapped in place, no reload

    page.get_by_test_id("logout").click()
    login(page, devops)
    page.goto(live_server.url + reverse("decisions:portfolio"))
    expect(page.get_by_test_id("trigger-marker")).to_have_text("⚠ 1 fired")
    page.goto(plan_url)
    banner = page.get_by_test_id("trigger-banner")
    banner.get_by_test_id("resolve-open").click()
    banner.get_by_role("button", name="Resolve", exact=True).click()
    expect(banner.get_by_test_id("episode-error")).to_have_text("Say how the alert was resolved.")
    banner.get_by_label("What was done").fill("Rolled back the release; capacity fixed.")
    banner.get_by_role("button", name="Resolve", exact=True).click()
    expect(banner).not_to_contain_text("Rollback trigger fired")

    episode = TriggerEpisode.objects.get(pk=episode.pk)
    assert episode.acknowledged_by == developer
    assert episode.resolved_by == devops
    assert episode.resolution == "Rolled back the release; capacity fixed."

    page.goto(f"{live_server.url}/plans/{plan.pk}/alerts")
    row = page.get_by_test_id("episode-row")
    expect(row.get_by_test_id("episode-acknowledged")).to_contain_text(developer.display_name)
    expect(row.get_by_test_id("episode-resolved")).to_contain_text("Rolled back the release")
    page.goto(live_server.url + reverse("decisions:portfolio"))
    expect(page.get_by_test_id("trigger-marker")).to_have_count(0)
