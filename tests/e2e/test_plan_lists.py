"""The portfolio's search, owner filter and sort in a real browser, without JavaScript help:
the GET form narrows and orders the list, and the pager's next page keeps every filter."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.e2e.test_page_shell import _log_in
from tests.factories import PilotPlanFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1440, 390])
def test_search_owner_and_sort_survive_the_pager(browser, live_server, po, sm, team, width):
    for i in range(27):
        PilotPlanFactory(team=team, owner=sm, title=f"Cards {i:02}")
    PilotPlanFactory(team=team, owner=po, title="Cards of the PO")
    PilotPlanFactory(team=team, owner=sm, title="Dark mode")
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    base = live_server.url
    _log_in(page, base, po)

    page.goto(base + reverse("decisions:portfolio"))
    page.get_by_label("Search titles").fill("CARDS")
    page.get_by_label("Owner").select_option(label=sm.display_name)
    page.get_by_label("Sort by").select_option(label="Title")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**sort=title**")

    rows = page.get_by_test_id("portfolio-row")
    assert rows.count() == 25
    assert rows.first.get_by_role("link").first.inner_text() == "Cards 00"
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url("**page=2**")
    assert [rows.nth(i).get_by_role("link").first.inner_text() for i in range(rows.count())] == [
        "Cards 25",
        "Cards 26",
    ]
    assert page.get_by_label("Search titles").input_value() == "CARDS"
    assert page.get_by_label("Sort by").input_value() == "title"
    no_scroll = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()
    assert no_scroll, "the page scrolls sideways"
    assert errors == []
