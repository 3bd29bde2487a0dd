"""The interface's wording of times and counts (accounts/ui.py, ``{% load ui %}``)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.http import HttpResponse
from django.template import Context, Template, TemplateSyntaxError
from django_htmx.http import trigger_client_event

from accounts import ui

UTC = dt.UTC
WINTER = dt.datetime(2026, 12, 6, 13, 32, tzinfo=UTC)  # 14:32 in Berlin (CET, UTC+1)
SUMMER = dt.datetime(2026, 7, 6, 13, 32, tzinfo=UTC)  # 15:32 in Berlin (CEST, UTC+2)

berlin_plan = SimpleNamespace(time_zone="Europe/Berlin", team_id=None)
new_york_team = SimpleNamespace(time_zone="America/New_York")


def render(source: str, **context: object) -> str:
    return Template("{% load ui %}" + source).render(Context(context))


# --- times -------------------------------------------------------------------------------------


def test_a_berlin_plan_shows_cet_in_winter_and_cest_in_summer():
    assert ui.local_time(WINTER, berlin_plan) == "Sun 6 Dec 2026, 14:32 CET"
    assert ui.local_time(SUMMER, berlin_plan) == "Mon 6 Jul 2026, 15:32 CEST"
    assert render("{{ t|local_time:plan }}", t=WINTER, plan=berlin_plan) == (
        "Sun 6 Dec 2026, 14:32 CET"
    )
    assert render("{{ t|local_clock:plan }}", t=SUMMER, plan=berlin_plan) == "15:32 CEST"
    assert render("{{ t|local_short:plan }}", t=WINTER, plan=berlin_plan) == "Sun 6 Dec, 14:32 CET"


def test_the_date_is_the_date_on_the_plans_clock_without_a_label():
    late = dt.datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # already the 7th in Berlin
    assert render("{{ t|local_date:plan }}", t=late, plan=berlin_plan) == "Mon 7 Dec 2026"
    assert render("{{ d|local_date:plan }}", d=dt.date(2026, 12, 6), plan=berlin_plan) == (
        "Sun 6 Dec 2026"
    )


def test_a_team_zone_is_used_for_team_things_and_a_plan_without_a_zone_falls_back_to_its_team():
    assert ui.local_time(WINTER, new_york_team, "time") == "08:32 EST"
    plan_without_zone = SimpleNamespace(time_zone="", team_id=1, team=new_york_team)
    assert ui.local_time(SUMMER, plan_without_zone, "time") == "09:32 EDT"


def test_without_a_zone_the_time_is_utc_and_says_so():
    assert render("{{ t|local_time }}", t=WINTER) == "Sun 6 Dec 2026, 13:32 UTC"
    assert ui.local_time(WINTER, None, "time") == "13:32 UTC"
    assert ui.local_time(WINTER, "Not/AZone", "time") == "13:32 UTC"
    # A naive value is what we store: UTC.
    assert ui.local_time(WINTER.replace(tzinfo=None), berlin_plan, "time") == "14:32 CET"


def test_zones_without_a_letter_abbreviation_read_as_an_offset():
    assert ui.local_time(WINTER, "America/Sao_Paulo", "time") == "10:32 UTC-03"
    assert ui.local_time(WINTER, "Asia/Kathmandu", "time") == "19:17 UTC+05:45"


def test_nothing_shows_nothing():
    assert render("{{ t|local_time:plan }}", t=None, plan=berlin_plan) == ""


def test_check_times_name_the_zone_they_are_read_in():
    times = [dt.time(10), dt.time(16)]
    assert render("{{ times|clock_times:plan }}", times=times, plan=berlin_plan) == (
        "10:00 and 16:00 (Europe/Berlin)"
    )
    three = [dt.time(9, 30), *times]
    assert ui.clock_times(three, None) == "09:30, 10:00 and 16:00 (UTC)"


def test_iso_is_utc_for_machines():
    assert render("{{ t|iso }}", t=WINTER.astimezone(dt.timezone(dt.timedelta(hours=1)))) == (
        "2026-12-06T13:32:00+00:00"
    )


# --- plurals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "word", "expected"),
    [
        (1, "business day", "1 business day"),
        (10, "business day", "10 business days"),
        (0, "business day", "0 business days"),
        (None, "gap", "0 gaps"),
        (2, "breach", "2 breaches"),
        (3, "entry", "3 entries"),
        (2, "day", "2 days"),
        (2, "person,people", "2 people"),
        (1, "person,people", "1 person"),
        (1200, "session", "1,200 sessions"),
        (1.5, "hour", "1.5 hours"),
    ],
)
def test_plural(count, word, expected):
    assert ui.plural(count, word) == expected


def test_plural_filter():
    assert render('{{ n|plural:"business day" }}', n=1) == "1 business day"
    assert render('{{ n|plural:"breach,breaches" }}', n=4) == "4 breaches"


# --- toasts ------------------------------------------------------------------------------------


def test_a_toast_joins_the_events_a_response_already_triggers():
    response = trigger_client_event(HttpResponse(), "planChanged", {"section": "cohort"})
    ui.toast(response, "Cohort saved.")
    assert json.loads(response["HX-Trigger"]) == {
        "planChanged": {"section": "cohort"},
        "showToast": {"message": "Cohort saved.", "level": "success"},
    }


# --- {% when %}: one <time> element, the viewer's own clock on hover ----------------------------

paris_viewer = SimpleNamespace(time_zone="Europe/Paris")
new_york_viewer = SimpleNamespace(time_zone="America/New_York")
unset_viewer = SimpleNamespace(time_zone="")


def test_when_shows_the_plans_clock_and_the_viewers_own_on_hover_where_it_differs():
    html = render("{% when t plan %}", t=WINTER, plan=berlin_plan, user=new_york_viewer)
    assert html == (
        '<time datetime="2026-12-06T13:32:00+00:00" title="In your zone (America/New_York): '
        'Sun 6 Dec 2026, 08:32 EST">Sun 6 Dec 2026, 14:32 CET</time>'
    )


def test_when_follows_dst_on_both_clocks():
    # 13:32 UTC on 6 Jul: 15:32 CEST in Berlin, 09:32 EDT in New York.
    html = render('{% when t plan "time" %}', t=SUMMER, plan=berlin_plan, user=new_york_viewer)
    assert ">15:32 CEST</time>" in html
    assert 'title="In your zone (America/New_York): 09:32 EDT"' in html
    # On the spring-forward day the same UTC hour reads on a different offset after the change.
    before = dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    after = dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert ">01:30 CET</time>" in render('{% when t plan "time" %}', t=before, plan=berlin_plan)
    assert ">03:30 CEST</time>" in render('{% when t plan "time" %}', t=after, plan=berlin_plan)


def test_when_adds_no_title_in_the_same_zone_an_unset_zone_or_a_clock_that_reads_the_same():
    same = SimpleNamespace(time_zone="Europe/Berlin")
    for viewer in (same, unset_viewer, paris_viewer, None, SimpleNamespace()):
        html = render("{% when t plan %}", t=WINTER, plan=berlin_plan, user=viewer)
        assert html == (
            '<time datetime="2026-12-06T13:32:00+00:00">Sun 6 Dec 2026, 14:32 CET</time>'
        ), viewer


def test_when_escapes_and_shows_nothing_for_nothing():
    assert render("{% when t plan %}", t=None, plan=berlin_plan) == ""


def test_when_a_plain_date_has_no_zone_and_no_title():
    html = render('{% when d plan "date" %}', d=dt.date(2026, 12, 6), plan=berlin_plan)
    assert html == '<time datetime="2026-12-06">Sun 6 Dec 2026</time>'
    assert render('{% when d plan "day" %}', d=dt.date(2026, 12, 6), user=new_york_viewer) == (
        '<time datetime="2026-12-06">Sun 6 Dec</time>'
    )


def test_when_relative_reads_how_long_ago_with_the_full_time_in_the_title():
    now = WINTER + dt.timedelta(hours=3, minutes=5)
    html = str(ui.when(WINTER, berlin_plan, viewer=new_york_viewer, style="relative", now=now))
    assert ">3 hours ago</time>" in html
    assert (
        'title="Sun 6 Dec 2026, 14:32 CET · In your zone (America/New_York): '
        'Sun 6 Dec 2026, 08:32 EST"'
    ) in html
    alone = str(ui.when(WINTER, berlin_plan, style="relative", now=now))
    assert 'title="Sun 6 Dec 2026, 14:32 CET">3 hours ago</time>' in alone


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (dt.timedelta(seconds=20), "just now"),
        (dt.timedelta(minutes=1), "1 minute ago"),
        (dt.timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (dt.timedelta(hours=1), "1 hour ago"),
        (dt.timedelta(hours=23), "23 hours ago"),
        (dt.timedelta(days=2, hours=5), "2 days ago"),
        (dt.timedelta(hours=-3), "in 3 hours"),
        (dt.timedelta(days=45), "Thu 22 Oct 2026"),
    ],
)
def test_relative(age, expected):
    assert ui.relative(WINTER - age, berlin_plan, now=WINTER) == expected


def test_an_unknown_style_is_a_template_error():
    with pytest.raises(TemplateSyntaxError):
        render('{% when t plan "fortnight" %}', t=WINTER, plan=berlin_plan)


def test_a_plain_date_in_sentences_reads_the_one_way():
    assert ui.day_text(dt.date(2026, 12, 7)) == "Mon 7 Dec 2026"
    assert render("{{ d|local_day }}", d=dt.date(2026, 12, 7)) == "Mon 7 Dec"
