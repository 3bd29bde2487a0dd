"""Long row lists on the plan page (issue #15): each list shows its first rows and a count, and
"Show all" brings the rest — HTMX swaps the whole list in, without JavaScript a link opens the
plan page with that list expanded. The page's queries do not grow with the rows."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import Membership
from pilots import services
from pilots.api.serializers import ROWS_PER_PAGE
from pilots.models import PlanSection, ScopeItem
from pilots.services import ROW_KINDS
from pilots.templatetags.pilot_rows import ROWS_SHOWN
from tests.bench_pages import plan_with_rows
from tests.factories import MembershipFactory, PilotPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def _risks(plan, po, n):
    kind = ROW_KINDS["risks"]
    for i in range(n):
        version = PlanSection.objects.get(plan=plan, key=kind.section).version
        services.row_add(
            plan=plan,
            kind=kind,
            user=po,
            expected_version=version,
            values={"description": f"Risk {i}", "likelihood": "low", "impact": "low"},
        )


def _list(body: str, slug: str) -> str:
    """The HTML of one list, from its container to the next list's (or the end)."""
    start = body.index(f'id="rows-{slug}"')
    end = body.find('<div id="rows-', start)
    return body[start : end if end != -1 else None]


@pytest.fixture
def plan(team, po):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    _risks(plan, po, 25)
    return plan


def test_a_long_list_shows_its_first_rows_a_count_and_show_all(client_for, po, plan):
    body = client_for(po).get(reverse("pilots:plan_detail", args=[plan.pk])).content.decode()

    risks = _list(body, "risks")
    assert risks.count('data-testid="row"') == ROWS_SHOWN
    assert "Risk 9<" in risks and "Risk 10<" not in risks
    assert re.search(r"Showing 10 of 25 risks\.", risks)
    link = re.search(r'<a href="([^"]+)" hx-get="([^"]+)"[^>]*data-testid="rows-show-all">', risks)
    assert link, risks
    assert link[1] == f"/plans/{plan.pk}/document?all=risks#rows-risks"  # without JavaScript
    assert link[2] == f"/plans/{plan.pk}/rows/risks/?all=1"  # with HTMX
    assert "Show all 25" in risks


def test_short_lists_have_no_show_all(client_for, po, plan):
    body = client_for(po).get(reverse("pilots:plan_detail", args=[plan.pk])).content.decode()
    assert body.count('data-testid="rows-more"') == 1  # the risks only


def test_show_all_without_javascript_expands_that_list_only(client_for, po, plan):
    services_kind = ROW_KINDS["scope-items"]
    for i in range(12):
        version = PlanSection.objects.get(plan=plan, key=services_kind.section).version
        services.row_add(
            plan=plan,
            kind=services_kind,
            user=po,
            expected_version=version,
            values={"kind": "included", "title": f"Story {i}"},
        )
    url = reverse("pilots:plan_detail", args=[plan.pk]) + "?all=risks"
    body = client_for(po).get(url).content.decode()

    risks = _list(body, "risks")
    assert risks.count('data-testid="row"') == 25
    assert 'data-testid="rows-more"' not in risks
    # The list refreshes itself expanded after edits elsewhere in its section.
    assert f'hx-get="/plans/{plan.pk}/rows/risks/?all=1"' in risks
    assert _list(body, "scope-items").count('data-testid="row"') == ROWS_SHOWN


def test_show_all_partial_has_every_row(client_for, po, plan):
    client = client_for(po)
    url = reverse("pilots:row_list", args=[plan.pk, "risks"])

    everything = client.get(url + "?all=1", **HX).content.decode()
    first = client.get(url, **HX).content.decode()

    assert everything.count('data-testid="row"') == 25
    assert 'data-testid="rows-more"' not in everything
    assert first.count('data-testid="row"') == ROWS_SHOWN
    assert "Showing 10 of 25 risks." in first


def test_the_lists_own_page_shows_every_row(client_for, po, plan):
    body = client_for(po).get(reverse("pilots:row_list", args=[plan.pk, "risks"])).content.decode()
    assert body.count('data-testid="row"') == 25


def test_a_list_after_an_add_shows_every_row_with_the_new_one(client_for, po, plan):
    kind = ROW_KINDS["risks"]
    version = PlanSection.objects.get(plan=plan, key=kind.section).version
    data = {
        "risks-description": "The newest risk",
        "risks-likelihood": "high",
        "risks-impact": "high",
        "version": version,
    }
    response = client_for(po).post(reverse("pilots:row_add", args=[plan.pk, "risks"]), data, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="row"') == 26
    assert "The newest risk" in body


def test_show_all_is_refused_to_who_may_not_see_the_plan(client_for, outsider, plan):
    client = client_for(outsider)
    assert (
        client.get(reverse("pilots:row_list", args=[plan.pk, "risks"]) + "?all=1", **HX).status_code
        == 404
    )
    page = reverse("pilots:plan_detail", args=[plan.pk]) + "?all=risks"
    assert client.get(page).status_code == 404


def test_show_all_is_open_to_a_viewer_without_edit_rights(client_for, team, plan):
    stakeholder = MembershipFactory(
        team=team, role=Membership.Role.STAKEHOLDER, user=UserFactory()
    ).user
    url = reverse("pilots:row_list", args=[plan.pk, "risks"]) + "?all=1"
    body = client_for(stakeholder).get(url, **HX).content.decode()
    assert body.count('data-testid="row"') == 25
    assert "Edit</a>" not in body


@pytest.mark.parametrize("rows", [5, 100])
def test_plan_page_queries_and_size_do_not_grow_with_rows(
    client_for, team, po, rows, django_assert_num_queries
):
    """Built through the services, like the bench: 5 or 100 rows in every list."""
    MembershipFactory(team=team, role=Membership.Role.DEVOPS, user=UserFactory())
    plan = plan_with_rows(team=team, po=po, rows=rows)
    client = client_for(po)
    page = reverse("pilots:plan_detail", args=[plan.pk])
    client.get(page)  # warm the session
    # As test_plan_views.test_plan_page_query_count_does_not_grow_with_rows: the plan with its
    # sections (14), session, user, role, the scope references' backlog status; the panels
    # have nothing to show (their flags come with the plan).
    with django_assert_num_queries(18):
        body = client.get(page).content.decode()
    shown = min(rows, ROWS_SHOWN)
    assert _list(body, "risks").count('data-testid="row"') == shown
    assert body.count('data-testid="rows-more"') == (10 if rows > ROWS_SHOWN else 0)
    assert len(body) < 200_000


def test_row_actions_point_at_the_row_views(client_for, po, plan):
    """The action URLs are built from one reverse() per list: they are the routed ones."""
    body = client_for(po).get(reverse("pilots:plan_detail", args=[plan.pk])).content.decode()
    risk = plan.risks.order_by("position").first()
    for name in ("row_edit", "row_move", "row_remove"):
        assert f'"{reverse(f"pilots:{name}", args=[plan.pk, "risks", risk.pk])}"' in body


def test_the_first_rows_are_the_lists_first_in_its_order(client_for, po, plan):
    """Only the shown rows are loaded (plus one): they are the first in the order the list
    shows, groups included (included scope items before excluded ones), and the last shown row
    can still move down to the hidden one after it."""
    for i in range(8):
        ScopeItem.objects.create(
            plan=plan, kind="excluded", position=i + 1, title=f"Out {i}", reason="Later"
        )
    for i in range(5):
        ScopeItem.objects.create(
            plan=plan, kind="included", position=i + 1, reference=f"US-{i}", title=f"In {i}"
        )
    body = client_for(po).get(reverse("pilots:plan_detail", args=[plan.pk])).content.decode()

    scope = _list(body, "scope-items")
    titles = re.findall(r">((?:In|Out) \d)<", scope)
    assert titles == [f"In {i}" for i in range(5)] + [f"Out {i}" for i in range(5)]
    assert "Showing 10 of 13 scope items." in scope
    rows = scope.split('data-testid="row"')[1:]
    down = re.compile(r'value="down"[^>]*?( disabled)?>')
    assert down.search(rows[4])[1] == " disabled"  # the last included item
    assert down.search(rows[9])[1] is None  # "Out 4" moves down to "Out 5", not shown
    # The backlog status line names the references of the rows shown.
    assert body.count('data-testid="scope-status"') == 5


def test_the_plan_document_counts_every_row_of_a_long_list(client_for, po, plan):
    _risks(plan, po, ROWS_PER_PAGE + 1 - 25)
    document = client_for(po).get(f"/api/v1/plans/{plan.pk}").json()
    risks = document["row_lists"]["risks"]
    assert risks["count"] == ROWS_PER_PAGE + 1 and not risks["complete"]
    assert risks["next"].endswith(f"/api/v1/plans/{plan.pk}/rows/risks?page=2")
    assert len(document["sections"]["risks"]["risks"]) == ROWS_PER_PAGE
    assert document["row_lists"]["dashboards"]["count"] == 0
