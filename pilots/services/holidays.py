"""A team's holidays: business days skip them, so every plan's end date follows them."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Team, TeamHoliday, User
from accounts.permissions import Perm, require, role_in_team
from accounts.ui import day_text
from core.validators import validate_sane_date
from pilots.models import PilotPlan
from pilots.services.sections import plan_end_date

# Plans whose time-box is still ahead or under way; a decided pilot's dates are history.
_OPEN = [PilotPlan.Status.DRAFT, PilotPlan.Status.IN_REVIEW, PilotPlan.Status.APPROVED,
         PilotPlan.Status.RUNNING]  # fmt: skip


def _recompute_end_dates(team: Team) -> int:
    plans = list(
        PilotPlan.objects.filter(team=team, status__in=_OPEN, start_date__isnull=False)
        .select_for_update()
        .only("id", "team_id", "start_date", "business_days", "end_date")
    )
    changed = []
    for plan in plans:
        end = plan_end_date(plan=plan)
        if end != plan.end_date:
            plan.end_date = end
            changed.append(plan)
    PilotPlan.objects.bulk_update(changed, ["end_date"])
    return len(changed)


@transaction.atomic
def team_holiday_add(*, team: Team, user: User, date: dt.date, name: str = "") -> TeamHoliday:
    """Add a holiday; the end dates of the team's open plans move accordingly."""
    require(role_in_team(user=user, team_id=team.pk), Perm.HOLIDAYS_MANAGE)
    try:
        validate_sane_date(date)
    except ValidationError as error:
        raise ValidationError({"date": error.messages}) from None
    if TeamHoliday.objects.filter(team=team, date=date).exists():
        raise ValidationError({"date": f"{day_text(date)} is already a holiday."})
    holiday = TeamHoliday(team=team, date=date, name=name.strip())
    holiday.full_clean()
    holiday.save()
    _recompute_end_dates(team)
    return holiday


@transaction.atomic
def team_holiday_remove(*, team: Team, user: User, holiday_id: int) -> None:
    require(role_in_team(user=user, team_id=team.pk), Perm.HOLIDAYS_MANAGE)
    deleted, _ = TeamHoliday.objects.filter(team=team, pk=holiday_id).delete()
    if not deleted:
        raise ValidationError({"holiday": "That holiday no longer exists."})
    _recompute_end_dates(team)
