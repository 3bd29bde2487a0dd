"""The demo's sample simulator: deterministic, pushed through real ingestion, and its incident
makes the demo plan's sustained latency trigger fire a few minutes after start."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from metrics import simulator, triggers
from metrics.models import Sample, TriggerEpisode
from metrics.selectors import plan_metrics
from pilotplan.management.commands.simulate_samples import Command
from pilots.models import PilotPlan
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def test_samples_are_deterministic_per_minute_and_the_incident_breaches():
    metrics = [("p95_latency", "gauge"), ("csat", "score"), ("p1_defects", "count")]
    first = list(
        simulator.samples_for(plan_id=7, metrics=metrics, start=T0, end=T0 + dt.timedelta(hours=2))
    )
    again = list(
        simulator.samples_for(
            plan_id=7,
            metrics=metrics,
            start=T0 + dt.timedelta(hours=1),
            end=T0 + dt.timedelta(hours=2),
        )
    )
    assert again == [s for s in first if s.observed_at >= T0 + dt.timedelta(hours=1)]
    latency = [s.value for s in first if s.metric_key == "p95_latency"]
    assert len(latency) == 120 and max(latency) < 300
    assert {s.value for s in first if s.metric_key == "p1_defects"} == {0.0}
    assert all(1 <= s.value <= 5 for s in first if s.metric_key == "csat")

    incident = list(
        simulator.samples_for(
            plan_id=7, metrics=[("p95_latency", "gauge")], start=T0,
            end=T0 + dt.timedelta(hours=2), incident_start=T0 + dt.timedelta(minutes=30),
        )
    )  # fmt: skip
    breaching = [s.observed_at for s in incident if s.value > 300]
    assert breaching[0] == T0 + dt.timedelta(minutes=30)
    assert len(breaching) == simulator.INCIDENT_MINUTES


def test_push_goes_through_ingestion_catches_up_and_never_repeats(team, po):
    today = timezone.localdate()
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=3))
    now = timezone.now()
    command = Command()
    stored = command.push(plan_ids=[plan.pk], incident_plan=None, incident_start=now, now=now)
    keys = {k for k, _ in plan_metrics(plan)}
    assert stored > 0
    assert set(Sample.objects.filter(plan=plan).values_list("metric__key", flat=True)) <= keys
    assert Sample.objects.filter(plan=plan).count() == stored
    # A minute later only the new minute is pushed; the same instant again pushes nothing.
    assert command.push(plan_ids=[plan.pk], incident_plan=None, incident_start=now, now=now) == 0
    later = now + dt.timedelta(minutes=1)
    assert (
        0 < command.push(plan_ids=[plan.pk], incident_plan=None, incident_start=now, now=later) < 10
    )


def test_the_demo_incident_fires_the_sustained_latency_trigger_within_minutes(team, po, devops):
    today = timezone.localdate()
    plan = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=3))
    started = timezone.now().replace(second=0, microsecond=0)
    incident_start = started - simulator.INCIDENT_LEAD
    command = Command()
    command.push(
        plan_ids=[plan.pk], incident_plan=plan.pk, incident_start=incident_start, now=started
    )
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=started)
    assert not TriggerEpisode.objects.filter(plan=plan).exists()  # 27 minutes: not yet

    four_minutes = started + dt.timedelta(minutes=4)
    command.push(
        plan_ids=[plan.pk], incident_plan=plan.pk, incident_start=incident_start, now=four_minutes
    )
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=four_minutes)
    episode = TriggerEpisode.objects.get(plan=plan)
    assert episode.trigger.mode == "sustained"
    assert episode.breach_started_at == incident_start


def test_every_metric_is_pushed_often_enough_never_to_look_stale():
    metrics = [
        ("p95_latency", "gauge"), ("error_rate", "gauge"), ("sessions", "count"),
        ("p1_defects", "count"), ("p2_defects", "count"), ("csat", "score"), ("nps", "score"),
    ]  # fmt: skip
    samples = list(
        simulator.samples_for(plan_id=7, metrics=metrics, start=T0, end=T0 + dt.timedelta(hours=1))
    )
    per_key = {key: [s for s in samples if s.metric_key == key] for key, _ in metrics}

    # Gauges and counts (defects included) every minute; survey answers every few minutes.
    assert {key: len(rows) for key, rows in per_key.items()} == {
        key: 60 // simulator.every_minutes(key) for key, _ in metrics
    }
    assert all(simulator.every_minutes(key) <= 6 for key, _ in metrics)
    assert all(s.value == int(s.value) for s in per_key["p2_defects"] + per_key["sessions"])


def test_one_plan_that_cannot_be_simulated_does_not_stop_the_others(team, po):
    today = timezone.localdate()
    healthy = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=3))
    poisoned = running_plan(team=team, owner=po, start_date=today - dt.timedelta(days=3))
    # A window at the end of the calendar: computing its end instant overflows.
    PilotPlan.objects.filter(pk=poisoned.pk).update(
        start_date=dt.date(9999, 12, 20), end_date=dt.date(9999, 12, 31)
    )
    now = timezone.now()

    stored = Command().push(
        plan_ids=[poisoned.pk, healthy.pk], incident_plan=None, incident_start=now, now=now
    )

    assert stored > 0
    assert Sample.objects.filter(plan=healthy).count() == stored
    assert not Sample.objects.filter(plan=poisoned).exists()
