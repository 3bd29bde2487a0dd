"""The Monitoring page in a real browser: the vendored Chart.js draws a chart per metric,
with threshold lines and breach regions, for the whole pilot and the last 24 hours, and nothing
goes to the console. With SCREENSHOTS_DIR set (e.g. docs/img) it keeps ``monitoring.png``."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from catalogue.models import MetricDefinition
from metrics.models import CheckRun, CriterionResult, TriggerEpisode, TriggerState
from pilots.models import PilotPlan, RollbackTrigger
from tests.factories import running_plan

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("SCREENSHOTS_DIR")

# key: (level, daily swing, samples a minute); counts get their level as events per minute.
SHAPES = {
    "p95_latency": (210.0, 40.0, 1),
    "error_rate": (0.3, 0.1, 1),
    "csat": (4.4, 0.2, 1),
    "sessions": (40.0, 25.0, 1),
    "requests": (900.0, 400.0, 1),
    "errors": (2.0, 1.5, 1),
}


def realistic_rollups(plan: PilotPlan, *, days: int, now: dt.datetime) -> None:
    """Per-minute samples with a daily rhythm (SQL, no Python loop), a latency spike two days
    ago and one in the last 40 minutes, a few P2 defects and one P1; hour rollups from them."""
    ids = dict(MetricDefinition.objects.filter(team=None).values_list("key", "pk"))
    last = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    keys = list(SHAPES)
    spike = last - dt.timedelta(days=2, hours=3)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metrics_sample (plan_id, metric_id, observed_at, value, source,
                                        external_id, ingested_at)
            SELECT %(plan)s, m.id, b, v, 'api', '', now()
              FROM unnest(%(ids)s::bigint[], %(levels)s::float8[], %(swings)s::float8[],
                          %(ns)s::int[]) AS m(id, level, swing, n)
             CROSS JOIN generate_series(%(first)s::timestamptz, %(last)s::timestamptz,
                                        interval '1 minute') AS b
             CROSS JOIN LATERAL (
                   SELECT greatest(0, m.level
                          + m.swing * sin((date_part('epoch', b) / 86400.0 - 0.3) * 2 * pi())
                          + m.swing * 0.15 * sin(date_part('epoch', b) / 97.0)
                          + CASE WHEN m.id = %(latency)s AND (
                                      b BETWEEN %(spike)s AND %(spike)s + interval '50 minutes'
                                      OR b > %(last)s - interval '40 minutes')
                                 THEN 140 ELSE 0 END) AS v) x
            """,
            {
                "plan": plan.pk,
                "ids": [ids[k] for k in keys],
                "levels": [SHAPES[k][0] for k in keys],
                "swings": [SHAPES[k][1] for k in keys],
                "ns": [SHAPES[k][2] for k in keys],
                "first": last - dt.timedelta(days=days),
                "last": last,
                "latency": ids["p95_latency"],
                "spike": spike,
            },
        )
        # Defects: a P2 now and then, one P1 yesterday.
        cursor.execute(
            """
            INSERT INTO metrics_sample (plan_id, metric_id, observed_at, value, source,
                                        external_id, ingested_at)
            SELECT %(plan)s, %(p2)s, b, 1, 'api', '', now()
              FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz,
                                   interval '7 hours 13 minutes') AS b
            UNION ALL
            SELECT %(plan)s, %(p1)s, %(p1_at)s, 1, 'api', '', now()
            """,
            {
                "plan": plan.pk,
                "p1": ids["p1_defects"],
                "p2": ids["p2_defects"],
                "first": last - dt.timedelta(days=days),
                "last": last,
                "p1_at": last - dt.timedelta(days=1, hours=5),
            },
        )
        cursor.execute(
            """
            INSERT INTO metrics_hourrollup (plan_id, metric_id, bucket, count, sum, sum_sq, min,
                                            max)
            SELECT plan_id, metric_id, date_trunc('hour', observed_at), count(*), sum(value),
                   sum(value * value), min(value), max(value)
              FROM metrics_sample WHERE plan_id = %(plan)s
             GROUP BY plan_id, metric_id, date_trunc('hour', observed_at)
            """,
            {"plan": plan.pk},
        )
    latency = RollbackTrigger.objects.get(plan=plan, metric__key="p95_latency")
    p1 = RollbackTrigger.objects.get(plan=plan, metric__key="p1_defects")
    TriggerEpisode.objects.create(
        plan=plan, trigger=latency, description=str(latency), breach_started_at=spike,
        fired_at=spike + dt.timedelta(minutes=30), cleared_at=spike + dt.timedelta(minutes=51),
        value=352.0, resolved_at=spike + dt.timedelta(hours=1), resolution="Cache warmed.",
    )  # fmt: skip
    p1_at = last - dt.timedelta(days=1, hours=5)
    TriggerEpisode.objects.create(
        plan=plan, trigger=p1, description=str(p1), breach_started_at=p1_at, fired_at=p1_at,
        value=1.0, resolved_at=p1_at + dt.timedelta(hours=2), resolution="Hotfix deployed.",
    )  # fmt: skip
    started = last - dt.timedelta(minutes=40)
    TriggerEpisode.objects.create(
        plan=plan, trigger=latency, description=str(latency), breach_started_at=started,
        fired_at=started + dt.timedelta(minutes=30), value=349.0,
    )  # fmt: skip
    TriggerState.objects.create(
        trigger=latency, plan=plan, state="fired", detail="40 of the last 30 minutes above 300 ms"
    )
    TriggerState.objects.create(trigger=p1, plan=plan, state="ok")


def check_runs(plan: PilotPlan, *, days: int, now: dt.datetime) -> None:
    criteria = list(plan.exit_criteria.select_related("metric").order_by("position"))
    verdicts = ["met", "not_enough_evidence", "met", "met", "not_met"]
    for day in range(days, 0, -1):
        for hour in (10, 16):
            due = (now - dt.timedelta(days=day)).replace(hour=hour, minute=0, second=0)
            run = CheckRun.objects.create(
                plan=plan, due_at=due, local_date=due.date(), local_time=dt.time(hour),
                status="done", finished_at=due, met=3, not_met=1, not_enough_evidence=1,
            )  # fmt: skip
            CriterionResult.objects.bulk_create(
                [
                    CriterionResult(
                        run=run, criterion=c, position=c.position, label=str(c.metric.name),
                        comparator=c.comparator, threshold=float(c.threshold or 0),
                        value=float(c.threshold or 0) * 0.9, sample_size=120, method="mean",
                        verdict=verdicts[(c.position + day) % 5],
                    )
                    for c in criteria
                ]
            )  # fmt: skip


@pytest.fixture
def plan_with_data(team, po) -> PilotPlan:
    now = timezone.now()
    plan = running_plan(
        team=team, owner=po, start_date=(now - dt.timedelta(days=10)).date(), business_days=20,
        time_zone="Europe/Berlin",
    )  # fmt: skip
    realistic_rollups(plan, days=9, now=now)
    check_runs(plan, days=5, now=now)
    return plan


def _watch(page) -> list[str]:
    """Console errors and warnings, uncaught exceptions and failed requests, as they happen. The
    site has no favicon (a 404 the browser asks for on its own): that one is not the page's."""
    problems: list[str] = []

    def console(message) -> None:  # type: ignore[no-untyped-def]
        if message.type in {"error", "warning"} and "favicon" not in message.location["url"]:
            problems.append(f"{message.text} ({message.location['url']})")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def _charts(page) -> list[dict]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#monitoring-charts canvas')).map(c => {
             const chart = Chart.getChart(c);
             return chart && {
               id: c.id,
               points: chart.data.datasets.reduce((n, d) => n + d.data.length, 0),
               labels: chart.data.datasets.map(d => d.label),
               breaches: chart.options.plugins.breaches.regions.length,
               drawn: c.width > 0 && c.height > 0,
             };
           })"""
    )


def test_the_monitoring_page_draws_every_chart_without_console_errors(
    page, live_server, login, po, plan_with_data
):
    problems = _watch(page)
    login(page, po)

    # From the plan page, through its Monitoring link.
    page.goto(f"{live_server.url}/plans/{plan_with_data.pk}/")
    page.get_by_role("link", name="Monitoring").first.click()
    page.wait_for_url(f"**/plans/{plan_with_data.pk}/monitoring")
    expect(page.locator("#monitoring-charts[data-charts-ready]")).to_be_attached()

    charts = _charts(page)
    assert len(charts) == 8 and all(charts), charts  # every canvas has its Chart instance
    assert all(c["drawn"] and c["points"] > 0 for c in charts)
    latency = next(c for c in charts if "Rollback: p95 latency > 300 ms for 30 minutes" in
                   c["labels"])  # fmt: skip
    assert "Exit criterion: p95 latency percentile 95 < 300 ms" in latency["labels"]
    assert latency["breaches"] == 2  # the spike two days ago, and the one going on now
    expect(page.get_by_test_id("unresolved-episodes")).to_contain_text("1 alert not resolved")
    expect(page.get_by_test_id("trigger-states")).to_contain_text("Fired")
    expect(page.get_by_test_id("check-row")).to_have_count(10)
    expect(page.get_by_role("link", name="P-01")).to_have_attribute(
        "href", "https://dashboards.example.com/P-01"
    )
    if SCREENSHOTS:  # today's status and the first charts
        page.set_viewport_size({"width": 1280, "height": 1500})
        page.screenshot(path=os.path.join(SCREENSHOTS, "monitoring.png"))

    # The last 24 hours, per minute.
    page.get_by_role("link", name="Last 24 h").click()
    page.wait_for_url("**/monitoring?span=24h")
    expect(page.locator("#monitoring-charts[data-charts-ready]")).to_be_attached()
    charts = _charts(page)
    assert all(charts) and len(charts) >= 6  # the metrics with data in the last 24 hours
    assert max(c["points"] for c in charts) > 1000
    assert problems == []


def test_an_empty_monitoring_page_says_how_to_get_data(page, live_server, login, team, po):
    problems = _watch(page)
    plan = running_plan(team=team, owner=po, start_date=timezone.now().date())
    login(page, po)
    page.goto(f"{live_server.url}/plans/{plan.pk}/monitoring")
    expect(page.get_by_test_id("monitoring-empty")).to_contain_text(
        "No samples yet — push them with the API"
    )
    expect(page.locator("#monitoring-charts[data-charts-ready='0']")).to_be_attached()
    assert problems == []
