"""The rollback checklist's services: start from a decision or as an emergency (and the later
decision linking to it), who is told, marking steps (rules, database constraints, who may,
compare-and-set), the verification in words, ending, and the close guard."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Notification, User
from catalogue.models import MetricDefinition
from core.exceptions import Conflict
from decisions.models import DecisionRecord, RollbackRun, RollbackStepRun
from decisions.services import rollback as service
from decisions.services.rollback import (
    VERIFICATION_ACTION,
    rollback_end,
    rollback_ended_guard,
    rollback_start,
    rollback_step_mark,
    rollback_verification,
)
from metrics.models import Sample, TriggerEpisode, TriggerState
from pilots.extensions import lifecycle_guards
from pilots.models import PilotPlan, RollbackPlan, RollbackStep, RollbackTrigger
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

Status = RollbackStepRun.Status
DAY = dt.date(2026, 3, 2)  # a Monday
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


# --- building blocks ------------------------------------------------------------------------------


@pytest.fixture
def plan(team, po, devops) -> PilotPlan:
    """Running, from the template: three rollback steps, a communication plan, the triggers
    "any P1 defect" and "p95 latency > 300 ms for 30 minutes"; the DevOps engineer executes."""
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


def latency(plan: PilotPlan) -> RollbackTrigger:
    return plan.rollback_triggers.get(metric__key="p95_latency")


def fire(plan: PilotPlan, trigger: RollbackTrigger | None = None, value: float = 450.0):
    trigger = trigger or latency(plan)
    TriggerState.objects.update_or_create(
        trigger=trigger, defaults={"plan": plan, "state": TriggerState.State.FIRED}
    )
    return TriggerEpisode.objects.create(
        plan=plan,
        trigger=trigger,
        description=str(trigger),
        breach_started_at=T0,
        fired_at=T0 + dt.timedelta(minutes=30),
        value=value,
    )


def decision(plan: PilotPlan, user: User, outcome: str = "roll_back", **fields) -> DecisionRecord:
    return DecisionRecord.objects.create(
        plan=plan,
        outcome=outcome,
        rationale="The latency trigger fired and stayed unresolved.",
        recommendation=outcome,
        recommendation_rule="trigger_fired",
        recommendation_words="Roll back: a trigger fired.",
        evidence={},
        evidence_hash="0" * 64,
        record_hash=secrets.token_hex(32),
        recorded_by=user,
        **fields,
    )


def minute(plan: PilotPlan, value: float, at: dt.datetime = T0) -> None:
    metric = MetricDefinition.objects.get(team=None, key="p95_latency")
    Sample.objects.create(plan=plan, metric=metric, observed_at=at, value=value)


def state(plan: PilotPlan, value: str, trigger: RollbackTrigger | None = None) -> None:
    TriggerState.objects.update_or_create(
        trigger=trigger or latency(plan), defaults={"plan": plan, "state": value}
    )


def steps(run: RollbackRun) -> list[RollbackStepRun]:
    return list(run.steps.order_by("position"))


def mark(step: RollbackStepRun, user: User, status: str, note: str = "") -> RollbackStepRun:
    step.refresh_from_db()
    return rollback_step_mark(
        step=step, user=user, status=status, note=note, expected_version=step.version
    )


def emergency(plan: PilotPlan, user: User) -> RollbackRun:
    return rollback_start(plan=plan, user=user, episode=fire(plan))


# --- start ----------------------------------------------------------------------------------------


def test_a_roll_back_decision_opens_the_checklist_with_the_steps_in_order_then_verification(
    plan, po
):
    record = decision(plan, po)

    run = rollback_start(plan=plan, user=po, decision=record)

    assert run.decision == record and not run.emergency and run.episode is None
    assert run.started_by == po and run.ended_at is None
    assert run.communication_plan.startswith("Post in #pilot-saved-cards")
    actions = [(s.position, s.kind, s.action) for s in steps(run)]
    assert [a for _, _, a in actions[:3]] == [
        "Switch the saved-cards feature flag off for the cohort",
        "Revert the change set and redeploy the previous release",
        "Verify checkout on the previous release with a smoke test",
    ]
    assert actions[-1] == (4, "verification", VERIFICATION_ACTION)
    first = steps(run)[0]
    assert first.expected_minutes == 5 and first.owner_name
    assert all(s.status == Status.PENDING for s in steps(run))


def test_the_checklist_is_a_copy_the_runbook_can_change_afterwards(plan, po):
    run = rollback_start(plan=plan, user=po, decision=decision(plan, po))
    RollbackStep.objects.filter(plan=plan).update(action="Edited later")
    RollbackPlan.objects.filter(plan=plan).update(communication_plan="Edited later")

    run.refresh_from_db()
    assert "Edited later" not in {s.action for s in steps(run)}
    assert run.communication_plan != "Edited later"


def test_starting_tells_the_owner_the_executor_and_the_whole_team_at_once(
    plan, po, sm, developer, devops, stakeholder, outsider
):
    run = emergency(plan, devops)

    notes = Notification.objects.filter(kind=Notification.Kind.ROLLBACK_STARTED)
    # Everyone but the one who started it (they know), nobody outside the team.
    assert {n.user for n in notes} == {po, sm, developer, stakeholder}
    assert all(n.url == f"/plans/{plan.pk}/rollback" for n in notes)
    assert "Emergency rollback" in notes[0].message and run.episode.description in notes[0].message


def test_the_executor_hears_of_it_when_the_owner_starts_it(plan, po, devops):
    emergency(plan, po)
    told = {n.user for n in Notification.objects.filter(kind=Notification.Kind.ROLLBACK_STARTED)}
    assert {devops} <= told and po not in told


def test_an_emergency_rollback_starts_from_a_fired_episode_while_running_or_evaluating(
    plan, devops
):
    episode = fire(plan)
    run = rollback_start(plan=plan, user=devops, episode=episode)
    assert run.emergency and run.episode == episode and run.decision is None

    rollback_end_all(run, devops)
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.EVALUATING)
    assert rollback_start(plan=plan, user=devops, episode=episode).emergency


@pytest.mark.parametrize("status", ["approved", "decided", "closed"])
def test_no_emergency_rollback_outside_running_or_evaluating(plan, devops, status):
    episode = fire(plan)
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    with pytest.raises(Conflict, match="Running or Evaluating"):
        rollback_start(plan=plan, user=devops, episode=episode)
    assert not RollbackRun.objects.exists()


def test_an_emergency_needs_an_episode_of_this_plan(plan, team, po, devops):
    with pytest.raises(ValidationError) as missing:
        rollback_start(plan=plan, user=devops)
    assert "episode" in missing.value.message_dict
    other = running_plan(team=team, owner=po, start_date=DAY)
    with pytest.raises(ValidationError, match="another plan"):
        rollback_start(plan=plan, user=devops, episode=fire(other, latency(other)))


def test_one_open_rollback_per_plan(plan, devops):
    run = emergency(plan, devops)
    with pytest.raises(Conflict, match="already in progress"):
        rollback_start(plan=plan, user=devops, episode=run.episode)
    # The database says so too, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        RollbackRun.objects.create(plan=plan, started_by=devops)
    assert RollbackRun.objects.filter(plan=plan).count() == 1 and run.is_open


@pytest.mark.parametrize("ended", [False, True])
def test_a_roll_back_decision_links_to_the_emergency_rollback_instead_of_starting_another(
    plan, po, devops, ended
):
    run = emergency(plan, devops)
    if ended:
        rollback_end_all(run, devops)
    Notification.objects.all().delete()

    record = decision(plan, po)
    linked = rollback_start(plan=plan, user=po, decision=record)

    assert linked.pk == run.pk and linked.decision == record and linked.emergency
    assert RollbackRun.objects.count() == 1
    assert not Notification.objects.exists()  # the team heard when it started
    assert list(record.rollback_runs.all()) == [run]
    # Asking again (a retried request) changes nothing.
    assert rollback_start(plan=plan, user=po, decision=record).pk == run.pk


def test_only_a_roll_back_decision_of_this_plan_starts_a_rollback(plan, team, po):
    with pytest.raises(ValidationError, match="Only a Roll back decision"):
        rollback_start(plan=plan, user=po, decision=decision(plan, po, "go"))
    other = running_plan(team=team, owner=po, start_date=DAY)
    with pytest.raises(ValidationError, match="another plan"):
        rollback_start(plan=plan, user=po, decision=decision(other, po))


def test_a_plan_without_rollback_steps_still_gets_the_verification_step(plan, po, devops):
    RollbackStep.objects.filter(plan=plan).delete()
    run = emergency(plan, devops)
    assert [(s.position, s.kind) for s in steps(run)] == [(1, "verification")]


# --- who may start --------------------------------------------------------------------------------


def test_product_owner_devops_and_the_executor_may_start_an_emergency(
    plan, po, devops, developer, sm, stakeholder
):
    assert service.rollback_start_allowed(plan, po)
    assert service.rollback_start_allowed(plan, devops)
    for user in (developer, sm, stakeholder):
        assert not service.rollback_start_allowed(plan, user)
        with pytest.raises(PermissionDenied) as refused:
            rollback_start(plan=plan, user=user, episode=fire(plan))
        # The words name the person.
        assert str(refused.value) == (
            f"{devops.display_name} (the rollback executor) or the team's DevOps lead or "
            "Product Owner can start a rollback."
        )
        TriggerEpisode.objects.all().delete()
    # The executor may whatever their role.
    PilotPlan.objects.filter(pk=plan.pk).update(rollback_executor=developer)
    plan.refresh_from_db()
    assert service.rollback_start_allowed(plan, developer)
    assert rollback_start(plan=plan, user=developer, episode=fire(plan)).started_by == developer


# --- marking steps --------------------------------------------------------------------------------


def test_done_skipped_and_failed_record_who_when_and_why(plan, devops):
    run = emergency(plan, devops)
    first, second, third, verify = steps(run)

    done = mark(first, devops, "done")
    assert done.status == Status.DONE and done.done_by == devops and done.done_at
    with pytest.raises(ValidationError) as no_reason:
        mark(second, devops, "skipped", "  ")
    assert no_reason.value.message_dict == {"note": ["Say why the step is skipped."]}
    skipped = mark(second, devops, "skipped", "Nothing was deployed yet.")
    assert skipped.note == "Nothing was deployed yet."
    with pytest.raises(ValidationError) as no_note:
        mark(third, devops, "failed")
    assert no_note.value.message_dict == {"note": ["Say what went wrong."]}
    assert mark(third, devops, "failed", "Smoke test timed out.").status == Status.FAILED
    with pytest.raises(ValidationError, match="recovered"):
        mark(verify, devops, "skipped", "No time")
    with pytest.raises(ValidationError):
        mark(verify, devops, "finished")


def test_a_mark_can_be_set_back_to_not_done_with_a_note(plan, devops):
    first = steps(emergency(plan, devops))[0]
    mark(first, devops, "done")
    with pytest.raises(ValidationError, match="set back"):
        mark(first, devops, "pending")
    undone = mark(first, devops, "pending", "Ticked the wrong step.")
    assert undone.status == Status.PENDING and undone.note == "Ticked the wrong step."
    with pytest.raises(ValidationError, match="not marked yet"):
        mark(first, devops, "pending", "Again")


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"status": "skipped", "note": " "}, "decisions_rollbackstep_skipped_needs_reason"),
        ({"status": "failed", "note": ""}, "decisions_rollbackstep_failed_needs_note"),
        ({"status": "done", "done_by": None}, "decisions_rollbackstep_marked_needs_who"),
        ({"status": "done", "done_at": None}, "decisions_rollbackstep_marked_needs_who"),
        ({"status": "finished"}, "decisions_rollbackstep_status_valid"),
        ({"kind": "other"}, "decisions_rollbackstep_kind_valid"),
    ],
)
def test_the_database_refuses_a_step_that_breaks_the_rules(plan, devops, fields, constraint):
    step = steps(emergency(plan, devops))[0]
    values = {"done_by": devops, "done_at": timezone.now(), "note": "x", **fields}
    for name, value in values.items():
        setattr(step, name, value)
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        step.save()
    # And full_clean puts it on the field, in words (core.constraints).
    field = RollbackStepRun.CONSTRAINT_FIELDS[constraint][0]
    with pytest.raises(ValidationError) as invalid:
        step.validate_constraints()
    assert field in invalid.value.message_dict


def test_an_ended_run_needs_who_ended_it(plan, devops):
    run = emergency(plan, devops)
    run.ended_at = timezone.now()
    with (
        pytest.raises(IntegrityError, match="decisions_rollbackrun_ended_with_who"),
        transaction.atomic(),
    ):
        run.save()


def test_only_the_executor_or_devops_work_the_checklist(
    plan, po, sm, developer, devops, stakeholder, team
):
    first = steps(emergency(plan, po))[0]
    for user in (po, sm, developer, stakeholder):
        with pytest.raises(PermissionDenied, match="the rollback executor"):
            mark(first, user, "done")
    first.refresh_from_db()
    assert first.status == Status.PENDING
    # The executor works it whatever their role.
    PilotPlan.objects.filter(pk=plan.pk).update(rollback_executor=developer)
    assert mark(first, developer, "done").done_by == developer


def test_a_stale_mark_is_a_conflict_with_the_other_persons_values(plan, devops, team):
    from tests.factories import MembershipFactory, UserFactory

    other = MembershipFactory(
        team=team, role="devops", user=UserFactory(email="ops2@example.test", full_name="Ola Ops")
    ).user
    step = steps(emergency(plan, devops))[1]
    seen = step.version
    mark(step, other, "skipped", "Already reverted by the hotfix.")

    with pytest.raises(Conflict) as stale:
        rollback_step_mark(step=step, user=devops, status="done", expected_version=seen)
    assert "Ola Ops marked it “Skipped”" in stale.value.message
    assert "Already reverted by the hotfix." in stale.value.message
    step.refresh_from_db()
    assert step.status == Status.SKIPPED and step.done_by == other


# --- verification ---------------------------------------------------------------------------------


def verification_of(plan: PilotPlan, devops: User, value: float | None, trigger_state: str):
    run = emergency(plan, devops)
    if value is not None:
        minute(plan, value)
    state(plan, trigger_state)
    return rollback_verification(run)


def test_verification_recovered(plan, devops):
    v = verification_of(plan, devops, 210.0, TriggerState.State.OK)
    assert v.recovered is True and v.label == "Recovered"
    [check] = v.checks
    assert check.recovered is True
    assert check.words.startswith("Recovered: “p95 latency > 300 ms for 30 minutes” is OK")
    assert "210 ms" in check.words and "> 300 ms" in check.words


@pytest.mark.parametrize("trigger_state", ["fired", "breaching"])
def test_verification_still_breached(plan, devops, trigger_state):
    v = verification_of(plan, devops, 480.0, trigger_state)
    assert v.recovered is False and v.label == "Not recovered"
    assert v.checks[0].words.startswith("Still breached:")
    assert "480 ms" in v.checks[0].words


def test_an_ok_state_with_a_breaching_latest_minute_is_not_recovered(plan, devops):
    v = verification_of(plan, devops, 480.0, TriggerState.State.OK)
    assert v.recovered is False


@pytest.mark.parametrize(
    ("value", "trigger_state"),
    [(None, "ok"), (None, "no_data"), (200.0, "stale"), (200.0, "no_data")],
)
def test_no_data_is_never_shown_as_recovered(plan, devops, value, trigger_state):
    v = verification_of(plan, devops, value, trigger_state)
    assert v.recovered is None and v.label == "Cannot tell yet"
    assert v.checks[0].recovered is None
    assert v.checks[0].words.startswith("No data: cannot tell")


def test_a_decision_rollback_verifies_every_trigger_that_fired_in_the_pilot(plan, po):
    p1 = plan.rollback_triggers.get(metric__key="p1_defects")
    fire(plan)
    fire(plan, p1, value=1)
    state(plan, TriggerState.State.OK)
    state(plan, TriggerState.State.OK, trigger=p1)
    minute(plan, 200.0)
    run = rollback_start(plan=plan, user=po, decision=decision(plan, po))

    v = rollback_verification(run)
    assert [c.trigger_id for c in v.checks] == [p1.pk, latency(plan).pk]
    # The P1 count has no minute of data: it cannot be called recovered.
    assert v.recovered is None
    assert [c.recovered for c in v.checks] == [None, True]


def test_a_decision_rollback_with_no_fired_trigger_says_so(plan, po):
    run = rollback_start(plan=plan, user=po, decision=decision(plan, po))
    v = rollback_verification(run)
    assert v.recovered is None and v.checks == ()
    assert "No rollback trigger fired" in v.words


def test_verification_reads_in_a_constant_number_of_queries(plan, po, django_assert_num_queries):
    fire(plan)
    run = rollback_start(plan=plan, user=po, decision=decision(plan, po))
    run = RollbackRun.objects.select_related("plan", "episode").get(pk=run.pk)
    with django_assert_num_queries(3):  # fired triggers, the triggers with state, latest minutes
        rollback_verification(run)


# --- end ------------------------------------------------------------------------------------------


def rollback_end_all(run: RollbackRun, user: User) -> RollbackRun:
    for step in steps(run):
        if step.status == Status.PENDING:
            mark(step, user, "done")
    return rollback_end(run=run, user=user)


def test_ending_needs_every_step_marked_and_lists_the_rest(plan, devops):
    run = emergency(plan, devops)
    first, second, third, verify = steps(run)
    mark(first, devops, "done")
    mark(third, devops, "failed", "Smoke test timed out.")

    with pytest.raises(Conflict) as refused:
        rollback_end(run=run, user=devops)
    assert "Not done yet: 2. Revert the change set" in refused.value.message
    assert f"4. {VERIFICATION_ACTION}" in refused.value.message

    mark(second, devops, "skipped", "Nothing to revert.")
    mark(verify, devops, "done")
    ended = rollback_end(run=run, user=devops)
    assert ended.ended_by == devops and ended.ended_at is not None
    with pytest.raises(Conflict, match="already ended"):
        rollback_end(run=run, user=devops)
    with pytest.raises(Conflict, match="checklist is closed"):
        mark(first, devops, "pending", "Too late")


def test_ending_tells_the_owner(plan, po, devops):
    run = emergency(plan, devops)
    Notification.objects.all().delete()
    rollback_end_all(run, devops)
    [note] = Notification.objects.all()
    assert note.user == po and "ended by" in note.message


def test_the_product_owner_may_not_end_it(plan, po, devops):
    run = emergency(plan, devops)
    for step in steps(run):
        mark(step, devops, "done")
    with pytest.raises(PermissionDenied):
        rollback_end(run=run, user=po)


# --- closing --------------------------------------------------------------------------------------


def test_the_close_guard_is_registered():
    assert rollback_ended_guard in lifecycle_guards("close")


def test_a_roll_back_decision_closes_only_after_its_rollback_ended(plan, po, devops):
    assert rollback_ended_guard(plan) == []  # no decision, no rollback
    record = decision(plan, po)
    assert rollback_ended_guard(plan) == [
        "The decision is Roll back: run the rollback checklist to its end before closing."
    ]
    run = rollback_start(plan=plan, user=po, decision=record)
    assert rollback_ended_guard(plan) == [
        "End the rollback in progress (every step marked) before closing the pilot."
    ]
    rollback_end_all(run, devops)
    assert rollback_ended_guard(plan) == []


def test_a_superseding_go_decision_does_not_need_a_rollback(plan, po):
    first = decision(plan, po)
    decision(plan, po, "go", supersedes=first, supersedes_hash=first.record_hash)
    assert rollback_ended_guard(plan) == []


def test_a_correction_that_keeps_roll_back_carries_on_with_the_same_rollback(plan, po, devops):
    first = decision(plan, po)
    run = rollback_start(plan=plan, user=po, decision=first)
    rollback_end_all(run, devops)
    decision(plan, po, supersedes=first, supersedes_hash=first.record_hash)
    assert rollback_ended_guard(plan) == []


def test_roll_back_after_a_go_correction_needs_a_new_rollback(plan, po, devops):
    first = decision(plan, po)
    rollback_end_all(rollback_start(plan=plan, user=po, decision=first), devops)
    go = decision(plan, po, "go", supersedes=first, supersedes_hash=first.record_hash)
    again = decision(plan, po, supersedes=go, supersedes_hash=go.record_hash)
    assert rollback_ended_guard(plan) != []
    run = rollback_start(plan=plan, user=po, decision=again)
    assert run.decision == again and RollbackRun.objects.count() == 2
    rollback_end_all(run, devops)
    assert rollback_ended_guard(plan) == []
