"""The comparators of exit criteria and rollback triggers: the one table.

A comparator has a code (what the database stores and the API takes), a symbol (what pages,
exports, alerts and check history print), words (for sentences) and an SQL operator. Everything
that names or applies a comparator reads it from here: the model choices, the statistics, the
trigger evaluation (in Python with :func:`compare`, in SQL with :func:`sql_case`) and the
wording of criteria and triggers (``pilots.wording``).

This module imports nothing from the project: it sits below every app.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Comparator:
    code: str
    symbol: str
    words: str
    sql: str
    holds: Callable[[float, float], bool]  # holds(value, threshold)


TABLE: Final = (
    Comparator("lt", "<", "less than", "<", operator.lt),
    Comparator("le", "≤", "at most", "<=", operator.le),
    Comparator("eq", "=", "equal to", "=", operator.eq),
    Comparator("ge", "≥", "at least", ">=", operator.ge),
    Comparator("gt", ">", "more than", ">", operator.gt),
)
BY_CODE: Final = {c.code: c for c in TABLE}
CODES: Final = tuple(BY_CODE)


def get(code: str) -> Comparator:
    """The comparator with this code; ``ValueError`` naming the valid codes otherwise."""
    try:
        return BY_CODE[code]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown comparator {code!r}; expected one of {', '.join(CODES)}."
        ) from None


def symbol(code: str) -> str:
    """The symbol of a code, "≥" for "ge". An unknown code (stored history, never a live row:
    the database accepts only the codes above) prints as itself rather than failing the page."""
    comparator = BY_CODE.get(code)
    return comparator.symbol if comparator is not None else str(code)


def compare(value: float, comparator: str, threshold: float) -> bool:
    """Whether ``value`` satisfies ``comparator threshold`` (e.g. 412 > 300)."""
    return get(comparator).holds(value, threshold)


def sql_case(*, code: str, value: str, threshold: str) -> str:
    """The SQL expression that is true when ``value`` satisfies the comparator named by the SQL
    expression ``code`` against ``threshold`` (all three are SQL fragments, e.g. column names
    or placeholders). An unknown code gives NULL, which a WHERE treats as false."""
    whens = " ".join(f"WHEN '{c.code}' THEN {value} {c.sql} {threshold}" for c in TABLE)
    return f"CASE {code} {whens} END"


def sql_range_case(*, code: str, low: str, high: str, threshold: str) -> str:
    """The SQL expression that is true when some value between ``low`` and ``high`` (a bucket's
    minimum and maximum) may satisfy the comparator named by ``code``: for < and ≤ the minimum
    decides, for > and ≥ the maximum, for = the threshold must lie between the two. Which
    extreme decides is read from each comparator's ``holds``. An unknown code gives NULL."""

    def whether(c: Comparator) -> str:
        below, above = c.holds(0.0, 1.0), c.holds(1.0, 0.0)
        if below and not above:
            return f"{low} {c.sql} {threshold}"
        if above and not below:
            return f"{high} {c.sql} {threshold}"
        return f"{low} <= {threshold} AND {high} >= {threshold}"

    whens = " ".join(f"WHEN '{c.code}' THEN {whether(c)}" for c in TABLE)
    return f"CASE {code} {whens} END"
