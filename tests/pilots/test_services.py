"""Plan services: creating, templating, cloning and editing sections and their rows.

Every refused edit leaves the database as it was: no content, no section version, no plan version.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404

from accounts.models import Membership, TeamHoliday
from catalogue.models import MetricDefinition
from catalogue.selectors import metric_by_key
from pilots.models import (
    Cohort,
    CohortSegment,
    EntryCriterion,
    EnvironmentAndData,
    ExitCriterion,
    MonitoringAndSupport,
    OnCallShift,
    PilotPlan,
    PlanSection,
    ResponseSla,
    Risk,
    RollbackPlan,
    RollbackRehearsal,
    RollbackTrigger,
    ScopeItem,
    Section,
)
from pilots.services import (
    ROW_KINDS,
    SectionConflict,
    environment_set_compliance,
    plan_clone,
    plan_create,
    plan_create_from_template,
    row_add,
    row_kind,
    row_move,
    row_remove,
    row_update,
    section_update,
    section_versions,
)
from tests.factories import MembershipFactory, UserFactory
from tests.factories import plan_snapshot as snapshot

pytestmark = pytest.mark.django_db


WEDNESDAY = dt.date(2026, 3, 4)
NEXT_MONDAY = dt.date(2026, 3, 9)


# --- helpers -----------------------------------------------------------------------------------


def positions(queryset) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(r.position, str(r)) for r in queryset.order_by("position")]


def assert_deferred_constraints_hold() -> None:
    """Check the deferred (commit-time) constraints now: the test's transaction never commits."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    return plan_create(team=team, author=po, title="Saved cards")


@pytest.fixture
def template_plan(team, po, sm, developer, devops):  # type: ignore[no-untyped-def]
    return plan_create_from_template(team=team, author=po, today=WEDNESDAY)


def version(plan: PilotPlan, key: str) -> int:
    return section_versions(plan=plan)[key]


def add(plan: PilotPlan, slug: str, user, **values):  # type: ignore[no-untyped-def]
    kind = row_kind(slug)
    return row_add(
        plan=plan, kind=kind, user=user, expected_version=version(plan, kind.section), values=values
    )


def metric(key: str, team) -> MetricDefinition:  # type: ignore[no-untyped-def]
    found = metric_by_key(key=key, team_id=team.pk)
    assert found is not None, key
    return found


# --- creating ----------------------------------------------------------------------------------


def test_plan_create_makes_every_section_and_the_one_to_one_records(team, po):
    plan = plan_create(team=team, author=po, title="  Saved cards  ", summary="Why")

    plan.refresh_from_db()
    assert plan.title == "Saved cards"
    assert plan.status == PilotPlan.Status.DRAFT
    assert plan.owner == po == plan.created_by == plan.decision_owner
    assert plan.time_zone == team.time_zone
    assert plan.version == 1
    assert plan.check_times == [dt.time(10, 0), dt.time(16, 0)]
    assert set(section_versions(plan=plan)) == set(Section.values)
    assert set(section_versions(plan=plan).values()) == {1}
    for model in (Cohort, EnvironmentAndData, MonitoringAndSupport, RollbackPlan):
        assert model.objects.filter(plan=plan).count() == 1


def test_plan_create_refuses_a_blank_title_and_saves_nothing(team, po):
    with pytest.raises(ValidationError) as error:
        plan_create(team=team, author=po, title="   ")

    assert "title" in error.value.message_dict
    assert not PilotPlan.objects.exists()
    assert not PlanSection.objects.exists()


def test_template_is_the_seed_example(team, po, sm, devops, template_plan):
    plan = PilotPlan.objects.get(pk=template_plan.pk)

    included = list(plan.scope_items.filter(kind=ScopeItem.Kind.INCLUDED).order_by("position"))
    assert [i.reference for i in included] == ["US-145", "US-152"]
    excluded = plan.scope_items.get(kind=ScopeItem.Kind.EXCLUDED)
    assert "payment gateway" in excluded.title.lower()
    assert excluded.reason

    cohort = plan.cohort
    assert cohort.target_size == 200
    assert cohort.opt_in_required
    assert "internal" in cohort.description and "Region A" in cohort.description
    assert [(s.value, s.intended_share) for s in plan.segments.all()] == [("Region A", 100)]

    exits = {
        c.metric.key: (c.comparator, c.threshold)
        for c in plan.exit_criteria.select_related("metric")
    }
    assert exits["p1_defects"] == ("eq", Decimal("0"))
    assert exits["csat"] == ("ge", Decimal("4.2"))
    assert exits["error_rate"] == ("le", Decimal("0.5"))
    assert exits["p95_latency"] == ("lt", Decimal("300"))

    triggers = list(plan.rollback_triggers.select_related("metric").order_by("position"))
    assert [
        (t.metric.key, t.mode, t.comparator, t.threshold, t.sustained_minutes) for t in triggers
    ] == [
        ("p1_defects", "any", "gt", Decimal("0"), None),
        ("p95_latency", "sustained", "gt", Decimal("300"), 30),
    ]

    assert plan.start_date == NEXT_MONDAY
    assert plan.business_days == 10
    assert plan.end_date == dt.date(2026, 3, 20)
    assert plan.check_times == [dt.time(10, 0), dt.time(16, 0)]
    assert plan.scrum_master == sm
    assert plan.rollback_executor == devops
    assert plan.decision_owner == po
    assert plan.rollback_steps.count() >= 2
    assert plan.entry_criteria.count() >= 1
    assert set(section_versions(plan=plan)) == set(Section.values)
    assert_deferred_constraints_hold()


def test_template_end_date_skips_the_team_holidays(team, po):
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 3, 13))

    plan = plan_create_from_template(team=team, author=po, today=WEDNESDAY)

    assert plan.end_date == dt.date(2026, 3, 23)


def test_template_prefers_the_team_own_metric_with_a_built_in_key(team, po):
    own = MetricDefinition.objects.create(
        team=team, key="csat", name="Our CSAT", unit="score", kind="score", direction="higher"
    )

    plan = plan_create_from_template(team=team, author=po, today=WEDNESDAY)

    assert plan.exit_criteria.filter(metric=own).exists()


# --- cloning -----------------------------------------------------------------------------------


def test_clone_copies_the_content_but_not_what_belongs_to_one_pilot(
    team, po, sm, devops, template_plan
):
    source = template_plan
    env_v = version(source, Section.ENVIRONMENT)
    section_update(
        plan=source,
        key=Section.ENVIRONMENT,
        user=devops,
        expected_version=env_v,
        values={
            "environment": "pilot-eu-1",
            "masking_rules": "Card numbers masked",
            "uses_real_data": True,
        },
    )
    environment_set_compliance(plan=source, user=sm, expected_version=env_v + 1, validated=True)
    add(
        source,
        "on-call",
        devops,
        person=devops,
        starts_on=source.start_date,
        ends_on=source.end_date,
    )
    add(source, "rehearsals", devops, rehearsed_on=WEDNESDAY, outcome="passed")
    criterion = source.entry_criteria.get(position=1)
    row_update(
        plan=source,
        kind=row_kind("entry-criteria"),
        row_id=criterion.pk,
        user=po,
        expected_version=version(source, Section.ENTRY_CRITERIA),
        values={"status": "met", "evidence_url": "https://ci.example.com/1"},
    )
    sm_user = UserFactory()
    MembershipFactory(team=team, user=sm_user, role=Membership.Role.DEVELOPER)

    clone = plan_clone(source=source, author=sm_user, title="Saved cards, round 2")

    clone.refresh_from_db()
    assert clone.cloned_from == source
    assert clone.title == "Saved cards, round 2"
    assert clone.owner == sm_user == clone.created_by
    assert clone.status == PilotPlan.Status.DRAFT
    assert clone.start_date is None and clone.end_date is None
    assert clone.business_days == source.business_days
    assert clone.check_times == source.check_times
    assert clone.change_control == source.change_control
    assert clone.rollback_executor == devops
    assert set(section_versions(plan=clone).values()) == {1}

    def refs(plan):  # type: ignore[no-untyped-def]
        return list(
            plan.scope_items.order_by("kind", "position").values_list(
                "kind", "position", "reference", "title", "reason"
            )
        )

    assert refs(clone) == refs(source)
    assert clone.segments.count() == source.segments.count()
    assert list(clone.exit_criteria.order_by("position").values_list("metric", "threshold")) == (
        list(source.exit_criteria.order_by("position").values_list("metric", "threshold"))
    )
    assert clone.rollback_triggers.count() == 2
    assert clone.rollback_steps.count() == source.rollback_steps.count()
    assert clone.risks.count() == source.risks.count()
    assert clone.dashboards.count() == source.dashboards.count()
    assert clone.response_slas.count() == source.response_slas.count()
    assert clone.cohort.description == source.cohort.description
    # One pilot's history stays with it.
    assert not clone.on_call.exists()
    assert not clone.rollback_rehearsals.exists()
    assert clone.environment.environment == "pilot-eu-1"
    assert clone.environment.masking_rules == "Card numbers masked"
    assert clone.environment.compliance_validated_by is None
    assert clone.environment.compliance_validated_at is None
    cloned = clone.entry_criteria.get(position=1)
    assert cloned.text == criterion.text
    assert cloned.status == EntryCriterion.Status.PENDING
    assert cloned.evidence_url == ""
    assert cloned.confirmed_by is None and cloned.confirmed_at is None
    # The source is untouched.
    assert source.on_call.count() == 1
    assert source.entry_criteria.get(position=1).status == EntryCriterion.Status.MET
    assert_deferred_constraints_hold()


def test_clone_default_title_says_it_is_a_copy(plan, po):
    assert plan_clone(source=plan, author=po).title == "Saved cards (copy)"


# --- single-valued sections --------------------------------------------------------------------


def test_section_update_saves_and_bumps_the_section_and_plan_versions(plan, po):
    before = snapshot(plan)

    section_update(
        plan=plan,
        key=Section.COHORT,
        user=po,
        expected_version=1,
        values={
            "description": "200 internal users",
            "target_size": 200,
            "consent_recorded": True,
            "feedback_channel": "#pilot",
        },
    )

    cohort = Cohort.objects.get(plan=plan)
    assert (cohort.description, cohort.target_size, cohort.consent_recorded) == (
        "200 internal users",
        200,
        True,
    )
    after = snapshot(plan)
    assert after["sections"] == {**before["sections"], Section.COHORT: 2}
    assert after["plan_version"] == before["plan_version"] + 1
    section = PlanSection.objects.get(plan=plan, key=Section.COHORT)
    assert section.updated_by == po


def test_section_update_of_the_plan_itself(plan, po, sm):
    section_update(
        plan=plan,
        key=Section.OWNERSHIP,
        user=po,
        expected_version=1,
        values={"scrum_master": sm, "rollback_executor": sm},
    )
    section_update(
        plan=plan,
        key=Section.CHANGE_CONTROL,
        user=sm,
        expected_version=1,
        values={"change_control": "Findings become backlog items."},
    )

    fresh = PilotPlan.objects.get(pk=plan.pk)
    assert fresh.scrum_master == sm
    assert fresh.change_control == "Findings become backlog items."
    assert fresh.version == 3


def test_timeline_update_computes_the_end_date_from_team_holidays(plan, team, po):
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 12, 25))
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 12, 31))
    TeamHoliday.objects.create(team=team, date=dt.date(2027, 1, 1))

    section_update(
        plan=plan,
        key=Section.TIMELINE,
        user=po,
        expected_version=1,
        values={
            "start_date": dt.date(2026, 12, 24),
            "business_days": 10,
            "check_times": [dt.time(16, 0), dt.time(9, 30), dt.time(16, 0)],
        },
    )

    fresh = PilotPlan.objects.get(pk=plan.pk)
    assert fresh.end_date == dt.date(2027, 1, 11)
    assert fresh.check_times == [dt.time(9, 30), dt.time(16, 0)]


def test_saving_one_plan_section_keeps_what_someone_else_saved_in_another(plan, po, sm):
    # Both loaded the plan before either saved: each section's edit writes only its own fields.
    mine = PilotPlan.objects.get(pk=plan.pk)
    theirs = PilotPlan.objects.get(pk=plan.pk)

    section_update(
        plan=theirs,
        key=Section.CHANGE_CONTROL,
        user=sm,
        expected_version=1,
        values={"change_control": "Their note"},
    )
    section_update(
        plan=mine, key=Section.OVERVIEW, user=po, expected_version=1, values={"title": "My title"}
    )

    fresh = PilotPlan.objects.get(pk=plan.pk)
    assert fresh.change_control == "Their note"
    assert fresh.title == "My title"
    assert fresh.version == 3


@pytest.mark.parametrize(
    ("key", "values", "field"),
    [
        (Section.TIMELINE, {"business_days": 0}, "business_days"),
        (Section.TIMELINE, {"business_days": -3}, "business_days"),
        (Section.TIMELINE, {"business_days": 261}, "business_days"),
        (Section.TIMELINE, {"business_days": "ten"}, "business_days"),
        (Section.TIMELINE, {"time_zone": "Mars/Olympus"}, "time_zone"),
        (Section.TIMELINE, {"check_times": []}, "check_times"),
        (Section.OVERVIEW, {"title": ""}, "title"),
        (Section.OVERVIEW, {"title": "New", "colour": "red"}, "colour"),
        (Section.COHORT, {"target_size": -5}, "target_size"),
        (Section.COHORT, {"status": "running"}, "status"),
        (Section.ENVIRONMENT, {"compliance_validated_at": "2026-01-01"}, "compliance_validated_at"),
    ],
)
def test_section_update_refuses_bad_input_naming_the_field_and_saves_nothing(
    plan, po, key, values, field
):
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        section_update(plan=plan, key=key, user=po, expected_version=1, values=values)

    assert field in error.value.message_dict
    assert snapshot(plan) == before


def test_section_update_refuses_a_person_from_another_team(plan, po, outsider):
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        section_update(
            plan=plan,
            key=Section.OWNERSHIP,
            user=po,
            expected_version=1,
            values={"rollback_executor": outsider},
        )

    assert error.value.message_dict == {
        "rollback_executor": ["Choose a member of the plan's team."]
    }
    assert snapshot(plan) == before


def test_section_update_refuses_a_list_section(plan, po):
    with pytest.raises(ValidationError) as error:
        section_update(plan=plan, key=Section.RISKS, user=po, expected_version=1, values={})

    assert "section" in error.value.message_dict


def test_stale_section_update_is_a_conflict_and_saves_nothing(plan, po, sm):
    section_update(
        plan=plan, key=Section.COHORT, user=sm, expected_version=1, values={"description": "Theirs"}
    )
    before = snapshot(plan)

    with pytest.raises(SectionConflict) as conflict:
        section_update(
            plan=plan,
            key=Section.COHORT,
            user=po,
            expected_version=1,
            values={"description": "Mine", "target_size": 50},
        )

    assert conflict.value.section == Section.COHORT
    assert conflict.value.current.version == 2
    assert conflict.value.current.updated_by == sm
    assert sm.display_name in conflict.value.message
    assert "not saved" in conflict.value.message
    assert conflict.value.status_code == 412
    assert snapshot(plan) == before
    assert Cohort.objects.get(plan=plan).description == "Theirs"


def test_sections_are_versioned_independently(plan, po, sm):
    section_update(
        plan=plan, key=Section.COHORT, user=sm, expected_version=1, values={"description": "Theirs"}
    )

    # Still at version 1: an edit of another section does not conflict.
    section_update(
        plan=plan,
        key=Section.ENVIRONMENT,
        user=po,
        expected_version=1,
        values={"environment": "pilot-eu-1"},
    )

    assert section_versions(plan=plan)[Section.ENVIRONMENT] == 2
    assert PilotPlan.objects.get(pk=plan.pk).version == 3


# --- environment compliance --------------------------------------------------------------------


def test_compliance_cannot_be_validated_without_masking_rules(plan, sm):
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        environment_set_compliance(plan=plan, user=sm, expected_version=1, validated=True)

    assert "masking_rules" in error.value.message_dict
    assert snapshot(plan) == before


def test_compliance_validation_records_who_and_when_and_can_be_withdrawn(plan, po, sm):
    section_update(
        plan=plan,
        key=Section.ENVIRONMENT,
        user=po,
        expected_version=1,
        values={"masking_rules": "PANs masked", "uses_real_data": True},
    )

    environment_set_compliance(plan=plan, user=sm, expected_version=2, validated=True)

    env = EnvironmentAndData.objects.get(plan=plan)
    assert env.compliance_validated_by == sm
    assert env.compliance_validated_at is not None
    assert version(plan, Section.ENVIRONMENT) == 3

    environment_set_compliance(plan=plan, user=sm, expected_version=3, validated=False)

    env.refresh_from_db()
    assert env.compliance_validated_by is None and env.compliance_validated_at is None


def test_stale_compliance_validation_is_a_conflict(plan, po, sm):
    section_update(
        plan=plan,
        key=Section.ENVIRONMENT,
        user=po,
        expected_version=1,
        values={"masking_rules": "PANs masked"},
    )

    with pytest.raises(SectionConflict):
        environment_set_compliance(plan=plan, user=sm, expected_version=1, validated=True)

    assert EnvironmentAndData.objects.get(plan=plan).compliance_validated_at is None


# --- rows --------------------------------------------------------------------------------------


def test_row_kinds_cover_every_list_section():
    assert {k.section for k in ROW_KINDS.values()} >= {
        Section.SCOPE,
        Section.COHORT,
        Section.ENTRY_CRITERIA,
        Section.EXIT_CRITERIA,
        Section.MONITORING,
        Section.ROLLBACK_TRIGGERS,
        Section.ROLLBACK_PLAN,
        Section.RISKS,
    }
    with pytest.raises(Http404):
        row_kind("nonsense")


def test_rows_are_added_at_the_end_and_bump_the_section_and_plan(plan, po):
    first = add(plan, "risks", po, description="Cohort skew", likelihood="medium", impact="high")
    second = add(plan, "risks", po, description="Latency", likelihood="low", impact="high")

    assert (first.position, second.position) == (1, 2)
    assert version(plan, Section.RISKS) == 3
    assert PilotPlan.objects.get(pk=plan.pk).version == 3


def test_rows_keep_positions_one_to_n_through_add_move_update_and_remove(plan, po):
    kind = row_kind("rollback-steps")
    steps = [add(plan, "rollback-steps", po, action=a) for a in ("flag off", "revert", "verify")]
    qs = plan.rollback_steps.all()

    row_move(
        plan=plan,
        kind=kind,
        row_id=steps[2].pk,
        user=po,
        expected_version=version(plan, kind.section),
        offset=-1,
    )
    assert [a for _, a in positions(qs)] == ["1. flag off", "2. verify", "3. revert"]

    row_move(
        plan=plan,
        kind=kind,
        row_id=steps[0].pk,
        user=po,
        expected_version=version(plan, kind.section),
        offset=-1,
    )
    assert [r.action for r in qs.order_by("position")] == ["flag off", "verify", "revert"]

    row_move(
        plan=plan,
        kind=kind,
        row_id=steps[1].pk,
        user=po,
        expected_version=version(plan, kind.section),
        offset=+1,
    )
    assert [r.action for r in qs.order_by("position")] == ["flag off", "verify", "revert"]

    row_update(
        plan=plan,
        kind=kind,
        row_id=steps[1].pk,
        user=po,
        expected_version=version(plan, kind.section),
        values={"action": "revert and redeploy", "expected_minutes": 20},
    )
    assert [r.action for r in qs.order_by("position")] == [
        "flag off",
        "verify",
        "revert and redeploy",
    ]

    row_remove(
        plan=plan,
        kind=kind,
        row_id=steps[0].pk,
        user=po,
        expected_version=version(plan, kind.section),
    )
    assert [(r.position, r.action) for r in qs.order_by("position")] == [
        (1, "verify"),
        (2, "revert and redeploy"),
    ]
    assert version(plan, kind.section) == 1 + 3 + 3 + 1 + 1
    assert_deferred_constraints_hold()


def test_included_and_excluded_scope_items_are_ordered_separately(plan, po):
    kind = row_kind("scope-items")
    a = add(plan, "scope-items", po, reference="US-145", title="Save a card")
    b = add(plan, "scope-items", po, kind="excluded", title="Gateways", reason="Blast radius")
    c = add(plan, "scope-items", po, reference="US-152", title="Pay with a saved card")
    assert (a.position, b.position, c.position) == (1, 1, 2)

    # Moving an item to the other list puts it at the end there and closes the gap it left.
    row_update(
        plan=plan,
        kind=kind,
        row_id=a.pk,
        user=po,
        expected_version=version(plan, kind.section),
        values={"kind": "excluded", "reason": "Later"},
    )

    assert positions(plan.scope_items.filter(kind="included")) == [
        (1, "US-152 Pay with a saved card")
    ]
    assert positions(plan.scope_items.filter(kind="excluded")) == [
        (1, "Gateways"),
        (2, "US-145 Save a card"),
    ]
    assert_deferred_constraints_hold()


def test_moving_a_row_is_clamped_at_the_ends(plan, po):
    kind = row_kind("risks")
    only = add(plan, "risks", po, description="Only", likelihood="low", impact="low")

    row_move(
        plan=plan,
        kind=kind,
        row_id=only.pk,
        user=po,
        expected_version=version(plan, kind.section),
        offset=-1,
    )

    assert Risk.objects.get(pk=only.pk).position == 1


def test_unordered_lists_cannot_be_moved(plan, po):
    kind = row_kind("response-slas")
    sla = add(plan, "response-slas", po, severity="p1", response_minutes=15)

    with pytest.raises(ValidationError):
        row_move(
            plan=plan,
            kind=kind,
            row_id=sla.pk,
            user=po,
            expected_version=version(plan, kind.section),
            offset=1,
        )


def test_a_second_sla_for_the_same_severity_is_a_field_error(plan, po):
    add(plan, "response-slas", po, severity="p1", response_minutes=15)
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        add(plan, "response-slas", po, severity="p1", response_minutes=30)

    assert "severity" in error.value.message_dict
    assert snapshot(plan) == before


def test_a_row_of_another_plan_is_not_found(plan, team, po):
    other = plan_create(team=team, author=po, title="Other")
    risk = add(other, "risks", po, description="Theirs", likelihood="low", impact="low")
    kind = row_kind("risks")

    with pytest.raises(Http404):
        row_update(
            plan=plan,
            kind=kind,
            row_id=risk.pk,
            user=po,
            expected_version=1,
            values={"description": "Mine"},
        )
    with pytest.raises(Http404):
        row_remove(plan=plan, kind=kind, row_id=risk.pk, user=po, expected_version=1)
    assert Risk.objects.get(pk=risk.pk).description == "Theirs"


def test_exit_criterion_with_a_metric_from_the_catalogue(plan, team, po):
    row = add(
        plan,
        "exit-criteria",
        po,
        metric=metric("p2_defects", team),
        aggregation="rate_per",
        denominator=metric("sessions", team),
        per_n=1000,
        comparator="lt",
        threshold=Decimal("2"),
    )

    assert ExitCriterion.objects.get(pk=row.pk).threshold == Decimal("2")


def _exit(team, **overrides):  # type: ignore[no-untyped-def]
    return {
        "metric": metric("csat", team),
        "aggregation": "mean",
        "comparator": "ge",
        "threshold": Decimal("4.2"),
        **overrides,
    }


@pytest.mark.parametrize(
    ("slug", "values", "field"),
    [
        ("exit-criteria", lambda t: _exit(t, threshold="four point two"), "threshold"),
        ("exit-criteria", lambda t: _exit(t, threshold=Decimal("NaN")), "threshold"),
        ("exit-criteria", lambda t: _exit(t, threshold=Decimal("Infinity")), "threshold"),
        ("exit-criteria", lambda t: _exit(t, colour="red"), "colour"),
        ("exit-criteria", lambda t: _exit(t, metric=MetricDefinition(pk=987654)), "metric"),
        (
            "rollback-triggers",
            lambda t: {
                "metric": metric("p95_latency", t),
                "comparator": "gt",
                "threshold": "300ms",
                "mode": "any",
            },
            "threshold",
        ),
        (
            "segments",
            lambda t: {"dimension": "region", "value": "A", "intended_share": "a lot"},
            "intended_share",
        ),
        (
            "on-call",
            lambda t: {
                "person_name": "Kim",
                "starts_on": "next week",
                "ends_on": dt.date(2026, 3, 20),
            },
            "starts_on",
        ),
        ("entry-criteria", lambda t: {"text": "DoD", "status": "done"}, "status"),
        # The database's CHECKs let these NULLs through; the service names the missing field.
        (
            "rollback-triggers",
            lambda t: {
                "metric": metric("p95_latency", t),
                "comparator": "gt",
                "threshold": Decimal("300"),
                "mode": "sustained",
            },
            "sustained_minutes",
        ),
        ("exit-criteria", lambda t: _exit(t, aggregation="percentile"), "percentile"),
        (
            "exit-criteria",
            lambda t: _exit(t, aggregation="rate_per", denominator=metric("sessions", t)),
            "per_n",
        ),
    ],
)
def test_row_add_refuses_bad_input_naming_the_field_and_saves_nothing(
    plan, team, po, slug, values, field
):
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        add(plan, slug, po, **values(team))

    assert field in error.value.message_dict
    assert snapshot(plan) == before


def test_row_update_refuses_a_non_numeric_threshold_and_saves_nothing(plan, team, po):
    row = add(plan, "exit-criteria", po, **_exit(team))
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        row_update(
            plan=plan,
            kind=row_kind("exit-criteria"),
            row_id=row.pk,
            user=po,
            expected_version=version(plan, Section.EXIT_CRITERIA),
            values={"threshold": "high"},
        )

    assert "threshold" in error.value.message_dict
    assert snapshot(plan) == before


def test_rows_refuse_another_team_metric(plan, po, other_team):
    theirs = MetricDefinition.objects.create(
        team=other_team,
        key="basket",
        name="Basket size",
        unit="items",
        kind="gauge",
        direction="higher",
    )
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        add(
            plan,
            "rollback-triggers",
            po,
            metric=theirs,
            comparator="lt",
            threshold=Decimal("1"),
            mode="any",
        )

    assert list(error.value.message_dict) == ["metric"]
    assert "catalogue" in error.value.message_dict["metric"][0]
    assert snapshot(plan) == before


def test_rows_accept_the_team_own_metric(plan, team, po):
    ours = MetricDefinition.objects.create(
        team=team, key="basket", name="Basket size", unit="items", kind="gauge", direction="higher"
    )

    trigger = add(
        plan,
        "rollback-triggers",
        po,
        metric=ours,
        comparator="lt",
        threshold=Decimal("1"),
        mode="sustained",
        sustained_minutes=15,
    )

    assert RollbackTrigger.objects.get(pk=trigger.pk).metric == ours


@pytest.mark.parametrize(
    ("slug", "field"),
    [("rollback-steps", "owner"), ("risks", "owner"), ("on-call", "person")],
)
def test_rows_refuse_a_person_from_another_team(plan, po, outsider, slug, field):
    values = {
        "rollback-steps": {"action": "Revert"},
        "risks": {"description": "Skew", "likelihood": "low", "impact": "low"},
        "on-call": {"starts_on": dt.date(2026, 3, 9), "ends_on": dt.date(2026, 3, 13)},
    }[slug]
    before = snapshot(plan)

    with pytest.raises(ValidationError) as error:
        add(plan, slug, po, **values, **{field: outsider})

    assert error.value.message_dict == {field: ["Choose a member of the plan's team."]}
    assert snapshot(plan) == before


def test_stale_row_edits_are_conflicts_and_save_nothing(plan, po, sm):
    kind = row_kind("risks")
    risk = add(plan, "risks", sm, description="Skew", likelihood="low", impact="low")
    stale = version(plan, kind.section) - 1
    before = snapshot(plan)

    with pytest.raises(SectionConflict) as conflict:
        row_add(
            plan=plan,
            kind=kind,
            user=po,
            expected_version=stale,
            values={"description": "New", "likelihood": "low", "impact": "low"},
        )
    assert conflict.value.current.updated_by == sm
    with pytest.raises(SectionConflict):
        row_update(
            plan=plan,
            kind=kind,
            row_id=risk.pk,
            user=po,
            expected_version=stale,
            values={"description": "Changed"},
        )
    with pytest.raises(SectionConflict):
        row_move(plan=plan, kind=kind, row_id=risk.pk, user=po, expected_version=stale, offset=1)
    with pytest.raises(SectionConflict):
        row_remove(plan=plan, kind=kind, row_id=risk.pk, user=po, expected_version=stale)

    assert snapshot(plan) == before


def test_entry_criterion_met_records_who_confirmed_and_pending_clears_it(plan, po, sm):
    kind = row_kind("entry-criteria")
    criterion = add(plan, "entry-criteria", po, text="Definition of Done met", kind="dod")
    assert criterion.confirmed_by is None and criterion.confirmed_at is None

    row_update(
        plan=plan,
        kind=kind,
        row_id=criterion.pk,
        user=sm,
        expected_version=version(plan, kind.section),
        values={"status": "met", "evidence_url": "https://ci.example.com/42"},
    )

    criterion.refresh_from_db()
    assert criterion.status == EntryCriterion.Status.MET
    assert criterion.confirmed_by == sm
    assert criterion.confirmed_at is not None
    confirmed_at = criterion.confirmed_at

    # Editing the evidence later does not change who confirmed it.
    row_update(
        plan=plan,
        kind=kind,
        row_id=criterion.pk,
        user=po,
        expected_version=version(plan, kind.section),
        values={"evidence_url": "https://ci.example.com/43"},
    )
    criterion.refresh_from_db()
    assert (criterion.confirmed_by, criterion.confirmed_at) == (sm, confirmed_at)

    row_update(
        plan=plan,
        kind=kind,
        row_id=criterion.pk,
        user=po,
        expected_version=version(plan, kind.section),
        values={"status": "pending"},
    )

    criterion.refresh_from_db()
    assert criterion.status == EntryCriterion.Status.PENDING
    assert criterion.confirmed_by is None and criterion.confirmed_at is None


def test_waiving_an_entry_criterion_needs_the_reason(plan, po):
    criterion = add(plan, "entry-criteria", po, text="Load test passed", kind="non_functional")
    kind = row_kind("entry-criteria")
    before = snapshot(plan)

    with pytest.raises(ValidationError):
        row_update(
            plan=plan,
            kind=kind,
            row_id=criterion.pk,
            user=po,
            expected_version=version(plan, kind.section),
            values={"status": "waived"},
        )
    assert snapshot(plan) == before

    row_update(
        plan=plan,
        kind=kind,
        row_id=criterion.pk,
        user=po,
        expected_version=version(plan, kind.section),
        values={"status": "waived", "waiver_reason": "Same load as last release"},
    )
    criterion.refresh_from_db()
    assert criterion.confirmed_by == po


def test_rehearsals_and_on_call_belong_to_their_sections(plan, po, devops):
    add(plan, "rehearsals", devops, rehearsed_on=dt.date(2026, 3, 5), outcome="passed")
    add(
        plan,
        "on-call",
        devops,
        person=devops,
        starts_on=dt.date(2026, 3, 9),
        ends_on=dt.date(2026, 3, 20),
    )

    assert RollbackRehearsal.objects.filter(plan=plan).count() == 1
    assert OnCallShift.objects.filter(plan=plan, person=devops).count() == 1
    assert version(plan, Section.ROLLBACK_PLAN) == 2
    assert version(plan, Section.MONITORING) == 2


def test_on_call_cannot_end_before_it_starts(plan, po):
    before = snapshot(plan)

    with pytest.raises(ValidationError):
        add(
            plan,
            "on-call",
            po,
            person_name="Kim",
            starts_on=dt.date(2026, 3, 13),
            ends_on=dt.date(2026, 3, 9),
        )

    assert snapshot(plan) == before


def test_segments_and_response_slas(plan, po):
    add(plan, "segments", po, dimension="region", value="Region A", intended_share=Decimal("60"))
    add(plan, "segments", po, dimension="region", value="Region B", intended_share=Decimal("40"))
    add(plan, "response-slas", po, severity="p1", response_minutes=15)

    assert positions(CohortSegment.objects.filter(plan=plan)) == [
        (1, "Region: Region A (60.00 %)"),
        (2, "Region: Region B (40.00 %)"),
    ]
    assert ResponseSla.objects.get(plan=plan).response_minutes == 15


# --- concurrency (real PostgreSQL, one connection per thread) ----------------------------------


def _in_thread(target) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        try:
            target()
        finally:
            connection.close()  # this thread's own connection

    return threading.Thread(target=run)


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_row_adds_on_the_same_version_one_wins(team, po, sm):
    plan = plan_create(team=team, author=po, title="Race")
    kind = row_kind("risks")
    barrier = threading.Barrier(2, timeout=10)
    outcomes: dict[str, object] = {}

    def adder(user, description: str):  # type: ignore[no-untyped-def]
        def go() -> None:
            mine = PilotPlan.objects.get(pk=plan.pk)  # each thread loads its own copy
            barrier.wait()
            try:
                row_add(
                    plan=mine,
                    kind=kind,
                    user=user,
                    expected_version=1,
                    values={"description": description, "likelihood": "low", "impact": "low"},
                )
                outcomes[description] = "saved"
            except SectionConflict as conflict:
                outcomes[description] = conflict
            except Exception as other:
                outcomes[description] = other

        return go

    threads = [_in_thread(adder(po, "from po")), _in_thread(adder(sm, "from sm"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)

    assert sorted(type(o).__name__ if o != "saved" else o for o in outcomes.values()) == [
        "SectionConflict",
        "saved",
    ], outcomes
    winner = next(d for d, o in outcomes.items() if o == "saved")
    assert list(Risk.objects.filter(plan=plan).values_list("description", "position")) == [
        (winner, 1)
    ]
    assert section_versions(plan=plan)[Section.RISKS] == 2
    assert PilotPlan.objects.get(pk=plan.pk).version == 2


@pytest.mark.django_db(transaction=True)
def test_a_row_add_waiting_on_an_uncommitted_one_is_refused_when_it_commits(team, po, sm):
    """The loser blocks on the section row until the winner commits, then sees the new version."""
    from django.db import transaction

    plan = plan_create(team=team, author=po, title="Race")
    kind = row_kind("risks")
    claimed, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def winner() -> None:
        with transaction.atomic():
            row_add(
                plan=PilotPlan.objects.get(pk=plan.pk),
                kind=kind,
                user=po,
                expected_version=1,
                values={"description": "first", "likelihood": "low", "impact": "low"},
            )
            claimed.set()
            release.wait(timeout=10)  # hold the lock while the other one tries

    def loser() -> None:
        claimed.wait(timeout=10)
        try:
            row_add(
                plan=PilotPlan.objects.get(pk=plan.pk),
                kind=kind,
                user=sm,
                expected_version=1,
                values={"description": "second", "likelihood": "low", "impact": "low"},
            )
            outcome["loser"] = "saved"
        except Exception as error:
            outcome["loser"] = error

    threads = [_in_thread(winner), _in_thread(loser)]
    for t in threads:
        t.start()
    claimed.wait(timeout=10)
    threads[1].join(timeout=0.5)
    assert threads[1].is_alive(), "the second edit must wait for the first to commit"
    release.set()
    for t in threads:
        t.join(timeout=20)

    assert isinstance(outcome["loser"], SectionConflict), outcome
    assert outcome["loser"].current.updated_by == po
    assert list(Risk.objects.filter(plan=plan).values_list("description", flat=True)) == ["first"]
