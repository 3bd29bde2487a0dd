"""The database refuses what the model forbids, even from code that bypasses the services
(``objects.create`` / ``.update()``, bulk writes, a shell, a future bug)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from catalogue.models import MetricDefinition
from pilots.models import (
    CohortSegment,
    EntryCriterion,
    EnvironmentAndData,
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    PlanSection,
    ResponseSla,
    RollbackStep,
    RollbackTrigger,
    ScopeItem,
)
from pilots.services import plan_create

pytestmark = pytest.mark.django_db

NAN = Decimal("NaN")


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    return plan_create(team=team, author=po, title="Saved cards")


@pytest.fixture
def latency(team):  # type: ignore[no-untyped-def]
    # The team's own metric: these tests do not depend on the seeded catalogue.
    return MetricDefinition.objects.create(
        team=team, key="latency", name="Latency", unit="ms", kind="gauge", direction="lower"
    )


@contextmanager
def refused(constraint: str) -> Iterator[None]:
    """Expect the statements inside to be refused by the named database constraint."""
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        yield
        # Deferred constraints are checked at commit; the test never commits, so ask now.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cause = error.value.__cause__
    assert getattr(getattr(cause, "diag", None), "constraint_name", None) == constraint, (
        f"refused by {cause!r}, expected {constraint}"
    )


def _exit_criterion(plan, metric, **overrides) -> ExitCriterion:  # type: ignore[no-untyped-def]
    values = {
        "plan": plan,
        "position": 1,
        "metric": metric,
        "aggregation": "mean",
        "comparator": "lt",
        "threshold": Decimal("300"),
        **overrides,
    }
    return ExitCriterion.objects.create(**values)


def _trigger(plan, metric, **overrides) -> RollbackTrigger:  # type: ignore[no-untyped-def]
    values = {
        "plan": plan,
        "position": 1,
        "metric": metric,
        "comparator": "gt",
        "threshold": Decimal("300"),
        "mode": "sustained",
        "sustained_minutes": 30,
        **overrides,
    }
    return RollbackTrigger.objects.create(**values)


# --- the plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, 261])
def test_business_days_out_of_range(plan, days):
    with refused("pilots_pilotplan_business_days_range"):
        PilotPlan.objects.filter(pk=plan.pk).update(business_days=days)


def test_end_date_before_start(plan):
    with refused("pilots_pilotplan_end_after_start"):
        PilotPlan.objects.filter(pk=plan.pk).update(
            start_date=dt.date(2026, 3, 9), end_date=dt.date(2026, 3, 6)
        )


def test_unknown_status(plan):
    with refused("pilots_pilotplan_status_valid"):
        PilotPlan.objects.filter(pk=plan.pk).update(status="launched")


def test_no_check_times(plan):
    with refused("pilots_pilotplan_check_times_not_empty"):
        PilotPlan.objects.filter(pk=plan.pk).update(check_times=[])


def test_one_version_row_per_section(plan):
    with refused("pilots_plansection_one_per_key"):
        PlanSection.objects.create(plan=plan, key="cohort")


# --- thresholds are numbers --------------------------------------------------------------------


def _set_nan_threshold(model, pk: int) -> None:  # type: ignore[no-untyped-def]
    # Django's DecimalField will not even send NaN ("must be a decimal number"); raw SQL stands
    # for every writer that does not go through Django.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET threshold = 'NaN'::numeric WHERE id = %s",  # noqa: S608 - a model's table name, not input
            [pk],
        )


def test_nan_threshold_on_an_exit_criterion(plan, latency):
    criterion = _exit_criterion(plan, latency)

    with refused("pilots_exitcriterion_threshold_is_number"):
        _set_nan_threshold(ExitCriterion, criterion.pk)
    with pytest.raises(ValidationError):
        ExitCriterion.objects.filter(pk=criterion.pk).update(threshold=NAN)


def test_nan_threshold_on_a_rollback_trigger(plan, latency):
    trigger = _trigger(plan, latency)

    with refused("pilots_rollbacktrigger_threshold_is_number"):
        _set_nan_threshold(RollbackTrigger, trigger.pk)
    with pytest.raises(ValidationError):
        RollbackTrigger.objects.filter(pk=trigger.pk).update(threshold=NAN)


def test_the_largest_threshold_is_still_a_number(plan, latency):
    criterion = _exit_criterion(plan, latency, threshold=Decimal("9999999999.9999"))

    assert ExitCriterion.objects.get(pk=criterion.pk).threshold == Decimal("9999999999.9999")


def test_an_exit_criterion_may_wait_for_its_threshold(plan, latency):
    # Plan health flags it; the database allows the draft.
    assert _exit_criterion(plan, latency, threshold=None).threshold is None


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"comparator": "~"}, "pilots_exitcriterion_comparator_valid"),
        (
            {"aggregation": "percentile", "percentile": None},
            "pilots_exitcriterion_percentile_in_range",
        ),
        (
            {"aggregation": "percentile", "percentile": Decimal("0")},
            "pilots_exitcriterion_percentile_in_range",
        ),
        (
            {"aggregation": "percentile", "percentile": Decimal("100")},
            "pilots_exitcriterion_percentile_in_range",
        ),
        ({"aggregation": "ratio"}, "pilots_exitcriterion_rate_has_denominator"),
    ],
)
def test_exit_criterion_shape(plan, latency, overrides, constraint):
    with refused(constraint):
        _exit_criterion(plan, latency, **overrides)


def test_a_rate_per_zero_is_refused(plan, latency):
    with refused("pilots_exitcriterion_rate_has_per_n"):
        _exit_criterion(plan, latency, aggregation="rate_per", denominator=latency, per_n=0)


def test_a_rate_needs_per_how_many(plan, latency):
    with refused("pilots_exitcriterion_rate_has_per_n"):
        _exit_criterion(plan, latency, aggregation="rate_per", denominator=latency, per_n=None)


# --- triggers ----------------------------------------------------------------------------------


def test_sustained_trigger_without_minutes(plan, latency):
    with refused("pilots_rollbacktrigger_sustained_has_duration"):
        _trigger(plan, latency, sustained_minutes=None)


def test_sustained_trigger_for_zero_minutes(plan, latency):
    trigger = _trigger(plan, latency)

    with refused("pilots_rollbacktrigger_sustained_has_duration"):
        RollbackTrigger.objects.filter(pk=trigger.pk).update(sustained_minutes=0)


def test_any_occurrence_trigger_has_no_duration(plan, latency):
    with refused("pilots_rollbacktrigger_sustained_has_duration"):
        _trigger(plan, latency, mode="any", sustained_minutes=30)


# --- ordering ----------------------------------------------------------------------------------


def test_duplicate_position_is_refused_at_commit(plan):
    RollbackStep.objects.create(plan=plan, position=1, action="Flag off")

    with refused("pilots_rollbackstep_position_unique"):
        RollbackStep.objects.create(plan=plan, position=1, action="Revert")


def test_positions_may_be_swapped_inside_a_transaction(plan):
    first = RollbackStep.objects.create(plan=plan, position=1, action="Flag off")
    second = RollbackStep.objects.create(plan=plan, position=2, action="Revert")

    with transaction.atomic():
        RollbackStep.objects.filter(pk=first.pk).update(position=2)  # briefly two at 2
        RollbackStep.objects.filter(pk=second.pk).update(position=1)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what commit checks

    assert list(plan.rollback_steps.values_list("action", flat=True)) == ["Revert", "Flag off"]


def test_the_same_position_in_different_plans_or_lists_is_fine(plan, team, po):
    other = plan_create(team=team, author=po, title="Other")
    ScopeItem.objects.create(plan=plan, position=1, title="US-145")
    ScopeItem.objects.create(plan=other, position=1, title="US-145")
    ScopeItem.objects.create(
        plan=plan, position=1, kind="excluded", title="Gateways", reason="Later"
    )

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db(transaction=True)
def test_duplicate_position_fails_the_real_commit(team, po):
    plan = plan_create(team=team, author=po, title="Saved cards")

    with pytest.raises(IntegrityError) as error, transaction.atomic():
        RollbackStep.objects.create(plan=plan, position=1, action="Flag off")
        RollbackStep.objects.create(plan=plan, position=1, action="Revert")  # accepted here…
    # … and refused when the transaction commits, so nothing of it is kept.
    assert error.value.__cause__.diag.constraint_name == "pilots_rollbackstep_position_unique"
    assert not RollbackStep.objects.filter(plan=plan).exists()


# --- other sections ----------------------------------------------------------------------------


@pytest.mark.parametrize("share", [Decimal("101"), Decimal("-1")])
def test_segment_share_is_a_percentage(plan, share):
    with refused("pilots_cohortsegment_share_percent"):
        CohortSegment.objects.create(
            plan=plan, position=1, dimension="region", value="A", intended_share=share
        )


def test_excluded_scope_item_without_reason(plan):
    with refused("pilots_scopeitem_excluded_has_reason"):
        ScopeItem.objects.create(plan=plan, position=1, kind="excluded", title="Payment gateways")
    item = ScopeItem.objects.create(plan=plan, position=1, title="US-145")
    with refused("pilots_scopeitem_excluded_has_reason"):
        ScopeItem.objects.filter(pk=item.pk).update(kind="excluded")


def test_waived_entry_criterion_without_reason(plan, po):
    with refused("pilots_entrycriterion_waiver_has_reason"):
        EntryCriterion.objects.create(
            plan=plan,
            position=1,
            text="Load test",
            status="waived",
            confirmed_by=po,
            confirmed_at=dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC),
        )


def test_met_entry_criterion_names_who_confirmed_it(plan):
    with refused("pilots_entrycriterion_confirmed_who_and_when"):
        EntryCriterion.objects.create(
            plan=plan, position=1, text="DoD met", status="met", evidence_note="CI green"
        )


def test_met_entry_criterion_without_evidence(plan, po):
    with refused("pilots_entrycriterion_met_has_evidence"):
        EntryCriterion.objects.create(
            plan=plan,
            position=1,
            text="DoD met",
            status="met",
            confirmed_by=po,
            confirmed_at=dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC),
        )


def test_on_call_ending_before_it_starts(plan):
    with refused("pilots_oncallshift_ends_after_start"):
        OnCallShift.objects.create(
            plan=plan,
            person_name="Kim",
            starts_on=dt.date(2026, 3, 13),
            ends_on=dt.date(2026, 3, 9),
        )


def test_on_call_names_someone(plan):
    with refused("pilots_oncallshift_has_person"):
        OnCallShift.objects.create(
            plan=plan, starts_on=dt.date(2026, 3, 9), ends_on=dt.date(2026, 3, 13)
        )


def test_one_response_sla_per_severity(plan):
    ResponseSla.objects.create(plan=plan, severity="p1", response_minutes=15)

    with refused("pilots_responsesla_one_per_severity"):
        ResponseSla.objects.create(plan=plan, severity="p1", response_minutes=30)


def test_compliance_validation_needs_who_and_when(plan, po):
    with refused("pilots_environmentanddata_validation_who_and_when"):
        EnvironmentAndData.objects.filter(plan=plan).update(compliance_validated_by=po)
