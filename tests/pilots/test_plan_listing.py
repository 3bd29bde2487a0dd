"""Search, filters, sort, the overdue flag and the pager of the two lists of plans: the plan
list (/plans/) and the portfolio. Both read ``pilots.listing``; each behaviour is asserted on
both pages through HTTP."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.urls import reverse

from accounts.models import Membership, TeamHoliday
from pilots.listing import decision_due_on, plan_overdue
from pilots.models import PilotPlan
from tests.factories import MembershipFactory, PilotPlanFactory

pytestmark = pytest.mark.django_db

PAGES = {
    "plan list": ("pilots:plan_list", "plan-row"),
    "portfolio": ("decisions:portfolio", "portfolio-row"),
}


@pytest.fixture(params=list(PAGES))
def page(request):  # type: ignore[no-untyped-def]
    """(the list's URL, the test id of its rows)"""
    name, row = PAGES[request.param]
    return reverse(name), row


def _titles(response, row: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The titles of the listed plans, in the order shown."""
    html = response.content.decode()
    found = re.findall(rf'data-testid="{row}">\s*<td[^>]*><a href="[^"]+">([^<]+)</a>', html)
    return [unescape(title) for title in found]


def _pager_link(response, rel: str) -> str:  # type: ignore[no-untyped-def]
    """The pager's ``rel`` link, unescaped."""
    html = response.content.decode()
    return unescape(re.search(rf'href="([^"]*)" rel="{rel}"', html).group(1))  # type: ignore[union-attr]


def _set(plan: PilotPlan, **values: object) -> None:
    PilotPlan.objects.filter(pk=plan.pk).update(**values)


def test_search_finds_titles_case_insensitively(page, client_for, po, team):
    url, row = page
    PilotPlanFactory(team=team, owner=po, title="Saved cards")
    PilotPlanFactory(team=team, owner=po, title="Dark mode")

    response = client_for(po).get(url, {"q": "  sAVED   cards "})

    assert _titles(response, row) == ["Saved cards"]
    assert 'value="sAVED cards"' in response.content.decode()


def test_search_without_a_match_says_so(page, client_for, po, team):
    url, _ = page
    PilotPlanFactory(team=team, owner=po, title="Saved cards")
    html = client_for(po).get(url, {"q": "nothing like it"}).content.decode()
    assert "match these filters" in html


def test_owner_filter_offers_the_members_of_my_teams_and_narrows_to_one(
    page, client_for, po, sm, team, outsider
):
    url, row = page
    PilotPlanFactory(team=team, owner=po, title="Mine")
    PilotPlanFactory(team=team, owner=sm, title="The Scrum Master's")

    response = client_for(po).get(url, {"owner": sm.pk})

    html = response.content.decode()
    assert _titles(response, row) == ["The Scrum Master's"]
    assert f'<option value="{sm.pk}" selected>{sm.display_name}</option>' in html
    assert f'<option value="{po.pk}">{po.display_name}</option>' in html
    assert outsider.display_name not in html  # not a member of any of my teams
    assert html.count('data-testid="owner"') == 1 and sm.display_name in html


def test_an_owner_outside_my_teams_is_ignored(page, client_for, po, team, outsider):
    url, row = page
    PilotPlanFactory(team=team, owner=po, title="Mine")
    response = client_for(po).get(url, {"owner": outsider.pk})
    assert response.status_code == 200
    assert _titles(response, row) == ["Mine"]


def test_team_and_state_filter(page, client_for, po, team, other_team):
    url, row = page
    MembershipFactory(team=other_team, user=po, role=Membership.Role.DEVELOPER)
    PilotPlanFactory(team=team, owner=po, title="Draft here")
    running = PilotPlanFactory(team=team, owner=po, title="Running here")
    _set(running, status=PilotPlan.Status.RUNNING)
    PilotPlanFactory(team=other_team, owner=po, title="Draft there")

    client = client_for(po)
    assert _titles(client.get(url, {"team": other_team.pk}), row) == ["Draft there"]
    assert _titles(client.get(url, {"team": team.pk, "state": "running"}), row) == ["Running here"]


@pytest.fixture
def three(team, po):  # type: ignore[no-untyped-def]
    """Three plans whose titles, dates, states and changes all order differently."""
    b = PilotPlanFactory(team=team, owner=po, title="bravo")
    a = PilotPlanFactory(team=team, owner=po, title="Alpha")
    c = PilotPlanFactory(team=team, owner=po, title="Charlie")
    _set(a, start_date=dt.date(2026, 3, 2), end_date=dt.date(2026, 3, 27), status="evaluating")
    _set(b, start_date=dt.date(2026, 5, 4), end_date=dt.date(2026, 5, 8), status="running")
    # Charlie has no dates (a draft): listed last by either date.
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    for plan, minutes in ((a, 1), (b, 3), (c, 2)):
        _set(plan, updated_at=now + dt.timedelta(minutes=minutes))
    return a, b, c


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["bravo", "Charlie", "Alpha"]),  # recently changed, the default
        ("changed", ["bravo", "Charlie", "Alpha"]),
        ("start", ["bravo", "Alpha", "Charlie"]),  # latest first, no date last
        ("end", ["bravo", "Alpha", "Charlie"]),
        ("title", ["Alpha", "bravo", "Charlie"]),  # ignoring case
        ("state", ["Charlie", "bravo", "Alpha"]),  # draft, running, evaluating: lifecycle order
        ("title; DROP TABLE x", ["bravo", "Charlie", "Alpha"]),  # not offered: the default
        ("-title", ["bravo", "Charlie", "Alpha"]),
    ],
)
def test_sort(page, client_for, po, three, sort, expected):
    url, row = page
    response = client_for(po).get(url, {"sort": sort})
    assert response.status_code == 200
    assert _titles(response, row) == expected


def test_end_date_sort_differs_from_start_date_sort(page, client_for, po, three):
    url, row = page
    alpha = three[0]
    _set(alpha, end_date=dt.date(2026, 9, 30))
    assert _titles(client_for(po).get(url, {"sort": "end"}), row) == ["Alpha", "bravo", "Charlie"]


def test_bad_values_are_ignored_never_a_500(page, client_for, po, team):
    url, row = page
    PilotPlanFactory(team=team, owner=po, title="Alpha")
    response = client_for(po).get(
        url,
        {
            "q": "a" * 5000,
            "team": "x",
            "state": "nonsense",
            "owner": "-1'",
            "sort": "?",
            "page": "z",
        },
    )
    assert response.status_code == 200
    assert _titles(client_for(po).get(url, {"team": "1e9", "owner": "", "page": "999"}), row) == [
        "Alpha"
    ]


def test_columns_owner_dates_and_outcome(page, client_for, po, team):
    url, _ = page
    plan = PilotPlanFactory(team=team, owner=po, title="Decided pilot")
    _set(
        plan,
        status=PilotPlan.Status.DECIDED,
        decision=PilotPlan.Decision.ROLL_BACK,
        start_date=dt.date(2026, 3, 2),
        end_date=dt.date(2026, 3, 13),
    )
    draft = PilotPlanFactory(team=team, owner=po, title="A draft")
    assert draft.decision == ""

    html = client_for(po).get(url).content.decode()
    assert re.search(r'data-testid="owner">' + re.escape(po.display_name) + "<", html)
    assert "Mon 2 Mar 2026" in html and "Fri 13 Mar 2026" in html
    assert 'data-testid="outcome">Roll back<' in html
    assert 'data-testid="outcome">—<' in html  # the draft has no outcome yet


def test_pager_links_keep_every_filter(page, client_for, po, sm, team):
    url, row = page
    for i in range(30):
        PilotPlanFactory(team=team, owner=sm, title=f"Cards {i:02}")
    PilotPlanFactory(team=team, owner=po, title="Cards by the PO")
    PilotPlanFactory(team=team, owner=sm, title="Something else")
    client = client_for(po)

    first = client.get(url, {"q": "cards", "owner": sm.pk, "sort": "title", "team": team.pk})

    query = f"q=cards&team={team.pk}&owner={sm.pk}&sort=title"
    assert _pager_link(first, "next") == f"?{query}&page=2"
    assert _titles(first, row) == [f"Cards {i:02}" for i in range(25)]
    second = client.get(url + _pager_link(first, "next"))
    assert _titles(second, row) == [f"Cards {i:02}" for i in range(25, 30)]
    assert _pager_link(second, "prev") == f"?{query}&page=1"
    assert "Next →" in first.content.decode() and "Older →" not in first.content.decode()


def test_search_text_is_encoded_in_the_pager_links(page, client_for, po, team):
    url, _ = page
    for i in range(26):
        PilotPlanFactory(team=team, owner=po, title=f"R&D #{i}")
    response = client_for(po).get(url, {"q": "r&d #"})
    assert _pager_link(response, "next") == "?q=r%26d+%23&page=2"


def test_outsiders_see_no_foreign_plans_whatever_the_filters(page, client_for, po, team, outsider):
    url, row = page
    PilotPlanFactory(team=team, owner=po, title="Secret pilot")
    response = client_for(outsider).get(
        url, {"q": "secret", "team": team.pk, "owner": po.pk, "sort": "title"}
    )
    assert response.status_code == 200
    assert _titles(response, row) == []
    html = response.content.decode()
    assert "Secret pilot" not in html and po.display_name not in html
    assert f'<option value="{team.pk}"' not in html


def test_lists_need_login(page, client):
    url, _ = page
    response = client.get(url, {"q": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("count", [3, 30])
def test_filters_and_sort_add_no_query(
    page, client_for, po, sm, team, django_assert_num_queries, count
):
    url, row = page
    for i in range(count):
        plan = PilotPlanFactory(team=team, owner=sm if i % 2 else po, title=f"Pilot {i}")
        _set(plan, status="running", start_date=dt.date(2026, 1, 5), end_date=dt.date(2026, 1, 9))
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 1, 6), name="Holiday")
    client = client_for(po)
    client.get(url)
    # The same counts as without filters (tests/pilots/test_plan_views.py and
    # tests/decisions/test_portfolio.py): the owner choices come in the teams' query, the
    # holidays the overdue rule reads in the plans' query.
    expected = 5 if "plans" in url else 6
    with django_assert_num_queries(expected):
        response = client.get(
            url, {"q": "pilot", "owner": sm.pk, "sort": "state", "state": "running"}
        )
    assert len(_titles(response, row)) == min(count // 2, 25)
    assert response.content.decode().count('data-testid="overdue"') == min(count // 2, 25)


# --- the overdue rule ------------------------------------------------------------------------


def _plan(status: str, end: dt.date | None, holidays: list[dt.date] = ()) -> PilotPlan:  # type: ignore[assignment]
    plan = PilotPlan(status=status, start_date=end and end - dt.timedelta(days=4), end_date=end)
    plan.holiday_dates = list(holidays)  # type: ignore[attr-defined]
    return plan


FRI_4_DEC = dt.date(2026, 12, 4)


@pytest.mark.parametrize(
    ("today", "overdue"),
    [(FRI_4_DEC, False), (dt.date(2026, 12, 5), True), (dt.date(2026, 12, 7), True)],
)
def test_a_running_plan_is_overdue_after_the_last_day_of_its_time_box(today, overdue):
    assert plan_overdue(_plan("running", FRI_4_DEC), today=today) is overdue


def test_an_evaluating_plan_is_due_a_decision_five_business_days_after_the_end():
    plan = _plan("evaluating", FRI_4_DEC)
    assert decision_due_on(plan) == dt.date(2026, 12, 11)  # Mon 7 … Fri 11 Dec
    assert plan_overdue(plan, today=dt.date(2026, 12, 11)) is False
    assert plan_overdue(plan, today=dt.date(2026, 12, 12)) is True


def test_a_team_holiday_moves_the_decision_due_day():
    plan = _plan("evaluating", FRI_4_DEC, holidays=[dt.date(2026, 12, 8)])
    assert decision_due_on(plan) == dt.date(2026, 12, 14)
    assert plan_overdue(plan, today=dt.date(2026, 12, 12)) is False


@pytest.mark.parametrize("status", ["draft", "in_review", "approved", "decided", "closed"])
def test_other_states_are_never_overdue(status):
    assert plan_overdue(_plan(status, dt.date(2020, 1, 3)), today=FRI_4_DEC) is False


def test_a_plan_without_dates_is_never_overdue():
    assert plan_overdue(_plan("running", None), today=FRI_4_DEC) is False
    assert plan_overdue(_plan("evaluating", None), today=FRI_4_DEC) is False


def test_the_lists_flag_an_overdue_plan_and_say_why(page, client_for, po, team):
    url, _ = page
    late = PilotPlanFactory(team=team, owner=po, title="Late")
    on_time = PilotPlanFactory(team=team, owner=po, title="On time")
    today = dt.date.today()
    _set(late, status="running", start_date=today - dt.timedelta(days=30),
         end_date=today - dt.timedelta(days=3))  # fmt: skip
    _set(on_time, status="running", start_date=today - dt.timedelta(days=3),
         end_date=today + dt.timedelta(days=20))  # fmt: skip

    html = client_for(po).get(url).content.decode()

    assert html.count('data-testid="overdue"') == 1
    assert "Still running after the last day of its time-box" in html
