"""Review, sign-off, voiding by later edits, segregation of duties and the guarded lifecycle."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from accounts.models import Notification
from core.exceptions import Conflict, PreconditionFailed
from decisions.services.decision import decision_record
from pilots import services
from pilots.models import (
    EntryCriterion,
    OnCallShift,
    PilotPlan,
    PlanTransition,
    RollbackRehearsal,
    SignOff,
)
from pilots.services.lifecycle import plan_transition, transition_blockers
from pilots.services.review import review_update, signoff_blockers, signoff_create
from tests.factories import (
    OVERRIDE,
    MembershipFactory,
    UserFactory,
    checklist_answered,
    post_pilot_review_written,
    section_edit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder):
    plan = services.plan_create_from_template(team=team, author=po, today=dt.date(2026, 11, 24))
    checklist_answered(plan)
    return plan


def _make_ready_to_start(plan, user):
    """Fill what 'start' needs beyond approval: on-call over the window."""
    OnCallShift.objects.create(
        plan=plan, person=user, starts_on=plan.start_date, ends_on=plan.end_date
    )
    RollbackRehearsal.objects.create(plan=plan, outcome="passed")


def _meet_entry_criteria(plan, user):
    for criterion in EntryCriterion.objects.filter(plan=plan):
        kind = services.row_kind("entry-criteria")
        version = services.section_versions(plan=plan)["entry_criteria"]
        services.row_update(
            plan=plan, kind=kind, row_id=criterion.pk, user=user, expected_version=version,
            values={"status": "met", "evidence_url": "https://ci.example.com/1"},
        )  # fmt: skip


def _approved(plan, po, sm, developer):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    _meet_entry_criteria(plan, sm)
    signoff_create(plan=plan, kind="business", user=po)
    signoff_create(plan=plan, kind="readiness", user=sm)
    signoff_create(plan=plan, kind="feasibility", user=developer)
    plan_transition(plan=plan, action="approve", user=po)
    plan.refresh_from_db()
    return plan


# --- sign-off ------------------------------------------------------------------------------------


def test_signoff_records_who_when_and_the_exact_versions(plan, po, sm):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    plan.refresh_from_db()

    signoff = signoff_create(plan=plan, kind="readiness", user=sm)

    versions = services.section_versions(plan=plan)
    assert signoff.signed_by == sm
    assert signoff.plan_version == plan.version
    assert signoff.section_versions == {
        key: versions[key] for key in ("risks", "monitoring", "rollback_plan", "environment")
    }


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        ("business", "sm"),
        ("business", "developer"),
        ("readiness", "po"),
        ("readiness", "devops"),
        ("feasibility", "po"),
        ("feasibility", "stakeholder"),
    ],
)
def test_only_the_reviews_role_may_sign_it(request, plan, po, kind, role):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    with pytest.raises(PermissionDenied, match="Only the team's"):
        signoff_create(plan=plan, kind=kind, user=request.getfixturevalue(role))
    assert not SignOff.objects.exists()


def test_devops_may_sign_feasibility_as_part_of_the_team(plan, po, devops):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    assert signoff_create(plan=plan, kind="feasibility", user=devops).signed_by == devops


def test_a_draft_cannot_be_signed(plan, sm):
    with pytest.raises(Conflict, match="while the plan is in review"):
        signoff_create(plan=plan, kind="readiness", user=sm)


def test_a_review_with_open_concerns_cannot_be_signed(plan, po, sm):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    review_update(
        plan=plan, kind="readiness", user=sm, expected_version=1,
        values={"concerns": "On-call rota for week 2 is empty"},
    )  # fmt: skip
    with pytest.raises(Conflict, match="open concerns"):
        signoff_create(plan=plan, kind="readiness", user=sm)


def test_signing_twice_is_refused(plan, po, sm):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    signoff_create(plan=plan, kind="readiness", user=sm)
    with pytest.raises(Conflict, match="already signed off"):
        signoff_create(plan=plan, kind="readiness", user=sm)
    assert SignOff.objects.count() == 1


# --- voiding -------------------------------------------------------------------------------------


def test_editing_covered_content_voids_exactly_the_covering_signoffs_and_tells_the_signer(
    plan, po, sm, developer
):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    business = signoff_create(plan=plan, kind="business", user=po)
    readiness = signoff_create(plan=plan, kind="readiness", user=sm)
    feasibility = signoff_create(plan=plan, kind="feasibility", user=developer)

    risk_kind = services.row_kind("risks")
    services.row_add(
        plan=plan, kind=risk_kind, user=developer,
        expected_version=services.section_versions(plan=plan)["risks"],
        values={"description": "Support queue overload", "likelihood": "low", "impact": "high"},
    )  # fmt: skip

    for signoff in (business, readiness, feasibility):
        signoff.refresh_from_db()
    assert business.voided_at is None
    assert feasibility.voided_at is None  # risks are not feasibility's
    assert readiness.voided_at is not None
    assert readiness.voided_by == developer
    assert "Risks was edited by" in readiness.voided_reason
    note = Notification.objects.get(user=sm, kind=Notification.Kind.SIGN_OFF_VOIDED)
    assert plan.title in note.message


def test_nobody_is_told_that_their_own_edit_voided_their_own_signoff(plan, po, sm):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    signoff_create(plan=plan, kind="business", user=po)

    section_edit(plan, "cohort", po, feedback_channel="#pilot-cards")

    assert SignOff.objects.get(kind="business").voided_by == po
    assert not Notification.objects.filter(kind=Notification.Kind.SIGN_OFF_VOIDED).exists()


def test_an_edit_of_uncovered_content_voids_nothing(plan, po, sm):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    signoff_create(plan=plan, kind="readiness", user=sm)
    section_edit(plan, "change_control", po, change_control="Weekly backlog refinement")
    assert SignOff.objects.filter(voided_at__isnull=True).count() == 1


def test_voiding_a_signoff_of_an_approved_plan_sends_it_back_to_review(plan, po, sm, developer):
    plan = _approved(plan, po, sm, developer)

    section_edit(plan, "cohort", developer, feedback_channel="#pilot-cards")

    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.IN_REVIEW
    last = PlanTransition.objects.filter(plan=plan).last()
    assert (last.from_status, last.to_status) == ("approved", "in_review")
    assert "Re-review needed" in last.reason


# --- segregation of duties -----------------------------------------------------------------------


def test_a_signer_may_not_sign_content_they_edited_when_a_colleague_can(team, plan, po):
    second_po = MembershipFactory(team=team, role="product_owner", user=UserFactory()).user
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    section_edit(plan, "overview", po, summary="Narrowed to saved cards only")

    reasons = signoff_blockers(plan=plan, kind="business", user=po)
    assert any("segregation of duties" in r and "Overview" in r for r in reasons)
    with pytest.raises(Conflict, match="segregation of duties"):
        signoff_create(plan=plan, kind="business", user=po)
    assert signoff_create(plan=plan, kind="business", user=second_po).signed_by == second_po


def test_the_only_holder_of_a_role_may_sign_what_they_wrote(plan, po):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    section_edit(plan, "overview", po, summary="Narrowed")
    assert signoff_create(plan=plan, kind="business", user=po).signed_by == po


# --- lifecycle -----------------------------------------------------------------------------------


def test_approve_explains_everything_that_is_missing(plan, po):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    with pytest.raises(Conflict) as refused:
        plan_transition(plan=plan, action="approve", user=po)
    message = refused.value.message
    assert "business review is not signed off" in message
    assert "readiness review is not signed off" in message
    assert "feasibility review is not signed off" in message
    assert "“Definition of Done met”" in message
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.IN_REVIEW


def test_waived_entry_criteria_count_as_done(plan, po, sm, developer):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    kind = services.row_kind("entry-criteria")
    for criterion in EntryCriterion.objects.filter(plan=plan):
        services.row_update(
            plan=plan, kind=kind, row_id=criterion.pk, user=sm,
            expected_version=services.section_versions(plan=plan)["entry_criteria"],
            values={"status": "waived", "waiver_reason": "Covered by the release checklist"},
        )  # fmt: skip
    for kind_, who in (("business", po), ("readiness", sm), ("feasibility", developer)):
        signoff_create(plan=plan, kind=kind_, user=who)
    plan_transition(plan=plan, action="approve", user=po, reason="All green")
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.APPROVED


def test_start_needs_on_call_coverage_and_then_runs(plan, po, sm, developer, devops):
    plan = _approved(plan, po, sm, developer)
    with pytest.raises(Conflict, match="On-call coverage misses 10 business day"):
        plan_transition(plan=plan, action="start", user=devops)

    _make_ready_to_start(plan, devops)
    plan_transition(plan=plan, action="start", user=devops, reason="Go for the window")

    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.RUNNING
    started = Notification.objects.filter(kind=Notification.Kind.PILOT_STARTED)
    assert {n.user for n in started} >= {po, sm, developer}
    assert devops not in {n.user for n in started}  # the actor is not told what they did


def test_the_whole_life_records_each_step_with_who_and_why(plan, po, sm, developer, devops):
    plan = _approved(plan, po, sm, developer)
    _make_ready_to_start(plan, devops)
    plan_transition(plan=plan, action="start", user=po)
    plan_transition(plan=plan, action="evaluate", user=po, reason="Time-box over")
    # Deciding is recording the decision, with its evidence (tests/decisions/test_record.py).
    with pytest.raises(ValidationError, match="decision page") as refused:
        plan_transition(plan=plan, action="decide", user=po, decision="go", reason="Met")
    assert set(refused.value.error_dict) == {"action"}
    decision_record(
        plan=plan,
        user=po,
        outcome="go",
        rationale="All criteria met",
        override_reason="Measured on the team's own dashboards.",
    )
    with pytest.raises(Conflict, match="Complete the post-pilot review before closing"):
        plan_transition(plan=plan, action="close", user=sm)
    post_pilot_review_written(plan, sm)
    plan_transition(plan=plan, action="close", user=sm, reason="Review done")

    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.CLOSED
    assert plan.decision == PilotPlan.Decision.GO
    assert plan.decided_by == po
    steps = list(PlanTransition.objects.filter(plan=plan).values_list("to_status", "actor__email"))
    assert steps == [
        ("in_review", po.email),
        ("approved", po.email),
        ("running", po.email),
        ("evaluating", po.email),
        ("decided", po.email),
        ("closed", sm.email),
    ]


@pytest.mark.parametrize(
    ("action", "role"),
    [("submit", "sm"), ("submit", "stakeholder"), ("approve", "developer"), ("start", "sm")],
)
def test_the_wrong_role_is_refused_and_nothing_changes(request, plan, action, role, po):
    if action != "submit":
        plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    before = PilotPlan.objects.get(pk=plan.pk).status
    with pytest.raises(PermissionDenied, match="Only the team's"):
        plan_transition(plan=plan, action=action, user=request.getfixturevalue(role))
    assert PilotPlan.objects.get(pk=plan.pk).status == before


def test_a_step_from_the_wrong_state_says_so(plan, po):
    reasons = transition_blockers(plan=plan, action="start", user=po)
    assert reasons == ["“Start the pilot” is for Approved plans; this one is Draft."]


def test_withdrawing_starts_a_new_review_round(plan, po, sm):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    plan_transition(plan=plan, action="withdraw", user=po, reason="Scope changes")
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.DRAFT
    assert plan.review_round == 1


def test_review_notes_are_saved_with_compare_and_set(plan, sm, po):
    review = review_update(
        plan=plan, kind="readiness", user=sm, expected_version=1,
        values={"notes": "Runbook reviewed", "checklist": {"risks_owned": "yes"}},
    )  # fmt: skip
    assert review.version == 2
    assert review.checklist == {"risks_owned": "yes"}
    with pytest.raises(PreconditionFailed):
        review_update(plan=plan, kind="readiness", user=sm, expected_version=1, values={})
    with pytest.raises(ValidationError):
        review_update(
            plan=plan, kind="readiness", user=sm, expected_version=2,
            values={"checklist": {"not_a_question": True}},
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        review_update(plan=plan, kind="readiness", user=po, expected_version=2, values={})


# --- concurrency on real PostgreSQL --------------------------------------------------------------


def _race(*calls):
    """Run the calls at the same moment in threads with their own connections."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            outcomes[i] = call()
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_approve_once(plan, po, sm, developer):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    _meet_entry_criteria(plan, sm)
    for kind_, who in (("business", po), ("readiness", sm), ("feasibility", developer)):
        signoff_create(plan=plan, kind=kind_, user=who)

    outcomes = _race(
        *[
            lambda: plan_transition(
                plan=PilotPlan.objects.get(pk=plan.pk), action="approve", user=po
            )
        ]
        * 4
    )

    assert sum(isinstance(o, PlanTransition) for o in outcomes) == 1
    assert all(isinstance(o, (PlanTransition, Conflict)) for o in outcomes)
    assert PlanTransition.objects.filter(plan=plan, to_status="approved").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_signoffs_of_one_review_keep_one(team, plan, po, sm):
    other_sm = MembershipFactory(team=team, role="scrum_master", user=UserFactory()).user
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)

    outcomes = _race(
        lambda: signoff_create(plan=PilotPlan.objects.get(pk=plan.pk), kind="readiness", user=sm),
        lambda: signoff_create(
            plan=PilotPlan.objects.get(pk=plan.pk), kind="readiness", user=other_sm
        ),
    )

    assert sum(isinstance(o, SignOff) for o in outcomes) == 1
    assert SignOff.objects.filter(plan=plan, voided_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_edit_racing_a_signoff_never_leaves_a_signoff_of_stale_content(plan, po, sm, developer):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    kind = services.row_kind("risks")
    version = services.section_versions(plan=plan)["risks"]

    outcomes = _race(
        lambda: signoff_create(plan=PilotPlan.objects.get(pk=plan.pk), kind="readiness", user=sm),
        lambda: services.row_add(
            plan=PilotPlan.objects.get(pk=plan.pk), kind=kind, user=developer,
            expected_version=version,
            values={"description": "Late risk", "likelihood": "low", "impact": "low"},
        ),
    )  # fmt: skip

    signoff = SignOff.objects.get(plan=plan)
    risks_now = services.section_versions(plan=plan)["risks"]
    # Either the sign-off came first and the edit voided it, or the edit came first and the
    # sign-off approved the edited version: never an active sign-off of older content.
    assert signoff.voided_at is not None or signoff.section_versions["risks"] == risks_now
    assert not any(isinstance(o, Exception) for o in outcomes)
