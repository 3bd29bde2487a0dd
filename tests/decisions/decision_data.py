"""A Running plan with ``n`` exit criteria and ``runs`` done check runs, for the decision page's
tests (unit and browser): the seed's rollback triggers, its own criteria (blocking and advisory,
met, not met and not enough evidence in turn), and criterion results per run with a drifting
value so the trend has a shape. Rows are bulk-created: a hundred runs take one query each."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from accounts.models import Team, User
from catalogue.models import MetricDefinition
from metrics.models import CheckRun, CriterionResult
from pilots.models import ExitCriterion, PilotPlan
from tests.factories import running_plan

# (metric key, aggregation, comparator, threshold, unit, blocking, verdict in the latest run)
CRITERIA = [
    ("p95_latency", "percentile", "lt", "300", "ms", True, "met"),
    ("error_rate", "mean", "lt", "1", "%", True, "met"),
    ("csat", "mean", "ge", "4", "", True, "met"),
    ("p95_latency", "mean", "lt", "250", "ms", True, "met"),
    ("error_rate", "mean", "lt", "5", "%", False, "not_enough_evidence"),
    ("csat", "latest", "ge", "3.5", "", False, "met"),
    ("sessions", "total", "ge", "500", "", False, "met"),
    ("requests", "total", "ge", "10000", "", False, "not_met"),
]


# The estimator each aggregation's check uses (metrics.statistics).
METHODS = {"mean": "t", "percentile": "order_statistic", "total": "exact", "latest": "exact"}


def decision_plan(
    *,
    team: Team,
    owner: User,
    criteria: int = 8,
    runs: int = 10,
    verdicts: list[str] | None = None,
    started_days_ago: int = 10,
    **fields: object,
) -> PilotPlan:
    now = timezone.now()
    plan = running_plan(
        team=team,
        owner=owner,
        start_date=(now - dt.timedelta(days=started_days_ago)).date(),
        business_days=20,
        **fields,
    )
    ExitCriterion.objects.filter(plan=plan).delete()
    metrics = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))
    made = []
    for position, (key, agg, comparator, threshold, unit, blocking, _v) in enumerate(
        CRITERIA[:criteria], start=1
    ):
        made.append(
            ExitCriterion.objects.create(
                plan=plan,
                position=position,
                metric_id=metrics[key],
                aggregation=agg,
                percentile=Decimal("95") if agg == "percentile" else None,
                comparator=comparator,
                threshold=Decimal(threshold),
                unit=unit,
                blocking=blocking,
                min_sample_size=30,
            )
        )
    latest = verdicts or [row[6] for row in CRITERIA[:criteria]]
    check_runs_add(plan, made, runs=runs, latest=latest, now=now)
    return plan


def check_runs_add(
    plan: PilotPlan,
    criteria: list[ExitCriterion],
    *,
    runs: int,
    latest: list[str],
    now: dt.datetime,
) -> None:
    """``runs`` done check runs, two a day back from now; the last has ``latest`` verdicts."""
    results: list[CriterionResult] = []
    for i in range(runs):
        due = now - dt.timedelta(hours=12 * (runs - i))
        last = i == runs - 1
        run = CheckRun.objects.create(
            plan=plan, due_at=due, local_date=due.date(), local_time=dt.time(due.hour),
            status="done", finished_at=due,
            met=sum(v == "met" for v in latest), not_met=sum(v == "not_met" for v in latest),
            not_enough_evidence=sum(v == "not_enough_evidence" for v in latest),
        )  # fmt: skip
        for c, verdict in zip(criteria, latest, strict=True):
            threshold = float(c.threshold or 0)
            # The latest value sits where its verdict says (met: well on the right side of the
            # threshold, its interval too; not met: on the wrong side; not enough evidence: an
            # interval straddling it); earlier runs drift towards it.
            better = -1 if c.comparator in ("lt", "le") else 1
            side = {"met": 0.2, "not_met": -0.2}.get(verdict, 0.02) * better
            progress = i / max(runs - 1, 1)
            value = threshold * (
                1 + side * (0.6 + 0.4 * progress + 0.05 * ((i % 3) - 1) * (not last))
            )
            spread = threshold * (0.08 if verdict == "not_enough_evidence" else 0.05)
            results.append(
                CriterionResult(
                    run=run,
                    criterion=c,
                    position=c.position,
                    label=str(c.metric.name),
                    comparator=c.comparator,
                    threshold=threshold,
                    blocking=c.blocking,
                    value=value,
                    low=value - spread,
                    high=value + spread,
                    sample_size=120 + 40 * i,
                    method=METHODS.get(c.aggregation, "exact"),
                    verdict=verdict if last else "met",
                    reason=f"{verdict.replace('_', ' ')} at check {i + 1}",
                )
            )
    CriterionResult.objects.bulk_create(results)


def entry_criteria_met(plan: PilotPlan, user: User) -> None:
    """Every entry criterion met, with evidence, as the team would confirm them."""
    from pilots.models import EntryCriterion

    EntryCriterion.objects.filter(plan=plan).update(
        status=EntryCriterion.Status.MET,
        evidence_url="https://ci.example.com/1",
        confirmed_by=user,
        confirmed_at=timezone.now(),
    )
