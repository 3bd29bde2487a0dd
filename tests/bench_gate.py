"""The deployment gate's part of ``make bench`` (issue #11): the p95 server time of the decision
evidence, of a gate call and of the decision page, for a plan with 8 exit criteria and 90 days of
per-minute data, with the 50 ms target printed alongside. Called by ``tests.bench`` on its database
after ``tests.bench_metrics`` (whose big plan it reuses); ``python -m tests.bench_gate`` runs it
alone.
"""

from __future__ import annotations

import datetime as dt
import os
import time

from django.db.models import Count
from django.test import Client
from django.utils import timezone

from tests.bench_timing import p95

RUNS = 200
TARGET_MS = 50.0


def _big_plan(*, po, team):  # type: ignore[no-untyped-def]
    """The bench's plan with 8 exit criteria and 90 days of data (seeded here when missing),
    checked at least once."""
    from catalogue.models import MetricDefinition
    from metrics import checks
    from metrics.models import CheckRun
    from pilots.models import PilotPlan
    from pilots.services import plan_create_from_template
    from tests import bench_metrics

    plan = (
        PilotPlan.objects.filter(team=team, status=PilotPlan.Status.RUNNING)
        .annotate(n=Count("exit_criteria"))
        .filter(n=8, title="Saved cards pilot (from template)")
        .order_by("pk")
        .first()
    )
    now = timezone.now().replace(second=0, microsecond=0)
    if plan is None:
        metric_ids = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))
        plan = plan_create_from_template(team=team, author=po)
        today = timezone.localdate()
        bench_metrics._running(
            plan, start=today - dt.timedelta(days=bench_metrics.DAYS + 1), business_days=70
        )
        bench_metrics._criteria(plan, metric_ids)
        started = time.perf_counter()
        bench_metrics._fill([plan.pk], metric_ids, now - dt.timedelta(days=bench_metrics.DAYS), now)
        print(f"# gate: filled 90 days in {time.perf_counter() - started:.1f} s")
    if not CheckRun.objects.filter(plan=plan, status=CheckRun.Status.DONE).exists():
        run = CheckRun.objects.create(
            plan=plan,
            due_at=now - dt.timedelta(minutes=1),
            local_date=timezone.localdate(),
            local_time=dt.time(10, 0),
        )
        checks.check_run_execute(run_id=run.pk)
    return plan


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from accounts.api_keys import api_key_create
    from decisions.evidence import decision_evidence

    plan = _big_plan(po=po, team=team)
    assert plan.exit_criteria.count() == 8

    samples = []
    decision_evidence(plan)  # warm
    for _ in range(RUNS):
        start = time.perf_counter()
        decision_evidence(plan)
        samples.append((time.perf_counter() - start) * 1000)
    figures["decision_evidence_p95_ms"] = p95(samples)
    figures["decision_evidence_p95_target_ms"] = TARGET_MS

    _key, plaintext = api_key_create(team=team, name="bench gate", scopes=["read"], created_by=po)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}", HTTP_X_PIPELINE_RUN="bench")
    url = f"/api/v1/plans/{plan.pk}/gate"
    client.get(url)  # warm
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content[:300]
    figures["gate_p95_ms"] = p95(samples)
    figures["gate_p95_target_ms"] = TARGET_MS

    # The decision page as its decision owner reads it (the whole HTML response).
    browser = Client()
    browser.force_login(po)
    page = f"/plans/{plan.pk}/decision"
    assert browser.get(page).status_code == 200  # warm
    samples = []
    for _ in range(RUNS // 2):
        start = time.perf_counter()
        response = browser.get(page)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    figures["decision_page_p95_ms"] = p95(samples)
    figures["decision_page_p95_target_ms"] = TARGET_MS
    if os.environ.get("BENCH_GATE_PROFILE"):
        _profile(plan, client, url)


def _profile(plan, client, url) -> None:  # type: ignore[no-untyped-def]
    """The slowest queries of one evidence load and one gate call, as comments."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from decisions.evidence import decision_evidence

    for name, call in (
        ("evidence", lambda: decision_evidence(plan)),
        ("gate", lambda: client.get(url)),
    ):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            call()
            total = (time.perf_counter() - start) * 1000
        queries = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))
        print(f"# {name}: {len(queries)} queries, {total:.1f} ms")
        for q in queries[:6]:
            print(f"#   {float(q['time']) * 1000:.1f} ms  {q['sql'][:220]}")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotplan.settings_test")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment(debug=False)
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from accounts.models import Team, User
        from pilotplan.demo import seed_demo

        seed_demo()
        po = User.objects.get(email="po@checkout.demo")
        team = Team.objects.get(slug="checkout")
        figures: dict[str, float] = {}
        run(po=po, team=team, figures=figures)
        for name, value in figures.items():
            print(f"{name}: {value:.2f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
