"""The demo's plans: every state, walked through the real services, the same after every run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pghistory.models
import pytest

from accounts.models import Membership, Team
from backlog.models import (
    BacklogItem,
    ChangeControlEntry,
    CohortFit,
    EnrolmentLink,
    Feedback,
    FeedbackToken,
    Finding,
    Participant,
)
from metrics.models import Sample
from pilotplan.demo import (
    BACKLOGS,
    DEMO_PLANS,
    ENROLLED,
    FEEDBACK,
    IMPORTED,
    TEAMS,
    WITHDRAWN,
    Complete,
    Incomplete,
    demo_email,
    seed_demo,
)
from pilots.health import plan_health
from pilots.models import PilotPlan, PlanSection, PlanTransition, Review, SignOff
from pilots.review import REVIEWS
from pilots.selectors import plan_detail_queryset
from pilots.services import ROW_KINDS
from tests.conftest import rows_for_the_module

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("wednesday_demo")]

WEDNESDAY = dt.date(2026, 3, 4)


@pytest.fixture(scope="module")
def wednesday_demo(django_db_setup, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The demo as seeding it on a Wednesday leaves it (without metric history): seeded once for
    the module, each test starting from it and rolled back to it afterwards."""
    with rows_for_the_module(django_db_blocker):
        seed_demo(today=WEDNESDAY, metrics=False)
        yield


def plan(team_slug: str, title: str) -> PilotPlan:
    return plan_detail_queryset().get(team__slug=team_slug, title=title)


def counts() -> dict[str, int]:
    rows = {slug: kind.model.objects.count() for slug, kind in ROW_KINDS.items()}
    return {
        "plans": PilotPlan.objects.count(),
        "sections": PlanSection.objects.count(),
        "reviews": Review.objects.count(),
        "signoffs": SignOff.objects.count(),
        "transitions": PlanTransition.objects.count(),
        "findings": Finding.objects.count(),
        "backlog items": BacklogItem.objects.count(),
        "participants": Participant.objects.count(),
        "cohort fits": CohortFit.objects.count(),
        "feedback": Feedback.objects.count(),
        "feedback samples": Sample.objects.filter(source="feedback").count(),
        "change control": ChangeControlEntry.objects.count(),
        "events": pghistory.models.Events.objects.count(),
        **rows,
    }


def test_every_demo_plan_has_a_shape():
    titles = {(spec.slug, title) for spec in TEAMS for title, _ in spec.plans}

    assert titles == set(DEMO_PLANS)


def test_seeding_twice_leaves_the_same_plans_and_rows():
    first = counts()  # seeded once (the module's fixture)
    versions = dict(PilotPlan.objects.values_list("title", "version"))

    seed_demo(today=WEDNESDAY, metrics=False)

    assert counts() == first
    assert dict(PilotPlan.objects.values_list("title", "version")) == versions
    assert first["plans"] == len(DEMO_PLANS)


def test_seeding_again_keeps_what_people_changed_in_a_demo_plan():
    PilotPlan.objects.filter(title="One-page checkout").update(summary="Changed by hand")

    seed_demo(today=WEDNESDAY, metrics=False)

    assert PilotPlan.objects.get(title="One-page checkout").summary == "Changed by hand"


def test_each_team_has_a_complete_plan_and_an_incomplete_draft():
    for spec in TEAMS:
        shapes = [DEMO_PLANS[(spec.slug, title)] for title, _ in spec.plans]
        assert any(isinstance(s, Complete) for s in shapes), spec.slug
        assert any(isinstance(s, Incomplete) for s in shapes), spec.slug


@pytest.mark.parametrize(
    ("team_slug", "title"),
    [key for key, shape in DEMO_PLANS.items() if isinstance(shape, Complete)],
)
def test_a_complete_demo_plan_has_no_health_gaps(team_slug, title):
    demo = plan(team_slug, title)

    assert plan_health(demo) == []
    assert demo.status == DEMO_PLANS[(team_slug, title)].status
    assert demo.created_by.email == demo_email(Membership.Role.PRODUCT_OWNER, team_slug)
    assert demo.rollback_rehearsals.all()
    assert demo.cohort.consent_recorded and demo.cohort.feedback_channel
    assert demo.environment.environment
    if demo.environment.uses_real_data:
        assert demo.environment.compliance_validated_by.email == demo_email(
            Membership.Role.SCRUM_MASTER, team_slug
        )


@pytest.mark.parametrize(
    ("team_slug", "title"),
    [key for key, shape in DEMO_PLANS.items() if isinstance(shape, Incomplete)],
)
def test_an_incomplete_demo_plan_is_a_draft_with_gaps(team_slug, title):
    demo = plan(team_slug, title)

    codes = {gap.code for gap in plan_health(demo)}
    assert demo.status == PilotPlan.Status.DRAFT
    assert {
        "exit_criterion_without_threshold",
        "segment_mix_not_100",
        "cohort_without_consent",
        "no_rollback_trigger",
        "empty_timeline",
    } <= codes
    # Some sections are written: it is a draft in progress, not an empty plan.
    assert "empty_scope" not in codes and "empty_risks" not in codes


def test_demo_plans_show_every_state():
    statuses = set(PilotPlan.objects.values_list("status", flat=True))

    assert statuses == set(PilotPlan.Status.values)


def test_decided_demo_plans_show_a_go_and_a_roll_back_or_iterate():
    decided = PilotPlan.objects.filter(status=PilotPlan.Status.DECIDED)
    decisions = set(decided.values_list("decision", flat=True))
    assert PilotPlan.Decision.GO in decisions
    assert decisions & {PilotPlan.Decision.ROLL_BACK, PilotPlan.Decision.ITERATE}
    assert len({p.team_id for p in decided}) > 1  # across teams
    for done in PilotPlan.objects.filter(status__in=["decided", "closed"]):
        assert done.decided_by_id == done.decision_owner_id == done.created_by_id
        assert done.decided_at is not None


# The lifecycle steps a plan in each status went through, in order.
CHAIN = [
    ("draft", "in_review"),
    ("in_review", "approved"),
    ("approved", "running"),
    ("running", "evaluating"),
    ("evaluating", "decided"),
    ("decided", "closed"),
]
STEPS = {"running": 3, "evaluating": 4, "decided": 5, "closed": 6}


@pytest.mark.parametrize("status", sorted(STEPS))
def test_demo_plans_past_approval_went_through_every_step_with_three_sign_offs(status):
    seed_demo(today=WEDNESDAY, metrics=False)
    po_role, sm_role = Membership.Role.PRODUCT_OWNER, Membership.Role.SCRUM_MASTER

    plans = PilotPlan.objects.filter(status=status)
    assert plans.exists()
    for demo in plans:
        transitions = list(demo.transitions.order_by("at", "pk"))
        assert [(t.from_status, t.to_status) for t in transitions] == CHAIN[: STEPS[status]]
        assert all(t.reason for t in transitions)
        assert transitions[0].actor.email == demo_email(po_role, demo.team.slug)
        approved = transitions[1]
        assert approved.actor.email == demo_email(po_role, demo.team.slug)
        # At approval, each review had exactly one active sign-off, by its role.
        active = SignOff.objects.filter(
            plan=demo, voided_at__isnull=True, signed_at__lte=approved.at
        )
        signers = {s.kind: s.signed_by.email for s in active}
        assert signers == {
            "business": demo_email(po_role, demo.team.slug),
            "readiness": demo_email(sm_role, demo.team.slug),
            "feasibility": demo_email(Membership.Role.DEVELOPER, demo.team.slug),
        }
        assert set(signers) == set(REVIEWS)
        assert all(c.status == "met" and c.confirmed_by_id for c in demo.entry_criteria.all())
        if status == "closed":
            assert demo.post_pilot_review.completed_at is not None
        if status == "decided":
            assert demo.post_pilot_review.completed_at is None


def test_one_demo_sign_off_was_voided_by_an_edit_and_given_again():
    voided = SignOff.objects.get(voided_at__isnull=False)

    assert voided.kind == "feasibility"
    slug = voided.plan.team.slug
    assert voided.voided_by.email == demo_email(Membership.Role.DEVOPS, slug)
    assert "Rollback triggers" in voided.voided_reason
    again = SignOff.objects.get(plan=voided.plan, kind="feasibility", voided_at__isnull=True)
    assert again.signed_by == voided.signed_by
    assert again.signed_at > voided.voided_at
    assert again.plan_version > voided.plan_version


def test_a_plan_in_review_is_partly_reviewed():
    in_review = PilotPlan.objects.get(status="in_review")

    kinds = set(SignOff.objects.filter(plan=in_review).values_list("kind", flat=True))
    assert kinds == {"business"}
    assert in_review.entry_criteria.filter(status="pending").exists()


def test_demo_audit_events_name_their_actor():
    seed_demo(today=WEDNESDAY, metrics=False)
    closed = PilotPlan.objects.get(status="closed")

    events = list(pghistory.models.Events.objects.references(closed))

    contexts = [e.pgh_context or {} for e in events]
    assert contexts and all(c.get("url") == "seed_demo" for c in contexts)
    actors = {c.get("user") for c in contexts}
    members = set(Membership.objects.filter(team=closed.team).values_list("user_id", flat=True))
    assert None not in actors and actors <= members
    assert len(actors) >= 3  # PO, SM and developer at least


def test_the_running_demo_plan_is_under_way_and_the_approved_one_starts_next_monday():
    running = PilotPlan.objects.get(status="running", team__slug="checkout")
    approved = PilotPlan.objects.get(status="approved")

    assert running.start_date <= WEDNESDAY <= running.end_date
    assert approved.start_date == dt.date(2026, 3, 9)
    assert all(c.status == "met" for c in running.entry_criteria.all())
    assert all(c.confirmed_by_id for c in approved.entry_criteria.all())


def test_complete_demo_plans_are_about_their_own_pilot():
    mobile = plan("mobile", "Offline order history")

    references = [i.reference for i in mobile.scope_items.all() if i.kind == "included"]
    assert references == ["MOB-88", "MOB-91"]
    assert "saved-cards" not in mobile.rollback_steps.all()[0].action
    assert [s.value for s in mobile.segments.all()] == ["North America"]
    assert mobile.end_date == dt.date(2026, 3, 20)


def test_demo_plans_are_written_through_the_services():
    # Every edit bumped its section's version, as in the browser.
    saved_cards = plan("checkout", "Saved cards for returning shoppers")
    versions = {s.key: s.version for s in saved_cards.sections.all()}
    assert versions["cohort"] > 1 and versions["environment"] > 1 and versions["scope"] > 1
    checkout = next(spec for spec in TEAMS if spec.slug == "checkout")
    assert Team.objects.get(slug="checkout").plans.count() == len(checkout.plans)


def test_the_checkout_backlog_is_ordered_and_names_the_plans_stories():
    seed_demo(today=WEDNESDAY, metrics=False)
    team = Team.objects.get(slug="checkout")

    items = list(BacklogItem.objects.filter(team=team).order_by("position"))

    # The seeded backlog plus what the running pilot raised: a defect found in it, an item from
    # its CSAT criterion and two from cohort feedback.
    assert len(items) == len(BACKLOGS["checkout"]) + 4
    assert [i.position for i in items] == list(range(1, len(items) + 1))
    assert sorted(i.number for i in items) == list(range(1, len(items) + 1))
    references = {i.reference for i in items}
    assert len(references) == len(items)
    for demo in PilotPlan.objects.filter(team=team):
        assert set(demo.scope_items.exclude(reference="").values_list("reference", flat=True)) <= (
            references
        ), demo.title
    defects = [i for i in items if i.kind == BacklogItem.Kind.DEFECT]
    assert {i.severity for i in defects} == {"p1", "p2", "p3", "p4"}
    assert all(i.reference.startswith("DE-") for i in defects)  # generated from the type
    assert len({i.status for i in items}) >= 4
    assert sum(1 for i in items if i.estimate) >= len(BACKLOGS["checkout"])
    # The defect a shopper reported was moved to the top because of the pilot.
    top = items[0]
    assert (top.kind, top.origin, top.feedback.get().plan.title) == (
        "defect",
        "feedback",
        "Saved cards for returning shoppers",
    )
    # Nothing is P1 against a running pilot: its "any P1 defect" trigger has not fired.
    assert not BacklogItem.objects.filter(
        severity="p1", plan__status=PilotPlan.Status.RUNNING
    ).exists()


def test_the_running_checkout_pilot_shows_the_learning_loop():
    seed_demo(today=WEDNESDAY, metrics=False)
    saved_cards = plan("checkout", "Saved cards for returning shoppers")
    po, sm = (demo_email(role, "checkout") for role in ("product_owner", "scrum_master"))

    # The cohort: imported and opted in, with consent, two withdrawn; skewed towards frequent
    # shoppers against the intended 40 / 40 / 20, representative by region.
    people = Participant.objects.filter(plan=saved_cards)
    assert people.count() == len(IMPORTED) + len(ENROLLED)
    assert people.filter(status="withdrawn").count() == len(WITHDRAWN)
    assert not people.filter(consent_given_at=None).exists()
    assert set(people.values_list("consent_method", flat=True)) == {"import", "enrolment_link"}
    assert EnrolmentLink.objects.get(plan=saved_cards).is_active
    fits = {f.dimension: f for f in CohortFit.objects.filter(plan=saved_cards)}
    assert fits["region"].status == CohortFit.Status.REPRESENTATIVE
    skewed = fits["customer_type"]
    assert (skewed.status, skewed.participants, skewed.largest_segment) == (
        CohortFit.Status.SKEWED,
        40,
        "Frequent shopper",
    )
    assert skewed.p_value < 0.001 and round(skewed.largest_gap_points) == 30
    assert [s["observed"] for s in skewed.segments] == [28, 9, 3]

    # The feedback: through the live link, inside the pilot window, each score a metric sample.
    link = FeedbackToken.objects.get(plan=saved_cards)
    assert link.is_live and link.created_by.email == sm
    answers = Feedback.objects.filter(plan=saved_cards)
    assert answers.count() == len(FEEDBACK)
    assert answers.filter(noise=True).count() == 1 and answers.exclude(tags=[]).exists()
    first, last = (answers.order_by(o).first().created_at for o in ("created_at", "-created_at"))
    assert dt.date(2026, 3, 2) <= first.date() and last.date() <= dt.date(2026, 3, 13)
    samples = Sample.objects.filter(plan=saved_cards, source="feedback")
    assert samples.filter(metric__key="csat").count() == sum(1 for f in FEEDBACK if f[0])
    assert samples.filter(metric__key="nps").count() == sum(1 for f in FEEDBACK if f[1] is not None)
    assert set(samples.values_list("observed_at", flat=True)) <= set(
        answers.values_list("created_at", flat=True)
    )

    # Change control: every item the pilot raised or moved, with who and why.
    log = ChangeControlEntry.objects.filter(plan=saved_cards).order_by("at", "pk")
    assert [(e.action, e.source) for e in log] == [
        ("created", "defect"),
        ("created", "criterion"),
        ("created", "feedback"),
        ("created", "feedback"),
        ("reprioritised", "feedback"),
    ]
    assert log[1].item.criterion.metric.key == "csat" and log[1].actor.email == po
    assert (log[4].old_position, log[4].new_position) == (log[3].new_position, 1)
    turned = answers.exclude(backlog_item=None)
    assert turned.count() == 2
    assert {f.backlog_item.kind for f in turned} == {"defect", "improvement"}
