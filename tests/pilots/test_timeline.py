"""Business-day arithmetic: a pilot's time-box skips weekends and the team's holidays."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import TeamHoliday
from pilots import timeline
from pilots.services import plan_end_date
from tests.factories import PilotPlanFactory

D = dt.date


def test_ten_business_days_from_a_monday_end_on_the_friday_after():
    assert timeline.end_date(D(2026, 3, 2), 10) == D(2026, 3, 13)  # Mon 2 Mar → Fri 13 Mar


def test_five_business_days_from_a_monday_end_that_friday():
    assert timeline.end_date(D(2026, 3, 2), 5) == D(2026, 3, 6)


def test_a_time_box_of_one_day_ends_on_its_start():
    assert timeline.end_date(D(2026, 3, 4), 1) == D(2026, 3, 4)


@pytest.mark.parametrize("start", [D(2026, 3, 7), D(2026, 3, 8)], ids=["saturday", "sunday"])
def test_a_start_on_a_weekend_begins_on_the_monday(start):
    assert list(timeline.business_days(start, 1)) == [D(2026, 3, 9)]
    assert timeline.end_date(start, 1) == D(2026, 3, 9)
    assert timeline.end_date(start, 10) == D(2026, 3, 20)


def test_a_start_on_a_holiday_begins_on_the_next_business_day():
    assert list(timeline.business_days(D(2026, 3, 2), 2, [D(2026, 3, 2)])) == [
        D(2026, 3, 3),
        D(2026, 3, 4),
    ]


def test_the_time_box_runs_across_a_month_end():
    # Mon 26 Jan 2026 + 10 business days: 26–30 Jan, 2–6 Feb.
    assert timeline.end_date(D(2026, 1, 26), 10) == D(2026, 2, 6)


def test_the_time_box_runs_across_february_in_a_leap_year():
    # Mon 28 Feb 2028, then the leap day, then 1 March.
    assert list(timeline.business_days(D(2028, 2, 28), 3)) == [
        D(2028, 2, 28),
        D(2028, 2, 29),
        D(2028, 3, 1),
    ]


def test_the_time_box_runs_across_a_year_end_skipping_the_holidays():
    holidays = [D(2026, 12, 25), D(2026, 12, 31), D(2027, 1, 1)]

    days = list(timeline.business_days(D(2026, 12, 24), 5, holidays))

    # Thu 24, (Fri 25 holiday), Mon 28, Tue 29, Wed 30, (Thu 31, Fri 1 holidays), Mon 4 Jan.
    assert days == [
        D(2026, 12, 24),
        D(2026, 12, 28),
        D(2026, 12, 29),
        D(2026, 12, 30),
        D(2027, 1, 4),
    ]
    # … Tue 5, Wed 6, Thu 7, Fri 8, Mon 11: three holidays push the end three business days out.
    assert timeline.end_date(D(2026, 12, 24), 10, holidays) == D(2027, 1, 11)
    assert timeline.end_date(D(2026, 12, 24), 10) == D(2027, 1, 6)


def test_a_holiday_on_a_weekend_changes_nothing():
    saturday, sunday = D(2026, 3, 7), D(2026, 3, 8)

    assert timeline.end_date(D(2026, 3, 2), 10, [saturday, sunday]) == D(2026, 3, 13)


def test_a_holiday_outside_the_window_changes_nothing():
    assert timeline.end_date(D(2026, 3, 2), 10, [D(2026, 2, 27), D(2026, 3, 16)]) == D(2026, 3, 13)


def test_each_holiday_inside_the_window_adds_a_day():
    assert timeline.end_date(D(2026, 3, 2), 10, [D(2026, 3, 4)]) == D(2026, 3, 16)
    assert timeline.end_date(D(2026, 3, 2), 10, [D(2026, 3, 4), D(2026, 3, 13)]) == D(2026, 3, 17)


def test_business_days_are_listed_in_order_without_weekends():
    days = list(timeline.business_days(D(2026, 3, 5), 4))

    assert days == [D(2026, 3, 5), D(2026, 3, 6), D(2026, 3, 9), D(2026, 3, 10)]


@pytest.mark.parametrize("count", [0, -1, -10])
def test_a_time_box_shorter_than_one_day_is_refused(count):
    with pytest.raises(ValueError, match="at least one business day"):
        timeline.end_date(D(2026, 3, 2), count)
    with pytest.raises(ValueError):
        list(timeline.business_days(D(2026, 3, 2), count))


@pytest.mark.parametrize(
    ("today", "monday"),
    [
        (D(2026, 3, 2), D(2026, 3, 9)),  # Monday → the following Monday, never today
        (D(2026, 3, 3), D(2026, 3, 9)),
        (D(2026, 3, 4), D(2026, 3, 9)),
        (D(2026, 3, 5), D(2026, 3, 9)),
        (D(2026, 3, 6), D(2026, 3, 9)),
        (D(2026, 3, 7), D(2026, 3, 9)),
        (D(2026, 3, 8), D(2026, 3, 9)),  # Sunday → tomorrow
        (D(2026, 12, 30), D(2027, 1, 4)),  # across the year end
    ],
    ids=["mon", "tue", "wed", "thu", "fri", "sat", "sun", "year-end"],
)
def test_next_monday(today, monday):
    assert timeline.next_monday(today) == monday
    assert monday.weekday() == 0


@pytest.mark.django_db
def test_plan_end_date_skips_the_team_holidays(team, po):
    plan = PilotPlanFactory(team=team, owner=po, start_date=D(2026, 12, 24), business_days=10)
    for day in (D(2026, 12, 25), D(2026, 12, 31), D(2027, 1, 1)):
        TeamHoliday.objects.create(team=team, date=day, name="Holiday")

    assert plan_end_date(plan=plan) == D(2027, 1, 11)


@pytest.mark.django_db
def test_plan_end_date_ignores_other_teams_holidays(team, po, other_team):
    plan = PilotPlanFactory(team=team, owner=po, start_date=D(2026, 3, 2), business_days=10)
    TeamHoliday.objects.create(team=other_team, date=D(2026, 3, 4))

    assert plan_end_date(plan=plan) == D(2026, 3, 13)


@pytest.mark.django_db
def test_plan_end_date_is_empty_without_a_start(team, po):
    plan = PilotPlanFactory(team=team, owner=po)

    assert plan_end_date(plan=plan) is None
