"""The page shell's template helpers (``{% load ui %}``); the wording lives in ``accounts.ui``.

{{ run.due_at|local_time:plan }}      Mon 6 Dec 2026, 14:32 CET (plan's zone, else team's)
{{ key.created_at|local_time:team }}  the team's zone; ``|local_time`` alone: UTC, labelled
{{ episode.fired_at|local_short:plan }}  Mon 6 Dec, 14:32 CET
{{ episode.cleared_at|local_clock:plan }}  14:32 CET
{{ guest.invited_at|local_date:plan }}  Mon 6 Dec 2026 (the date on the plan's clock)
{{ plan.check_times|clock_times:plan }}  10:00 and 16:00 (Europe/Berlin)
{{ plan.business_days|plural:"business day" }}  10 business days
{{ n|plural:"breach,breaches" }}      an irregular plural after the comma
{{ plan.start_date|local_day }}         Mon 6 Dec (a date whose year is already on the page)
{{ value|iso }}                        2026-12-06T13:32:00+00:00, for <time datetime="…">

{% when run.due_at plan %}             <time datetime="…" title="In your zone (…): …">
                                       Mon 6 Dec 2026, 14:32 CET</time>
{% when run.due_at plan "short" %}     in a style of ``local_time`` (short, time, date, day)
{% when plan.updated_at plan "relative" %}  3 hours ago, the full time in the title
The title names the viewer's own clock (their ``time_zone``) where it reads differently; pages
use ``{% when %}`` for every time a person reads, and the filters inside attributes or sentences
that are not about one moment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils.safestring import SafeString

from accounts import ui

register = template.Library()


@register.filter
def local_time(value: dt.datetime | None, where: Any = None) -> str:
    return ui.local_time(value, where)


@register.filter
def local_short(value: dt.datetime | None, where: Any = None) -> str:
    return ui.local_time(value, where, "short")


@register.filter
def local_clock(value: dt.datetime | None, where: Any = None) -> str:
    return ui.local_time(value, where, "time")


@register.filter
def local_date(value: dt.datetime | dt.date | None, where: Any = None) -> str:
    return ui.local_time(value, where, "date")


@register.filter
def local_day(value: dt.datetime | dt.date | None, where: Any = None) -> str:
    return ui.local_time(value, where, "day")


@register.simple_tag(takes_context=True)
def when(
    context: template.Context,
    value: dt.datetime | dt.date | None,
    where: Any = None,
    style: str = "datetime",
) -> SafeString:
    """A ``<time>`` element on the clock of ``where``, the viewer's own clock in its title."""
    if style not in ui.FORMATS and style != "relative":
        raise template.TemplateSyntaxError(f"when: unknown style {style!r}")
    return ui.when(value, where, viewer=context.get("user"), style=style)


@register.filter
def clock_times(times: list[dt.time] | None, where: Any = None) -> str:
    return ui.clock_times(times or [], where)


@register.filter
def plural(count: Any, word: str) -> str:
    return ui.plural(count, word)


@register.filter
def iso(value: dt.datetime | None) -> str:
    """The instant in UTC, ISO 8601, for ``<time datetime="…">`` (machines, not people)."""
    if not isinstance(value, dt.datetime):
        return ""
    return ui.local(value, None).isoformat()
