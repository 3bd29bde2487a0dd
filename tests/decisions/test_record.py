"""The decision record: recorded only by the decision owner, immutable in the database, corrected
by superseding, tamper-evident by its hashes, and unmoved by anything that happens after it."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import Membership, Notification
from core.exceptions import Conflict
from decisions.evidence import decision_evidence
from decisions.models import DecisionComment, DecisionRecord, RollbackRun
from decisions.selectors import decision_head, decision_records_for_plan
from decisions.services import decision as service
from decisions.services.decision import (
    decision_comment_add,
    decision_owner,
    decision_record,
    decision_record_verify,
    iteration_title,
)
from metrics.ingest import samples_store
from metrics.models import CheckRun, Sample
from pilots.models import ExitCriterion, PilotPlan, PlanGuest, PlanTransition
from pilots.services.lifecycle import plan_transition, transition_blockers
from tests.decisions.conftest import MET, NOT_MET, UNDECIDED, check_done, fire
from tests.factories import MembershipFactory, PilotPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

Status = PilotPlan.Status


def _record(plan, user, outcome="go", **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("rationale", "Every blocking criterion met over three weeks.")
    return decision_record(plan=plan, user=user, outcome=outcome, **kw)


def _canonical(value) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture
def calls(monkeypatch):  # type: ignore[no-untyped-def]
    """What the record asked of the rollback and the post-pilot review (stubs until merge)."""
    seen: dict[str, list[dict]] = {"rollback": [], "review": []}
    monkeypatch.setattr(service, "rollback_start", lambda **kw: seen["rollback"].append(kw))
    monkeypatch.setattr(service, "post_pilot_review_open", lambda **kw: seen["review"].append(kw))
    return seen


# --- recording -----------------------------------------------------------------------------------


def test_a_first_decision_ends_the_time_box_decides_and_freezes_the_evidence(decidable, po, calls):
    plan = decidable([MET] * 5)
    expected = decision_evidence(plan).snapshot()

    record = _record(plan, po)

    plan.refresh_from_db()
    assert (plan.status, plan.decision, plan.decided_by) == (Status.DECIDED, "go", po)
    assert plan.decided_at == record.recorded_at
    steps = PlanTransition.objects.filter(plan=plan).order_by("at", "pk")
    assert [(t.from_status, t.to_status, t.actor) for t in steps] == [
        ("running", "evaluating", po),
        ("evaluating", "decided", po),
    ]
    assert steps.last().reason == "Every blocking criterion met over three weeks."
    record = DecisionRecord.objects.get(pk=record.pk)
    assert (record.outcome, record.recommendation, record.recommendation_rule) == (
        "go", "go", "go"
    )  # fmt: skip
    assert record.recommendation_words.startswith("Go: ")
    assert record.is_override is False and record.override_reason == ""
    assert record.evidence["criteria"] == expected["criteria"]
    assert [c["verdict"] for c in record.evidence["criteria"]] == [MET] * 5
    assert record.evidence_hash == hashlib.sha256(_canonical(record.evidence).encode()).hexdigest()
    assert len(record.record_hash) == 64 and record.supersedes_hash == ""
    assert decision_record_verify(record) == []
    [opened] = calls["review"]  # the post-pilot review opens with the first decision
    assert (opened["plan"].pk, opened["decided_at"]) == (plan.pk, record.recorded_at)
    assert calls["rollback"] == []


def test_the_record_hash_covers_every_field(decidable, po, calls):
    record = DecisionRecord.objects.get(pk=_record(decidable(), po).pk)
    fields = {
        "plan": record.plan_id,
        "outcome": record.outcome,
        "rationale": record.rationale,
        "override_reason": record.override_reason,
        "recommendation": record.recommendation,
        "recommendation_rule": record.recommendation_rule,
        "recommendation_words": record.recommendation_words,
        "evidence_hash": record.evidence_hash,
        "supersedes": None,
        "supersedes_hash": "",
        "recorded_by": po.pk,
        "recorded_at": record.recorded_at.isoformat(),
    }
    assert record.record_hash == hashlib.sha256(_canonical(fields).encode()).hexdigest()


def test_an_evaluating_plan_is_decided_in_one_step(decidable, po, calls):
    plan = decidable()
    plan_transition(plan=plan, action="evaluate", user=po, reason="Time-box over")
    _record(plan, po)
    assert list(
        PlanTransition.objects.filter(plan=plan).order_by("at", "pk").values_list("to_status")
    ) == [("evaluating",), ("decided",)]


@pytest.mark.parametrize("status", ["draft", "in_review", "approved"])
def test_a_pilot_that_has_not_run_cannot_be_decided(decidable, po, status, calls):
    plan = decidable()
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    with pytest.raises(Conflict, match="for a Running or Evaluating pilot"):
        _record(plan, po, override_reason="x")
    assert not DecisionRecord.objects.exists()


def test_bad_input_names_its_field_and_records_nothing(decidable, po, calls):
    plan = decidable()
    with pytest.raises(ValidationError) as bad:
        _record(plan, po, outcome="maybe", rationale="   ")
    assert set(bad.value.error_dict) == {"outcome", "rationale"}
    with pytest.raises(ValidationError) as long:
        _record(plan, po, rationale="x" * 5001)
    assert set(long.value.error_dict) == {"rationale"}
    assert not DecisionRecord.objects.exists()
    assert PilotPlan.objects.get(pk=plan.pk).status == Status.RUNNING


@pytest.mark.parametrize(
    ("verdicts", "recommendation"),
    [([MET, NOT_MET, MET, MET, MET], "iterate"), ([MET, UNDECIDED, MET, MET, MET], "not_yet")],
)
def test_going_against_the_recommendation_demands_an_override_reason(
    decidable, po, verdicts, recommendation, calls
):
    plan = decidable(verdicts)
    assert decision_evidence(plan).recommendation.startswith(recommendation)
    with pytest.raises(ValidationError) as refused:
        _record(plan, po, outcome="go", override_reason="  ")
    assert set(refused.value.error_dict) == {"override_reason"}
    assert "needs an override reason" in refused.value.messages[0]
    assert PilotPlan.objects.get(pk=plan.pk).status == Status.RUNNING

    record = _record(plan, po, outcome="go", override_reason="The CSAT survey was broken.")
    assert record.is_override and record.override_reason == "The CSAT survey was broken."


def test_an_override_reason_is_not_kept_when_the_decision_follows_the_recommendation(
    decidable, po, calls
):
    record = _record(decidable(), po, override_reason="Not needed")
    assert record.override_reason == ""


def test_the_decide_step_happens_only_through_the_record(decidable, po, calls):
    plan = decidable()
    plan_transition(plan=plan, action="evaluate", user=po)
    with pytest.raises(ValidationError) as refused:
        plan_transition(plan=plan, action="decide", user=po, decision="go", reason="Met")
    assert refused.value.message_dict == {
        "action": [
            "Record the decision on the plan's decision page "
            f"(POST /api/v1/plans/{plan.pk}/decisions)."
        ]
    }
    assert transition_blockers(plan=plan, action="decide", user=po)[0].startswith(
        "Record the decision on the plan's decision page"
    )
    assert PilotPlan.objects.get(pk=plan.pk).status == Status.EVALUATING


# --- who decides ---------------------------------------------------------------------------------


def test_only_the_decision_owner_records(decidable, team, po, sm, developer, stakeholder, calls):
    plan = decidable()
    other_po = MembershipFactory(
        team=team, role=Membership.Role.PRODUCT_OWNER, user=UserFactory(full_name="Dana Diaz")
    ).user
    assert decision_owner(plan) == po
    for person in (other_po, sm, developer):
        with pytest.raises(PermissionDenied, match=r"\(the decision owner\) records this pilot"):
            _record(plan, person)
    with pytest.raises(PermissionDenied, match="Stakeholders can read the decision"):
        _record(plan, stakeholder)
    assert not DecisionRecord.objects.exists()


def test_a_named_decision_owner_who_is_not_the_po_records_it(decidable, po, sm, calls):
    plan = decidable(decision_owner=sm)
    with pytest.raises(PermissionDenied, match=f"{sm.display_name} \\(the decision owner\\)"):
        _record(plan, po)
    record = _record(plan, sm)  # from Running: the evaluate step needs no PO here
    plan.refresh_from_db()
    assert (plan.status, plan.decided_by, record.recorded_by) == (Status.DECIDED, sm, sm)


def test_without_a_named_decision_owner_the_plan_owner_decides(decidable, po, calls):
    plan = decidable(decision_owner=None)
    assert decision_owner(plan) == po
    assert _record(plan, po).recorded_by == po


# --- immutability --------------------------------------------------------------------------------


def test_the_database_refuses_to_update_or_delete_a_record(decidable, po, calls):
    record = _record(decidable(), po)
    for sql in (
        "UPDATE decisions_decisionrecord SET rationale = 'changed' WHERE id = %s",
        "DELETE FROM decisions_decisionrecord WHERE id = %s",
    ):
        with (
            pytest.raises(IntegrityError, match="can never be edited or deleted"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [record.pk])
    record.rationale = "Changed through the ORM"
    with pytest.raises(IntegrityError), transaction.atomic():
        record.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        DecisionRecord.objects.filter(pk=record.pk).update(outcome="iterate")
    with pytest.raises(IntegrityError), transaction.atomic():
        DecisionRecord.objects.get(pk=record.pk).delete()
    with pytest.raises(ProtectedError):  # nor does the plan go, taking its decision with it
        PilotPlan.objects.get(pk=record.plan_id).delete()
    assert DecisionRecord.objects.get(pk=record.pk).rationale.startswith("Every blocking")


# --- corrections ---------------------------------------------------------------------------------


def test_a_correction_supersedes_the_current_record_and_chains_the_hashes(
    decidable, po, calls, django_assert_num_queries
):
    plan = decidable()
    first = _record(plan, po)
    second = _record(
        plan, po, outcome="iterate", rationale="Support is not ready.",
        override_reason="Support macros missing.", supersedes=first,
    )  # fmt: skip

    assert second.supersedes == first and second.supersedes_hash == first.record_hash
    plan.refresh_from_db()
    assert (plan.status, plan.decision, plan.decided_at) == (
        Status.DECIDED, "iterate", second.recorded_at
    )  # fmt: skip
    assert decision_head(plan_id=plan.pk) == second
    # Both stay, newest first, each knowing the other (one query).
    with django_assert_num_queries(1):
        chain = decision_records_for_plan(plan.pk)
        assert [r.pk for r in chain] == [second.pk, first.pk]
        assert chain[1].superseded_by.pk == second.pk
        assert chain[0].supersedes.pk == first.pk
    assert decision_record_verify(second) == [] and decision_record_verify(first) == []
    # Only one decide step: a correction is a record, not a lifecycle step.
    assert PlanTransition.objects.filter(plan=plan, to_status=Status.DECIDED).count() == 1


def test_a_correction_must_supersede_the_current_record(decidable, po, calls):
    plan = decidable()
    first = _record(plan, po)
    second = _record(plan, po, rationale="Corrected wording.", supersedes=first)
    with pytest.raises(Conflict, match=f"The current decision is record #{second.pk}"):
        _record(plan, po, rationale="Again", supersedes=first)
    with pytest.raises(Conflict, match=f"a correction supersedes record #{second.pk}"):
        _record(plan, po, rationale="A second first decision")
    other = decidable()
    with pytest.raises(Conflict, match="for a Decided pilot"):
        _record(other, po, supersedes=second)
    assert DecisionRecord.objects.count() == 2


def test_a_closed_pilot_s_decision_is_history(decidable, po, calls):
    plan = decidable()
    first = _record(plan, po)
    PilotPlan.objects.filter(pk=plan.pk).update(status=Status.CLOSED)
    with pytest.raises(Conflict, match="this one is Closed"):
        _record(plan, po, supersedes=first)


# --- tamper detection -----------------------------------------------------------------------------


def _tamper(sql: str, params: list) -> None:  # type: ignore[type-arg]
    """Change a record around the trigger, as someone with the database's keys could."""
    with connection.cursor() as cursor:
        # Django's foreign keys are checked at commit; ALTER TABLE wants no check pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE decisions_decisionrecord DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE decisions_decisionrecord ENABLE TRIGGER USER")


def test_an_edit_around_the_trigger_is_detected(decidable, po, calls):
    plan = decidable()
    first = _record(plan, po)
    second = _record(plan, po, rationale="Corrected wording.", supersedes=first)

    _tamper(
        "UPDATE decisions_decisionrecord SET evidence = jsonb_set(evidence, "
        "'{criteria,0,verdict}', '\"not_met\"') WHERE id = %s",
        [first.pk],
    )
    assert decision_record_verify(DecisionRecord.objects.get(pk=first.pk)) == [
        "its frozen evidence changed after it was recorded."
    ]
    # The correction reports the chain it rests on.
    assert decision_record_verify(DecisionRecord.objects.get(pk=second.pk)) == [
        f"Record #{first.pk} (which it corrects): its frozen evidence changed after it was "
        "recorded."
    ]

    _tamper(
        "UPDATE decisions_decisionrecord SET rationale = 'We always meant roll back' WHERE id = %s",
        [second.pk],
    )
    problems = decision_record_verify(DecisionRecord.objects.get(pk=second.pk))
    assert "its fields changed after it was recorded (the record hash differs)." in problems


def test_rewriting_a_record_and_its_hash_still_breaks_the_chain(decidable, po, calls):
    plan = decidable()
    first = _record(plan, po)
    second = _record(plan, po, rationale="Corrected wording.", supersedes=first)
    forged = DecisionRecord.objects.get(pk=first.pk)
    forged.rationale = "Rewritten"
    forged.record_hash = service.record_hash(forged)
    _tamper(
        "UPDATE decisions_decisionrecord SET rationale = %s, record_hash = %s WHERE id = %s",
        [forged.rationale, forged.record_hash, first.pk],
    )
    assert decision_record_verify(DecisionRecord.objects.get(pk=first.pk)) == []  # alone: fine
    assert decision_record_verify(DecisionRecord.objects.get(pk=second.pk)) == [
        f"the record it corrects (#{first.pk}) changed after this one was recorded."
    ]


# --- nothing after the decision changes it --------------------------------------------------------


def _row(record_id: int) -> dict:  # type: ignore[type-arg]
    return DecisionRecord.objects.filter(pk=record_id).values().get()


def test_later_samples_edits_and_deletes_change_nothing_in_a_recorded_decision(
    decidable, po, calls
):
    plan = decidable([MET, NOT_MET, MET, MET, MET])
    record = _record(plan, po, outcome="iterate", rationale="P2 rate too high.")
    frozen = _row(record.pk)
    evidence_text = _canonical(frozen["evidence"])

    # Later: samples arrive, a new check runs with other verdicts, a trigger fires, a criterion
    # is changed and another deleted, the old check run and some samples are deleted.
    now = timezone.now()
    p1 = plan.exit_criteria.get(position=1).metric_id
    samples_store(rows=[(plan.pk, p1, now, 3.0, "late", "")])
    check_done(plan, [NOT_MET] * 5, hours_ago=0)
    fire(plan)
    ExitCriterion.objects.filter(plan=plan, position=3).update(threshold=1)
    ExitCriterion.objects.filter(plan=plan, position=5).delete()
    CheckRun.objects.filter(plan=plan).order_by("due_at").first().delete()
    Sample.objects.filter(plan=plan).delete()
    now_evidence = decision_evidence(plan).snapshot()
    assert now_evidence["criteria"] != frozen["evidence"]["criteria"]  # the page moved on

    after = _row(record.pk)
    assert after == frozen
    assert _canonical(after["evidence"]) == evidence_text
    assert decision_record_verify(DecisionRecord.objects.get(pk=record.pk)) == []


def test_the_evidence_hash_survives_the_database_s_number_format(decidable, po, calls):
    """jsonb keeps numbers as decimals: a float Python writes as 1e+16 comes back as an int.
    The hash is taken of the evidence as stored, so verifying later still matches."""
    plan = decidable()
    run = CheckRun.objects.get(plan=plan)
    run.results.filter(position=1).update(value=1e16, low=1e-7, high=123456789.123456789)
    record = DecisionRecord.objects.get(pk=_record(plan, po, override_reason="x").pk)
    assert decision_record_verify(record) == []


# --- outcomes ------------------------------------------------------------------------------------


def test_go_tells_the_team_and_the_invited_stakeholders(
    decidable, po, sm, developer, stakeholder, calls, django_capture_on_commit_callbacks
):
    plan = decidable()
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    with django_capture_on_commit_callbacks(execute=False):
        _record(plan, po)
    told = Notification.objects.filter(kind=Notification.Kind.DECISION_MADE)
    assert {n.user for n in told} == {sm, developer, stakeholder, guest}  # not the decider
    message = told.first().message
    assert message == f"Decision on “{plan.title}”: Go — the plan is marked for full release."
    assert told.first().url == f"/plans/{plan.pk}/decision"


def test_iterate_drafts_the_next_iteration_with_what_it_must_address(decidable, po, sm, calls):
    plan = decidable([MET, NOT_MET, MET, UNDECIDED, MET], decision_owner=None)
    PilotPlan.objects.filter(pk=plan.pk).update(title="Saved cards")
    record = _record(plan, po, outcome="iterate", rationale="P2 defects too frequent.")

    plan.refresh_from_db()
    iteration = plan.clones.get()
    assert iteration.title == "Saved cards — iteration 2"
    assert (iteration.status, iteration.start_date) == (Status.DRAFT, None)
    assert iteration.cloned_from == plan and iteration.owner == po
    assert iteration.exit_criteria.count() == 5
    lines = iteration.must_address.splitlines()
    names = [c["name"] for c in record.evidence["criteria"]]
    assert lines[0].startswith(f"- {names[1]}: not met — Checked: not met.")
    assert lines[1].startswith(f"- {names[3]}: not enough evidence — ")
    assert lines[-1] == "Why the previous pilot iterates: P2 defects too frequent."
    assert len(lines) == 3
    told = Notification.objects.get(kind=Notification.Kind.DECISION_MADE, user=sm)
    assert "the next iteration “Saved cards — iteration 2” is drafted" in told.message
    # Correcting an Iterate decision's wording drafts no second iteration.
    _record(plan, po, outcome="iterate", rationale="Wording.", supersedes=record)
    assert plan.clones.count() == 1


def test_iteration_titles_count_on():
    assert iteration_title("Saved cards") == "Saved cards — iteration 2"
    assert iteration_title("Saved cards — iteration 2") == "Saved cards — iteration 3"
    assert len(iteration_title("x" * 200)) == 200


def test_roll_back_opens_the_rollback_checklist(decidable, po, calls):
    plan = decidable()
    fire(plan)
    assert decision_evidence(plan).recommendation == "roll_back"
    record = _record(plan, po, outcome="roll_back", rationale="P1 defect in production.")
    assert record.recommendation_rule == "trigger_fired" and not record.is_override
    [started] = calls["rollback"]
    assert (started["plan"].pk, started["user"], started["decision"]) == (plan.pk, po, record)
    assert len(calls["review"]) == 1


def test_roll_back_opens_the_real_rollback_checklist_linked_to_the_record(decidable, po, devops):
    plan = decidable(rollback_executor=devops)
    fire(plan)
    record = _record(plan, po, outcome="roll_back", rationale="P1 defect in production.")
    run = RollbackRun.objects.get(plan=plan)
    assert (run.decision, run.emergency, run.started_by) == (record, False, po)
    # A correction that keeps Roll back carries on with the same run, linked to it.
    again = _record(plan, po, outcome="roll_back", rationale="Wording.", supersedes=record)
    assert RollbackRun.objects.filter(plan=plan).count() == 1
    assert RollbackRun.objects.get(plan=plan).decision == again


def test_a_correction_to_roll_back_starts_the_rollback_once(decidable, po, calls):
    plan = decidable()
    first = _record(plan, po)
    _record(plan, po, outcome="roll_back", rationale="Late P1.", override_reason="Seen in support.",
            supersedes=first)  # fmt: skip
    assert len(calls["rollback"]) == 1
    assert len(calls["review"]) == 1  # opened by the first decision only


# --- comments ------------------------------------------------------------------------------------


def test_members_comment_guests_and_outsiders_do_not(
    decidable, po, developer, stakeholder, outsider, calls
):
    plan = decidable()
    decision_comment_add(plan=plan, user=developer, text="  Latency looks fine to me. ")
    decision_comment_add(plan=plan, user=stakeholder, text="Support is ready.")
    assert list(DecisionComment.objects.values_list("text", flat=True)) == [
        "Latency looks fine to me.",
        "Support is ready.",
    ]
    guest = UserFactory()
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    with pytest.raises(PermissionDenied, match="Invited stakeholders read"):
        decision_comment_add(plan=plan, user=guest, text="Hi")
    with pytest.raises(PermissionDenied):
        decision_comment_add(plan=plan, user=outsider, text="Hi")
    for text, words in (("  ", "Write the comment"), ("x" * 5001, "under 5,000")):
        with pytest.raises(ValidationError, match=words):
            decision_comment_add(plan=plan, user=po, text=text)
    assert DecisionComment.objects.count() == 2


def test_comments_wait_for_the_pilot_to_run(team, po):
    draft = PilotPlanFactory(team=team, owner=po)
    with pytest.raises(Conflict, match="this one is Draft"):
        decision_comment_add(plan=draft, user=po, text="Too early")
