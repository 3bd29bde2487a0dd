"""The one table of comparators: codes, symbols, words, the comparison in Python and in SQL, and
everything that names a comparator reading it (model choices, the database rule, statistics)."""

from __future__ import annotations

import pytest
from django.db import connection

from catalogue import comparators
from metrics import statistics
from pilots.models.sections import COMPARATORS, Comparator

ROWS = [
    ("lt", "<", "less than"),
    ("le", "≤", "at most"),
    ("eq", "=", "equal to"),
    ("ge", "≥", "at least"),
    ("gt", ">", "more than"),
]
# value → does "value <comparator> 2" hold, for value 1, 2, 3.
HOLDS = {
    "lt": (True, False, False),
    "le": (True, True, False),
    "eq": (False, True, False),
    "ge": (False, True, True),
    "gt": (False, False, True),
}


def test_the_table():
    assert [(c.code, c.symbol, c.words) for c in comparators.TABLE] == ROWS
    assert comparators.CODES == ("lt", "le", "eq", "ge", "gt")
    assert {code: comparators.symbol(code) for code in comparators.CODES} == {
        code: symbol for code, symbol, _ in ROWS
    }


@pytest.mark.parametrize("code", list(HOLDS))
def test_compare(code):
    assert tuple(comparators.compare(v, code, 2) for v in (1, 2, 3)) == HOLDS[code]
    assert comparators.compare(2.0, code, 2) == HOLDS[code][1]  # floats and ints alike


def test_an_unknown_code_is_refused_when_comparing_and_printed_as_itself_when_shown():
    with pytest.raises(ValueError, match=r"Unknown comparator 'ne'; expected one of lt, le, eq"):
        comparators.compare(1, "ne", 2)
    with pytest.raises(ValueError, match="Unknown comparator None"):
        comparators.get(None)  # type: ignore[arg-type]
    assert comparators.symbol("ne") == "ne"


@pytest.mark.django_db
def test_the_sql_comparison_agrees_with_python():
    case = comparators.sql_case(code="c.code", value="v.value", threshold="2")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.code, v.value, {case} FROM unnest(%s::text[]) AS c(code)"  # noqa: S608 - built from the table
            " CROSS JOIN unnest(ARRAY[1.0, 2.0, 3.0]::float8[]) AS v(value)",
            [[*comparators.CODES, "ne"]],
        )
        rows = cursor.fetchall()
    got: dict[str, list[bool | None]] = {}
    for code, _value, holds in rows:
        got.setdefault(code, []).append(holds)
    assert {code: tuple(v) for code, v in got.items() if code != "ne"} == HOLDS
    assert got["ne"] == [None, None, None]  # an unknown code matches nothing


def test_the_models_and_the_statistics_read_the_table():
    # The database values and labels of the choices are the table's (no migration needed).
    assert Comparator.choices == [(code, symbol) for code, symbol, _ in ROWS]
    assert Comparator("ge").label == "≥"
    assert list(comparators.CODES) == COMPARATORS  # the check constraints' list
    with pytest.raises(ValueError, match="Unknown comparator 'ne'"):
        statistics.evaluate(
            estimate=statistics.Estimate(1.0, 1.0, 1.0, 1, statistics.EXACT),
            comparator="ne",
            threshold=1,
            min_sample_size=0,
        )


@pytest.mark.django_db
def test_the_sql_range_case_holds_exactly_when_some_value_in_the_range_satisfies():
    """A bucket with minimum ``low`` and maximum ``high`` may hold a breaching value (what "any
    occurrence" triggers read from rollups) exactly when one of the values between them does."""
    case = comparators.sql_range_case(code="c.code", low="r.low", high="r.high", threshold="2")
    ranges = [(lo, hi) for lo in (1.0, 2.0, 3.0) for hi in (1.0, 2.0, 3.0) if lo <= hi]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.code, r.low, r.high, {case} FROM unnest(%s::text[]) AS c(code)"  # noqa: S608 - built from the table
            " CROSS JOIN unnest(%s::float8[], %s::float8[]) AS r(low, high)",
            [[*comparators.CODES, "ne"], [lo for lo, _ in ranges], [hi for _, hi in ranges]],
        )
        rows = cursor.fetchall()
    for code, low, high, may in rows:
        if code == "ne":
            assert may is None
            continue
        values = [v for v in (1.0, 1.5, 2.0, 2.5, 3.0) if low <= v <= high]
        assert may == any(comparators.compare(v, code, 2) for v in values), (code, low, high)
