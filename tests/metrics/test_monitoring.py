"""The Monitoring page of a plan: what it shows, who sees it, and that it stays fast.

Rollups are generated in SQL (``generate_series``), as the ingestion would leave them: 90 days of
per-hour rollups and per-minute samples for 8 metrics take a few seconds, with no Python loop.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from catalogue.models import MetricDefinition
from metrics.models import (
    CheckRun,
    CriterionResult,
    HourRollup,
    Sample,
    TriggerEpisode,
    TriggerState,
)
from metrics.monitoring import HISTORY_RUNS, Span, monitoring_page
from pilots.models import PilotPlan, PlanGuest, RollbackTrigger
from tests.factories import UserFactory, running_plan

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# The template plan's metrics (criteria and triggers) plus two more with data: 8 in all.
METRICS = [
    "p1_defects", "p2_defects", "sessions", "csat", "error_rate", "p95_latency", "errors",
    "requests",
]  # fmt: skip


# --- data, straight into the tables the ingestion fills ---------------------------------------


def metric_ids(keys: list[str] = METRICS) -> list[int]:
    ids = dict(MetricDefinition.objects.filter(team=None, key__in=keys).values_list("key", "pk"))
    return [ids[k] for k in keys]


def fill_rollups(
    plan: PilotPlan,
    *,
    days: float,
    end: dt.datetime,
    keys: list[str] = METRICS,
    minutes: bool = True,
) -> None:
    """Per-hour rollups (and per-minute samples) of ``keys`` for the ``days`` before ``end``: a
    daily wave around 100 (+ the metric id), 60 samples an hour with ±20 % min–max / 1 a minute."""
    hour_end = end.replace(minute=0, second=0, microsecond=0)
    minute_end = end.replace(second=0, microsecond=0)
    tables = [("metrics_hourrollup", "1 hour", 60, hour_end)]
    if minutes:
        tables.append(("metrics_sample", "1 minute", 1, minute_end))
    columns = {
        "metrics_hourrollup": "bucket, count, sum, sum_sq, min, max",
        "metrics_sample": "observed_at, value, source, external_id, ingested_at",
    }
    values = {
        "metrics_hourrollup": "%(n)s, %(n)s * v, %(n)s * v * v, v * 0.8, v * 1.2",
        "metrics_sample": "v, 'api', '', now()",
    }
    with connection.cursor() as cursor:
        for table, step, n, last in tables:
            cursor.execute(
                f"""
                INSERT INTO {table} (plan_id, metric_id, {columns[table]})
                SELECT %(plan)s, m.id, b, {values[table]}
                  FROM unnest(%(metrics)s::bigint[]) AS m(id)
                 CROSS JOIN generate_series(%(first)s::timestamptz, %(last)s::timestamptz,
                                            %(step)s::interval) AS b
                 CROSS JOIN LATERAL (
                       SELECT 100 + 50 * sin(extract(epoch FROM b) / 86400.0 * 2 * pi()) + m.id
                              AS v) x
                """,  # noqa: S608 - the table and columns are constants
                {
                    "plan": plan.pk,
                    "metrics": metric_ids(keys),
                    "first": last - dt.timedelta(days=days),
                    "last": last,
                    "step": step,
                    "n": n,
                },
            )


def fill_check_runs(plan: PilotPlan, *, days: int, end: dt.datetime) -> None:
    """Two done check runs a day for ``days`` days before ``end``, 5 verdicts each (SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH runs AS (
              INSERT INTO metrics_checkrun (plan_id, due_at, local_date, local_time, status, late,
                                            created_at, attempts, finished_at, met, not_met,
                                            not_enough_evidence)
              SELECT %(plan)s, d, d::date, d::time, 'done', false, d, 1, d, 3, 1, 1
                FROM generate_series(%(end)s::timestamptz - make_interval(days => %(days)s),
                                     %(end)s::timestamptz, interval '12 hours') AS d
              RETURNING id)
            INSERT INTO metrics_criterionresult (run_id, position, label, comparator, threshold,
                                                 blocking, value, sample_size, method, verdict,
                                                 reason)
            SELECT runs.id, p, 'criterion ' || p, 'lt', 300, true, 250, 100, 'mean',
                   (ARRAY['met', 'met', 'met', 'not_met', 'not_enough_evidence'])[p], ''
              FROM runs CROSS JOIN generate_series(1, 5) AS p
            """,
            {"plan": plan.pk, "days": days, "end": end},
        )


def trigger(plan: PilotPlan, key: str) -> RollbackTrigger:
    return RollbackTrigger.objects.get(plan=plan, metric__key=key)


def fill_episodes(plan: PilotPlan, *, count: int, end: dt.datetime) -> None:
    latency = trigger(plan, "p95_latency")
    TriggerEpisode.objects.bulk_create(
        [
            TriggerEpisode(
                plan=plan,
                trigger=latency,
                description="p95 latency above 300 ms for 30 minutes",
                breach_started_at=end - dt.timedelta(hours=6 * i + 2),
                fired_at=end - dt.timedelta(hours=6 * i + 1, minutes=30),
                cleared_at=end - dt.timedelta(hours=6 * i),
                value=320.0,
            )
            for i in range(1, count + 1)
        ]
    )


def populate(plan: PilotPlan, *, days: int, now: dt.datetime) -> None:
    fill_rollups(plan, days=days, end=now)
    fill_check_runs(plan, days=days, end=now - dt.timedelta(hours=1))
    fill_episodes(plan, count=min(days, 20), end=now)
    # As in a real pilot, the team resolved the older episodes; the latest is still open.
    latest = TriggerEpisode.objects.filter(plan=plan).order_by("-breach_started_at").first()
    TriggerEpisode.objects.filter(plan=plan).exclude(pk=latest.pk).update(resolved_at=now)
    for t in RollbackTrigger.objects.filter(plan=plan):
        TriggerState.objects.create(trigger=t, plan=plan, state=TriggerState.State.OK)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now()


def _plan(team, owner, now: dt.datetime, days_ago: int) -> PilotPlan:
    # Long enough that the window holds today: ~90 business days are ~126 calendar days.
    return running_plan(
        team=team,
        owner=owner,
        start_date=(now - dt.timedelta(days=days_ago)).date(),
        business_days=90,
        time_zone="Europe/Berlin",
    )


@pytest.fixture
def plan(team, po, now) -> PilotPlan:
    """A running plan from the template (5 exit criteria, 2 triggers) with no data."""
    return _plan(team, po, now, days_ago=3)


@pytest.fixture
def small(plan, now) -> PilotPlan:
    """Two days of data."""
    populate(plan, days=2, now=now)
    return plan


@pytest.fixture
def big(team, po, now) -> PilotPlan:
    """90 days of per-minute samples and hour rollups for 8 metrics, 181 check runs, 20 episodes."""
    plan = _plan(team, po, now, days_ago=91)
    populate(plan, days=90, now=now)
    return plan


def url(plan: PilotPlan, span: str | None = None) -> str:
    base = reverse("metrics:monitoring", args=[plan.pk])
    return f"{base}?span={span}" if span else base


def page_data(response) -> dict:
    """The JSON the page hands to monitoring.js, parsed from the page itself."""
    html = response.content.decode()
    start = html.index('<script id="monitoring-data" type="application/json">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def page_series(response) -> dict:
    """The points (PostgreSQL's JSON), by metric id, with each point's time in ms added."""
    html = response.content.decode()
    start = html.index('<script id="monitoring-series" type="application/json">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    series = json.loads(body)
    data = page_data(response)
    for points in series.values():
        points["ms"] = [data["origin"] + t * data["step"] for t in points["t"]]
    return series


def points(response, key: str) -> dict:
    metric = chart(page_data(response), key)
    return page_series(response).get(str(metric["id"]), {"t": [], "ms": []})


def chart(data: dict, key: str) -> dict:
    return next(m for m in data["metrics"] if m["key"] == key)


# --- who sees it ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["po", "sm", "developer", "devops", "stakeholder"])
def test_every_team_member_reads_the_monitoring_page(client_for, plan, role, request):
    response = client_for(request.getfixturevalue(role)).get(url(plan))
    assert response.status_code == 200
    assert 'data-testid="monitoring-link" aria-current="page">Monitoring</a>' in (
        response.content.decode()
    )


def test_an_invited_guest_reads_the_monitoring_page(client_for, plan, po):
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    assert client_for(guest).get(url(plan)).status_code == 200


def test_outsiders_get_404_and_anonymous_users_the_login_page(client_for, client, plan, outsider):
    assert client_for(outsider).get(url(plan)).status_code == 404
    assert client_for(outsider).get(url(plan, Span.DAY)).status_code == 404
    response = client.get(url(plan))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_an_unknown_plan_is_404(client_for, po):
    assert client_for(po).get(reverse("metrics:monitoring", args=[999_999])).status_code == 404


def test_only_get_is_allowed(client_for, plan, po):
    assert client_for(po).post(url(plan)).status_code == 405


# --- what it shows ----------------------------------------------------------------------------


def test_no_samples_yet_shows_a_helpful_empty_state(client_for, plan, po):
    response = client_for(po).get(url(plan))
    html = response.content.decode()
    assert 'data-testid="monitoring-empty"' in html
    assert "No samples yet — push them with the" in html
    upload = reverse("metrics:sample_upload", args=[plan.pk])
    assert f'<a href="{upload}">upload a CSV</a>' in html
    assert f'href="{reverse("metrics:checks", args=[plan.pk])}"' in html
    assert "<canvas" not in html
    data = page_data(response)
    # The plan's metrics are still listed, with their thresholds, ready for data.
    assert {m["key"] for m in data["metrics"]} == {
        "p1_defects", "p2_defects", "sessions", "csat", "error_rate", "p95_latency",
    }  # fmt: skip
    assert page_series(response) == {}
    assert "No check has run yet" in html


def test_stakeholders_are_not_offered_the_upload(client_for, plan, stakeholder):
    html = client_for(stakeholder).get(url(plan)).content.decode()
    assert "upload a CSV" in html
    assert reverse("metrics:sample_upload", args=[plan.pk]) not in html


def test_a_plan_without_dates_says_so(client_for, team, po):
    plan = running_plan(team=team, owner=po, start_date=timezone.now().date())
    PilotPlan.objects.filter(pk=plan.pk).update(start_date=None, end_date=None)
    response = client_for(po).get(url(plan))
    assert response.status_code == 200
    assert "The pilot has no dates yet" in response.content.decode()
    assert page_data(response)["start"] is None


def test_thresholds_of_criteria_and_triggers_are_in_the_json(client_for, small, po):
    data = page_data(client_for(po).get(url(small)))
    latency = chart(data, "p95_latency")
    assert {(t["kind"], t["value"]) for t in latency["thresholds"]} == {
        ("criterion", 300.0),
        ("trigger", 300.0),
    }
    labels = [t["label"] for t in latency["thresholds"]]
    assert "Exit criterion: p95 latency percentile 95 < 300 ms" in labels
    assert "Rollback: p95 latency > 300 ms for 30 minutes" in labels
    assert chart(data, "csat")["thresholds"] == [
        {"value": 4.2, "label": "Exit criterion: CSAT mean ≥ 4.2 / 5", "kind": "criterion"}
    ]
    # A rate per 1,000 sessions is not on the scale of P2 defects per hour: listed, not drawn.
    assert chart(data, "p2_defects")["thresholds"] == []
    assert chart(data, "p1_defects")["thresholds"] == [
        {"value": 0.0, "label": "Rollback: P1 defects > 0 (any occurrence)", "kind": "trigger"}
    ]


def test_gauges_chart_hourly_means_with_a_band_and_counts_hourly_sums(client_for, plan, po, now):
    hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=2)
    ids = dict(zip(METRICS, metric_ids(), strict=True))
    HourRollup.objects.bulk_create(
        [
            HourRollup(plan=plan, metric_id=ids["p95_latency"], bucket=hour, count=4, sum=1000.0,
                       sum_sq=0, min=200.0, max=310.0),
            HourRollup(plan=plan, metric_id=ids["p1_defects"], bucket=hour, count=3, sum=3.0,
                       sum_sq=3, min=1.0, max=1.0),
        ]
    )  # fmt: skip
    response = client_for(po).get(url(plan))
    data = page_data(response)
    assert chart(data, "p95_latency")["aggregate"] == "mean"
    latency = points(response, "p95_latency")
    assert latency["ms"] == [int(hour.timestamp() * 1000)]
    assert (latency["y"], latency["lo"], latency["hi"]) == ([250], [200], [310])
    assert chart(data, "p1_defects")["aggregate"] == "sum"
    defects = points(response, "p1_defects")
    assert defects["y"] == [3]
    assert defects["lo"] is None and defects["hi"] is None
    assert data["bucket"] == "hour" and data["step"] == 3_600_000
    html = response.content.decode()
    assert f'id="chart-{ids["p95_latency"]}"' in html
    assert "<noscript><p>Latest: 250 ms at" in html  # what a page without JavaScript says
    assert 'data-testid="monitoring-empty"' not in html


def test_other_metrics_with_data_get_a_chart_too(client_for, plan, po, now):
    fill_rollups(plan, days=1, end=now, keys=["errors"], minutes=False)
    data = page_data(client_for(po).get(url(plan)))
    assert [m["key"] for m in data["metrics"]][-1] == "errors"
    assert chart(data, "errors")["thresholds"] == []


def test_the_last_24_hours_read_samples_by_minute(client_for, small, po, now):
    response = client_for(po).get(url(small, Span.DAY))
    data = page_data(response)
    assert data["span"] == "24h" and data["bucket"] == "minute"
    latency = points(response, "p95_latency")
    assert 1439 <= len(latency["t"]) <= 1441
    assert latency["ms"][1] - latency["ms"][0] == 60_000
    assert data["end"] - data["start"] == 24 * 3600 * 1000
    assert 'aria-current="page">Last 24 h' in response.content.decode()


def test_the_whole_pilot_reads_hour_rollups_up_to_now(client_for, small, po, now):
    response = client_for(po).get(url(small))
    data = page_data(response)
    latency = points(response, "p95_latency")
    assert len(latency["t"]) == 2 * 24 + 1
    assert latency["ms"][1] - latency["ms"][0] == 3_600_000
    assert (
        latency["ms"][-1] == int(now.replace(minute=0, second=0, microsecond=0).timestamp()) * 1000
    )
    assert data["end"] == pytest.approx(now.timestamp() * 1000, abs=60_000)
    start = dt.datetime.combine(small.start_date, dt.time(0), tzinfo=dt.UTC)
    assert data["start"] < start.timestamp() * 1000  # local midnight in Berlin is before 00:00 UTC


def test_a_breach_episode_is_a_region_on_its_metric(client_for, plan, po, now):
    fill_rollups(plan, days=1, end=now, minutes=False)
    latency = trigger(plan, "p95_latency")
    started = now - dt.timedelta(hours=3)
    cleared = now - dt.timedelta(hours=1)
    TriggerEpisode.objects.create(
        plan=plan, trigger=latency, description="p95 latency above 300 ms for 30 minutes",
        breach_started_at=started, fired_at=started + dt.timedelta(minutes=30),
        cleared_at=cleared, resolved_at=now, value=321.0,
    )  # fmt: skip
    active_start = now - dt.timedelta(minutes=40)
    TriggerEpisode.objects.create(
        plan=plan, trigger=trigger(plan, "p1_defects"), description="Any P1 defect",
        breach_started_at=active_start, fired_at=active_start, value=1.0,
    )  # fmt: skip
    response = client_for(po).get(url(plan))
    data = page_data(response)
    assert chart(data, "p95_latency")["breaches"] == [
        {
            "start": int(started.timestamp() * 1000),
            "end": int(cleared.timestamp() * 1000),
            "active": False,
            "label": "p95 latency above 300 ms for 30 minutes",
        }
    ]
    [active] = chart(data, "p1_defects")["breaches"]
    assert active["active"] is True
    assert active["start"] == int(active_start.timestamp() * 1000)
    assert active["end"] == data["end"]  # still breaching: up to now
    html = response.content.decode()
    # Only the unresolved one is listed under today's status.
    assert "1 alert not resolved" in html
    assert "Any P1 defect — breaching since" in html


def test_an_episode_outside_the_range_is_not_drawn(client_for, plan, po, now):
    fill_rollups(plan, days=2, end=now)
    # Breaches 2 hours long, ending 6, 12, 18, … 48 hours ago; all resolved.
    fill_episodes(plan, count=8, end=now)
    TriggerEpisode.objects.filter(plan=plan).update(resolved_at=now)
    data = page_data(client_for(po).get(url(plan, Span.DAY)))
    ends = [b["end"] for b in chart(data, "p95_latency")["breaches"]]
    assert ends == [int((now - dt.timedelta(hours=h)).timestamp() * 1000) for h in (6, 12, 18)]
    data = page_data(client_for(po).get(url(plan)))
    assert len(chart(data, "p95_latency")["breaches"]) == 8


def test_todays_status_shows_the_latest_done_run_and_trigger_states(client_for, plan, po, now):
    older = CheckRun.objects.create(
        plan=plan, due_at=now - dt.timedelta(days=1), local_date=now.date(),
        local_time=dt.time(10), status="done", met=1, finished_at=now,
    )  # fmt: skip
    latest = CheckRun.objects.create(
        plan=plan, due_at=now - dt.timedelta(hours=2), local_date=now.date(),
        local_time=dt.time(16), status="done", late=True, not_met=1, finished_at=now,
    )  # fmt: skip
    CheckRun.objects.create(
        plan=plan, due_at=now - dt.timedelta(hours=1), local_date=now.date(),
        local_time=dt.time(17), status="missed",
    )  # fmt: skip
    CriterionResult.objects.create(
        run=older, position=1, label="CSAT mean ≥ 4.2", comparator="ge", threshold=4.2,
        value=4.5, verdict="met",
    )  # fmt: skip
    CriterionResult.objects.create(
        run=latest, position=1, label="CSAT mean ≥ 4.2", comparator="ge", threshold=4.2,
        value=3.91, low=3.7, high=4.1, sample_size=80, verdict="not_met",
        reason="The interval lies below the threshold.",
    )  # fmt: skip
    TriggerState.objects.create(
        trigger=trigger(plan, "p95_latency"), plan=plan, state="breaching",
        detail="12 of 30 minutes above 300 ms",
    )  # fmt: skip
    page = monitoring_page(plan=plan, now=now)
    assert page.latest is not None and page.latest.run == latest
    assert [r.verdict for r in page.latest.results] == ["not_met"]
    assert [r.run.status for r in page.runs] == ["missed", "done", "done"]
    states = {row.trigger.metric.key: row.state for row in page.triggers}
    assert states["p95_latency"].state == "breaching"
    assert states["p1_defects"] is None
    html = client_for(po).get(url(plan)).content.decode()
    assert "3.91" in html and "[3.7, 4.1]" in html and "n=80" in html
    assert "≥ 4.2" in html
    assert 'class="chip chip-verdict chip-verdict-not_met"' in html
    assert "12 of 30 minutes above 300 ms" in html
    assert "Not evaluated yet" in html
    assert "(late)" in html
    assert "Not run (the scheduler was down" in html


def test_todays_status_finds_a_done_run_older_than_the_history(plan, now):
    done = CheckRun.objects.create(
        plan=plan, due_at=now - dt.timedelta(days=7), local_date=now.date(),
        local_time=dt.time(10), status="done", met=1, finished_at=now,
    )  # fmt: skip
    CheckRun.objects.bulk_create(
        [
            CheckRun(plan=plan, due_at=now - dt.timedelta(hours=h), local_date=now.date(),
                     local_time=dt.time(10), status="missed")
            for h in range(1, 13)
        ]
    )  # fmt: skip
    page = monitoring_page(plan=plan, now=now)
    assert page.latest is not None and page.latest.run == done
    assert len(page.runs) == HISTORY_RUNS
    assert {row.run.status for row in page.runs} == {"missed"}


def test_links_to_the_plans_external_dashboards(client_for, plan, po):
    html = client_for(po).get(url(plan)).content.decode()
    assert 'href="https://dashboards.example.com/P-01"' in html
    assert ">P-01</a>" in html


def test_the_json_is_escaped_in_the_page(client_for, plan, po):
    TriggerEpisode.objects.create(
        plan=plan, trigger=trigger(plan, "p1_defects"), description="</script><b>x</b>",
        breach_started_at=timezone.now() - dt.timedelta(minutes=5),
    )  # fmt: skip
    RollbackTrigger.objects.filter(plan=plan, metric__key="p1_defects").update(
        description="</script><b>x</b>"
    )
    response = client_for(po).get(url(plan))
    html = response.content.decode()
    assert "</script><b>" not in html
    assert chart(page_data(response), "p1_defects")["breaches"][0]["label"] == "</script><b>x</b>"


# --- fast, whatever the amount of data --------------------------------------------------------


def test_a_guest_costs_one_more_query_and_no_more(client_for, small, po, django_assert_num_queries):
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=small, user=guest, invited_by=po)
    client = client_for(guest)
    client.get(url(small))
    with django_assert_num_queries(13):
        client.get(url(small))


def test_90_days_of_data_for_8_metrics_cost_no_more_queries_than_two_days(
    client_for, small, big, po, django_assert_num_queries
):
    """Speed itself is measured by ``make bench`` (monitoring_page_ms_p95), not here."""
    # 8 metrics × (90 days × 24 + 1) hours, and × (90 × 1440 + 1) per-minute samples.
    assert HourRollup.objects.filter(plan=big).count() == 8 * (90 * 24 + 1)
    assert Sample.objects.filter(plan=big).count() == 8 * (90 * 1440 + 1)
    client = client_for(po)
    for span in Span.CHOICES:
        client.get(url(small, span))
        with django_assert_num_queries(12) as baseline:
            client.get(url(small, span))
        with django_assert_num_queries(len(baseline.captured_queries)):
            response = client.get(url(big, span))
        assert len(page_data(response)["metrics"]) == 8
        series = page_series(response).values()
        assert len(series) == 8
        if span == Span.PILOT:
            assert all(len(s["t"]) == 90 * 24 + 1 for s in series)
        else:
            assert all(1439 <= len(s["t"]) <= 1441 for s in series)
        # The points arrive in time order (the series query relies on its sorted subquery).
        assert all(s["t"] == sorted(set(s["t"])) for s in series)
