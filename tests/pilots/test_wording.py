"""Every kind of exit criterion and rollback trigger reads one way (``pilots.wording``): each
aggregation, each comparator, both trigger modes, plurals, units, missing values. Pure: no
database (the rows are unsaved instances, as the wording reads only what is loaded)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalogue import comparators
from pilots import wording
from pilots.models import ExitCriterion, RollbackTrigger

# The metric definition model, wherever the catalogue keeps it.
Metric = ExitCriterion._meta.get_field("metric").related_model

LATENCY = Metric(name="p95 latency", unit="ms", kind="gauge")
CSAT = Metric(name="CSAT", unit="score", kind="score")
P1 = Metric(name="P1 defects", unit="count", kind="count")
P2 = Metric(name="P2 defects", unit="count", kind="count")
ERRORS = Metric(name="Errors", unit="count", kind="count")
REQUESTS = Metric(name="Requests", unit="count", kind="count")
SESSIONS = Metric(name="Sessions", unit="count", kind="count")


def criterion(metric, aggregation, comparator, threshold, **fields) -> ExitCriterion:  # type: ignore[no-untyped-def]
    value = None if threshold is None else Decimal(threshold)
    return ExitCriterion(
        metric=metric, aggregation=aggregation, comparator=comparator, threshold=value, **fields
    )


def trigger(metric, comparator, threshold, mode, minutes=None, **fields) -> RollbackTrigger:  # type: ignore[no-untyped-def]
    return RollbackTrigger(
        metric=metric,
        comparator=comparator,
        threshold=Decimal(threshold),
        mode=mode,
        sustained_minutes=minutes,
        **fields,
    )


CRITERIA = {
    "latest": (criterion(CSAT, "latest", "ge", "4", unit="/ 5"), "CSAT latest ≥ 4 / 5"),
    "mean": (criterion(CSAT, "mean", "ge", "4.2000", unit="/ 5"), "CSAT mean ≥ 4.2 / 5"),
    "max": (criterion(LATENCY, "max", "le", "800", unit="ms"), "p95 latency max ≤ 800 ms"),
    "min": (criterion(CSAT, "min", "gt", "2"), "CSAT min > 2"),
    "percentile": (
        criterion(LATENCY, "percentile", "lt", "300", percentile=Decimal("95.00"), unit="ms"),
        "p95 latency percentile 95 < 300 ms",
    ),
    "total": (criterion(P1, "total", "eq", "0", unit="defects"), "P1 defects total = 0 defects"),
    "rate_per": (
        criterion(P2, "rate_per", "lt", "2", denominator=SESSIONS, per_n=1000,
                  unit="per 1,000 sessions"),
        "P2 defects rate per 1,000 sessions < 2",
    ),
    "ratio": (
        criterion(ERRORS, "ratio", "le", "0.5", denominator=REQUESTS),
        "Errors as % of requests ≤ 0.5 %",
    ),
}  # fmt: skip


@pytest.mark.parametrize("aggregation", list(CRITERIA))
def test_every_aggregation_is_worded(aggregation):
    row, expected = CRITERIA[aggregation]

    assert wording.criterion_text(row) == expected
    assert str(row) == expected  # the model's own name for it is the same words


def test_the_cases_cover_every_aggregation():
    assert set(CRITERIA) == set(ExitCriterion.Aggregation.values)


def test_a_criterion_with_missing_parts_says_so():
    assert wording.criterion_text(criterion(CSAT, "mean", "ge", None, unit="/ 5")) == (
        "CSAT mean ≥ (no threshold yet)"
    )
    assert wording.criterion_text(criterion(P1, "total", "eq", None)) == (
        "P1 defects total = (no threshold yet)"
    )
    assert wording.criterion_text(criterion(P2, "rate_per", "lt", "2")) == (
        "P2 defects rate per ? ? < 2"
    )
    assert wording.criterion_text(criterion(ERRORS, "ratio", "le", "1", unit="per cent")) == (
        "Errors as % of ? ≤ 1 per cent"
    )


def test_a_unit_that_is_not_a_rate_stays_on_a_rate():
    row = criterion(P2, "rate_per", "lt", "2", denominator=SESSIONS, per_n=1000, unit="defects")
    assert wording.criterion_text(row) == "P2 defects rate per 1,000 sessions < 2 defects"


@pytest.mark.parametrize(("code", "symbol"), [(c.code, c.symbol) for c in comparators.TABLE])
def test_every_comparator_reads_as_its_symbol(code, symbol):
    row = trigger(LATENCY, code, "300", "sustained", 30)
    assert wording.trigger_text(row) == f"p95 latency {symbol} 300 ms for 30 minutes"
    assert wording.criterion_text(criterion(CSAT, "mean", code, "4.2")) == f"CSAT mean {symbol} 4.2"


TRIGGERS = {
    "sustained": (trigger(LATENCY, "gt", "300.0000", "sustained", 30),
                  "p95 latency > 300 ms for 30 minutes"),
    "any": (trigger(P1, "gt", "0", "any"), "P1 defects > 0 (any occurrence)"),
}  # fmt: skip


@pytest.mark.parametrize("mode", list(TRIGGERS))
def test_every_trigger_mode_is_worded(mode):
    row, expected = TRIGGERS[mode]

    assert wording.trigger_text(row) == expected
    assert str(row) == expected


def test_the_cases_cover_every_trigger_mode():
    assert set(TRIGGERS) == set(RollbackTrigger.Mode.values)


def test_minutes_are_counted_in_words_with_the_right_plural():
    assert wording.trigger_text(trigger(LATENCY, "gt", "300", "sustained", 1)) == (
        "p95 latency > 300 ms for 1 minute"
    )
    assert wording.trigger_text(trigger(LATENCY, "gt", "300", "sustained", 1440)) == (
        "p95 latency > 300 ms for 1,440 minutes"
    )
    assert wording.duration_text(2) == "2 minutes"
    assert wording.duration_text(None) == "? minutes"


def test_a_count_or_a_score_is_not_printed_as_a_unit():
    assert wording.trigger_text(trigger(CSAT, "lt", "3.5", "sustained", 60)) == (
        "CSAT < 3.5 for 60 minutes"
    )
    assert wording.trigger_text(
        trigger(Metric(name="Checkout time", unit="s"), "ge", "2", "any")
    ) == ("Checkout time ≥ 2 s (any occurrence)")
    assert wording.trigger_text(trigger(Metric(name="Checkout", unit=""), "ge", "2", "any")) == (
        "Checkout ≥ 2 (any occurrence)"
    )


def test_the_description_is_a_note_beside_the_text_never_instead_of_it():
    row = trigger(P1, "gt", "0", "any", description="Any P1 defect")

    assert wording.trigger_text(row) == "P1 defects > 0 (any occurrence)"
    assert str(row) == "P1 defects > 0 (any occurrence)"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("300.0000"), "300"),
        (Decimal("0.5000"), "0.5"),
        (Decimal("1000"), "1,000"),
        (Decimal("-2.5"), "-2.5"),
        (1000, "1,000"),
        (4.2, "4.2"),
        (300.0, "300"),
        (0.00001, "0.00001"),
        (None, "?"),
    ],
)
def test_numbers_read_as_written(value, text):
    assert wording.number_text(value) == text


def test_threshold_text():
    assert wording.threshold_text("ge", 4.2) == "≥ 4.2"
    assert wording.threshold_text("le", Decimal("0.5"), "%") == "≤ 0.5 %"
    assert wording.threshold_text("lt", None) == "< (no threshold yet)"
    assert wording.threshold_text("lt", None, "ms") == "< (no threshold yet)"
