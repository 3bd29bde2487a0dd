"""The clock of scheduled checks: which check slots are due, as pure functions (no database).

A running plan is checked at its daily *local* check times (``PilotPlan.check_times``, default
10:00 and 16:00) in the plan's IANA time zone. A **slot** is one occurrence of that: a local date
plus a local check time, mapped to the one UTC instant at which the check is due. The tick task
asks :func:`due_slots` once a minute; ``CheckRun`` keeps ``UNIQUE(plan, slot)`` with the slot keyed
by its ``due_at`` (the UTC instant is the identity: two local times that collapse into one instant
are one slot, see below).

Everything here is UTC in, UTC out (times are stored in UTC): every datetime argument must be
aware, every datetime returned is aware with ``tzinfo=UTC``. Local check times are converted with
:mod:`zoneinfo` at each occurrence, never with a fixed offset, so DST is handled per day.

The one DST rule behind every decision below
--------------------------------------------
**A check is due at the first instant at which the local wall clock reads the check time or
later.** Everything else follows from that sentence:

* An ordinary local time maps to its single instant.
* A local time that does not exist that day (the spring-forward gap, e.g. 02:30 in Europe/Berlin
  on the last Sunday of March, when clocks jump 02:00 → 03:00) is due at the first instant after
  the gap: the transition instant itself, which the wall clock shows as 03:00. The check is not
  skipped (the team would lose a check they asked for) and not run an hour early (02:30 at the old
  offset, 01:30 on the wall: before the team's check time).
* A local time that happens twice (the fall-back overlap, e.g. 02:30 in Berlin on the last Sunday
  of October, or 01:30 in New York on the first Sunday of November) is due once, at its *first*
  occurrence (``fold=0``): that is the first moment the wall clock reads it. The second
  occurrence is the same slot, so it never runs twice.
* Because of the gap rule two check times can collapse onto one instant (02:15 and 02:45 both →
  03:00 in Berlin). They are ONE slot, represented by the *earliest* (local date, local time) of
  the ones that collapsed, so the slot's name is the check the team scheduled first.

The mapping is monotone: a later local wall time is never due before an earlier one, so slots in
order of local (date, time) are in order of ``due_at`` (equal only inside a gap).

Only ``zoneinfo`` (PEP 495 ``fold``) is used; no pytz. Instants before 1970 or zones whose gap
contains a second transition are out of scope (no plan is checked there). A stored timeline outside
``EARLIEST_DATE`` … ``LATEST_DATE`` (written before dates were validated) makes :func:`plan_window`
raise :class:`PlanWindowError`, a ``ValueError`` with words for people, never an ``OverflowError``
from the datetime arithmetic near year 1 or 9999.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from accounts.ui import day_text
from pilots.timeline import business_days as _business_days

UTC = dt.UTC
DEFAULT_GRACE = dt.timedelta(minutes=2)
_ONE_DAY = dt.timedelta(days=1)
# The smallest step of a datetime: turns an inclusive lower bound into the exclusive one that
# slots_between takes, and an exclusive upper bound into an inclusive one.
_TICK = dt.timedelta(microseconds=1)

ActiveDates = Callable[[dt.date], bool]

# The dates a pilot window may lie in. The slot arithmetic steps a day or two beyond each end and
# converts through UTC offsets of up to 14 hours, which overflows near datetime's year 1 and 9999.
EARLIEST_DATE = dt.date(1970, 1, 1)
LATEST_DATE = dt.date(9000, 12, 31)


class PlanWindowError(ValueError):
    """The plan's stored timeline cannot be scheduled; the message says why, for people."""


@dataclass(frozen=True)
class Slot:
    """One scheduled check occurrence.

    ``local_date`` and ``local_time`` are the *scheduled* day and check time in the plan's zone
    (what the team asked for); ``due_at`` is the aware UTC instant the check is due. In a DST gap
    ``due_at`` shows a different wall time (the end of the gap) than ``local_time``; the slot
    still belongs to ``local_date``, even if a gap spanning midnight pushes ``due_at`` into the
    next local day.
    """

    local_date: dt.date
    local_time: dt.time
    due_at: dt.datetime

    def __post_init__(self) -> None:
        _require_aware("Slot.due_at", self.due_at)
        if self.due_at.tzinfo is not UTC:  # e.g. read back from the database: normalise to UTC
            object.__setattr__(self, "due_at", self.due_at.astimezone(UTC))


@dataclass(frozen=True)
class DueSlots:
    """What one tick should do for one plan.

    ``run`` is the newest unprocessed slot that is due (run it once); ``late`` says it became due
    more than the grace period before ``now`` (the scheduler was down or behind); ``missed`` are
    the older unprocessed slots, oldest first, to be recorded as missed and never run. Nothing due:
    ``run is None`` and ``missed == []``.
    """

    run: Slot | None = None
    late: bool = False
    missed: list[Slot] = field(default_factory=list)

    @property
    def newest_due_at(self) -> dt.datetime | None:
        """The ``last_processed_due_at`` for the next call once these slots are claimed."""
        return self.run.due_at if self.run is not None else None


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (got naive {value!r})")


def _require_naive_time(value: dt.time) -> None:
    # A check time is a wall-clock time in the *plan's* zone; one carrying its own tzinfo would
    # be ambiguous about which zone wins, so it is refused rather than guessed.
    if value.tzinfo is not None:
        raise ValueError(f"check times are naive local times (got {value!r})")


def _wall(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The naive local wall-clock reading of ``instant`` in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _gap_end(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first instant after the DST gap that swallows the non-existent ``naive`` wall time.

    PEP 495 maps a time in a gap with both offsets: ``fold=0`` with the offset before the
    transition (an instant after it), ``fold=1`` with the offset after (an instant before it).
    So the transition instant T lies in ``(before, after]``; before T the wall clock reads less
    than ``naive``, from T on it reads more. That predicate is monotone in the bracket, so a
    binary search over whole seconds (tz transitions are on whole seconds) finds T exactly in
    about a dozen steps (log2 of a one-hour gap in seconds; a whole skipped day, as Pacific/Apia
    did on 2011-12-30, takes 17).
    """
    a = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    b = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo = math.floor(min(a, b).timestamp())  # wall clock still before ``naive``
    hi = math.ceil(max(a, b).timestamp())  # wall clock already past ``naive``
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(dt.datetime.fromtimestamp(mid, UTC), tz) > naive:
            hi = mid
        else:
            lo = mid
    return dt.datetime.fromtimestamp(hi, UTC)


def slot_instant(*, local_date: dt.date, local_time: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The aware UTC instant at which the check scheduled for ``local_date`` at ``local_time``
    (wall clock in ``tz``) is due: the first instant the wall clock reads that time or later.

    * Existing, unambiguous time: its instant.
    * Repeated time (fall-back): the FIRST occurrence, ``fold=0`` — whatever ``fold`` the caller's
      time carries, so a slot has one instant and the repeated hour never runs a check twice.
    * Non-existent time (spring-forward gap): the first instant after the gap, i.e. the
      transition instant (03:00 local for Berlin's 02:00 → 03:00 jump). Detected by a round trip:
      a time that exists converts to UTC and back to the same wall time; one in a gap does not.
    """
    _require_naive_time(local_time)
    naive = dt.datetime.combine(local_date, local_time).replace(fold=0)
    # fold=0 is the earlier of two occurrences (PEP 495), which is the first-occurrence rule.
    instant = naive.replace(tzinfo=tz).astimezone(UTC)
    if _wall(instant, tz) == naive:  # naive comparison ignores fold: the time exists that day
        return instant
    return _gap_end(naive, tz)


def slots_between(
    *,
    check_times: Sequence[dt.time],
    tz: ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
    active_dates: ActiveDates | None = None,
) -> list[Slot]:
    """Every slot with ``start < due_at <= end``, ordered by ``due_at``, one per instant.

    ``active_dates`` filters by the slot's *scheduled* local date (``None``: every calendar day).
    Daily checks run on the pilot's business days only — the team does not check on weekends or
    holidays — so callers pass e.g. :func:`business_day_filter`; it stays a parameter so this
    module knows nothing about calendars.

    The half-open interval lets consecutive ticks tile time without overlap: a tick covering
    ``(last, now]`` and the next covering ``(now, later]`` see each slot exactly once.

    Collapsed check times (two local times in one DST gap, hence one instant) give ONE slot,
    represented by the earliest (local date, local time) — the check the team scheduled first.
    Duplicate check times are harmless for the same reason.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    if end <= start:
        return []
    for t in check_times:  # before sorting: naive and aware times do not even compare
        _require_naive_time(t)
    times = sorted({t.replace(fold=0) for t in check_times})
    # Which scheduled local dates can have a slot in (start, end]? A slot of a day before
    # start's local date is due no later than that date's first instant (the mapping is
    # monotone), so it cannot be after start; the spare day below start is a cheap belt and
    # braces. The spare day after end's local date is needed in principle: a fall-back that
    # crosses midnight from after it (wall clock reads 00:30 of E+1, then 23:30 of E again)
    # makes the early slots of E+1 due before instants still dated E. No zone does that today,
    # but the cost is a few conversions per call.
    first = start.astimezone(tz).date() - _ONE_DAY
    last = end.astimezone(tz).date() + _ONE_DAY
    by_instant: dict[dt.datetime, Slot] = {}
    day = first
    while day <= last:
        if active_dates is None or active_dates(day):
            for t in times:  # ascending, so the first slot seen for an instant is the earliest
                due = slot_instant(local_date=day, local_time=t, tz=tz)
                if start < due <= end and due not in by_instant:
                    by_instant[due] = Slot(local_date=day, local_time=t, due_at=due)
        day += _ONE_DAY
    return [by_instant[due] for due in sorted(by_instant)]


def due_slots(
    *,
    check_times: Sequence[dt.time],
    tz: ZoneInfo,
    last_processed_due_at: dt.datetime | None,
    now: dt.datetime,
    window_start: dt.datetime,
    window_end: dt.datetime | None = None,
    active_dates: ActiveDates | None = None,
    grace: dt.timedelta = DEFAULT_GRACE,
) -> DueSlots:
    """What the tick at ``now`` should do for one plan.

    Unprocessed slots are those due in ``(last_processed_due_at, now]``; with no slot processed
    yet (``None``) the search starts at ``window_start`` *inclusive* (a check time at local
    midnight on the start date counts). A ``last_processed_due_at`` before ``window_start`` (the
    window moved) is ignored in favour of ``window_start``. ``window_end`` (optional, exclusive,
    as from :func:`plan_window`) stops slots after the plan's last day.

    After downtime the newest unprocessed slot runs once and the older ones are recorded as
    missed (docs/checks.md, "When checks run"): a check is about the state *now*, so running
    yesterday's 16:00 check today would only repeat today's answer under a wrong label.

    ``late`` is ``now - run.due_at > grace``: a tick a minute apart normally picks a slot up
    within a minute of its due time, so with the default grace of 2 minutes only a scheduler that
    was down or behind marks a run late. Exactly at the due time (or within grace) is on time.

    Idempotent: once the caller has claimed ``run`` and ``missed``, calling again with
    ``last_processed_due_at=run.due_at`` returns nothing until the next slot becomes due.
    """
    _require_aware("now", now)
    _require_aware("window_start", window_start)
    if window_end is not None:
        _require_aware("window_end", window_end)
    if grace < dt.timedelta(0):
        raise ValueError("grace cannot be negative")
    if last_processed_due_at is None:
        after = window_start - _TICK  # (window_start - 1µs, …] == [window_start, …]
    else:
        _require_aware("last_processed_due_at", last_processed_due_at)
        after = max(last_processed_due_at, window_start - _TICK)
    until = now if window_end is None else min(now, window_end - _TICK)
    pending = slots_between(
        check_times=check_times, tz=tz, start=after, end=until, active_dates=active_dates
    )
    if not pending:
        return DueSlots()
    run = pending[-1]
    return DueSlots(run=run, late=now - run.due_at > grace, missed=pending[:-1])


def plan_window(
    *, start_date: dt.date, end_date: dt.date, tz: ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """The plan's window as UTC instants: ``[local midnight of start_date, local midnight after
    end_date)`` — start inclusive, end exclusive.

    Both ends follow the slot rule, i.e. the window is ``slot_instant(..., 00:00)`` of the first
    day and of the day after the last, so every slot scheduled on a day of the window falls
    inside it (the mapping is monotone):

    * Midnight in a spring-forward gap (America/Santiago, America/Havana, Asia/Beirut jump
      00:00 → 01:00): the day starts at the transition instant, 01:00 local.
    * Midnight repeated by a fall-back (America/Havana goes 01:00 → 00:00): the window uses the
      FIRST midnight, so the repeated hour belongs to the day it first started.
    * Fall-back at midnight into the previous day (Santiago and Beirut go 24:00 → 23:00): the
      repeated 23:xx belongs to the earlier day; the next midnight happens once. Nothing special.

    One corner is left as is: a slot whose scheduled time falls in a gap that swallows the
    following midnight (only a skipped whole day, as Pacific/Apia on 2011-12-30) collapses onto
    the window's end and, the end being exclusive, is not in the window.
    """
    if end_date < start_date:
        raise PlanWindowError(
            f"The timeline ends ({day_text(end_date)}) before it starts ({day_text(start_date)})."
        )
    if start_date < EARLIEST_DATE or end_date > LATEST_DATE:
        raise PlanWindowError(
            f"The timeline ({day_text(start_date)} to {day_text(end_date)}) lies outside "
            f"the dates Pilotplan can schedule ({day_text(EARLIEST_DATE)} to "
            f"{day_text(LATEST_DATE)}): correct the plan's start date."
        )
    midnight = dt.time(0, 0)
    return (
        slot_instant(local_date=start_date, local_time=midnight, tz=tz),
        slot_instant(local_date=end_date + _ONE_DAY, local_time=midnight, tz=tz),
    )


def business_day_filter(
    *, start_date: dt.date, business_days: int, holidays: Iterable[dt.date] = ()
) -> ActiveDates:
    """``active_dates`` for a plan: its business days (weekends and the team's holidays skipped),
    the same days ``pilots.timeline.end_date`` counts. Checks run on these days only."""
    days = frozenset(_business_days(start_date, business_days, holidays))
    return days.__contains__
