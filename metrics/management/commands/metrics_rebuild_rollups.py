"""Rebuild rollups and sketches from the raw samples, plan by plan."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from metrics.rollups import retention_horizon, rollups_rebuild
from pilots.models import PilotPlan


class Command(BaseCommand):
    help = (
        "Recompute the hour and day rollups and their sketches from the raw samples (the "
        "source of truth), one plan per transaction; safe to run again. With "
        "SAMPLE_RETENTION_DAYS set, only the buckets from the retention horizon on are rebuilt: "
        "older raw samples may have been pruned, and their rollups are kept as they are."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--plan", type=int, action="append", default=[], help="Only this plan id (repeatable)."
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        plans = PilotPlan.objects.order_by("pk").values_list("pk", flat=True)
        if options["plan"]:
            plans = plans.filter(pk__in=options["plan"])
            missing = set(options["plan"]) - set(plans)
            if missing:
                raise CommandError(f"No plan {', '.join(map(str, sorted(missing)))}.")
        since = retention_horizon()
        where = "all samples" if since is None else f"samples from {since:%Y-%m-%d} (UTC) on"
        started = time.perf_counter()
        count = 0
        for plan_id in plans:
            rollups_rebuild(plan_id=plan_id, since=since)
            count += 1
        self.stdout.write(
            f"Rebuilt the rollups of {count} plan(s) from {where} "
            f"in {time.perf_counter() - started:.1f} s."
        )
