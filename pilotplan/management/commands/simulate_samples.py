"""Push simulated samples for the demo's running pilots through the real ingestion service."""

from __future__ import annotations

import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand
from django.db.models import Max
from django.utils import timezone

from metrics import simulator
from metrics.ingest import IngestRejected, samples_ingest
from metrics.models import Sample
from metrics.selectors import plan_metrics
from metrics.slots import plan_window
from pilotplan.demo import TEAMS
from pilots.models import PilotPlan

logger = logging.getLogger(__name__)

CATCH_UP = dt.timedelta(hours=3)
DEMO_INCIDENT = ("checkout", "Saved cards for returning shoppers")


def incident_problem(*, plan_id: int, now: dt.datetime) -> str:
    """Why the incident cannot play on this plan (not running, window over soon), or ""."""
    plan = PilotPlan.objects.filter(pk=plan_id).first()
    if plan is None or plan.status != PilotPlan.Status.RUNNING:
        return f"plan {plan_id} is not running."
    if plan.start_date is None or plan.end_date is None:
        return f"plan {plan_id} has no pilot window."
    start, end = plan_window(
        start_date=plan.start_date, end_date=plan.end_date, tz=ZoneInfo(plan.time_zone)
    )
    if not start <= now < end - dt.timedelta(minutes=10):  # the trigger fires 3 minutes in
        return (
            f"plan {plan_id}'s window is {plan.start_date} to {plan.end_date} "
            f"({plan.time_zone}); the simulator pushes only inside it. Fresh demo data "
            "(an empty database, e.g. after `make clean`) has a window around today."
        )
    return ""


class Command(BaseCommand):
    help = (
        "Every minute, push plausible samples for running pilots (by default the demo teams'), "
        "through the same ingestion service as the API. One demo plan gets a latency incident "
        "so its sustained rollback trigger fires a few minutes after start."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--once", action="store_true", help="Push once and exit.")
        parser.add_argument("--interval", type=int, default=60, help="Seconds between pushes.")
        parser.add_argument(
            "--plan", type=int, action="append", default=[], help="Only these plan ids."
        )
        parser.add_argument(
            "--incident-plan", type=int, help="Plan id that gets the latency incident."
        )
        parser.add_argument("--no-incident", action="store_true", help="No incident on any plan.")

    def handle(self, *args: object, **options: object) -> None:
        started = timezone.now()
        incident_plan = self._incident_plan(options)
        incident_start = started - simulator.INCIDENT_LEAD
        if incident_plan is not None:
            problem = incident_problem(plan_id=incident_plan, now=started)
            if problem:
                self.stderr.write(f"No latency incident: {problem}")
            else:
                self.stdout.write(
                    f"Latency incident on plan {incident_plan} from {incident_start:%H:%M} UTC: "
                    "its sustained trigger fires about 3 minutes from now."
                )
        while True:
            pushed = self.push(
                plan_ids=options["plan"],  # type: ignore[arg-type]
                incident_plan=incident_plan,
                incident_start=incident_start,
                now=timezone.now(),
            )
            self.stdout.write(f"{timezone.now():%H:%M:%S} pushed {pushed} samples")
            if options["once"]:
                return
            time.sleep(max(1, int(options["interval"])))  # type: ignore[call-overload]

    def _incident_plan(self, options: dict[str, object]) -> int | None:
        if options["no_incident"]:
            return None
        if options["incident_plan"]:
            return int(options["incident_plan"])  # type: ignore[call-overload]
        slug, title = DEMO_INCIDENT
        return (
            PilotPlan.objects.filter(team__slug=slug, title=title)
            .values_list("pk", flat=True)
            .first()
        )

    def push(
        self,
        *,
        plan_ids: list[int],
        incident_plan: int | None,
        incident_start: dt.datetime,
        now: dt.datetime,
    ) -> int:
        plans = PilotPlan.objects.filter(status=PilotPlan.Status.RUNNING).select_related("team")
        if plan_ids:
            plans = plans.filter(pk__in=plan_ids)
        else:
            plans = plans.filter(team__slug__in=[t.slug for t in TEAMS])
        last = dict(
            Sample.objects.filter(plan__in=plans, source=simulator.SOURCE)
            .values("plan")
            .annotate(last=Max("observed_at"))
            .values_list("plan", "last")
        )
        pushed = 0
        for plan in plans:
            # One plan's failure (a window the calendar cannot hold, a bug) is reported with the
            # plan's id and the other plans are still fed: the simulator keeps running.
            try:
                pushed += self._push_plan(
                    plan,
                    last=last.get(plan.pk),
                    incident_start=incident_start if plan.pk == incident_plan else None,
                    now=now,
                )
            except Exception:
                logger.exception("simulator: pushing samples for plan %s failed", plan.pk)
                self.stderr.write(f"plan {plan.pk}: pushing samples failed (see the log)")
        return pushed

    def _push_plan(
        self,
        plan: PilotPlan,
        *,
        last: dt.datetime | None,
        incident_start: dt.datetime | None,
        now: dt.datetime,
    ) -> int:
        if plan.start_date is None or plan.end_date is None:
            return 0
        window_start, window_end = plan_window(
            start_date=plan.start_date, end_date=plan.end_date, tz=ZoneInfo(plan.time_zone)
        )
        start = max(now - CATCH_UP, window_start)
        if last is not None:
            start = max(start, last + dt.timedelta(minutes=1))
        samples = list(
            simulator.samples_for(
                plan_id=plan.pk,
                metrics=plan_metrics(plan),
                start=start,
                end=min(now, window_end),
                incident_start=incident_start,
            )
        )
        if not samples:
            return 0
        rows = [
            {
                "metric": s.metric_key,
                "observed_at": s.observed_at.isoformat(),
                "value": s.value,
                "source": simulator.SOURCE,
            }
            for s in samples
        ]
        try:
            result = samples_ingest(team=plan.team, plan=plan, rows=rows, now=now)
        except IngestRejected as exc:
            self.stderr.write(f"plan {plan.pk}: {exc.message} {exc.errors[:3]}")
            return 0
        return result.stored
