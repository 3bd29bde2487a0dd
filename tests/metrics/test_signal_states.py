"""Honest signal states (issue #10, finding 3): a rollback trigger is OK only on fresh data.

Without any sample it is "no data" (after a grace period from the start of the pilot), on data
older than its metric's expected interval it is "stale"; the owner hears of each such episode
once; the plan's banner, the alerts page, the monitoring page, the portfolio and the daily digest
show it. A count criterion never reported is "not enough evidence", not met.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Notification
from catalogue.models import MetricDefinition
from metrics import checks, evaluation, triggers
from metrics.ingest import samples_store
from metrics.models import CheckRun, SignalEpisode, TriggerState
from metrics.statistics import Verdict
from pilots.models import ExitCriterion, PilotPlan, RollbackTrigger
from tests.factories import running_plan
from tests.metrics.test_checks_support import store

pytestmark = pytest.mark.django_db

UTC = dt.UTC
DAY = dt.date(2026, 3, 2)  # a Monday; the pilot's window starts at 00:00 UTC
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = dt.timedelta(minutes=1)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def plan(team, po, devops) -> PilotPlan:  # type: ignore[no-untyped-def]
    """Running since DAY with the template's triggers: any P1 defect (a count, reported daily)
    and p95 latency > 300 ms for 30 minutes (a per-minute gauge)."""
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


def evaluate(plan: PilotPlan, now: dt.datetime) -> None:
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=now)


def state(plan: PilotPlan, key: str) -> TriggerState:
    return TriggerState.objects.get(trigger__plan=plan, trigger__metric__key=key)


def told(kind: str = Notification.Kind.SIGNAL_MISSING) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind).order_by("pk"))


# --- the states ---------------------------------------------------------------------------------


def test_any_p1_defect_without_a_single_sample_is_no_data_never_ok(plan):
    evaluate(plan, T0)

    s = state(plan, "p1_defects")
    assert s.state == TriggerState.State.NO_DATA
    assert s.detail == "No data: no sample received since the pilot started (00:00)."


def test_a_reported_zero_makes_any_p1_defect_ok(plan):
    store(plan, "p1_defects", [(T0 - MINUTE, 0)])
    store(plan, "p95_latency", [(T0 - MINUTE, 200)])

    evaluate(plan, T0)

    assert state(plan, "p1_defects").state == TriggerState.State.OK
    assert state(plan, "p95_latency").state == TriggerState.State.OK
    assert not SignalEpisode.objects.exists()


def test_no_data_within_the_grace_period_waits_quietly(plan, settings):
    settings.TRIGGER_NO_DATA_GRACE_MINUTES = 30
    start = dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC)

    evaluate(plan, start + 29 * MINUTE)
    s = state(plan, "p1_defects")
    assert s.state == TriggerState.State.NO_DATA
    assert s.detail == "No data yet: waiting for the first sample until 00:30."
    assert not SignalEpisode.objects.exists() and not told()

    evaluate(plan, start + 30 * MINUTE)
    assert SignalEpisode.objects.filter(kind="no_data").count() == 2  # both triggers
    assert len(told()) == 2


def test_data_two_days_old_is_stale_not_green(plan):
    two_days_ago = T0 - dt.timedelta(days=2)
    store(plan, "p1_defects", [(two_days_ago, 0)])
    store(plan, "p95_latency", [(two_days_ago + i * MINUTE, 200) for i in range(30)])

    evaluate(plan, T0)

    p1, latency = state(plan, "p1_defects"), state(plan, "p95_latency")
    assert p1.state == latency.state == TriggerState.State.STALE
    assert p1.detail == (
        "Stale: the newest data is from Sat 28 Feb, 12:00, older than the expected interval of "
        "1 day."
    )
    assert "expected interval of 5 minutes" in latency.detail


def test_the_expected_interval_is_the_metrics(plan):
    """p95 latency is expected every 5 minutes: 5 minutes old is fresh, 6 is stale."""
    store(plan, "p1_defects", [(T0, 0)])
    store(plan, "p95_latency", [(T0, 200)])

    evaluate(plan, T0 + 5 * MINUTE)
    assert state(plan, "p95_latency").state == TriggerState.State.OK
    evaluate(plan, T0 + 6 * MINUTE)
    assert state(plan, "p95_latency").state == TriggerState.State.STALE


def test_a_fired_trigger_stays_fired_when_its_data_goes_stale(plan):
    store(plan, "p1_defects", [(T0, 1)])
    evaluate(plan, T0 + MINUTE)
    assert state(plan, "p1_defects").state == TriggerState.State.FIRED

    evaluate(plan, T0 + dt.timedelta(days=2))
    assert state(plan, "p1_defects").state == TriggerState.State.FIRED
    assert not SignalEpisode.objects.filter(trigger__metric__key="p1_defects").exists()


# --- telling the owner, once per episode ----------------------------------------------------------


def test_the_owner_is_told_once_per_episode(plan, po, devops):
    po.email_notifications = True
    po.save(update_fields=["email_notifications"])
    store(plan, "p1_defects", [(T0, 0)])
    store(plan, "p95_latency", [(T0, 200)])

    for minutes in (10, 11, 12, 30):  # the latency data goes stale and stays stale
        evaluate(plan, T0 + minutes * MINUTE)

    [notification] = told()
    assert notification.user == po  # the owner, not the rollback executor
    assert notification.url == f"/plans/{plan.pk}/"
    assert notification.email_state == Notification.EmailState.PENDING
    assert notification.message.startswith(
        "Rollback trigger “p95 latency > 300 ms for 30 minutes” on "
        f"“{plan.title}” cannot judge. Stale: the newest data is from 12:00"
    )
    [episode] = SignalEpisode.objects.all()
    assert (episode.kind, episode.ended_at) == ("stale", None)

    # Fresh data ends the episode; the next gap is a new one, told again.
    store(plan, "p95_latency", [(T0 + 31 * MINUTE, 200)])
    evaluate(plan, T0 + 32 * MINUTE)
    episode.refresh_from_db()
    assert episode.ended_at == T0 + 32 * MINUTE
    evaluate(plan, T0 + 40 * MINUTE)
    assert len(told()) == 2
    assert SignalEpisode.objects.filter(ended_at__isnull=True).count() == 1


def test_the_tick_and_an_ingestion_evaluating_together_tell_once(plan):
    """The one-open-episode index: a second evaluation of the same state inserts nothing."""
    triggers.triggers_evaluate_running(now=T0)
    triggers.triggers_evaluate_plan(plan_id=plan.pk, now=T0 + MINUTE)
    triggers.triggers_evaluate_running(now=T0 + 2 * MINUTE)

    assert SignalEpisode.objects.count() == 2
    assert len(told()) == 2


def test_episodes_end_when_the_pilot_stops_running(plan):
    evaluate(plan, T0)
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.EVALUATING)

    assert triggers.signal_episodes_end_not_running(now=T0 + MINUTE) == 2
    assert not SignalEpisode.objects.filter(ended_at__isnull=True).exists()


# --- where it shows -------------------------------------------------------------------------------


def test_the_plan_banner_shows_triggers_without_fresh_data(client_for, plan, po):
    evaluate(plan, T0)

    html = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()

    assert 'data-testid="signal-banner"' in html
    assert "Rollback triggers without fresh data" in html
    assert "P1 defects &gt; 0 (any occurrence)" in html
    assert "No data: no sample received since the pilot started (00:00)." in html


def test_the_banner_partial_and_alerts_page_show_it_too(client_for, plan, developer):
    store(plan, "p1_defects", [(T0, 0)])
    store(plan, "p95_latency", [(T0, 200)])
    evaluate(plan, T0 + 20 * MINUTE)
    client = client_for(developer)

    banner = client.get(reverse("metrics:alerts_banner", args=[plan.pk]), **HTMX)
    page = client.get(reverse("metrics:alerts", args=[plan.pk]))

    for html in (banner.content.decode(), page.content.decode()):
        assert 'data-kind="stale"' in html
        assert "Stale: the newest data is from 12:00" in html


def test_the_banner_is_not_shown_to_outsiders(client_for, plan, outsider):
    evaluate(plan, T0)
    response = client_for(outsider).get(reverse("metrics:alerts_banner", args=[plan.pk]), **HTMX)
    assert response.status_code == 404


def test_the_monitoring_page_shows_the_state(client_for, plan, po):
    evaluate(plan, T0)
    html = client_for(po).get(reverse("metrics:monitoring", args=[plan.pk])).content.decode()
    assert "chip-trigger-no_data" in html
    assert "No data: no sample received since the pilot started (00:00)." in html


def test_the_portfolio_marks_triggers_without_fresh_data_in_constant_queries(
    client_for, team, po, plan, django_assert_num_queries
):
    client = client_for(po)
    url = reverse("decisions:portfolio")
    client.get(url)
    with django_assert_num_queries(20, exact=False) as quiet:
        html = client.get(url).content.decode()
    assert 'data-testid="signal-marker"' not in html

    evaluate(plan, T0)
    running_plan(team=team, owner=po, start_date=DAY)  # one more row: the count stays
    with django_assert_num_queries(len(quiet.captured_queries)):
        html = client.get(url).content.decode()
    assert "2 without fresh data" in html


def test_the_digest_names_the_triggers_without_fresh_data(plan, po):
    store(plan, "p95_latency", [(T0, 200)])
    evaluate(plan, T0)  # P1 defects: no data
    run = CheckRun.objects.create(
        plan=plan, due_at=T0 + 4 * 60 * MINUTE, local_date=DAY, local_time=dt.time(16)
    )
    assert checks.check_run_execute(run_id=run.pk)

    digest = Notification.objects.get(user=po, kind=Notification.Kind.DAILY_DIGEST)
    assert "Triggers without fresh data: P1 defects > 0 (any occurrence) (no data)." in (
        digest.message
    )


# --- criteria: a count never reported is not evidence ---------------------------------------------


def _criterion(plan: PilotPlan, **fields: object) -> ExitCriterion:
    criterion = ExitCriterion.objects.create(plan=plan, position=99, **fields)
    return ExitCriterion.objects.select_related("metric", "denominator").get(pk=criterion.pk)


def _metric(key: str) -> MetricDefinition:
    return MetricDefinition.objects.get(team=None, key=key)


def test_a_zero_tolerance_count_without_any_report_is_not_enough_evidence(plan):
    """Even with no minimum sample size: no report is not "0 P1 defects"."""
    criterion = _criterion(
        plan, metric=_metric("p1_defects"), aggregation="total", comparator="eq",
        threshold=Decimal("0"), unit="defects", min_sample_size=0,
    )  # fmt: skip
    window = (T0 - dt.timedelta(hours=12), T0)

    before = evaluation.criterion_result(
        criterion=criterion, plan_id=plan.pk, start=window[0], end=window[1]
    )
    assert before.verdict == Verdict.NOT_ENOUGH_EVIDENCE
    assert before.reason == "Total P1 defects: no data yet in the window."

    store(plan, "p1_defects", [(T0 - MINUTE, 0)])  # a pushed 0 counts
    after = evaluation.criterion_result(
        criterion=criterion, plan_id=plan.pk, start=window[0], end=window[1]
    )
    assert after.verdict == Verdict.MET


def test_a_rate_whose_events_were_never_reported_is_not_enough_evidence(plan):
    criterion = _criterion(
        plan, metric=_metric("p2_defects"), aggregation="rate_per", comparator="lt",
        threshold=Decimal("2"), denominator=_metric("sessions"), per_n=1000, min_sample_size=0,
    )  # fmt: skip
    store(plan, "sessions", [(T0 - MINUTE, 5000)])

    outcome = evaluation.criterion_result(
        criterion=criterion, plan_id=plan.pk, start=T0 - dt.timedelta(hours=1), end=T0
    )

    assert outcome.verdict == Verdict.NOT_ENOUGH_EVIDENCE
    assert outcome.reason == "P2 defects: no data yet in the window (a reported 0 counts)."


# --- the metric's expected interval in the catalogue -------------------------------------------


def test_the_catalogue_form_sets_the_expected_interval(client_for, team, developer):
    response = client_for(developer).post(
        reverse("catalogue:metric_add", args=[team.pk]),
        {"key": "basket_adds", "name": "Basket adds", "kind": "count", "direction": "higher",
         "expected_interval_minutes": "15"},
        **HTMX,
    )  # fmt: skip
    assert response.status_code == 200
    assert MetricDefinition.objects.get(key="basket_adds").expected_interval_minutes == 15
    assert "15 minutes" in response.content.decode()


def test_an_expected_interval_of_zero_is_refused_naming_the_field(client_for, team, developer):
    response = client_for(developer).post(
        reverse("catalogue:metric_add", args=[team.pk]),
        {"key": "basket_adds", "name": "Basket adds", "kind": "count", "direction": "higher",
         "expected_interval_minutes": "0"},
        **HTMX,
    )  # fmt: skip
    assert response.status_code == 422
    assert "Expected interval (minutes)" in response.content.decode()
    assert "greater than or equal to 1" in response.content.decode()
    assert not MetricDefinition.objects.filter(key="basket_adds").exists()


def test_a_new_metric_without_an_interval_gets_its_kinds_default(client_for, team, developer):
    client_for(developer).post(
        reverse("catalogue:metric_add", args=[team.pk]),
        {"key": "checkout_ms", "name": "Checkout time", "kind": "gauge", "direction": "lower"},
    )
    assert MetricDefinition.objects.get(key="checkout_ms").expected_interval_minutes == 5


def test_triggers_of_a_team_metric_use_its_interval(plan, team):
    daily = MetricDefinition.objects.create(
        team=team, key="refunds", name="Refunds", kind="count", direction="lower",
        expected_interval_minutes=1440,
    )  # fmt: skip
    RollbackTrigger.objects.create(
        plan=plan, position=3, metric=daily, comparator="gt", threshold=Decimal("5"), mode="any"
    )
    samples_store(rows=[(plan.pk, daily.pk, T0 - dt.timedelta(hours=20), 1, "test", "")])

    evaluate(plan, T0)

    assert state(plan, "refunds").state == TriggerState.State.OK
