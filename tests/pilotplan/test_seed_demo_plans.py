"""The demo's plans: several states, complete and incomplete sections, the same after every run."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Membership, Team
from pilotplan.demo import DEMO_PLANS, TEAMS, Complete, Incomplete, demo_email, seed_demo
from pilots.health import plan_health
from pilots.models import PilotPlan, PlanSection
from pilots.selectors import plan_detail_queryset
from pilots.services import ROW_KINDS

pytestmark = pytest.mark.django_db

WEDNESDAY = dt.date(2026, 3, 4)


def plan(team_slug: str, title: str) -> PilotPlan:
    return plan_detail_queryset().get(team__slug=team_slug, title=title)


def counts() -> dict[str, int]:
    rows = {slug: kind.model.objects.count() for slug, kind in ROW_KINDS.items()}
    return {"plans": PilotPlan.objects.count(), "sections": PlanSection.objects.count(), **rows}


def test_every_demo_plan_has_a_shape():
    titles = {(spec.slug, title) for spec in TEAMS for title, _ in spec.plans}

    assert titles == set(DEMO_PLANS)


def test_seeding_twice_leaves_the_same_plans_and_rows():
    seed_demo(today=WEDNESDAY)
    first = counts()
    versions = dict(PilotPlan.objects.values_list("title", "version"))

    seed_demo(today=WEDNESDAY)

    assert counts() == first
    assert dict(PilotPlan.objects.values_list("title", "version")) == versions
    assert first["plans"] == len(DEMO_PLANS)


def test_seeding_again_keeps_what_people_changed_in_a_demo_plan():
    seed_demo(today=WEDNESDAY)
    PilotPlan.objects.filter(title="One-page checkout").update(summary="Changed by hand")

    seed_demo(today=WEDNESDAY)

    assert PilotPlan.objects.get(title="One-page checkout").summary == "Changed by hand"


def test_each_team_has_a_complete_plan_and_an_incomplete_draft():
    seed_demo(today=WEDNESDAY)

    for spec in TEAMS:
        shapes = [DEMO_PLANS[(spec.slug, title)] for title, _ in spec.plans]
        assert any(isinstance(s, Complete) for s in shapes), spec.slug
        assert any(isinstance(s, Incomplete) for s in shapes), spec.slug


@pytest.mark.parametrize(
    ("team_slug", "title"),
    [key for key, shape in DEMO_PLANS.items() if isinstance(shape, Complete)],
)
def test_a_complete_demo_plan_has_no_health_gaps(team_slug, title):
    seed_demo(today=WEDNESDAY)

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
    seed_demo(today=WEDNESDAY)

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


def test_demo_plans_show_several_states():
    seed_demo(today=WEDNESDAY)

    statuses = set(PilotPlan.objects.values_list("status", flat=True))

    assert statuses >= {"draft", "in_review", "approved", "running"}


def test_the_running_demo_plan_is_under_way_and_the_approved_one_starts_next_monday():
    seed_demo(today=WEDNESDAY)

    running = PilotPlan.objects.get(status="running")
    approved = PilotPlan.objects.get(status="approved")

    assert running.start_date <= WEDNESDAY <= running.end_date
    assert approved.start_date == dt.date(2026, 3, 9)
    assert all(c.status == "met" for c in running.entry_criteria.all())
    assert all(c.confirmed_by_id for c in approved.entry_criteria.all())


def test_complete_demo_plans_are_about_their_own_pilot():
    seed_demo(today=WEDNESDAY)

    mobile = plan("mobile", "Offline order history")

    references = [i.reference for i in mobile.scope_items.all() if i.kind == "included"]
    assert references == ["MOB-88", "MOB-91"]
    assert "saved-cards" not in mobile.rollback_steps.all()[0].action
    assert [s.value for s in mobile.segments.all()] == ["North America"]
    assert mobile.end_date == dt.date(2026, 3, 20)


def test_demo_plans_are_written_through_the_services():
    seed_demo(today=WEDNESDAY)

    # Every edit bumped its section's version, as in the browser.
    saved_cards = plan("checkout", "Saved cards for returning shoppers")
    versions = {s.key: s.version for s in saved_cards.sections.all()}
    assert versions["cohort"] > 1 and versions["environment"] > 1 and versions["scope"] > 1
    assert Team.objects.get(slug="checkout").plans.count() == 2
