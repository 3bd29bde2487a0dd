"""How the interface words times and counts: one place for every page, partial and message.

Times: stored in UTC, shown in the zone of what they belong to — a plan's zone, else its team's,
else UTC — always with the zone's abbreviation ("Mon 6 Dec 2026, 14:32 CET"), so a reader never
has to guess which clock a time is on. The abbreviation is the one in force at that instant, so a
plan in Europe/Berlin reads CET in winter and CEST in summer.

Counts: ``plural(3, "business day")`` → "3 business days", never "business day(s)".

Toasts: ``toast(response, "Cohort saved.")`` asks the page shell (static/js/app.js) to show a
short message after an HTMX request; the response itself stays what it was.

The template library ``accounts/templatetags/ui.py`` exposes these to templates.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.http import HttpResponse
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_htmx.http import trigger_client_event

UTC = zoneinfo.ZoneInfo("UTC")

# Named formats (Django ``date`` syntax); the zone's abbreviation is appended to those with a time.
FORMATS = {
    "datetime": "D j M Y, H:i",  # Mon 6 Dec 2026, 14:32 CET
    "short": "D j M, H:i",  # Mon 6 Dec, 14:32 CET — dense tables and lists
    "time": "H:i",  # 14:32 CET
    "date": "D j M Y",  # Mon 6 Dec 2026 (the date in the zone; a plain date as it is)
    "day": "D j M",  # Mon 6 Dec — a date whose year the reader already has (ranges, next Monday)
}
WITHOUT_ZONE = {"date", "day"}


def zone_of(where: Any) -> zoneinfo.ZoneInfo:
    """The zone of ``where``: a plan or team (its ``time_zone``; a plan without one falls back
    to its team's), a zone name, a ``ZoneInfo``, or None (UTC). An unknown name is UTC."""
    if where is None or where == "":
        return UTC
    if isinstance(where, zoneinfo.ZoneInfo):
        return where
    if isinstance(where, str):
        name = where
    else:
        name = getattr(where, "time_zone", "") or ""
        if not name and getattr(where, "team_id", None):
            name = getattr(where.team, "time_zone", "") or ""
    try:
        return zoneinfo.ZoneInfo(name) if name else UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_abbreviation(local: dt.datetime) -> str:
    """The abbreviation in force at ``local`` (an aware datetime): "CET", "CEST", "UTC". Zones
    without a letter abbreviation (tzdata writes "+0530", "-03") read "UTC+05:30", "UTC-03"."""
    name = local.tzname() or "UTC"
    match = re.fullmatch(r"([+-])(\d\d)(\d\d)?", name)
    if match:
        sign, hours, minutes = match.groups()
        return f"UTC{sign}{hours}" + (f":{minutes}" if minutes and minutes != "00" else "")
    return name


def local(value: dt.datetime, where: Any) -> dt.datetime:
    """``value`` on the clock of ``where``. A naive value is taken to be UTC (we store UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone_of(where))


def local_time(value: dt.datetime | dt.date | None, where: Any, style: str = "datetime") -> str:
    """``value`` in the zone of ``where`` in one of ``FORMATS``, labelled with the zone's
    abbreviation: ``local_time(t, plan)`` → "Mon 6 Dec 2026, 14:32 CET"; ``style="time"`` →
    "14:32 CET"; ``"date"`` → "Mon 6 Dec 2026" (a date, so no label). Empty for None. A plain
    date is shown as it is (dates have no zone)."""
    if value is None or value == "":
        return ""
    fmt = FORMATS[style]
    if not isinstance(value, dt.datetime):
        return dateformat.format(value, fmt if style in WITHOUT_ZONE else FORMATS["date"])
    moment = local(value, where)
    text = dateformat.format(moment, fmt)
    if style in WITHOUT_ZONE:
        return text
    return f"{text} {zone_abbreviation(moment)}"


def day_text(value: dt.date) -> str:
    """A plain date in the product's one format, for sentences built in Python:
    "Mon 6 Dec 2026"."""
    return local_time(value, None, "date")


def viewer_zone(viewer: Any) -> zoneinfo.ZoneInfo | None:
    """A signed-in person's own zone (``User.time_zone``), or None when they have not set one
    (or are anonymous): then no page adds "in your zone"."""
    name = getattr(viewer, "time_zone", "") or ""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


# Relative times: younger than this reads "3 hours ago"; older reads as a date.
RELATIVE_LIMIT = dt.timedelta(days=30)
RELATIVE_UNITS = (
    (dt.timedelta(days=1), "day"),
    (dt.timedelta(hours=1), "hour"),
    (dt.timedelta(minutes=1), "minute"),
)


def relative(value: dt.datetime, where: Any = None, now: dt.datetime | None = None) -> str:
    """How long ago ``value`` was, in the largest whole unit: "just now", "5 minutes ago",
    "3 hours ago", "2 days ago"; a future time reads "in 3 hours". From a month on it is the
    date on the clock of ``where`` ("Mon 6 Dec 2026")."""
    now = now or timezone.now()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = now - value
    future = delta < dt.timedelta(0)
    age = abs(delta)
    if age >= RELATIVE_LIMIT:
        return local_time(value, where, "date")
    for unit, word in RELATIVE_UNITS:
        if age >= unit:
            text = plural(age // unit, word)
            break
    else:
        return "just now"
    return f"in {text}" if future else f"{text} ago"


def when(
    value: dt.datetime | dt.date | None,
    where: Any = None,
    *,
    viewer: Any = None,
    style: str = "datetime",
    now: dt.datetime | None = None,
) -> SafeString:
    """A time as the pages show it, once for every page:
    ``<time datetime="2026-12-06T13:32:00+00:00" title="In your zone (America/New_York):
    Mon 6 Dec 2026, 08:32 EST">Mon 6 Dec 2026, 14:32 CET</time>``.

    The text is on the clock of ``where`` (``local_time``); the title adds the viewer's own
    clock when they set a zone and it reads differently. ``style="relative"`` shows "3 hours ago"
    with the full time (and the viewer's) in the title. A plain date has no zone: no title."""
    if value is None or value == "":
        return format_html("{}", "")
    if not isinstance(value, dt.datetime):
        fmt = style if style in WITHOUT_ZONE else "date"
        return format_html(
            '<time datetime="{}">{}</time>', value.isoformat(), local_time(value, None, fmt)
        )
    shown_style = "datetime" if style == "relative" else style
    shown = local_time(value, where, shown_style)
    titles = []
    if style == "relative":
        titles.append(shown)
    zone = viewer_zone(viewer)
    if zone is not None:
        mine = local_time(value, zone, shown_style)
        if mine != shown:
            titles.append(f"In your zone ({zone.key}): {mine}")
    text = relative(value, where, now) if style == "relative" else shown
    instant = local(value, None).isoformat()
    if titles:
        return format_html(
            '<time datetime="{}" title="{}">{}</time>', instant, " · ".join(titles), text
        )
    return format_html('<time datetime="{}">{}</time>', instant, text)


def clock_times(times: Iterable[dt.time], where: Any, *, joiner: str = " and ") -> str:
    """Daily local times (check times) with the zone they are read in: "10:00 and 16:00
    (Europe/Berlin)". A wall-clock time has no single abbreviation (CET or CEST depends on the
    day), so the zone's name is the honest label."""
    shown = [t.strftime("%H:%M") for t in times]
    if not shown:
        return "none"
    text = ", ".join(shown[:-1]) + joiner + shown[-1] if len(shown) > 1 else shown[0]
    return f"{text} ({zone_of(where).key})"


def _plural_word(word: str) -> str:
    """English plural of a noun phrase's last word: day → days, breach → breaches,
    entry → entries."""
    head, _, last = word.rpartition(" ")
    if re.search(r"[^aeiou]y$", last):
        last = last[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def plural(count: int | float | Decimal | None, word: str) -> str:
    """``plural(1, "business day")`` → "1 business day"; ``plural(10, "business day")`` →
    "10 business days". An irregular plural goes after a comma: ``plural(2, "person,people")``.
    Whole numbers get thousands separators ("1,200 sessions")."""
    count = count or 0
    singular, _, many = word.partition(",")
    noun = singular if count == 1 else (many or _plural_word(singular))
    if isinstance(count, int) or (isinstance(count, float | Decimal) and count == int(count)):
        number = f"{int(count):,}"
    else:
        number = f"{count}"
    return f"{number} {noun}"


def toast(response: HttpResponse, message: str, *, level: str = "success") -> HttpResponse:
    """Ask the page to show ``message`` as a toast once this HTMX response arrives (the
    ``showToast`` event, handled in static/js/app.js). ``level``: success, info or error."""
    return trigger_client_event(response, "showToast", {"message": message, "level": level})
