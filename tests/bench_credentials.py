"""Credentials' part of ``make bench`` (issue #13): what authenticating costs per request, for
each kind of credential against the same request with a session, and the Redis rate limiter's
cost per request. Figures are ratios and per-call costs measured side by side in one run, so a
loaded machine shifts them less than absolute times. ``BENCH_ONLY=credentials`` runs it alone.

- ``api_<kind>_ms_p50``: ``GET /api/v1/plans/{id}`` with a session, a team API key and a
  personal access token; ``api_<kind>_vs_session``: its median over the session's.
- ``rate_limit_us_p50``: one ``ApiRateThrottle`` check (one Redis round trip running the
  counting script for the credential's and the address's counters).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory
from django.utils import timezone
from rest_framework.request import Request

from tests.bench_timing import timed


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from accounts.api_keys import api_key_create
    from accounts.throttle import ApiRateThrottle
    from accounts.tokens import personal_token_create
    from pilots.models import PilotPlan

    plan = PilotPlan.objects.filter(team=team).order_by("pk").first()
    url = f"/api/v1/plans/{plan.pk}"
    session = Client()
    session.force_login(po)
    key = api_key_create(team=team, name="bench", scopes=["read"], created_by=po)[1]
    token = personal_token_create(
        user=po, name="bench", scopes=["read"], expires_at=timezone.now() + dt.timedelta(days=1)
    )[1]
    clients = {
        "session": session,
        "team_key": Client(headers={"Authorization": f"Bearer {key}"}),
        "personal_token": Client(headers={"Authorization": f"Bearer {token}"}),
    }

    def get(client: Client):  # type: ignore[no-untyped-def]
        def request() -> None:
            response = client.get(url)
            assert response.status_code == 200, response.content[:200]

        return request

    # Interleaved rounds, so drift in the machine's load touches every kind alike.
    samples: dict[str, list[float]] = {kind: [] for kind in clients}
    for _ in range(5):
        for kind, client in clients.items():
            samples[kind] += timed(get(client), runs=40)
    medians = {kind: statistics.median(values) for kind, values in samples.items()}
    for kind, median in medians.items():
        figures[f"api_{kind}_ms_p50"] = median
        if kind != "session":
            figures[f"api_{kind}_vs_session"] = median / medians["session"]

    request = Request(RequestFactory().get(url, REMOTE_ADDR="10.9.9.9"))
    request.user = AnonymousUser()
    throttle = ApiRateThrottle()
    throttle.allow_request(request, None)  # warm: the script is loaded, the pool connected
    costs = []
    for _ in range(500):
        start = time.perf_counter()
        throttle.allow_request(request, None)
        costs.append((time.perf_counter() - start) * 1_000_000)
    figures["rate_limit_us_p50"] = statistics.median(costs)
