"""The end of a pilot's time-box: by itself at the end of its last business day, or later when
someone extends it (docs/user-guide.md, "When the time-box ends").

``timebox_end_due`` is called by beat's one-minute tick: a running pilot whose last business day
is over in the plan's time zone moves to Evaluating as a recorded step without a person (the
transition has no actor), and its owner is told. ``timebox_extend`` is the only way to run
longer: a new end date and a reason, recorded, and a just-ended pilot returns to Running.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification, TeamHoliday, User
from accounts.permissions import Perm, require, role_in_team
from accounts.services import notify_each
from accounts.ui import day_text, zone_of
from core.exceptions import Conflict
from pilots import timeline
from pilots.events import plan_transitions_publish
from pilots.models import PilotPlan, PlanSection, PlanTransition, Section, TimeboxExtension

Status = PilotPlan.Status
ONE_DAY = dt.timedelta(days=1)
MAX_EXTENSION_DAYS = 366  # a new end date within a year of the old one


def _day(day: dt.date) -> str:
    return day_text(day)


def timebox_ended_reason(end_date: dt.date) -> str:
    return f"Time-box ended: the last business day ({_day(end_date)}) is over."


def timebox_over(*, end_date: dt.date, time_zone: str, now: dt.datetime) -> bool:
    """Is the time-box's last business day over, in the plan's zone? It ends at the local
    midnight after ``end_date`` (the first moment of the next local date). A zone that is not
    known (stored before zones were checked) is read as UTC, so one plan cannot stop the tick."""
    return now.astimezone(zone_of(time_zone)).date() > end_date


@transaction.atomic
def timebox_end_due(*, now: dt.datetime) -> list[int]:
    """Move every running pilot whose time-box is over to Evaluating; return their ids.

    Set-based, a fixed number of queries whatever the number of plans: the candidates (their
    end date is at most today in UTC, so every zone is covered), locked with ``SKIP LOCKED``;
    one compare-and-set update; the transitions and the owners' notifications in one insert each.
    """
    candidates = list(
        PilotPlan.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=Status.RUNNING, end_date__lte=now.astimezone(dt.UTC).date())
        .select_related("owner")
        .only("id", "title", "end_date", "time_zone", "owner", "team")
        .order_by("pk")
    )
    ended = [
        p
        for p in candidates
        if p.end_date is not None
        and timebox_over(end_date=p.end_date, time_zone=p.time_zone, now=now)
    ]
    if not ended:
        return []
    PilotPlan.objects.filter(pk__in=[p.pk for p in ended], status=Status.RUNNING).update(
        status=Status.EVALUATING, version=F("version") + 1
    )
    transitions = PlanTransition.objects.bulk_create(
        [
            PlanTransition(
                plan=p,
                from_status=Status.RUNNING,
                to_status=Status.EVALUATING,
                actor=None,
                reason=timebox_ended_reason(p.end_date),  # type: ignore[arg-type]
                at=now,
            )
            for p in ended
        ]
    )
    plan_transitions_publish(zip(ended, transitions, strict=True))
    notify_each(
        kind=Notification.Kind.TIMEBOX_ENDED,
        items=[
            (
                p.owner,
                f"The time-box of “{p.title}” ended with {_day(p.end_date)}: the pilot is now "  # type: ignore[arg-type]
                "Evaluating. Record the decision, or extend the time-box with a reason.",
                reverse("pilots:plan_detail", args=[p.pk]),
            )
            for p in ended
        ],
    )
    return [p.pk for p in ended]


def _just_ended(plan: PilotPlan) -> bool:
    """Evaluating because the time-box ended by itself (its latest step is the system's)."""
    latest = PlanTransition.objects.filter(plan=plan).order_by("-at", "-pk").first()
    return latest is not None and latest.actor_id is None and latest.to_status == Status.EVALUATING


def timebox_extend_blockers(*, plan: PilotPlan) -> list[str]:
    """Why the time-box cannot be extended now (state only; the role is checked apart)."""
    if plan.status == Status.RUNNING or (plan.status == Status.EVALUATING and _just_ended(plan)):
        return []
    return [
        "Only a running pilot, or one whose time-box has just ended by itself, can be extended; "
        f"this one is {plan.get_status_display()}."
    ]


@transaction.atomic
def timebox_extend(
    *,
    plan: PilotPlan,
    user: User,
    new_end_date: dt.date | None,
    reason: str,
    now: dt.datetime | None = None,
) -> TimeboxExtension:
    """Move the end of the time-box to ``new_end_date`` (a business day after the current end
    and not in the past), for ``reason``. Recorded as a ``TimeboxExtension``; a pilot whose
    time-box had just ended returns to Running (a recorded step)."""
    require(role_in_team(user=user, team_id=plan.team_id), Perm.TIMEBOX_EXTEND)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Say why the pilot needs longer: the extension keeps the reason."
    elif len(reason) > 2000:
        errors["reason"] = "Keep the reason under 2,000 characters."
    if new_end_date is None:
        errors["new_end_date"] = "Enter the new last day of the pilot."
    if errors:
        raise ValidationError(errors)
    assert new_end_date is not None
    locked = PilotPlan.objects.select_for_update().get(pk=plan.pk)
    if blockers := timebox_extend_blockers(plan=locked):
        raise Conflict(" ".join(blockers))
    if locked.start_date is None or locked.end_date is None:
        raise Conflict("The plan has no start date: set the timeline first.")
    now = now or timezone.now()
    today = now.astimezone(zoneinfo.ZoneInfo(locked.time_zone)).date()
    holidays = frozenset(
        TeamHoliday.objects.filter(team_id=locked.team_id, date__gte=locked.start_date).values_list(
            "date", flat=True
        )
    )
    old_end = locked.end_date
    if new_end_date <= old_end:
        errors["new_end_date"] = f"Choose a day after the current end ({_day(old_end)})."
    elif new_end_date < today:
        errors["new_end_date"] = f"Choose today ({_day(today)}) or a later day."
    elif new_end_date > old_end + dt.timedelta(days=MAX_EXTENSION_DAYS):
        errors["new_end_date"] = "Choose a day within a year of the current end."
    elif not timeline.is_business_day(new_end_date, holidays):
        errors["new_end_date"] = (
            f"{_day(new_end_date)} is not a business day (a weekend or the team's holiday)."
        )
    business_days = timeline.business_days_between(locked.start_date, new_end_date, holidays)
    if not errors and business_days > 260:
        errors["new_end_date"] = "A pilot lasts at most 260 business days."
    if errors:
        raise ValidationError(errors)
    changes: dict[str, object] = {"business_days": business_days, "end_date": new_end_date}
    back_to_running = locked.status == Status.EVALUATING
    if back_to_running:
        changes["status"] = Status.RUNNING
    PilotPlan.objects.filter(pk=locked.pk, status=locked.status).update(
        **changes, version=F("version") + 1
    )
    PlanSection.objects.filter(plan=locked, key=Section.TIMELINE).update(
        version=F("version") + 1, updated_by=user, updated_at=now
    )
    extension = TimeboxExtension.objects.create(
        plan=locked,
        old_end_date=old_end,
        new_end_date=new_end_date,
        reason=reason,
        actor=user,
        at=now,
    )
    if back_to_running:
        transition = PlanTransition.objects.create(
            plan=locked,
            from_status=Status.EVALUATING,
            to_status=Status.RUNNING,
            actor=user,
            reason=f"Time-box extended to {_day(new_end_date)}: {reason}",
            at=now,
        )
        plan_transitions_publish([(locked, transition)])
    for name, value in changes.items():
        setattr(plan, name, value)
    return extension
