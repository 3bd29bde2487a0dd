"""Leaving feedback from the public link on a phone: no log-in, tap a CSAT and an NPS score,
write a comment, send; the thank-you page; the answer reaches the triage page and the CSAT
metric. The browser reports no Content-Security-Policy violation on the way."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backlog.models import Feedback, FeedbackToken
from metrics.models import Sample
from tests.e2e.test_csp import RECORD_VIOLATIONS
from tests.factories import running_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def test_a_respondent_leaves_feedback_on_a_phone(browser, live_server, team, po) -> None:  # type: ignore[no-untyped-def]
    today = timezone.now().astimezone(ZoneInfo(team.time_zone)).date()
    plan = running_plan(
        team=team, owner=po, start_date=today - dt.timedelta(days=1),
        time_zone=team.time_zone, template=False, title="Saved cards",
    )  # fmt: skip
    link = FeedbackToken.objects.create(plan=plan, token="e2e-phone-link-0123456789", created_by=po)
    context = browser.new_context(**PHONE)
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/f/{link.token}")
        expect(page.get_by_role("heading", name="Your feedback on Saved cards")).to_be_visible()
        # Nothing scrolls sideways on a phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        page.get_by_role("button", name="Send feedback").tap()  # an empty answer first
        expect(page.get_by_text("Give a CSAT score, an NPS score or a comment.")).to_be_visible()

        option = page.locator("label.feedback-option", has_text="4 – Happy")
        box = option.bounding_box()
        assert box is not None and box["height"] >= 44  # a comfortable tap target
        option.tap()
        page.locator(".feedback-scale-nps label.feedback-option", has_text="9").tap()
        page.get_by_label("Anything you would like to tell the team?").fill(
            "Paying with a saved card took two taps."
        )
        page.get_by_label("Your e-mail or phone, if the team may contact you").fill(
            "jo@example.com"
        )
        page.get_by_role("button", name="Send feedback").tap()

        expect(page.get_by_test_id("feedback-thanks")).to_be_visible()
        expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
        assert page.evaluate("window.__csp") == []
    finally:
        context.close()

    feedback = Feedback.objects.get()
    assert (feedback.csat, feedback.nps) == (4, 9)
    assert feedback.comment == "Paying with a saved card took two taps."
    assert Sample.objects.filter(plan=plan, metric__key="csat", value=4).exists()
