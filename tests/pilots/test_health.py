"""Plan health: one test per rule, a complete plan without gaps, and no queries of its own."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import TeamHoliday
from pilots import health
from pilots.health import Gap, plan_health
from pilots.models import (
    CohortSegment,
    EnvironmentAndData,
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    RollbackRehearsal,
    RollbackStep,
    RollbackTrigger,
    ScopeItem,
    Section,
)
from pilots.selectors import plan_detail_queryset, plan_health_queryset
from pilots.services import (
    environment_set_compliance,
    plan_create,
    plan_create_from_template,
    section_versions,
)
from tests.factories import row_append as add
from tests.factories import section_edit as edit

pytestmark = pytest.mark.django_db

WEDNESDAY = dt.date(2026, 3, 4)
START = dt.date(2026, 3, 9)  # the Monday after; 10 business days end on Fri 20 March
END = dt.date(2026, 3, 20)


def load(plan: PilotPlan) -> PilotPlan:
    """The plan as every page reads it: all sections prefetched."""
    return plan_detail_queryset().get(pk=plan.pk)


def codes(plan: PilotPlan) -> list[str]:
    gaps = plan_health(load(plan))
    # The portfolio loads many plans with only what the rules read: it finds the same gaps.
    assert plan_health(plan_health_queryset().get(pk=plan.pk)) == gaps
    return [gap.code for gap in gaps]


@pytest.fixture
def complete(team, po, sm, developer, devops) -> PilotPlan:
    """The built-in template, completed the way a team would before asking for review."""
    plan = plan_create_from_template(team=team, author=po, today=WEDNESDAY)
    edit(plan, Section.COHORT, po, consent_recorded=True, feedback_channel="#pilot-feedback")
    edit(
        plan,
        Section.ENVIRONMENT,
        developer,
        environment="pilot-eu-1",
        uses_real_data=True,
        masking_rules="Card numbers and e-mails masked in logs and exports.",
    )
    environment_set_compliance(
        plan=plan,
        user=sm,
        expected_version=section_versions(plan=plan)[Section.ENVIRONMENT],
        validated=True,
    )
    add(plan, "on-call", devops, person=devops, starts_on=START, ends_on=END)
    add(plan, "rehearsals", devops, rehearsed_on=WEDNESDAY, outcome="passed")
    return PilotPlan.objects.get(pk=plan.pk)


def shifts(plan: PilotPlan, *ranges: tuple[dt.date, dt.date]) -> None:
    OnCallShift.objects.filter(plan=plan).delete()
    for starts_on, ends_on in ranges:
        OnCallShift.objects.create(
            plan=plan, person_name="Kim", starts_on=starts_on, ends_on=ends_on
        )


# --- the whole panel ---------------------------------------------------------------------------


def test_a_complete_plan_has_no_gaps(complete):
    assert plan_health(load(complete)) == []


def test_the_template_alone_lists_what_is_left_to_do(team, po, devops):
    plan = plan_create_from_template(team=team, author=po, today=WEDNESDAY)

    assert codes(plan) == [
        "cohort_without_consent",
        "cohort_without_feedback_channel",
        "empty_environment",
        "on_call_gap",
        "rollback_not_rehearsed",
    ]


def test_plan_health_reads_only_what_is_loaded(complete, django_assert_num_queries):
    # A few gaps of several kinds, so every rule has rows to look at.
    ExitCriterion.objects.filter(plan=complete, position=1).update(threshold=None)
    CohortSegment.objects.create(
        plan=complete,
        position=2,
        dimension="audience",
        value="internal",
        intended_share=Decimal("50"),
    )
    TeamHoliday.objects.create(team=complete.team, date=dt.date(2026, 3, 13))
    plan = load(complete)

    with django_assert_num_queries(0):
        gaps = plan_health(plan)

    assert {g.code for g in gaps} == {
        "exit_criterion_without_threshold",
        "segment_mix_not_100",
        "on_call_gap",
    }


def test_gaps_come_in_the_order_of_the_plan_sections(team, po):
    plan = plan_create(team=team, author=po, title="Empty")

    sections = [gap.section for gap in plan_health(load(plan))]

    order = Section.values
    assert sections == sorted(sections, key=order.index)


def test_each_gap_names_and_links_its_section():
    gap = Gap(Section.EXIT_CRITERIA, "x", "message")

    assert gap.section_label == "Exit criteria"
    assert f"section-{gap.section}" == "section-exit_criteria"


def test_every_rule_is_run():
    assert set(health.RULES) == {
        health.empty_sections,
        health.exit_criteria_quantitative,
        health.rollback_defined,
        health.rollback_rehearsed,
        health.cohort_consent_and_feedback,
        health.real_data_validated,
        health.on_call_covers_window,
        health.segment_mix_complete,
    }


# --- empty sections ----------------------------------------------------------------------------


def test_a_new_plan_has_every_section_empty(team, po):
    plan = plan_create(team=team, author=po, title="Empty")

    gaps = plan_health(load(plan))

    empty = {(g.section, g.code) for g in gaps if g.code.startswith("empty_")}
    assert empty == {
        (Section.SCOPE, "empty_scope"),
        (Section.COHORT, "empty_cohort"),
        (Section.ENVIRONMENT, "empty_environment"),
        (Section.ENTRY_CRITERIA, "empty_entry_criteria"),
        (Section.EXIT_CRITERIA, "empty_exit_criteria"),
        (Section.MONITORING, "empty_monitoring"),
        (Section.RISKS, "empty_risks"),
        (Section.TIMELINE, "empty_timeline"),
        (Section.OWNERSHIP, "empty_ownership"),
        (Section.CHANGE_CONTROL, "empty_change_control"),
    }
    # Monitoring misses both its dashboards and its response SLAs.
    assert [g.message for g in gaps if g.code == "empty_monitoring"] == [
        "No monitoring dashboard is linked.",
        "No response SLA per severity.",
    ]
    assert {
        "no_rollback_trigger",
        "no_rollback_steps",
        "rollback_not_rehearsed",
        "cohort_without_consent",
        "cohort_without_feedback_channel",
    } <= {g.code for g in gaps}
    # Without a start date there is no window to cover yet.
    assert "on_call_gap" not in {g.code for g in gaps}


def test_a_scope_of_only_excluded_items_is_empty(complete):
    ScopeItem.objects.filter(plan=complete, kind="included").delete()

    assert codes(complete) == ["empty_scope"]


def test_a_cohort_without_target_size_is_empty(complete):
    complete.cohort.target_size = None
    complete.cohort.save()

    assert codes(complete) == ["empty_cohort"]


def test_ownership_needs_a_rollback_executor(complete):
    PilotPlan.objects.filter(pk=complete.pk).update(rollback_executor=None)

    assert codes(complete) == ["empty_ownership"]


def test_blank_change_control_is_empty(complete):
    PilotPlan.objects.filter(pk=complete.pk).update(change_control="  ")

    assert codes(complete) == ["empty_change_control"]


# --- exit criteria -----------------------------------------------------------------------------


def test_an_exit_criterion_without_a_threshold(complete):
    ExitCriterion.objects.filter(plan=complete, metric__key="csat").update(threshold=None)

    gaps = plan_health(load(complete))

    assert [(g.section, g.code, g.message) for g in gaps] == [
        (
            Section.EXIT_CRITERIA,
            "exit_criterion_without_threshold",
            "Exit criterion “CSAT” has no numeric threshold.",
        ),
    ]


def test_a_zero_threshold_is_a_threshold(complete):
    assert ExitCriterion.objects.filter(plan=complete, threshold=0).exists()  # P1 defects = 0

    assert "exit_criterion_without_threshold" not in codes(complete)


# --- rollback ----------------------------------------------------------------------------------


def test_no_rollback_trigger(complete):
    RollbackTrigger.objects.filter(plan=complete).delete()

    assert [(g.section, g.code) for g in plan_health(load(complete))] == [
        (Section.ROLLBACK_TRIGGERS, "no_rollback_trigger")
    ]


def test_no_rollback_steps(complete):
    RollbackStep.objects.filter(plan=complete).delete()

    assert [(g.section, g.code) for g in plan_health(load(complete))] == [
        (Section.ROLLBACK_PLAN, "no_rollback_steps")
    ]


def test_rollback_never_rehearsed(complete):
    RollbackRehearsal.objects.filter(plan=complete).delete()

    assert [(g.section, g.code) for g in plan_health(load(complete))] == [
        (Section.ROLLBACK_PLAN, "rollback_not_rehearsed")
    ]


def test_a_failed_rehearsal_still_counts_as_rehearsed(complete):
    RollbackRehearsal.objects.filter(plan=complete).update(outcome="failed")

    assert codes(complete) == []


# --- cohort ------------------------------------------------------------------------------------


def test_cohort_without_consent(complete):
    complete.cohort.consent_recorded = False
    complete.cohort.save()

    assert [(g.section, g.code) for g in plan_health(load(complete))] == [
        (Section.COHORT, "cohort_without_consent")
    ]


def test_cohort_without_feedback_channel(complete):
    complete.cohort.feedback_channel = " "
    complete.cohort.save()

    assert [(g.section, g.code) for g in plan_health(load(complete))] == [
        (Section.COHORT, "cohort_without_feedback_channel")
    ]


# --- real data ---------------------------------------------------------------------------------


def test_real_data_without_masking_rules(complete):
    EnvironmentAndData.objects.filter(plan=complete).update(masking_rules="")

    assert codes(complete) == ["real_data_without_masking"]


def test_real_data_without_validated_compliance(complete):
    EnvironmentAndData.objects.filter(plan=complete).update(
        compliance_validated_by=None, compliance_validated_at=None
    )

    gaps = plan_health(load(complete))

    assert [(g.section, g.code) for g in gaps] == [(Section.ENVIRONMENT, "real_data_not_validated")]


def test_real_data_with_neither(complete):
    EnvironmentAndData.objects.filter(plan=complete).update(
        masking_rules="", compliance_validated_by=None, compliance_validated_at=None
    )

    assert codes(complete) == ["real_data_without_masking", "real_data_not_validated"]


def test_synthetic_data_needs_no_masking_or_validation(complete):
    EnvironmentAndData.objects.filter(plan=complete).update(
        uses_real_data=False,
        masking_rules="",
        compliance_validated_by=None,
        compliance_validated_at=None,
    )

    assert codes(complete) == []


# --- on-call coverage --------------------------------------------------------------------------


def test_on_call_missing_a_business_day(complete):
    shifts(complete, (START, dt.date(2026, 3, 12)), (dt.date(2026, 3, 16), END))  # not Fri 13

    gaps = plan_health(load(complete))

    assert [(g.section, g.code, g.message) for g in gaps] == [
        (
            Section.MONITORING,
            "on_call_gap",
            "On-call coverage misses 1 business day of the pilot, first Fri 13 Mar.",
        ),
    ]


def test_no_on_call_at_all_misses_every_business_day(complete):
    OnCallShift.objects.filter(plan=complete).delete()

    (gap,) = plan_health(load(complete))

    assert gap.code == "on_call_gap"
    assert "misses 10 business days" in gap.message
    assert "first Mon 9 Mar" in gap.message


def test_a_weekend_without_on_call_is_fine(complete):
    shifts(complete, (START, dt.date(2026, 3, 13)), (dt.date(2026, 3, 16), END))

    assert codes(complete) == []


def test_a_team_holiday_needs_no_on_call(complete):
    # Fri 13 March is a holiday: the pilot runs one business day longer, to Mon 23 March.
    TeamHoliday.objects.create(team=complete.team, date=dt.date(2026, 3, 13), name="Team day")
    shifts(complete, (START, dt.date(2026, 3, 12)), (dt.date(2026, 3, 16), dt.date(2026, 3, 23)))

    assert codes(complete) == []


def test_a_team_holiday_moves_the_last_day_that_needs_cover(complete):
    TeamHoliday.objects.create(team=complete.team, date=dt.date(2026, 3, 13))

    gaps = plan_health(load(complete))  # the shift still ends on Fri 20 March

    assert [g.message for g in gaps] == [
        "On-call coverage misses 1 business day of the pilot, first Mon 23 Mar."
    ]


def test_overlapping_shifts_cover_the_window(complete):
    shifts(complete, (START, dt.date(2026, 3, 17)), (dt.date(2026, 3, 13), END))

    assert codes(complete) == []


# --- segment mix -------------------------------------------------------------------------------


def segments(plan: PilotPlan, *rows: tuple[str, str, str]) -> None:
    CohortSegment.objects.filter(plan=plan).delete()
    for position, (dimension, value, share) in enumerate(rows, start=1):
        CohortSegment.objects.create(
            plan=plan,
            position=position,
            dimension=dimension,
            value=value,
            intended_share=Decimal(share),
        )


def test_segment_mix_not_adding_up_to_100(complete):
    segments(complete, ("region", "Region A", "60"), ("region", "Region B", "30"))

    gaps = plan_health(load(complete))

    assert [(g.section, g.code, g.message) for g in gaps] == [
        (Section.COHORT, "segment_mix_not_100", "Region segments add up to 90 %, not 100 %."),
    ]


def test_segment_mix_is_checked_per_dimension(complete):
    segments(
        complete,
        ("region", "Region A", "70"),
        ("region", "Region B", "30"),
        ("audience", "internal", "80"),
        ("audience", "external", "25.5"),
    )

    gaps = plan_health(load(complete))

    assert [g.message for g in gaps] == [
        "Internal / external segments add up to 105.5 %, not 100 %."
    ]


def test_segment_mix_of_several_dimensions_each_100_is_fine(complete):
    segments(
        complete,
        ("region", "Region A", "33.33"),
        ("region", "Region B", "66.67"),
        ("customer_type", "SMB", "100"),
    )

    assert codes(complete) == []


def test_no_segments_is_not_a_mix_gap(complete):
    segments(complete)

    assert codes(complete) == []
