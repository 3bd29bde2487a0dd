"""Delete raw samples older than N whole UTC days; rollups and sketches stay."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from metrics.rollups import MIN_RETENTION_DAYS, samples_prune


class Command(BaseCommand):
    help = (
        "Delete raw samples older than N whole UTC days (default: the SAMPLE_RETENTION_DAYS "
        "setting), in short transactions; hour and day rollups and their sketches are "
        f"kept. Refuses fewer than {MIN_RETENTION_DAYS} days, or than the longest rolling "
        "window of an exit criterion. See docs/operations.md, "
        "“Data volume and retention”, for what still needs raw samples."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=None,
            help="Keep this many whole UTC days of raw samples (default SAMPLE_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say what would be deleted."
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        days = options["older_than_days"]
        if days is None:
            days = settings.SAMPLE_RETENTION_DAYS
        if days is None:
            raise CommandError(
                "Every sample is kept: set SAMPLE_RETENTION_DAYS or pass --older-than-days N."
            )
        try:
            result = samples_prune(days=days, dry_run=options["dry_run"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {result.samples:,} raw samples observed before "
            f"{result.horizon:%Y-%m-%d} 00:00 UTC ({result.days:,} plan-metric-days of "
            f"{result.plans:,} plan(s)); rollups and sketches kept."
        )
