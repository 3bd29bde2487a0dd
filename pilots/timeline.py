"""Business-day arithmetic for a pilot's time-box (weekends and the team's holidays skipped)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

SATURDAY = 5


def is_business_day(day: dt.date, holidays: frozenset[dt.date]) -> bool:
    return day.weekday() < SATURDAY and day not in holidays


def business_days(
    start: dt.date, count: int, holidays: Iterable[dt.date] = ()
) -> Iterator[dt.date]:
    """The first ``count`` business days on or after ``start`` (fewer when the calendar ends
    first: a stored date near 9999-12-31 must not overflow)."""
    if count < 1:
        raise ValueError("a pilot lasts at least one business day")
    off = frozenset(holidays)
    day, found = start, 0
    while found < count:
        if is_business_day(day, off):
            found += 1
            yield day
        if day == dt.date.max:
            return
        day += dt.timedelta(days=1)


def end_date(start: dt.date, count: int, holidays: Iterable[dt.date] = ()) -> dt.date:
    """The last day of a time-box of ``count`` business days starting on ``start``.

    ``start`` counts as day 1 when it is a business day; a start on a weekend or holiday
    begins on the next business day. 10 business days from a Monday end on the Friday after.
    """
    last = start
    for last in business_days(start, count, holidays):  # noqa: B007 - we want the last one
        pass
    return last


def next_monday(today: dt.date) -> dt.date:
    """The Monday after ``today`` (a week ahead when today is Monday): "starting next Monday"."""
    return today + dt.timedelta(days=7 - today.weekday())


def business_days_between(first: dt.date, last: dt.date, holidays: Iterable[dt.date] = ()) -> int:
    """How many business days lie from ``first`` to ``last``, both counted (0 if none).

    Counted by whole weeks (five business days each), not day by day: a stored end date years
    away must not make a page loop over millions of days."""
    if last < first:
        return 0
    weeks, rest = divmod((last - first).days + 1, 7)
    tail = first + dt.timedelta(days=weeks * 7)
    count = weeks * 5 + sum((tail + dt.timedelta(days=i)).weekday() < SATURDAY for i in range(rest))
    return count - sum(
        1 for day in set(holidays) if first <= day <= last and day.weekday() < SATURDAY
    )
