"""The backlog page in a real browser: add an item, drag it to the top, and the order holds."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backlog.models import BacklogItem
from backlog.services import backlog_item_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _order(team) -> list[str]:  # type: ignore[no-untyped-def]
    return list(
        BacklogItem.objects.filter(team=team).order_by("position").values_list("title", flat=True)
    )


def test_add_an_item_then_drag_it_to_the_top(page, live_server, login, po, team):  # type: ignore[no-untyped-def]
    for title in ("Save a card", "Pay with a saved card", "Remove a card"):
        backlog_item_create(team_id=team.pk, user=po, title=title)
    login(page, po)
    page.goto(f"{live_server.url}/teams/{team.pk}/backlog")
    form = page.get_by_test_id("backlog-add")
    form.locator("input[name=title]").fill("Card form flickers")
    form.locator("select[name=kind]").select_option("defect")
    form.locator("select[name=severity]").select_option("p2")
    form.get_by_role("button", name="Add item").click()
    expect(page.get_by_role("status")).to_contain_text("Added DE-4")

    rows = page.get_by_test_id("backlog-row")
    expect(rows).to_have_count(4)
    handle = rows.nth(3).locator(".drag-handle")
    target = rows.nth(0)
    box = target.bounding_box()
    assert box is not None
    handle.hover()
    page.mouse.down()
    page.mouse.move(box["x"] + 20, box["y"] + 4, steps=12)
    page.mouse.move(box["x"] + 20, box["y"] + 2, steps=4)
    page.mouse.up()
    expect(rows.nth(0)).to_contain_text("Card form flickers")
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("1")  # the server's renumbered list
    assert _order(team) == [
        "Card form flickers", "Save a card", "Pay with a saved card", "Remove a card",
    ]  # fmt: skip
    page.reload()
    expect(page.get_by_test_id("backlog-row").nth(0)).to_contain_text("Card form flickers")
