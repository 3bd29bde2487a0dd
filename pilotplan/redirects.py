"""Where the browser's old addresses went (issue #9, docs/glossary.md): a plan's pages moved from
``/pilots/<id>/…`` to ``/plans/<id>/…``, a team's settings from ``/pilots/teams/<id>/…`` and
``/metrics/teams/<id>/…`` to ``/teams/<id>/…``, the portfolio from ``/pilots/portfolio`` to
``/portfolio``.

Bookmarks, e-mails and notifications already sent, and other tools' links keep working: each old
pattern answers with a permanent redirect to the URL name that serves it now, with the same
arguments and query string. GET and HEAD get a 301; anything else a 308, which (unlike a 301,
turned into a GET by browsers) repeats the same method and body at the new address, so an HTMX
button rendered by an old page still does what it says.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.csrf import csrf_exempt

PLAN = "pilots/<int:plan_id>"
ROW = f"{PLAN}/rows/<slug:slug>"

# Old path pattern → the URL name that serves it now (same kwargs).
MOVED: list[tuple[str, str]] = [
    # Plans: /pilots/… → /plans/…
    ("pilots/", "pilots:plan_list"),
    ("pilots/new", "pilots:plan_new"),
    ("pilots/portfolio", "decisions:portfolio"),
    (f"{PLAN}/", "pilots:plan_detail"),
    (f"{PLAN}/health", "pilots:plan_health"),
    (f"{PLAN}/sections/environment/compliance", "pilots:environment_compliance"),
    (f"{PLAN}/sections/timeline/start-next-monday", "pilots:timeline_start_next_monday"),
    (f"{PLAN}/sections/<str:key>", "pilots:section"),
    (f"{PLAN}/sections/<str:key>/edit", "pilots:section_edit"),
    (f"{ROW}/", "pilots:row_list"),
    (f"{ROW}/add", "pilots:row_add"),
    (f"{ROW}/<int:row_id>/edit", "pilots:row_edit"),
    (f"{ROW}/<int:row_id>/move", "pilots:row_move"),
    (f"{ROW}/<int:row_id>/remove", "pilots:row_remove"),
    (f"{PLAN}/print", "pilots:plan_print"),
    (f"{PLAN}/export.md", "pilots:plan_markdown"),
    (f"{PLAN}/review", "pilots:plan_review"),
    (f"{PLAN}/lifecycle", "pilots:plan_lifecycle"),
    (f"{PLAN}/lifecycle/<str:action>", "pilots:plan_transition"),
    (f"{PLAN}/reviews", "pilots:plan_reviews"),
    (f"{PLAN}/reviews/<str:kind>", "pilots:review_save"),
    (f"{PLAN}/reviews/<str:kind>/edit", "pilots:review_edit"),
    (f"{PLAN}/reviews/<str:kind>/sign", "pilots:review_sign"),
    (f"{PLAN}/timeline", "pilots:plan_timeline"),
    (f"{PLAN}/guests", "pilots:plan_guests"),
    (f"{PLAN}/guests/<int:guest_id>/remove", "pilots:plan_guest_remove"),
    (f"{PLAN}/samples/upload", "metrics:sample_upload"),
    (f"{PLAN}/checks", "metrics:checks"),
    (f"{PLAN}/checks/latest", "metrics:checks_latest"),
    (f"{PLAN}/monitoring", "metrics:monitoring"),
    (f"{PLAN}/alerts", "metrics:alerts"),
    (f"{PLAN}/alerts/banner", "metrics:alerts_banner"),
    (f"{PLAN}/alerts/<int:episode_id>/acknowledge", "metrics:alert_acknowledge"),
    (f"{PLAN}/alerts/<int:episode_id>/resolve", "metrics:alert_resolve"),
    # A team's settings: /pilots/teams/… and /metrics/teams/… → /teams/…
    ("pilots/teams/<int:team_id>/holidays", "pilots:team_holidays"),
    ("pilots/teams/<int:team_id>/holidays/new", "pilots:team_holiday_create"),
    ("pilots/teams/<int:team_id>/holidays/<int:holiday_id>/delete", "pilots:team_holiday_delete"),
    ("metrics/teams/<int:team_id>/", "catalogue:metric_list"),
    ("metrics/teams/<int:team_id>/new", "catalogue:metric_add"),
    # The single alert webhook became a list of subscriptions (docs/webhooks.md).
    ("metrics/teams/<int:team_id>/webhook", "metrics:webhooks"),
]


@csrf_exempt  # it changes nothing; the new address checks the CSRF token of a repeated POST
def moved(request: HttpRequest, *, to: str, **kwargs: Any) -> HttpResponsePermanentRedirect:
    """301 (GET, HEAD) or 308 (any other method) to the URL name ``to``, query string kept."""
    url = reverse(to, kwargs=kwargs)
    if query := request.META.get("QUERY_STRING", ""):
        url = f"{url}?{query}"
    response = HttpResponsePermanentRedirect(url)
    if request.method not in {"GET", "HEAD"}:
        response.status_code = 308  # Permanent Redirect: same method and body (RFC 9110 15.4.9)
    return response


urlpatterns: list[URLPattern] = [path(old, moved, {"to": new}) for old, new in MOVED]
