"""Field validators shared by models, forms and services: dates in a sane range, events that
must lie in the past. Each raises a message in the user's words; the field is named by where
it runs (a model field's ``clean_fields``, a form field, a service's ``{field: message}``)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone

# Dates people plan with (a pilot's start, a holiday, an on-call shift) lie within this many
# years of today: far enough for any real plan, near enough that no date arithmetic overflows.
SANE_YEARS = 5
# The server's "today" may be a day behind the team's (time zones east of it).
TIME_ZONE_SLACK = dt.timedelta(days=1)


def _years_from(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def sane_date_range(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    today = today or timezone.localdate()
    return _years_from(today, -SANE_YEARS), _years_from(today, SANE_YEARS)


def validate_sane_date(value: dt.date) -> None:
    """Refuse a date more than :data:`SANE_YEARS` years before or after today."""
    if not isinstance(value, dt.date):
        return  # the field's own parsing reports it
    earliest, latest = sane_date_range()
    if not earliest <= value <= latest:
        raise ValidationError(
            f"Choose a date within {SANE_YEARS} years of today "
            f"({earliest:%Y-%m-%d} to {latest:%Y-%m-%d}).",
            code="date_out_of_range",
        )


def validate_not_future(value: dt.date) -> None:
    """Refuse a date after today: something that has happened cannot lie in the future."""
    if not isinstance(value, dt.date):
        return
    if value > timezone.localdate() + TIME_ZONE_SLACK:
        raise ValidationError(
            f"This has already happened, so its date cannot be in the future "
            f"({value:%Y-%m-%d} is after today).",
            code="date_in_future",
        )
