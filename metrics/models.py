"""Metric definitions, samples, rollups, check runs and triggers (docs/metrics-ingestion.md,
docs/checks.md and docs/alerts.md describe them)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from core.constraints import FieldConstraints

# The heartbeat written by beat's one-minute tick.
TICK = "tick"


class Heartbeat(models.Model):
    """The last time a periodic process proved it was alive; one row per process name.

    Beat's one-minute ``tick`` task writes it; ``/healthz`` reports its age. One row per name
    (upserted) rather than one row per beat, so the table never grows.
    """

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField(help_text="When the process last started a run.")
    beats = models.PositiveBigIntegerField(default=0)
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a run last got to its end (whole or not)."
    )
    failed_plans = models.PositiveIntegerField(
        default=0, help_text="Plans a job failed for in the last completed run."
    )
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a run last failed as a whole (a step raised)."
    )
    error = models.CharField(max_length=300, blank=True, help_text="What failed then.")

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class PlanJobFailure(models.Model):
    """A background job failed for one plan (its other plans went on): shown on the plan page and
    in the portfolio, kept while the job keeps failing, deleted when it next succeeds for the plan
    (``metrics.failures``). One row per (plan, job), so the table never grows with retries."""

    class Job(models.TextChoices):
        CHECKS = "checks", "Scheduled checks"
        CHECK_RUN = "check_run", "Running a scheduled check"
        TRIGGERS = "triggers", "Rollback trigger evaluation"
        DIGEST = "digest", "Daily digest"

    class Category(models.TextChoices):
        TIMELINE = "timeline", "Timeline cannot be scheduled"
        TIME_ZONE = "time_zone", "Unknown time zone"
        DATABASE = "database", "Database error"
        ERROR = "error", "Unexpected error"

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="+")
    job = models.CharField(max_length=20, choices=Job.choices)
    category = models.CharField(max_length=20, choices=Category.choices)
    message = models.CharField(max_length=300)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "job"], name="metrics_planjobfailure_one"),
        ]

    def __str__(self) -> str:
        return f"{self.job} failing for plan {self.plan_id} since {self.first_at:%Y-%m-%d %H:%M}"


# --- Samples and rollups -----------------------------------------------------------------------

# A finite double: PostgreSQL's float8 accepts 'NaN' and ±'Infinity', a verdict never should.
# NaN sorts above every number in PostgreSQL, so "< +inf" refuses NaN as well as +inf.
_FINITE = models.Q(value__gt=float("-inf"), value__lt=float("inf"))


class IngestBatch(models.Model):
    """One accepted ingestion request, remembered so a retry returns the same answer.

    ``idempotency_key`` is the client's ``Idempotency-Key`` header (empty when none was sent);
    ``body_sha256`` tells a retried batch (same key, same body → the stored ``response``) from a
    misuse of the key (same key, another body → 422).
    """

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(
        "pilots.PilotPlan", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, blank=True)
    body_sha256 = models.CharField(max_length=64)
    received = models.PositiveIntegerField(help_text="Samples in the batch.")
    stored = models.PositiveIntegerField(help_text="Samples new to the database.")
    response = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="metrics_ingestbatch_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk}: {self.stored}/{self.received}"


class TransactionNow(models.Func):
    """PostgreSQL's ``now()``: when the transaction started (``Now`` is the statement's time)."""

    template = "now()"
    output_field = models.DateTimeField()


class Sample(FieldConstraints):
    """One observation of a metric in a pilot: the source of truth every rollup derives from.

    Unique per (plan, metric, observed_at, source) and, when the client names it, per (plan,
    external id): a retried push stores nothing twice. Written in bulk by ``metrics.ingest``
    (binary COPY into a staging table, then one ``INSERT``, with ``ON CONFLICT DO NOTHING`` when
    a row of the batch is already stored), never row by row.
    """

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the natural key's unique index starts with plan_id, and a second,
    # single-column one tempts the planner into scanning every sample of the plan.
    plan = models.ForeignKey(
        "pilots.PilotPlan", on_delete=models.CASCADE, related_name="samples", db_index=False
    )
    # No index either: no query looks samples up by metric alone. Deleting a metric that has
    # samples is refused from the small DayRollup table (its metric is PROTECTed and indexed;
    # every sample has its day rollup), so Django never scans samples by metric; the
    # database's own foreign-key check would, once, on deleting a metric.
    metric = models.ForeignKey(
        "catalogue.MetricDefinition",
        on_delete=models.DO_NOTHING,
        related_name="samples",
        db_index=False,
    )
    observed_at = models.DateTimeField()
    value = models.FloatField()
    source = models.CharField(max_length=50, default="api")
    external_id = models.CharField(max_length=100, blank=True)
    # The IngestBatch that stored the sample, as a plain number: an audit trail no query reads
    # by, so neither an index nor a foreign-key check per stored sample.
    batch_id = models.BigIntegerField(null=True, blank=True)
    # The database's default too: ingestion COPYs new samples straight into this table without
    # this column, so they all get their transaction's ``now()``, the time their rollups get.
    ingested_at = models.DateTimeField(default=timezone.now, db_default=TransactionNow())

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "metrics_sample_value_finite": (
            "value",
            "A value must be a finite number (not NaN or Infinity).",
        ),
    }

    class Meta:
        constraints = [
            # Also the index every range read uses: (plan, metric, observed_at …).
            models.UniqueConstraint(
                fields=["plan", "metric", "observed_at", "source"],
                name="metrics_sample_natural_key",
            ),
            models.UniqueConstraint(
                fields=["plan", "external_id"],
                condition=~models.Q(external_id=""),
                name="metrics_sample_external_id_unique",
            ),
            models.CheckConstraint(condition=_FINITE, name="metrics_sample_value_finite"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}@{self.observed_at:%Y-%m-%d %H:%M}={self.value}"


class Rollup(models.Model):
    """Aggregates of the samples of one (plan, metric) in one time bucket.

    Kept exact by the same statement that inserts samples: only rows that were new to
    ``Sample`` are added in, so a retried batch changes nothing. ``sum_sq`` gives the variance
    for a mean's interval. ``updated_at`` is when ingestion last added to the bucket: "any
    occurrence" triggers look only at buckets written since their previous episode ended.
    """

    # The primary key is the bucket's identity, (plan, metric, bucket): the index that ingestion's
    # ``ON CONFLICT`` and every read (a plan's metric over a time range) use. No surrogate id.
    pk = models.CompositePrimaryKey("plan", "metric", "bucket")
    # No foreign-key constraints in the database: a rollup row is only ever inserted by the
    # statement that inserts the sample it is built from, whose own checks already lock the
    # plan and the metric; deleting a plan deletes its rollups (Django's CASCADE).
    plan = models.ForeignKey(
        "pilots.PilotPlan",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # Not indexed: no query reads rollups by metric alone (see DayRollup for deletion).
    metric = models.ForeignKey(
        "catalogue.MetricDefinition",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    bucket = models.DateTimeField(help_text="Start of the bucket (UTC, truncated).")
    count = models.PositiveIntegerField()
    sum = models.FloatField()
    sum_sq = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()
    updated_at = models.DateTimeField(
        db_default=Now(), help_text="When ingestion last added samples to the bucket."
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.metric_id}@{self.bucket:%Y-%m-%d %H:%M} n={self.count}"

    @property
    def mean(self) -> float:
        return self.sum / self.count


class SketchedRollup(Rollup):
    """A rollup that also keeps a mergeable histogram of its values (``metrics.sketch``), so a
    percentile over any number of buckets reads one small array per bucket, not every sample.

    ``sketch`` is a PostgreSQL array whose *index* is the bin key (the array has a custom lower
    bound; a NULL element is an empty bin): the SQL functions ``metrics_sketch_key``,
    ``metrics_sketch_add`` and the aggregate ``metrics_sketch_agg`` (migration 0011) build and
    merge it; read it with ``array_lower(sketch, 1)``, as psycopg drops the bounds.
    """

    sketch = ArrayField(
        models.IntegerField(null=True), db_default=[], help_text="Histogram: bin key → count."
    )

    class Meta:
        abstract = True


class HourRollup(SketchedRollup):
    """Per-hour aggregates: the hours at the edges of a criterion's window.

    There is no per-minute rollup: it cost as much to write and store as the samples themselves
    (one row per per-minute sample). What reads whole minutes (the edges of a window, sustained
    triggers, the 24-hour chart) groups the raw samples of a range shorter than an hour or a day
    by minute, through the samples' natural-key index."""


class DayRollup(SketchedRollup):
    """Per-day (UTC) aggregates: what whole-pilot criteria read, so a check of a 90-day pilot
    reads about 90 rows per metric, not 2,160 hours or 130,000 samples."""

    # Deleting a metric that has samples is refused here: every sample has its day rollup, and
    # this table is small (one row per plan, metric and day), so the index is cheap to keep.
    metric = models.ForeignKey(
        "catalogue.MetricDefinition",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )


# --- Scheduled checks --------------------------------------------------------------------------


class CheckRun(FieldConstraints):
    """One check of one running plan. A scheduled run is unique per (plan, slot), the slot keyed
    by its UTC ``due_at`` (metrics/slots.py): claimed with ``INSERT … ON CONFLICT DO NOTHING`` by
    the tick, executed under a row lock in one transaction, so a slot never runs twice. An
    on-demand run (the PO or SM asked for it) is due when it was asked for, outside that key, and
    a plan has at most one waiting for the worker."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        MISSED = "missed", "Missed"

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ON_DEMAND = "on_demand", "On demand"

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="checks")
    due_at = models.DateTimeField()
    local_date = models.DateField()
    local_time = models.TimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    late = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    met = models.PositiveSmallIntegerField(default=0)
    not_met = models.PositiveSmallIntegerField(default=0)
    not_enough_evidence = models.PositiveSmallIntegerField(default=0)
    # The tick's INSERT leaves the column out: the database default makes its runs scheduled.
    trigger = models.CharField(
        max_length=10,
        choices=Trigger.choices,
        default=Trigger.SCHEDULED,
        db_default=Trigger.SCHEDULED,
    )
    requested_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who asked for an on-demand run.",
    )

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "metrics_checkrun_status_valid": ("status", "A check run is pending, done or missed."),
        "metrics_checkrun_trigger_valid": ("trigger", "A check run is scheduled or on demand."),
        "metrics_checkrun_one_pending_on_demand": (
            "trigger",
            "A check asked for is already waiting for the worker: it runs within a minute or two.",
        ),
    }

    class Meta:
        ordering = ["-due_at"]
        constraints = [
            # The tick's ON CONFLICT target (metrics.checks._CLAIM_SQL names the same predicate).
            models.UniqueConstraint(
                fields=["plan", "due_at"],
                condition=models.Q(trigger="scheduled"),
                name="metrics_checkrun_one_per_slot",
            ),
            models.UniqueConstraint(
                fields=["plan"],
                condition=models.Q(trigger="on_demand", status="pending"),
                name="metrics_checkrun_one_pending_on_demand",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "done", "missed"]),
                name="metrics_checkrun_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(trigger__in=["scheduled", "on_demand"]),
                name="metrics_checkrun_trigger_valid",
            ),
        ]
        indexes = [
            # The tick's sweep of runs still pending (a worker died, the broker was down).
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending"),
                name="metrics_checkrun_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"check of plan {self.plan_id} at {self.due_at:%Y-%m-%d %H:%M} UTC ({self.status})"


class CriterionResult(models.Model):
    """The verdict on one exit criterion in one check run, with what it was based on.

    The criterion's definition is copied (``label``, ``comparator``, ``threshold``, ``blocking``)
    so history stays true after the plan is edited; ``criterion`` links to the live row while it
    exists.
    """

    class Verdict(models.TextChoices):
        MET = "met", "Met"
        NOT_MET = "not_met", "Not met"
        NOT_ENOUGH_EVIDENCE = "not_enough_evidence", "Not enough evidence"

    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="results")
    criterion = models.ForeignKey(
        "pilots.ExitCriterion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=200)
    comparator = models.CharField(max_length=2)
    threshold = models.FloatField(null=True, blank=True)
    blocking = models.BooleanField(default=True)
    value = models.FloatField(null=True, blank=True)
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)
    sample_size = models.PositiveIntegerField(default=0)
    method = models.CharField(max_length=20, blank=True)
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "position"], name="metrics_criterionresult_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.verdict}"


class DailyDigest(models.Model):
    """The team's daily digest of one plan was sent for ``local_date``: at most once a day."""

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="+")
    local_date = models.DateField()
    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "local_date"], name="metrics_dailydigest_once_a_day"
            ),
        ]

    def __str__(self) -> str:
        return f"digest of plan {self.plan_id} for {self.local_date}"


# --- Rollback triggers -------------------------------------------------------------------------


class TriggerState(models.Model):
    """The latest evaluation of one rollback trigger: what plan pages show without re-reading
    samples. Written by ``metrics.triggers`` after each ingestion and each minute."""

    class State(models.TextChoices):
        OK = "ok", "OK"
        BREACHING = "breaching", "Breaching"
        FIRED = "fired", "Fired"
        NO_DATA = "no_data", "No data"
        STALE = "stale", "Stale"

    trigger = models.OneToOneField(
        "pilots.RollbackTrigger", on_delete=models.CASCADE, primary_key=True, related_name="state"
    )
    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices)
    detail = models.CharField(max_length=300, blank=True)
    evaluated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"trigger {self.trigger_id}: {self.state}"


class TriggerEpisode(models.Model):
    """One breach episode of a rollback trigger: recorded once, however long it lasts.

    At most one *active* episode per trigger (neither cleared nor resolved), enforced by a
    partial unique index, so concurrent evaluations cannot fire twice. A sustained trigger's
    episode is ``cleared_at`` when a minute stops breaching; people acknowledge and resolve.
    """

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="episodes")
    trigger = models.ForeignKey(
        "pilots.RollbackTrigger",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="episodes",
    )
    description = models.CharField(max_length=300, help_text="The trigger as it read when fired.")
    breach_started_at = models.DateTimeField()
    fired_at = models.DateTimeField(default=timezone.now)
    value = models.FloatField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger"],
                condition=models.Q(cleared_at__isnull=True, resolved_at__isnull=True),
                name="metrics_triggerepisode_one_active",
            ),
        ]
        indexes = [
            models.Index(
                fields=["plan"],
                condition=models.Q(resolved_at__isnull=True),
                name="metrics_episode_unresolved_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description} fired {self.fired_at:%Y-%m-%d %H:%M}"


class SignalEpisode(FieldConstraints):
    """A stretch of time a rollback trigger could not judge: no data since the pilot started
    (after the grace period) or only data older than the metric's expected interval.

    One open episode per trigger (a partial unique index), inserted with ``ON CONFLICT DO
    NOTHING``: the owner is told once per episode, however many ticks see it. It ends when
    fresh data arrives (or the state changes), and the next gap is a new episode.
    """

    class Kind(models.TextChoices):
        NO_DATA = "no_data", "No data"
        STALE = "stale", "Stale"

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "metrics_signalepisode_kind_valid": ("kind", "Choose a kind: no data or stale."),
    }

    plan = models.ForeignKey("pilots.PilotPlan", on_delete=models.CASCADE, related_name="+")
    trigger = models.ForeignKey(
        "pilots.RollbackTrigger", on_delete=models.CASCADE, related_name="signal_episodes"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    detail = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger"],
                condition=models.Q(ended_at__isnull=True),
                name="metrics_signalepisode_one_open",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["no_data", "stale"]),
                name="metrics_signalepisode_kind_valid",
            ),
        ]
        indexes = [
            # Serves the plan banner, the portfolio's count and the digest: a plan's open ones.
            models.Index(
                fields=["plan"],
                condition=models.Q(ended_at__isnull=True),
                name="metrics_signal_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"trigger {self.trigger_id}: {self.kind} since {self.started_at:%Y-%m-%d %H:%M}"
