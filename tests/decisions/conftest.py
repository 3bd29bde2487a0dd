"""Plans with evidence for the decision record's tests: a running pilot past its minimum
observation period, entry criteria met, and a done check run whose verdicts a test chooses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from metrics.models import CheckRun, CriterionResult, TriggerEpisode
from pilots import wording
from pilots.models import EntryCriterion, PilotPlan
from tests.factories import running_plan

MET, NOT_MET, UNDECIDED = "met", "not_met", "not_enough_evidence"


def check_done(plan: PilotPlan, verdicts: list[str], *, hours_ago: int = 1) -> CheckRun:
    """A done check run of ``plan`` with one result per exit criterion (in position order),
    each with the verdict given, as the scheduler stores them."""
    due = timezone.now().replace(microsecond=0) - dt.timedelta(hours=hours_ago)
    criteria = list(plan.exit_criteria.order_by("position"))
    assert len(verdicts) == len(criteria)
    run = CheckRun.objects.create(
        plan=plan,
        due_at=due,
        local_date=due.date(),
        local_time=due.time(),
        status=CheckRun.Status.DONE,
        attempts=1,
        finished_at=due,
        met=verdicts.count(MET),
        not_met=verdicts.count(NOT_MET),
        not_enough_evidence=verdicts.count(UNDECIDED),
    )
    for criterion, verdict in zip(criteria, verdicts, strict=True):
        threshold = float(criterion.threshold) if criterion.threshold is not None else None
        CriterionResult.objects.create(
            run=run,
            criterion=criterion,
            position=criterion.position,
            label=wording.criterion_text(criterion)[:200],
            comparator=criterion.comparator,
            threshold=threshold,
            blocking=criterion.blocking,
            value=(threshold or 0) + (0.5 if verdict == NOT_MET else 0.0),
            low=(threshold or 0) - 0.25,
            high=(threshold or 0) + 0.75,
            sample_size=120,
            method="t",
            verdict=verdict,
            reason=f"Checked: {verdict.replace('_', ' ')}.",
        )
    return run


def fire(plan: PilotPlan, *, minutes_ago: int = 30) -> TriggerEpisode:
    """The plan's first rollback trigger fired and nobody resolved it."""
    trigger = plan.rollback_triggers.order_by("position").first()
    assert trigger is not None
    fired = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return TriggerEpisode.objects.create(
        plan=plan,
        trigger=trigger,
        description=wording.trigger_text(trigger),
        breach_started_at=fired,
        fired_at=fired,
        value=1,
    )


@pytest.fixture
def decidable(team: Any, po: Any) -> Callable[..., PilotPlan]:
    """``decidable(verdicts)``: a running plan (the template's five exit criteria) that started
    three weeks ago, its entry criteria met, checked with ``verdicts``."""

    def make(verdicts: list[str] | None = None, **fields: object) -> PilotPlan:
        start = timezone.localdate() - dt.timedelta(days=21)
        plan = running_plan(team=team, owner=po, start_date=start, business_days=20, **fields)
        EntryCriterion.objects.filter(plan=plan).update(
            status=EntryCriterion.Status.WAIVED,
            waiver_reason="Covered by the release checklist",
            confirmed_by=po,
            confirmed_at=timezone.now(),
        )
        check_done(plan, verdicts or [MET] * 5)
        return plan

    return make
