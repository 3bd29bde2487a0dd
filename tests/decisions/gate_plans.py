"""Plans in the three states the deployment gate tells apart, built directly (the checks, the
triggers and the rules have their own tests): a Go, a Roll back and a not-yet-decidable plan."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import ApiKey, Team, User
from metrics.models import CheckRun, CriterionResult, TriggerEpisode, TriggerState
from pilots import wording
from pilots.models import EntryCriterion, PilotPlan
from tests.factories import running_plan

STARTED_DAYS_AGO = 14  # ten business days or so: past the minimum observation period


def _observed_plan(team: Team, owner: User, title: str) -> PilotPlan:
    start = timezone.localdate() - dt.timedelta(days=STARTED_DAYS_AGO)
    plan = running_plan(team=team, owner=owner, start_date=start, business_days=20)
    PilotPlan.objects.filter(pk=plan.pk).update(title=title)
    plan.refresh_from_db()
    EntryCriterion.objects.filter(plan=plan).update(
        status=EntryCriterion.Status.MET,
        evidence_note="Checked by the test.",
        confirmed_by=owner,
        confirmed_at=timezone.now(),
    )
    return plan


def check_run_done(
    plan: PilotPlan, *, verdict: str = "met", at: dt.datetime | None = None
) -> CheckRun:
    """A done check run judging every exit criterion of ``plan`` with ``verdict``."""
    at = at or timezone.now() - dt.timedelta(hours=1)
    criteria = list(plan.exit_criteria.all())
    run = CheckRun.objects.create(
        plan=plan,
        due_at=at,
        local_date=at.date(),
        local_time=at.time().replace(microsecond=0),
        status=CheckRun.Status.DONE,
        finished_at=at,
        met=len(criteria) if verdict == "met" else 0,
        not_enough_evidence=len(criteria) if verdict == "not_enough_evidence" else 0,
    )
    CriterionResult.objects.bulk_create(
        CriterionResult(
            run=run,
            criterion=c,
            position=c.position,
            label=wording.criterion_text(c),
            comparator=c.comparator,
            threshold=None if c.threshold is None else float(c.threshold),
            blocking=c.blocking,
            value=None if c.threshold is None else float(c.threshold),
            low=None if c.threshold is None else float(c.threshold),
            high=None if c.threshold is None else float(c.threshold),
            sample_size=5_000,
            method="exact",
            verdict=verdict,
            reason="Built by the test.",
        )
        for c in criteria
    )
    return run


def triggers_ok(plan: PilotPlan) -> None:
    """Every rollback trigger evaluated with fresh data and not breaching."""
    for trigger in plan.rollback_triggers.all():
        TriggerState.objects.update_or_create(
            trigger=trigger, defaults={"plan": plan, "state": TriggerState.State.OK}
        )


def go_plan(team: Team, owner: User) -> PilotPlan:
    """Every blocking criterion met over the observation period, no trigger fired."""
    plan = _observed_plan(team, owner, "Gate: go")
    check_run_done(plan)
    triggers_ok(plan)
    return plan


def roll_back_plan(team: Team, owner: User) -> PilotPlan:
    """The criteria met, but a rollback trigger fired and nobody resolved it."""
    plan = _observed_plan(team, owner, "Gate: roll back")
    check_run_done(plan)
    triggers_ok(plan)
    trigger = plan.rollback_triggers.order_by("position").first()
    assert trigger is not None
    fired = timezone.now() - dt.timedelta(minutes=30)
    TriggerEpisode.objects.create(
        plan=plan,
        trigger=trigger,
        description=wording.trigger_text(trigger),
        breach_started_at=fired - dt.timedelta(minutes=5),
        fired_at=fired,
        value=1,
    )
    TriggerState.objects.filter(trigger=trigger).update(state=TriggerState.State.FIRED)
    return plan


def undecidable_plan(team: Team, owner: User) -> PilotPlan:
    """Observed long enough, but the blocking criteria have not enough evidence yet."""
    plan = _observed_plan(team, owner, "Gate: not yet decidable")
    check_run_done(plan, verdict="not_enough_evidence")
    triggers_ok(plan)
    return plan


def read_key(
    team: Team, po: User, *, name: str = "deploy-bot", scopes=("read",)
) -> tuple[ApiKey, str]:  # type: ignore[no-untyped-def]
    return api_key_create(team=team, name=name, scopes=scopes, created_by=po)
