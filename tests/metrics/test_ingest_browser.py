"""Uploading a CSV of samples in a real browser: a file with a bad line is refused whole with the
line listed, then the corrected file is stored."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from metrics.models import Sample
from tests.factories import running_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _csv(*lines: str) -> dict:
    text = "\n".join(["metric,observed_at,value,source,id", *lines]) + "\n"
    return {"name": "samples.csv", "mimeType": "text/csv", "buffer": text.encode()}


def test_upload_a_bad_file_then_a_good_one(page, live_server, login, team, po):
    today = timezone.localdate(timezone=dt.UTC)
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=2))
    now = timezone.now()
    at = [(now - dt.timedelta(minutes=m)).isoformat() for m in (3, 2, 1)]
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/")
    page.get_by_test_id("upload-samples-link").click()
    expect(page).to_have_url(re.compile(rf"/plans/{plan.pk}/samples/upload$"))
    page.evaluate("window.__marker = 'same page'")

    card = page.get_by_test_id("sample-upload")
    card.locator("input[type=file]").set_input_files(
        _csv(f"p95_latency,{at[0]},210,,", f"p95_latency,{at[1]},fast,,", f"csat,{at[2]},4,,")
    )
    card.get_by_role("button", name="Upload samples").click()

    errors = page.get_by_test_id("upload-errors")
    expect(errors).to_contain_text("1 problem")
    row = page.get_by_test_id("upload-error-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("3")  # the header is line 1
    expect(row).to_contain_text("“fast” is not a number")
    assert Sample.objects.count() == 0

    page.get_by_test_id("sample-upload").locator("input[type=file]").set_input_files(
        _csv(f"p95_latency,{at[0]},210,,", f"p95_latency,{at[1]},230,,", f"csat,{at[2]},4,,")
    )
    page.get_by_test_id("sample-upload").get_by_role("button", name="Upload samples").click()

    expect(page.get_by_test_id("upload-result")).to_have_text(
        "Stored 3 new samples (0 already stored)."
    )
    expect(page.get_by_test_id("upload-errors")).to_have_count(0)
    assert page.evaluate("window.__marker") == "same page"  # HTMX swapped the card
    assert sorted(Sample.objects.values_list("value", flat=True)) == [4.0, 210.0, 230.0]


def test_upload_works_without_javascript(browser, live_server, team, po, password):
    today = timezone.localdate(timezone=dt.UTC)
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=2))
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("E-mail").fill(po.email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server.url}/plans/{plan.pk}/samples/upload")
        at = (timezone.now() - dt.timedelta(minutes=1)).isoformat()

        page.locator("input[type=file]").set_input_files(_csv(f"p1_defects,{at},-1,,"))
        page.get_by_role("button", name="Upload samples").click()
        expect(page.get_by_test_id("upload-error-row")).to_contain_text("cannot be negative")

        page.locator("input[type=file]").set_input_files(_csv(f"p1_defects,{at},0,,"))
        page.get_by_role("button", name="Upload samples").click()
        expect(page).to_have_url(re.compile(r"/samples/upload$"))  # redirected after the POST
        expect(page.get_by_role("status")).to_contain_text("Stored 1 new sample")
        assert Sample.objects.get().value == 0.0
    finally:
        context.close()
