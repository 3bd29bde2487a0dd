"""The pages' part of ``make bench`` (issue #15): the plan page with 5 and with 100 rows per list,
the portfolio and the plan list for a page of 25 plans, the plan API of the 100-row plan, the run
cockpit of the 90-day plan (issue #14, target p95 < 50 ms), and side
by side in the same run the two process settings the figures depend on: PostgreSQL's JIT (on /
off, tables freshly seeded and never analysed) and the collector (CPython's defaults / frozen
start-up objects and a larger youngest generation, ``pilotplan.collector``).

The plans are built through the services (the template, then rows added one by one as the page
does), so their rows look like real ones. ``python -m tests.bench`` with ``BENCH_ONLY=pages`` runs
this part alone.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import json
import pstats
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from pilotplan.collector import collector_settle
from tests import bench_gate
from tests.bench_timing import RUNS, p95, settle_database, timed

PAGE_ROWS = 25
# Requests per page under cProfile for the "where the time goes" lines.
PROFILED = 20
ROOT = str(Path(__file__).resolve().parent.parent)
# Self time by where the code lives, first match wins: the driver waiting on PostgreSQL, the
# ORM building queries and models, template rendering (Django's engine, partials, tag
# libraries), our own code, and everything else (middleware, sessions, the test client).
KINDS = (
    ("sql", ("/psycopg/", "/psycopg_c/", "/psycopg_binary/")),
    ("orm", ("/django/db/",)),
    ("templates", ("/django/template/", "/template_partials/", "/templatetags/")),
    ("ours", (ROOT + "/accounts/", ROOT + "/pilots/", ROOT + "/metrics/", ROOT + "/decisions/",
              ROOT + "/backlog/", ROOT + "/catalogue/", ROOT + "/core/", ROOT + "/pilotplan/")),
)  # fmt: skip


def _values(kind, plan, n: int, po) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The values of the ``n``-th row of ``kind`` a person might type."""
    from catalogue.models import MetricDefinition
    from pilots.models import CohortSegment, EntryCriterion, ScopeItem

    day = plan.start_date or dt.date(2026, 1, 5)
    metric = MetricDefinition.objects.filter(team=None, key="p95_latency").first()
    return {
        "scope-items": {
            "kind": ScopeItem.Kind.INCLUDED,
            "reference": f"US-{200 + n}",
            "title": f"Story {n}: pay with a saved card from the basket",
        },
        "segments": {
            "dimension": CohortSegment.Dimension.REGION,
            "value": f"Region {n}",
            "intended_share": Decimal("1"),
        },
        "entry-criteria": {
            "text": f"Check {n} of the release checklist passed",
            "kind": EntryCriterion.Kind.NON_FUNCTIONAL,
            "status": EntryCriterion.Status.PENDING,
        },
        "exit-criteria": {
            "metric": metric,
            "aggregation": "percentile",
            "percentile": Decimal("95"),
            "comparator": "lt",
            "threshold": Decimal(300 + n),
            "unit": "ms",
            "window_hours": 24,
            "min_sample_size": 60,
            "blocking": n % 2 == 0,
        },
        "dashboards": {"name": f"P-{n:02d}", "url": f"https://dashboards.example.com/P-{n:02d}"},
        "on-call": {
            "person": po,
            "starts_on": day + dt.timedelta(days=n),
            "ends_on": day + dt.timedelta(days=n),
        },
        "rollback-triggers": {
            "metric": metric,
            "comparator": "gt",
            "threshold": Decimal(400 + n),
            "mode": "sustained",
            "sustained_minutes": 5 + n % 30,
            "description": f"p95 latency above {400 + n} ms",
        },
        "rollback-steps": {
            "action": f"Step {n}: switch flag {n} off and verify the checkout",
            "owner": po,
            "expected_minutes": 5,
        },
        "rehearsals": {
            "rehearsed_on": dt.date(2026, 1, 5) - dt.timedelta(days=n),
            "outcome": "passed",
            "notes": f"Rehearsal {n}: flag off in 4 minutes.",
        },
        "risks": {
            "description": f"Risk {n}: the cohort behaves unlike external users",
            "likelihood": "medium",
            "impact": "high",
            "mitigation": "Compare with external usage before the go decision.",
            "owner": po,
        },
    }[kind.slug]


def plan_with_rows(*, team, po, rows: int):  # type: ignore[no-untyped-def]
    """The template plan with ``rows`` rows in every list (response SLAs: one per severity),
    each added through ``services.row_add``."""
    from pilots.models import Section
    from pilots.services import ROW_KINDS, plan_create_from_template, row_add
    from pilots.services.sections import section_versions

    plan = plan_create_from_template(team=team, author=po)
    plan.title = f"Plan with {rows} rows per list"
    plan.save(update_fields=["title"])
    for kind in ROW_KINDS.values():
        if kind.slug == "response-slas":
            continue
        have = kind.model._default_manager.filter(plan=plan).count()
        for n in range(have, rows):
            version = section_versions(plan=plan)[Section(kind.section).value]
            row_add(
                plan=plan,
                kind=kind,
                user=po,
                expected_version=version,
                values=_values(kind, plan, n, po),
            )
    return plan


def run(*, po, team, figures: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    from pilots.models import PilotPlan
    from pilots.services import plan_clone

    started = time.perf_counter()
    settle_database()  # before building the plans: the JIT figures want them never analysed
    print(f"# pages: database settled in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    big = plan_with_rows(team=team, po=po, rows=100)
    small = plan_with_rows(team=team, po=po, rows=5)
    for i in range(PAGE_ROWS - 1):  # the portfolio's and plan list's first page: 25 such plans
        plan_clone(source=small, author=po, title=f"Pilot {i} with 5 rows per list")
    print(f"# pages: plans built in {time.perf_counter() - started:.1f} s", flush=True)
    assert PilotPlan.objects.filter(pk=big.pk).exists()

    client = Client()
    client.force_login(po)

    def get(url: str) -> Callable[[], Any]:
        def request() -> Any:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response

        return request

    def measure(name: str, url: str) -> None:
        samples = timed(get(url))
        figures[f"{name}_ms_p50"] = statistics.median(samples)
        figures[f"{name}_ms_p95"] = p95(samples)
        _profile(name, get(url))

    measure("plan_page_5_rows", f"/plans/{small.pk}/")
    measure("plan_page_100_rows", f"/plans/{big.pk}/")
    figures["plan_page_5_rows_kb"] = len(get(f"/plans/{small.pk}/")().content) / 1024
    figures["plan_page_100_rows_kb"] = len(get(f"/plans/{big.pk}/")().content) / 1024
    measure("portfolio_25", "/portfolio")
    measure("plan_list_25", "/plans/")
    measure("home_page_25", "/")
    measure("plan_api_100_rows", f"/api/v1/plans/{big.pk}")
    figures["plan_api_100_rows_kb"] = len(get(f"/api/v1/plans/{big.pk}")().content) / 1024

    # The run cockpit of the 90-day plan (bench_gate's: 8 exit criteria, 90 days of per-minute
    # data for 8 metrics, checked; seeded there when this part runs alone), as its PO opens it.
    ninety = bench_gate._big_plan(po=po, team=team)
    cockpit = get(f"/plans/{ninety.pk}/cockpit")
    samples = timed(cockpit)
    figures["cockpit_90d_p50_ms"] = statistics.median(samples)
    figures["cockpit_90d_p95_ms"] = p95(samples)
    figures["cockpit_90d_p95_target_ms"] = bench_gate.TARGET_MS
    _profile("cockpit_90d", cockpit)

    _jit(get("/portfolio"), figures)
    _collector(get("/portfolio"), figures)


JIT_SETTINGS = {
    "on": "SET jit = on",  # the server's default thresholds
    # What happens when the planner's estimates cross jit_above_cost, as on tables not
    # analysed since a bulk load (the issue measured 92 of 93 ms compiling).
    "forced": "SET jit = on; SET jit_above_cost = 0",
    "off": "SET jit = off",  # pilotplan/settings.py's connection option
}


def _jit(portfolio: Callable[[], Any], figures: dict[str, float]) -> None:
    """The portfolio's main query with JIT on, forced and off, on tables never
    analysed since they were seeded (as after a restore or a bulk load): its estimated cost,
    its execution and JIT compile time (EXPLAIN ANALYZE) and its time run repeatedly."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        configured = cursor.fetchone()[0]
    with CaptureQueriesContext(connection) as queries:
        portfolio()
    # The main query: the plans with their subqueries (the longest SQL; the slowest one in a
    # single request is a matter of luck on a busy machine).
    slowest = max(queries.captured_queries, key=lambda q: len(q["sql"]))["sql"]
    for name, statement in JIT_SETTINGS.items():
        with connection.cursor() as cursor:
            cursor.execute(statement)
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {slowest}")
            (explained,) = cursor.fetchone()
        if isinstance(explained, str):
            explained = json.loads(explained)
        jit = explained[0].get("JIT", {}).get("Timing", {})
        figures["portfolio_main_query_cost"] = explained[0]["Plan"]["Total Cost"]
        figures[f"portfolio_main_query_jit_{name}_ms"] = explained[0]["Execution Time"]
        figures[f"portfolio_main_query_jit_{name}_compile_ms"] = jit.get("Total", 0.0)
        # Timed on this connection (a request may reconnect, which would reset the setting).
        with connection.cursor() as cursor:
            samples = timed(lambda: (cursor.execute(slowest), cursor.fetchall()), runs=RUNS // 2)
            cursor.execute(f"RESET jit_above_cost; SET jit = {configured}")
        figures[f"portfolio_main_query_jit_{name}_ms_p50"] = statistics.median(samples)
        figures[f"portfolio_main_query_jit_{name}_ms_p95"] = p95(samples)
    print(f"# pages: jit as configured: {configured}", flush=True)


def _collector(portfolio: Callable[[], Any], figures: dict[str, float]) -> None:
    """The portfolio with CPython's collector as it starts (every object loaded so far under
    the collector, the youngest generation 700 objects), then as ``pilotplan.collector`` leaves
    it in web and worker processes (start-up objects frozen, a larger youngest generation)."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, *thresholds[1:])
    gc.collect()
    samples = timed(portfolio)
    figures["portfolio_25_gc_default_ms_p50"] = statistics.median(samples)
    figures["portfolio_25_gc_default_ms_p95"] = p95(samples)
    collector_settle()
    samples = timed(portfolio)
    figures["portfolio_25_gc_settled_ms_p50"] = statistics.median(samples)
    figures["portfolio_25_gc_settled_ms_p95"] = p95(samples)


def _kind(filename: str) -> str:
    return next((kind for kind, parts in KINDS if any(p in filename for p in parts)), "other")


def _profile(name: str, request: Callable[[], Any]) -> None:
    """Where a page's time goes, as ``#`` lines: its queries, the split of self time (SQL, ORM,
    templates, our code, other) and our functions with the most cumulative time. Profiling
    slows the calls down (most where the calls are many and small: templates), so read the
    shares, not the milliseconds."""
    sql: list[str] = []
    with connection.execute_wrapper(
        lambda execute, *args: (sql.append(args[0]), execute(*args))[1]
    ):
        request()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(PROFILED):
        request()
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    # {(file, line, function): (primitive calls, calls, self time, cumulative time, callers)}
    split: dict[str, float] = {}
    for (filename, _line, _function), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        split[_kind(filename)] = split.get(_kind(filename), 0.0) + tottime
    total = sum(split.values()) or 1.0
    shares = ", ".join(
        f"{kind} {split.get(kind, 0.0) / total:.0%}"
        for kind in ("sql", "orm", "templates", "ours", "other")
    )
    print(f"# {name}: {len(sql)} queries; self time: {shares}", flush=True)
    ours = sorted(
        (
            (cumtime, f"{filename.removeprefix(ROOT + '/')}:{line}({function})")
            for (filename, line, function), (_cc, _nc, _tt, cumtime, _callers) in stats.items()
            if _kind(filename) == "ours" and "/templatetags/" not in filename
        ),
        reverse=True,
    )
    top = "; ".join(f"{where} {cumtime / total:.0%}" for cumtime, where in ours[:5])
    print(f"# {name}: cumulative: {top}", flush=True)
