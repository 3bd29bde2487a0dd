"""The demo works any day: after ``make run`` on a weekday, a Saturday or a Sunday (or in the
team's holiday week) the running pilots' windows hold today and the next days, the simulator
feeds every metric, and the latency incident fires about three minutes after the start. And
``make run`` on another port e-mails links to that port."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Max

from accounts.models import Team, TeamHoliday
from backlog.models import Feedback
from decisions.evidence import decision_evidence
from metrics import simulator, triggers
from metrics.demo import HISTORY_GAP
from metrics.models import Sample, TriggerEpisode
from metrics.selectors import plan_metrics
from metrics.slots import plan_window
from pilotplan.demo import DEMO_PLANS, FEEDBACK, Complete, demo_start_date, seed_demo
from pilotplan.management.commands.simulate_samples import Command, incident_problem
from pilots import timeline
from pilots.models import PilotPlan
from scripts.dev import run_env

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
MINUTE = dt.timedelta(minutes=1)
RUNNING = [
    (key, spec)
    for key, spec in DEMO_PLANS.items()
    if isinstance(spec, Complete) and spec.status == PilotPlan.Status.RUNNING
]


@pytest.mark.parametrize("offset", range(14))
@pytest.mark.parametrize(("key", "spec"), RUNNING, ids=[k[1] for k, _ in RUNNING])
def test_a_running_demo_pilot_s_window_holds_today_and_the_next_days_on_every_weekday(
    key, spec, offset
):
    today = dt.date(2026, 11, 23) + dt.timedelta(days=offset)  # two weeks from a Monday

    start = demo_start_date(spec, today)
    end = timeline.end_date(start, 10)

    assert start.weekday() == 0
    assert start <= today - dt.timedelta(days=1), today
    assert end >= today + dt.timedelta(days=3), today


def test_the_team_s_holidays_only_make_the_running_window_longer():
    # The checkout team's year-end break; the demo is started on the Sunday in the middle of it.
    # A past year-end: a rehearsal the seed records must not lie after the real today.
    sunday = dt.date(2025, 12, 28)
    breaks = [dt.date(2025, 12, 22) + dt.timedelta(days=n) for n in range(12)]
    team = Team.objects.create(slug="checkout", name="Checkout", time_zone="Europe/Berlin")
    TeamHoliday.objects.bulk_create([TeamHoliday(team=team, date=day) for day in breaks])

    seed_demo(today=sunday, metrics=False)

    plan = PilotPlan.objects.get(team=team, status=PilotPlan.Status.RUNNING)
    assert plan.start_date <= sunday - dt.timedelta(days=1)
    assert plan.end_date >= dt.date(2026, 1, 5) + dt.timedelta(days=3)


# Saturday late in the evening UTC (already Sunday in Tokyo), Sunday morning, Monday just after
# midnight UTC (still Sunday in New York), and an ordinary Wednesday.
DAYS = {
    "saturday": dt.datetime(2026, 11, 28, 23, 30, tzinfo=dt.UTC),
    "sunday": dt.datetime(2026, 11, 29, 6, 0, tzinfo=dt.UTC),
    "monday": dt.datetime(2026, 11, 30, 0, 30, tzinfo=dt.UTC),
    "wednesday": dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
}


@pytest.mark.parametrize("started", DAYS.values(), ids=DAYS.keys())
def test_the_demo_incident_fires_about_three_minutes_after_make_run_any_day(started):
    seed_demo(now=started)
    running = list(PilotPlan.objects.filter(status=PilotPlan.Status.RUNNING))
    saved_cards = next(p for p in running if p.title == "Saved cards for returning shoppers")
    assert len(running) == 2
    for plan in running:
        start, end = plan_window(
            start_date=plan.start_date, end_date=plan.end_date, tz=ZoneInfo(plan.time_zone)
        )
        assert start < started - dt.timedelta(days=1)
        assert started + dt.timedelta(days=2) < end, plan.title
    assert incident_problem(plan_id=saved_cards.pk, now=started) == ""
    # The cohort's feedback arrived inside the window, before the simulator's last two hours.
    window_start, _end = plan_window(
        start_date=saved_cards.start_date,
        end_date=saved_cards.end_date,
        tz=ZoneInfo(saved_cards.time_zone),
    )
    answers = Feedback.objects.filter(plan=saved_cards).values_list("created_at", flat=True)
    assert len(answers) == len(FEEDBACK)
    assert all(window_start < at < started - HISTORY_GAP for at in answers)
    # The decision page of each live pilot: one Go, one not yet decidable (saying how much more
    # evidence would decide it), one Roll back with its fired trigger.
    evaluating = PilotPlan.objects.get(status=PilotPlan.Status.EVALUATING)
    dark_mode = next(p for p in running if p.title == "Dark mode")
    go, undecided, roll_back = (
        decision_evidence(p, now=started) for p in (evaluating, saved_cards, dark_mode)
    )
    assert go.recommendation == "go", go.result.words
    assert undecided.recommendation == "not_yet_decidable", undecided.result.words
    assert any(c.more_words.startswith("needs about") for c in undecided.criteria)
    assert roll_back.recommendation == "roll_back", roll_back.result.words
    assert "P1 defects > 0" in roll_back.result.words

    # What `make run` does next: the simulator pushes every minute, beat's tick evaluates.
    command = Command()
    incident_start = started - simulator.INCIDENT_LEAD
    fired_after = None
    for minute in range(6):
        now = started + minute * MINUTE
        command.push(
            plan_ids=[], incident_plan=saved_cards.pk, incident_start=incident_start, now=now
        )
        if minute == 0:
            # The first push brings every metric of both pilots up to date (nothing stale).
            for plan in running:
                newest = dict(
                    Sample.objects.filter(plan=plan)
                    .values_list("metric__key")
                    .annotate(newest=Max("observed_at"))
                )
                for key, _kind in plan_metrics(plan):
                    due = simulator.every_minutes(key) * MINUTE
                    assert newest[key] > now - due - MINUTE, (plan.title, key)
        triggers.triggers_evaluate_running(now=now)
        if fired_after is None and TriggerEpisode.objects.filter(plan=saved_cards).exists():
            fired_after = minute

    assert fired_after in (3, 4)
    episode = TriggerEpisode.objects.get(plan=saved_cards)
    assert episode.plan == saved_cards
    assert episode.trigger.metric.key == "p95_latency"


def test_the_simulator_says_why_an_old_demo_plays_no_incident():
    now = DAYS["wednesday"]
    seed_demo(now=now, metrics=False)
    plan = PilotPlan.objects.get(title="Saved cards for returning shoppers")

    assert incident_problem(plan_id=plan.pk, now=now) == ""
    problem = incident_problem(plan_id=plan.pk, now=now + dt.timedelta(days=30))
    assert "window is" in problem and "pushes only inside it" in problem


def test_make_run_e_mails_links_to_the_port_it_serves():
    assert run_env({"PATH": "/bin"}, 8123) == {"PATH": "/bin", "SITE_URL": "http://127.0.0.1:8123"}
    # A SITE_URL set in the environment wins (a proxy, a public name).
    set_by_hand = {"SITE_URL": "https://pilot.example.com"}
    assert run_env(set_by_hand, 8123)["SITE_URL"] == "https://pilot.example.com"


def test_the_started_processes_read_that_site_url():
    environ = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    env = run_env(
        {**environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "pilotplan.settings"}, 8123
    )

    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SITE_URL)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert out.stdout.strip() == "http://127.0.0.1:8123"


def test_a_decision_recorded_on_the_demo_reads_the_same_after_more_samples_and_checks():
    from decisions.models import DecisionRecord
    from decisions.services.decision import decision_record, decision_record_verify
    from metrics.checks import check_run_execute
    from metrics.ingest import samples_store
    from metrics.models import CheckRun

    seed_demo()
    plan = PilotPlan.objects.get(title="Query result cache")
    po = plan.owner
    record = decision_record(
        plan=plan, user=po, outcome="go", rationale="Every exit criterion met for two weeks."
    )
    frozen = (record.evidence, record.evidence_hash, record.record_hash)

    # More samples arrive (a late batch inside the pilot's window) and a check runs again.
    window_start, _ = plan_window(
        start_date=plan.start_date, end_date=plan.end_date, tz=ZoneInfo(plan.time_zone)
    )
    latency = Sample.objects.filter(plan=plan, metric__key="p95_latency").first().metric_id
    samples_store(
        rows=[
            (plan.pk, latency, window_start + dt.timedelta(seconds=30 + i), 900.0, "late", "")
            for i in range(20)
        ]
    )
    last = CheckRun.objects.filter(plan=plan).order_by("-due_at").first()
    again = CheckRun.objects.create(
        plan=plan,
        due_at=last.due_at + dt.timedelta(minutes=1),
        local_date=last.local_date,
        local_time=last.local_time,
    )
    assert check_run_execute(run_id=again.pk)

    stored = DecisionRecord.objects.get(pk=record.pk)
    assert (stored.evidence, stored.evidence_hash, stored.record_hash) == frozen
    assert decision_record_verify(stored) == []
    assert stored.recommendation == "go"
