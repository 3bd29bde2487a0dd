"""``make bench``: server-side timings on a throw-away database, printed as ``name: value`` lines.

Runs against the real PostgreSQL named by DATABASE_URL (a ``test_`` copy is created and dropped).
Figures are medians / 95th percentiles of repeated requests through Django's test client, so they
measure our code and queries, not a network.
"""

from __future__ import annotations

import importlib
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotplan.settings_test")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from pilotplan.collector import collector_settle  # noqa: E402
from tests.bench_timing import p95, timed  # noqa: E402

# The parts of the bench, each a module tests/bench_<part>.py with run(po=, team=, figures=).
PARTS = [
    "metrics",
    "gate",
    "ingest",
    "checks",
    "triggers",
    "pages",
    "scale",
    "feedback",
    "backlog",
    "credentials",
]


def main() -> None:
    setup_test_environment(debug=False)  # as in production: no per-query log kept in memory
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from accounts.models import Team, User
        from pilotplan.demo import seed_demo
        from pilots.models import PilotPlan
        from pilots.services import plan_create_from_template

        # The API rate limits stay on (their cost is part of every figure) but never refuse:
        # the bench sends far more requests a minute than a person or a pipeline would.
        for name in ("API_RATE_PER_CREDENTIAL", "API_RATE_PER_ADDRESS", "API_RATE_INGEST"):
            setattr(settings, name, 10**9)
        settings.API_RATE_PREFIX = f"bench-api-rate:{os.getpid()}"
        seed_demo()
        po = User.objects.get(email="po@checkout.demo")
        team = Team.objects.get(slug="checkout")
        plan = plan_create_from_template(team=team, author=po)
        for i in range(200):
            PilotPlan.objects.create(team=team, title=f"Bench plan {i}", owner=po, created_by=po)
        client = Client()
        client.force_login(po)
        # Like a web worker after pilotplan/wsgi.py: long-lived objects leave the collector, and
        # the collector's thresholds are the web process's.
        collector_settle()

        def get(url: str) -> Callable[[], object]:
            def request() -> object:
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                return response

            return request

        pages = {
            "home_page": "/",
            "new_plan_page": f"/plans/{plan.pk}/",
            "plan_health": f"/plans/{plan.pk}/health",
            "plan_api": f"/api/v1/plans/{plan.pk}",
        }
        figures = {"healthz_ms_p50": statistics.median(timed(get("/healthz")))}
        for name, url in pages.items():
            samples = timed(get(url))
            figures[f"{name}_ms_p50"] = statistics.median(samples)
            figures[f"{name}_ms_p95"] = p95(samples)
        # Each part adds its figures; BENCH_ONLY=metrics,gate runs some parts only.
        only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
        for part in PARTS:
            if not only or part in only:
                started = time.perf_counter()
                importlib.import_module(f"tests.bench_{part}").run(
                    po=po, team=team, figures=figures
                )
                print(f"# bench part {part}: {time.perf_counter() - started:.0f} s", flush=True)
        for name, value in figures.items():
            print(f"{name}: {value:.2f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
