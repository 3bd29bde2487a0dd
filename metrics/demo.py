"""Metric history for the demo's pilots (called by ``pilotplan.demo.seed_demo``).

Running and evaluating demo plans get simulated samples from the start of their window up to
``HISTORY_GAP`` before now (the ``simulate_samples`` command, started by ``make run``, fills the
rest and keeps pushing), and their past scheduled checks of the last ``CHECK_HISTORY`` (up to
now, or to the end of an evaluated pilot's window), executed by the real check service. The
demo seeds a plan it takes to Decided while it is Evaluating, so its decision rests on evidence.
Idempotent: samples have natural keys, check runs are unique per slot.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone

from catalogue.models import MetricDefinition
from metrics import checks, simulator
from metrics.ingest import samples_store
from metrics.models import CheckRun
from metrics.selectors import plan_metrics
from metrics.slots import business_day_filter, plan_window, slots_between
from pilots.models import PilotPlan

# The simulator catches up three hours on start; leave it the last two, so the demo incident
# (which starts 27 minutes before the simulator) is pushed by the simulator, not the seed.
HISTORY_GAP = dt.timedelta(hours=2)
CHECK_HISTORY = dt.timedelta(days=3)


def demo_metrics_seed(*, plans: list[PilotPlan], now: dt.datetime | None = None) -> int:
    """Backfill samples and past checks of ``plans``; return the number of samples stored."""
    now = now or timezone.now()
    until = now - HISTORY_GAP
    keys = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))
    stored = 0
    for plan in plans:
        if plan.status not in (PilotPlan.Status.RUNNING, PilotPlan.Status.EVALUATING):
            continue
        if plan.start_date is None or plan.end_date is None:
            continue
        tz = ZoneInfo(plan.time_zone)
        start, end = plan_window(start_date=plan.start_date, end_date=plan.end_date, tz=tz)
        metric_ids = {key: keys[key] for key, _kind in plan_metrics(plan) if key in keys}
        rows = (
            (plan.pk, metric_ids[s.metric_key], s.observed_at, s.value, simulator.SOURCE, "")
            for s in simulator.samples_for(
                plan_id=plan.pk,
                metrics=[(k, kind) for k, kind in plan_metrics(plan) if k in metric_ids],
                start=start,
                end=min(end, until),
            )
        )
        stored += samples_store(rows=rows)
        last = min(end, until)
        _past_checks(plan, tz=tz, since=max(start, last - CHECK_HISTORY), until=last)
    return stored


def _past_checks(plan: PilotPlan, *, tz: ZoneInfo, since: dt.datetime, until: dt.datetime) -> None:
    holidays = plan.team.holidays.values_list("date", flat=True)
    assert plan.start_date is not None
    slots = slots_between(
        check_times=plan.check_times,
        tz=tz,
        start=since,
        end=until,
        active_dates=business_day_filter(
            start_date=plan.start_date, business_days=plan.business_days, holidays=holidays
        ),
    )
    for slot in slots:
        run, created = CheckRun.objects.get_or_create(
            plan=plan,
            due_at=slot.due_at,
            defaults={"local_date": slot.local_date, "local_time": slot.local_time},
        )
        if created:
            checks.check_run_execute(run_id=run.pk)
