"""The clock of scheduled checks (``metrics.slots``): the DST and catch-up matrix. No database.

Every slot is checked against an *oracle* that knows nothing about PEP 495 ``fold``: it only
converts UTC instants to local wall time (which is never ambiguous) and applies the rule in words
— a check is due at the first instant the local wall clock reads the check time or later.
Hard-coded tzdata facts (transition days) back the oracle up, so a broken oracle cannot agree
with a broken implementation.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from metrics.slots import (
    DEFAULT_GRACE,
    DueSlots,
    Slot,
    business_day_filter,
    due_slots,
    plan_window,
    slot_instant,
    slots_between,
)
from pilots.timeline import end_date as timeline_end_date

UTC = dt.UTC
T = dt.time
D = dt.date
MIN = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def wall(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


# --- the matrix: zones, two years, check times ----------------------------------------------------

FIRST_DAY, LAST_DAY = D(2026, 1, 1), D(2027, 12, 31)
DAYS = [FIRST_DAY + i * DAY for i in range((LAST_DAY - FIRST_DAY).days + 1)]
MONTHS = [(y, m) for y in (2026, 2027) for m in range(1, 13)]

ZONES = [
    "Europe/Berlin",  # northern DST, gap and overlap 02:00–03:00
    "America/New_York",  # gap 02:00–03:00, overlap 01:00–02:00
    "Australia/Sydney",  # southern hemisphere: gap in October, overlap in April
    "Australia/Lord_Howe",  # shifts by 30 minutes: gap 02:00–02:30, overlap 01:30–02:00
    "Asia/Tokyo",  # no DST
    "Asia/Kolkata",  # +05:30, no DST
]

# 10:00 and 16:00 (the defaults); 02:15/02:30/02:45 sit in the 02:00–03:00 gap and overlap
# (and 02:15 in Lord Howe's half-hour gap); 01:30/01:45 sit in New York's and Lord Howe's overlap;
# midnight and 23:59 are the day's edges.
TIMES = [T(0, 0), T(1, 30), T(1, 45), T(2, 15), T(2, 30), T(2, 45), T(10, 0), T(16, 0), T(23, 59)]

GAP_0200_0300 = [T(2, 15), T(2, 30), T(2, 45)]
# (zone) -> {local date: check times of TIMES that do not exist / occur twice that day}
EXPECTED_GAPS = {
    "Europe/Berlin": {D(2026, 3, 29): GAP_0200_0300, D(2027, 3, 28): GAP_0200_0300},
    "America/New_York": {D(2026, 3, 8): GAP_0200_0300, D(2027, 3, 14): GAP_0200_0300},
    "Australia/Sydney": {D(2026, 10, 4): GAP_0200_0300, D(2027, 10, 3): GAP_0200_0300},
    "Australia/Lord_Howe": {D(2026, 10, 4): [T(2, 15)], D(2027, 10, 3): [T(2, 15)]},
    "Asia/Tokyo": {},
    "Asia/Kolkata": {},
}
EXPECTED_REPEATS = {
    "Europe/Berlin": {D(2026, 10, 25): GAP_0200_0300, D(2027, 10, 31): GAP_0200_0300},
    "America/New_York": {
        D(2026, 11, 1): [T(1, 30), T(1, 45)],
        D(2027, 11, 7): [T(1, 30), T(1, 45)],
    },
    "Australia/Sydney": {D(2026, 4, 5): GAP_0200_0300, D(2027, 4, 4): GAP_0200_0300},
    "Australia/Lord_Howe": {
        D(2026, 4, 5): [T(1, 30), T(1, 45)],
        D(2027, 4, 4): [T(1, 30), T(1, 45)],
    },
    "Asia/Tokyo": {},
    "Asia/Kolkata": {},
}


def occurrences(local: dt.datetime, tz: ZoneInfo) -> list[dt.datetime]:
    """Every UTC instant whose wall clock in ``tz`` reads ``local`` (0, 1 or 2 of them), found
    from the offsets in force around it — without PEP 495 ``fold``."""
    probe = local.replace(tzinfo=UTC)
    offsets = {
        (probe + k * dt.timedelta(hours=12)).astimezone(tz).utcoffset() for k in range(-2, 3)
    }
    candidates = {(local - off).replace(tzinfo=UTC) for off in offsets if off is not None}
    return sorted(u for u in candidates if wall(u, tz) == local)


def oracle(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first instant at which the wall clock reads ``local`` or later."""
    found = occurrences(local, tz)
    if found:
        return found[0]
    # In a gap: walk minute by minute through the span the possible offsets allow.
    probe = local.replace(tzinfo=UTC)
    offsets = [(probe + k * dt.timedelta(hours=12)).astimezone(tz).utcoffset() for k in (-2, 2)]
    u = min((local - off).replace(tzinfo=UTC) for off in offsets if off is not None)
    while wall(u, tz) < local:
        u += MIN
    return u


# --- slot_instant: the two-year matrix ------------------------------------------------------------


@pytest.mark.parametrize(("year", "month"), MONTHS, ids=[f"{y}-{m:02}" for y, m in MONTHS])
@pytest.mark.parametrize("zone", ZONES)
def test_every_day_and_check_time_is_due_at_the_first_instant_showing_it(zone, year, month):
    tz = ZoneInfo(zone)
    days = [d for d in DAYS if (d.year, d.month) == (year, month)]
    for day in days:
        for t in TIMES:
            local = dt.datetime.combine(day, t)
            due = slot_instant(local_date=day, local_time=t, tz=tz)
            where = f"{zone} {local}"
            assert due.tzinfo is UTC, where
            assert due == oracle(local, tz), where
            found = occurrences(local, tz)
            if found:
                # It exists: back in local time it reads the check time, at its first occurrence.
                assert wall(due, tz) == local, where
                assert due == found[0], where
                assert due.astimezone(tz).fold == 0, where
            else:
                # In a gap: the first instant after it — a second earlier is still before it.
                assert wall(due, tz) > local, where
                assert wall(due - dt.timedelta(seconds=1), tz) < local, where
                assert wall(due, tz) - local < dt.timedelta(hours=1), where


@pytest.mark.parametrize("zone", ZONES)
def test_the_gaps_and_overlaps_in_two_years_are_exactly_the_known_dst_days(zone):
    tz = ZoneInfo(zone)
    gaps: dict[dt.date, list[dt.time]] = defaultdict(list)
    repeats: dict[dt.date, list[dt.time]] = defaultdict(list)
    for day in DAYS:
        for t in TIMES:
            n = len(occurrences(dt.datetime.combine(day, t), tz))
            if n == 0:
                gaps[day].append(t)
            elif n == 2:
                repeats[day].append(t)
    assert dict(gaps) == EXPECTED_GAPS[zone]
    assert dict(repeats) == EXPECTED_REPEATS[zone]


@pytest.mark.parametrize(
    ("zone", "day", "time", "expected"),
    [
        # spring-forward gaps: the first instant after the gap (the transition)
        ("Europe/Berlin", D(2026, 3, 29), T(2, 30), utc(2026, 3, 29, 1, 0)),  # 03:00 CEST
        ("Europe/Berlin", D(2027, 3, 28), T(2, 0), utc(2027, 3, 28, 1, 0)),  # gap starts at 02:00
        ("Europe/Berlin", D(2026, 3, 29), T(3, 0), utc(2026, 3, 29, 1, 0)),  # 03:00 exists
        ("Europe/Berlin", D(2026, 3, 29), T(1, 59), utc(2026, 3, 29, 0, 59)),  # before the gap
        ("America/New_York", D(2026, 3, 8), T(2, 30), utc(2026, 3, 8, 7, 0)),  # 03:00 EDT
        ("Australia/Sydney", D(2026, 10, 4), T(2, 30), utc(2026, 10, 3, 16, 0)),  # 03:00 AEDT
        ("Australia/Lord_Howe", D(2026, 10, 4), T(2, 15), utc(2026, 10, 3, 15, 30)),  # 02:30
        # fall-back overlaps: the first occurrence (the summer offset)
        ("Europe/Berlin", D(2026, 10, 25), T(2, 30), utc(2026, 10, 25, 0, 30)),  # CEST, not CET
        ("Europe/Berlin", D(2026, 10, 25), T(3, 0), utc(2026, 10, 25, 2, 0)),  # after the overlap
        ("America/New_York", D(2026, 11, 1), T(1, 30), utc(2026, 11, 1, 5, 30)),  # EDT, not EST
        ("America/New_York", D(2027, 11, 7), T(1, 0), utc(2027, 11, 7, 5, 0)),
        ("Australia/Sydney", D(2026, 4, 5), T(2, 30), utc(2026, 4, 4, 15, 30)),  # AEDT, not AEST
        ("Australia/Lord_Howe", D(2026, 4, 5), T(1, 45), utc(2026, 4, 4, 14, 45)),  # +11
        # no DST, odd offsets
        ("Asia/Tokyo", D(2026, 3, 29), T(10, 0), utc(2026, 3, 29, 1, 0)),
        ("Asia/Kolkata", D(2026, 3, 8), T(10, 0), utc(2026, 3, 8, 4, 30)),
        ("Asia/Kolkata", D(2026, 1, 1), T(2, 30), utc(2025, 12, 31, 21, 0)),  # previous UTC day
        # a day that never happened: Samoa skipped 2011-12-30 (crossing the date line)
        ("Pacific/Apia", D(2011, 12, 30), T(10, 0), utc(2011, 12, 30, 10, 0)),  # 12-31 00:00
    ],
)
def test_known_dst_facts(zone, day, time, expected):
    assert slot_instant(local_date=day, local_time=time, tz=ZoneInfo(zone)) == expected


def test_the_fold_a_check_time_carries_is_ignored_a_repeated_time_is_always_the_first():
    tz = ZoneInfo("America/New_York")
    second = T(1, 30, fold=1)
    assert slot_instant(local_date=D(2026, 11, 1), local_time=second, tz=tz) == utc(
        2026, 11, 1, 5, 30
    )


def test_seconds_and_microseconds_in_a_gap_still_map_to_the_transition():
    tz = ZoneInfo("Europe/Berlin")
    t = T(2, 59, 59, 999_999)
    assert slot_instant(local_date=D(2026, 3, 29), local_time=t, tz=tz) == utc(2026, 3, 29, 1)


def test_a_check_time_with_its_own_time_zone_is_refused():
    with pytest.raises(ValueError, match="naive"):
        slot_instant(
            local_date=D(2026, 1, 5), local_time=T(10, 0, tzinfo=UTC), tz=ZoneInfo("Asia/Tokyo")
        )


# --- slots_between: two years at once -------------------------------------------------------------


def expected_slots(zone: str, times: list[dt.time]) -> list[Slot]:
    """One slot per distinct instant over the two years, named by its earliest (date, time)."""
    tz = ZoneInfo(zone)
    by_instant: dict[dt.datetime, list[tuple[dt.date, dt.time]]] = defaultdict(list)
    for day in DAYS:
        for t in times:
            by_instant[oracle(dt.datetime.combine(day, t), tz)].append((day, t))
    return [
        Slot(local_date=min(names)[0], local_time=min(names)[1], due_at=due)
        for due, names in sorted(by_instant.items())
    ]


# Collapsed (date, time) pairs over the two years: every gap day loses all but one of the check
# times inside its gap (Lord Howe's 02:15 collapses onto the existing 02:30 instead).
EXPECTED_COLLAPSED = {
    "Europe/Berlin": 4,
    "America/New_York": 4,
    "Australia/Sydney": 4,
    "Australia/Lord_Howe": 2,
    "Asia/Tokyo": 0,
    "Asia/Kolkata": 0,
}


@pytest.mark.parametrize("zone", ZONES)
def test_two_years_of_slots_one_per_day_and_time_strictly_increasing(zone):
    tz = ZoneInfo(zone)
    start = slot_instant(local_date=FIRST_DAY, local_time=T(0, 0), tz=tz) - dt.timedelta(
        microseconds=1
    )
    end = slot_instant(local_date=LAST_DAY + DAY, local_time=T(0, 0), tz=tz) - dt.timedelta(
        microseconds=1
    )

    slots = slots_between(check_times=list(reversed(TIMES)), tz=tz, start=start, end=end)

    assert len(slots) == len(DAYS) * len(TIMES) - EXPECTED_COLLAPSED[zone]
    assert slots == expected_slots(zone, TIMES)
    assert all(s.due_at.tzinfo is UTC for s in slots)
    assert all(a.due_at < b.due_at for a, b in itertools.pairwise(slots))
    # in local (date, time) order too: the mapping is monotone
    names = [(s.local_date, s.local_time) for s in slots]
    assert names == sorted(names)
    # every (date, check time) is covered by exactly one slot: its own, or — collapsed in a
    # gap — the one named by the earliest check time of the same instant
    by_due = {s.due_at: s for s in slots}
    for day in DAYS:
        for t in TIMES:
            slot = by_due[slot_instant(local_date=day, local_time=t, tz=tz)]
            assert (slot.local_date, slot.local_time) <= (day, t)
            if (slot.local_date, slot.local_time) != (day, t):
                assert t in EXPECTED_GAPS[zone][day] or slot.local_time in EXPECTED_GAPS[zone][day]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
def test_two_check_times_in_one_gap_are_one_slot_named_by_the_earliest(zone):
    tz = ZoneInfo(zone)
    day = next(iter(EXPECTED_GAPS[zone]))
    start = slot_instant(local_date=day, local_time=T(0, 0), tz=tz)
    slots = slots_between(
        check_times=[T(10, 0), T(2, 45), T(2, 15), T(2, 15)], tz=tz, start=start, end=start + DAY
    )
    assert [(s.local_date, s.local_time) for s in slots] == [(day, T(2, 15)), (day, T(10, 0))]
    assert wall(slots[0].due_at, tz) == dt.datetime.combine(day, T(3, 0))


def test_a_skipped_whole_day_collapses_onto_the_next_midnight_named_by_the_earlier_day():
    tz = ZoneInfo("Pacific/Apia")
    slots = slots_between(
        check_times=[T(0, 0), T(10, 0)],
        tz=tz,
        start=utc(2011, 12, 29, 12),  # 12-29 02:00 local (-10)
        end=utc(2011, 12, 31, 12),  # 2012-01-01 02:00 local (+14)
    )
    assert [(s.local_date, s.local_time, wall(s.due_at, tz)) for s in slots] == [
        (D(2011, 12, 29), T(10, 0), dt.datetime(2011, 12, 29, 10)),
        # 12-30 00:00, 12-30 10:00 and 12-31 00:00 are one instant: 12-31 00:00 local
        (D(2011, 12, 30), T(0, 0), dt.datetime(2011, 12, 31, 0)),
        (D(2011, 12, 31), T(10, 0), dt.datetime(2011, 12, 31, 10)),
        (D(2012, 1, 1), T(0, 0), dt.datetime(2012, 1, 1, 0)),
    ]


def test_the_interval_is_open_at_start_and_closed_at_end():
    tz = ZoneInfo("Europe/Berlin")
    ten = slot_instant(local_date=D(2026, 6, 1), local_time=T(10, 0), tz=tz)
    times = [T(10, 0), T(16, 0)]
    assert slots_between(check_times=times, tz=tz, start=ten, end=ten + dt.timedelta(hours=1)) == []
    got = slots_between(check_times=times, tz=tz, start=ten - MIN, end=ten)
    assert [s.due_at for s in got] == [ten]
    assert slots_between(check_times=times, tz=tz, start=ten, end=ten) == []
    assert slots_between(check_times=times, tz=tz, start=ten, end=ten - DAY) == []


def test_a_check_time_with_a_zone_is_refused_among_naive_ones():
    with pytest.raises(ValueError, match="naive"):
        slots_between(
            check_times=[T(10), T(16, tzinfo=UTC)],
            tz=ZoneInfo("Europe/Berlin"),
            start=utc(2026, 1, 1),
            end=utc(2026, 1, 2),
        )


def test_naive_bounds_are_refused():
    tz = ZoneInfo("Europe/Berlin")
    with pytest.raises(ValueError, match="aware"):
        slots_between(
            check_times=[T(10)], tz=tz, start=dt.datetime(2026, 1, 1), end=utc(2026, 1, 2)
        )


# --- business days --------------------------------------------------------------------------------


def test_only_business_days_are_checked_weekends_and_holidays_skipped():
    tz = ZoneInfo("Europe/Berlin")
    start = D(2026, 3, 23)  # a Monday; DST starts on Sunday 03-29
    holidays = [D(2026, 4, 3), D(2026, 4, 6)]  # Good Friday, Easter Monday
    end = timeline_end_date(start, 10, holidays)
    assert end == D(2026, 4, 7)
    active = business_day_filter(start_date=start, business_days=10, holidays=holidays)
    window_start, window_end = plan_window(start_date=start, end_date=end, tz=tz)

    slots = slots_between(
        check_times=[T(10), T(16)],
        tz=tz,
        start=window_start - dt.timedelta(microseconds=1),
        end=window_end,
        active_dates=active,
    )

    days = sorted({s.local_date for s in slots})
    assert len(days) == 10 and len(slots) == 20
    assert days[0] == start and days[-1] == end
    assert all(d.weekday() < 5 for d in days)
    assert not set(days) & set(holidays)
    assert D(2026, 3, 28) not in days and D(2026, 3, 29) not in days
    # summer time from 03-30 on: 10:00 CEST is 08:00 UTC
    assert slots[0].due_at == utc(2026, 3, 23, 9) and slots[10].due_at == utc(2026, 3, 30, 8)


def test_without_a_filter_every_calendar_day_is_checked():
    tz = ZoneInfo("Asia/Tokyo")
    slots = slots_between(
        check_times=[T(10)], tz=tz, start=utc(2026, 3, 1), end=utc(2026, 4, 1) - MIN
    )
    assert len(slots) == 31


# --- due_slots: catch-up, lateness, idempotence ---------------------------------------------------

CATCH_UP_DAYS = [
    D(2026, 6, 17),  # an ordinary Wednesday
    D(2026, 3, 29),
    D(2026, 3, 30),
    D(2026, 10, 25),
    D(2026, 3, 8),
    D(2026, 11, 2),
    D(2026, 4, 5),
    D(2026, 10, 5),
    D(2027, 10, 4),
]


@pytest.mark.parametrize("today", CATCH_UP_DAYS)
@pytest.mark.parametrize("zone", ZONES)
def test_after_downtime_the_latest_slot_runs_late_and_older_ones_are_missed(zone, today):
    tz = ZoneInfo(zone)
    times = [T(2, 30), T(10), T(16)]
    three_days_ago = slot_instant(local_date=today - 3 * DAY, local_time=T(10), tz=tz)
    ten_today = slot_instant(local_date=today, local_time=T(10), tz=tz)

    due = due_slots(
        check_times=times,
        tz=tz,
        last_processed_due_at=three_days_ago,
        now=ten_today + dt.timedelta(hours=3),
        window_start=utc(2025, 1, 1),
    )

    assert due.run == Slot(local_date=today, local_time=T(10), due_at=ten_today)
    assert due.late is True
    expected_missed = [(today - 3 * DAY, T(16))]
    for back in (2, 1, 0):
        day = today - back * DAY
        expected_missed += [(day, T(2, 30)), (day, T(10)), (day, T(16))]
    expected_missed = expected_missed[:-2]  # today's 10:00 runs, 16:00 is not due yet
    assert [(s.local_date, s.local_time) for s in due.missed] == expected_missed
    for slot in due.missed:
        assert slot.due_at == slot_instant(
            local_date=slot.local_date, local_time=slot.local_time, tz=tz
        )
    dues = [s.due_at for s in [*due.missed, due.run]]
    assert dues == sorted(set(dues))
    assert three_days_ago < dues[0] and dues[-1] <= ten_today

    # Idempotent: once claimed, the same tick (or a racing one) finds nothing.
    assert due.newest_due_at == ten_today
    again = due_slots(
        check_times=times,
        tz=tz,
        last_processed_due_at=ten_today,
        now=ten_today + dt.timedelta(hours=3),
        window_start=utc(2025, 1, 1),
    )
    assert again == DueSlots(run=None, late=False, missed=[])


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("after_due", "grace", "late"),
    [
        (dt.timedelta(0), DEFAULT_GRACE, False),
        (dt.timedelta(seconds=59), DEFAULT_GRACE, False),
        (DEFAULT_GRACE, DEFAULT_GRACE, False),
        (DEFAULT_GRACE + dt.timedelta(microseconds=1), DEFAULT_GRACE, True),
        (dt.timedelta(hours=5), DEFAULT_GRACE, True),
        (dt.timedelta(microseconds=1), dt.timedelta(0), True),
        (dt.timedelta(minutes=9), dt.timedelta(minutes=10), False),
    ],
)
def test_late_means_picked_up_more_than_grace_after_due(zone, after_due, grace, late):
    tz = ZoneInfo(zone)
    yesterday_16 = slot_instant(local_date=D(2026, 6, 16), local_time=T(16), tz=tz)
    ten = slot_instant(local_date=D(2026, 6, 17), local_time=T(10), tz=tz)

    due = due_slots(
        check_times=[T(10), T(16)],
        tz=tz,
        last_processed_due_at=yesterday_16,
        now=ten + after_due,
        window_start=utc(2026, 1, 1),
        grace=grace,
    )

    assert due.run is not None and due.run.due_at == ten
    assert due.late is late
    assert due.missed == []


@pytest.mark.parametrize("zone", ZONES)
def test_nothing_due_means_no_run_and_nothing_missed(zone):
    tz = ZoneInfo(zone)
    yesterday_16 = slot_instant(local_date=D(2026, 6, 16), local_time=T(16), tz=tz)
    ten = slot_instant(local_date=D(2026, 6, 17), local_time=T(10), tz=tz)
    kwargs = {"check_times": [T(10), T(16)], "tz": tz, "window_start": utc(2026, 1, 1)}

    nothing = DueSlots(run=None, late=False, missed=[])
    assert due_slots(last_processed_due_at=yesterday_16, now=ten - MIN, **kwargs) == nothing
    assert due_slots(last_processed_due_at=yesterday_16, now=yesterday_16, **kwargs) == nothing
    # A tick whose clock runs behind the newest claimed slot finds nothing either.
    assert due_slots(last_processed_due_at=ten, now=ten - DAY, **kwargs) == nothing
    # Nothing processed yet and the plan has not started.
    later = {**kwargs, "window_start": ten + DAY}
    assert due_slots(last_processed_due_at=None, now=ten + MIN, **later) == nothing


def test_nothing_processed_yet_searches_from_the_window_start_inclusive():
    tz = ZoneInfo("America/Santiago")
    # 2026-09-06: Chile springs forward at midnight, 00:00 → 01:00. Midnight does not exist.
    assert wall(utc(2026, 9, 6, 4), tz) == dt.datetime(2026, 9, 6, 1)
    window_start, _ = plan_window(start_date=D(2026, 9, 6), end_date=D(2026, 9, 18), tz=tz)
    assert window_start == utc(2026, 9, 6, 4)  # the first instant of the day: 01:00 local

    due = due_slots(
        check_times=[T(0, 0), T(10)],
        tz=tz,
        last_processed_due_at=None,
        now=window_start,
        window_start=window_start,
    )

    assert due.run == Slot(local_date=D(2026, 9, 6), local_time=T(0, 0), due_at=window_start)
    assert due.late is False and due.missed == []


def test_a_last_processed_slot_before_the_window_is_bounded_by_the_window():
    tz = ZoneInfo("Europe/Berlin")
    window_start, window_end = plan_window(
        start_date=D(2026, 6, 15), end_date=D(2026, 6, 19), tz=tz
    )
    due = due_slots(
        check_times=[T(10), T(16)],
        tz=tz,
        last_processed_due_at=utc(2026, 5, 1, 8),  # from before the plan was re-scheduled
        now=slot_instant(local_date=D(2026, 6, 16), local_time=T(10), tz=tz),
        window_start=window_start,
        window_end=window_end,
    )
    assert due.run is not None and due.run.local_date == D(2026, 6, 16)
    assert [(s.local_date, s.local_time) for s in due.missed] == [
        (D(2026, 6, 15), T(10)),
        (D(2026, 6, 15), T(16)),
    ]


def test_naive_now_and_negative_grace_are_refused():
    tz = ZoneInfo("Europe/Berlin")
    kwargs = {"check_times": [T(10)], "tz": tz, "last_processed_due_at": None}
    with pytest.raises(ValueError, match="aware"):
        due_slots(now=dt.datetime(2026, 1, 1), window_start=utc(2026, 1, 1), **kwargs)
    with pytest.raises(ValueError, match="aware"):
        due_slots(now=utc(2026, 1, 2), window_start=dt.datetime(2026, 1, 1), **kwargs)
    with pytest.raises(ValueError, match="negative"):
        due_slots(
            now=utc(2026, 1, 2),
            window_start=utc(2026, 1, 1),
            grace=-dt.timedelta(seconds=1),
            **kwargs,
        )


# --- simulated ticks through DST days -------------------------------------------------------------

DST_DAYS = [(zone, day) for zone in ZONES[:4] for day in EXPECTED_GAPS[zone]] + [
    (zone, day) for zone in ZONES[:4] for day in EXPECTED_REPEATS[zone]
]


def run_ticks(
    tz: ZoneInfo, times: list[dt.time], ticks: list[dt.datetime], grace: dt.timedelta
) -> tuple[list[tuple[dt.datetime, Slot, bool]], list[Slot]]:
    """What a scheduler would do, tick by tick, claiming everything ``due_slots`` returns."""
    ran: list[tuple[dt.datetime, Slot, bool]] = []
    missed: list[Slot] = []
    last = None
    for now in ticks:
        due = due_slots(
            check_times=times,
            tz=tz,
            last_processed_due_at=last,
            now=now,
            window_start=ticks[0],
            grace=grace,
        )
        if due.run is not None:
            ran.append((now, due.run, due.late))
            missed += due.missed
            last = due.run.due_at
        else:
            assert due.missed == []
    return ran, missed


@pytest.mark.parametrize(("zone", "day"), DST_DAYS, ids=[f"{z}-{d}" for z, d in DST_DAYS])
def test_minute_ticks_through_a_dst_day_run_every_slot_once_on_time(zone, day):
    tz = ZoneInfo(zone)
    begin = slot_instant(local_date=day, local_time=T(0, 0), tz=tz)
    end = slot_instant(local_date=day + DAY, local_time=T(0, 0), tz=tz)
    # beat fires a few seconds after each minute, like a real one
    ticks = [begin + dt.timedelta(seconds=7) + i * MIN for i in range((end - begin) // MIN + 1)]

    ran, missed = run_ticks(tz, TIMES, ticks, DEFAULT_GRACE)

    expected = slots_between(check_times=TIMES, tz=tz, start=begin, end=ticks[-1])
    assert [slot for _, slot, _ in ran] == expected
    assert missed == []
    assert all(not late for _, _, late in ran)
    assert all(dt.timedelta(0) <= now - slot.due_at < MIN for now, slot, _ in ran)
    # each check time of the day ran exactly once; in a gap the collapsed times ran once, under
    # the earliest name (Lord Howe's 02:15 → 02:30 takes 02:30 with it); today's midnight is
    # before the first tick, tomorrow's is the last slot
    collapsed = set()
    if day in EXPECTED_GAPS[zone]:
        collapsed = {T(2, 30)} if zone == "Australia/Lord_Howe" else {T(2, 30), T(2, 45)}
    names = [(slot.local_date, slot.local_time) for _, slot, _ in ran]
    assert names == [(day, t) for t in TIMES[1:] if t not in collapsed] + [(day + DAY, T(0, 0))]


@pytest.mark.parametrize("zone", ZONES)
def test_ticks_with_an_outage_across_dst_claim_every_slot_exactly_once(zone):
    tz = ZoneInfo(zone)
    times = [T(2, 30), T(10), T(16)]
    begin = utc(2026, 3, 1)
    end = utc(2026, 11, 4)
    outages = [  # (from, to): the scheduler is down; DST days of every zone inside
        (utc(2026, 3, 6, 13), utc(2026, 3, 9, 11, 17)),
        (utc(2026, 3, 27, 9), utc(2026, 3, 30, 4)),
        (utc(2026, 10, 2, 0), utc(2026, 10, 5, 2)),
        (utc(2026, 10, 24), utc(2026, 11, 2, 9)),
    ]
    step = dt.timedelta(hours=1)  # coarse ticks keep this fast; grace covers the step
    ticks = []
    now = begin
    while now <= end:
        if not any(a <= now < b for a, b in outages):
            ticks.append(now)
        now += step

    ran, missed = run_ticks(tz, times, ticks, step)

    every = slots_between(
        check_times=times, tz=tz, start=begin - dt.timedelta(microseconds=1), end=ticks[-1]
    )
    claimed = sorted([slot for _, slot, _ in ran] + missed, key=lambda s: s.due_at)
    assert claimed == every  # each slot claimed exactly once: run or missed, never both
    late = [(now, slot) for now, slot, is_late in ran if is_late]
    resumed = [min(t for t in ticks if t >= b) for _, b in outages]
    # a late run only right after an outage, and there it is the newest due slot
    assert {now for now, _ in late} <= set(resumed)
    for now, slot in late:
        assert slot == [s for s in every if s.due_at <= now][-1]
    assert late  # the outages did swallow slots
    # only slots that fell due while the scheduler was down (or just before) are missed
    assert missed
    assert all(any(a - step < s.due_at < b for a, b in outages) for s in missed)


# --- plan windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "first_day", "last_day", "opens", "closes"),
    [
        ("Europe/Berlin", "2026-03-23", "2026-04-03", "2026-03-22T23:00", "2026-04-03T22:00"),
        ("Asia/Kolkata", "2026-01-05", "2026-01-09", "2026-01-04T18:30", "2026-01-09T18:30"),
        # Santiago: midnight missing on 09-06 → 01:00 local; 04-04 ends at 24:00 → 23:00, the
        # next midnight (04-05) happens once, at -04.
        ("America/Santiago", "2026-09-06", "2026-09-18", "2026-09-06T04:00", "2026-09-19T03:00"),
        ("America/Santiago", "2026-03-30", "2026-04-04", "2026-03-30T03:00", "2026-04-05T04:00"),
        # Havana: midnight missing on 03-08 (→ 01:00); midnight twice on 11-01: the first counts.
        ("America/Havana", "2026-03-08", "2026-03-13", "2026-03-08T05:00", "2026-03-14T04:00"),
        ("America/Havana", "2026-11-01", "2026-11-06", "2026-11-01T04:00", "2026-11-07T05:00"),
        ("America/Havana", "2026-10-26", "2026-10-31", "2026-10-26T04:00", "2026-11-01T04:00"),
        # Beirut: midnight missing on 03-29 (→ 01:00); 10-24 ends 24:00 → 23:00.
        ("Asia/Beirut", "2026-03-29", "2026-04-03", "2026-03-28T22:00", "2026-04-03T21:00"),
        ("Asia/Beirut", "2026-10-19", "2026-10-24", "2026-10-18T21:00", "2026-10-24T22:00"),
    ],
)
def test_plan_window_is_local_midnight_to_midnight_after_the_last_day(
    zone, first_day, last_day, opens, closes
):
    window = plan_window(
        start_date=D.fromisoformat(first_day),
        end_date=D.fromisoformat(last_day),
        tz=ZoneInfo(zone),
    )
    # opens and closes are UTC
    assert window == (
        dt.datetime.fromisoformat(opens).replace(tzinfo=UTC),
        dt.datetime.fromisoformat(closes).replace(tzinfo=UTC),
    )


@pytest.mark.parametrize("zone", [*ZONES, "America/Santiago", "America/Havana", "Asia/Beirut"])
def test_every_slot_of_every_day_falls_inside_that_days_window(zone):
    tz = ZoneInfo(zone)
    for day in DAYS:
        start, end = plan_window(start_date=day, end_date=day, tz=tz)
        assert start.tzinfo is UTC and end.tzinfo is UTC
        assert start < end
        for t in TIMES:
            assert start <= slot_instant(local_date=day, local_time=t, tz=tz) < end, (day, t)


@pytest.mark.parametrize("zone", ZONES)
def test_no_slot_before_the_plans_start_or_after_its_end(zone):
    tz = ZoneInfo(zone)
    start, end = D(2026, 3, 25), D(2026, 4, 7)  # over the March/April DST changes
    window_start, window_end = plan_window(start_date=start, end_date=end, tz=tz)
    times = [T(0, 0), T(2, 30), T(10), T(16), T(23, 59)]

    due = due_slots(
        check_times=times,
        tz=tz,
        last_processed_due_at=None,
        now=window_end + 10 * DAY,
        window_start=window_start,
        window_end=window_end,
    )

    claimed = [*due.missed, due.run]
    assert due.run is not None and due.run.local_date == end and due.run.local_time == T(23, 59)
    assert claimed[0].local_date == start and claimed[0].local_time == T(0, 0)
    assert all(start <= s.local_date <= end for s in claimed)
    assert all(window_start <= s.due_at < window_end for s in claimed)
    assert len(claimed) == 14 * len(times)  # one gap time at most per day: nothing collapses
    # and a plan that has not started has nothing due
    before = due_slots(
        check_times=times,
        tz=tz,
        last_processed_due_at=None,
        now=window_start - dt.timedelta(microseconds=1),
        window_start=window_start,
        window_end=window_end,
    )
    assert before.run is None and before.missed == []


def test_plan_window_refuses_an_end_before_the_start():
    with pytest.raises(ValueError, match="before"):
        plan_window(start_date=D(2026, 1, 2), end_date=D(2026, 1, 1), tz=ZoneInfo("UTC"))


# --- Slot -----------------------------------------------------------------------------------------


def test_a_slot_is_frozen_aware_and_normalised_to_utc():
    berlin = ZoneInfo("Europe/Berlin")
    slot = Slot(
        local_date=D(2026, 6, 1),
        local_time=T(10),
        due_at=dt.datetime(2026, 6, 1, 10, tzinfo=berlin),
    )
    assert slot.due_at == utc(2026, 6, 1, 8) and slot.due_at.tzinfo is UTC
    with pytest.raises(AttributeError):
        slot.due_at = utc(2026, 1, 1)  # type: ignore[misc]
    with pytest.raises(ValueError, match="aware"):
        Slot(local_date=D(2026, 6, 1), local_time=T(10), due_at=dt.datetime(2026, 6, 1, 8))
