"""The decision's evidence, loaded from the database: real samples, real check runs."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from catalogue.selectors import metric_by_key
from decisions.evidence import decision_evidence
from decisions.rules import Recommendation
from metrics.checks import check_run_execute
from metrics.ingest import samples_store
from metrics.models import CheckRun, TriggerEpisode
from metrics.statistics import Verdict
from pilots.models import EntryCriterion, ExitCriterion
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

START = dt.date(2026, 11, 2)  # a Monday
NOW = dt.datetime(2026, 11, 13, 12, tzinfo=dt.UTC)  # Friday of the second week: 10 days observed


def _plan(team, po, **fields):
    plan = running_plan(team=team, owner=po, start_date=START, **fields)
    EntryCriterion.objects.filter(plan=plan).update(
        status=EntryCriterion.Status.MET, confirmed_by=po, confirmed_at=NOW, evidence_note="Done."
    )
    return plan


def _push(plan, key: str, values: list[float], *, start: dt.datetime, step_minutes: int = 1):
    metric = metric_by_key(key=key, team_id=plan.team_id)
    rows = [
        (plan.pk, metric.pk, start + dt.timedelta(minutes=i * step_minutes), v, "test", "")
        for i, v in enumerate(values)
    ]
    samples_store(rows=rows)


def _check(plan, due_at: dt.datetime) -> CheckRun:
    local = due_at.astimezone(dt.UTC)
    run = CheckRun.objects.create(
        plan=plan, due_at=due_at, local_date=local.date(), local_time=local.time()
    )
    assert check_run_execute(run_id=run.pk)
    return run


def _healthy(plan):
    """Every template criterion comfortably met over the pilot so far."""
    begin = dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)
    _push(plan, "p1_defects", [0] * 5, start=begin, step_minutes=1440)
    _push(plan, "p2_defects", [0] * 5, start=begin, step_minutes=1440)
    _push(plan, "sessions", [2000] * 5, start=begin, step_minutes=1440)
    _push(plan, "csat", [4.6, 4.7, 4.5, 4.8] * 20, start=begin, step_minutes=60)
    _push(plan, "error_rate", [0.1, 0.2] * 60, start=begin, step_minutes=30)
    _push(plan, "p95_latency", [180.0 + (i % 40) for i in range(600)], start=begin)


def test_no_check_yet_is_not_yet_decidable_and_says_so(team, po):
    plan = _plan(team, po)

    evidence = decision_evidence(plan, now=NOW)

    assert evidence.result.recommendation == Recommendation.NOT_YET_DECIDABLE
    assert all(c.verdict == Verdict.NOT_ENOUGH_EVIDENCE for c in evidence.criteria)
    assert "No check has run yet" in " ".join(evidence.missing)
    assert evidence.business_days_observed == 10
    assert evidence.last_check_at is None


def test_every_blocking_criterion_met_recommends_go(team, po):
    plan = _plan(team, po)
    _healthy(plan)
    _check(plan, dt.datetime(2026, 11, 13, 10, tzinfo=dt.UTC))

    evidence = decision_evidence(plan, now=NOW)

    verdicts = {c.name: c.verdict for c in evidence.criteria}
    assert set(verdicts.values()) == {Verdict.MET}, verdicts
    assert evidence.result.recommendation == Recommendation.GO
    assert evidence.result.rule.name == "go"
    assert all(c.trend for c in evidence.criteria)
    assert [d.total for d in evidence.defects] == [0, 0, None]


def test_minimum_observation_period_holds_back_a_recommendation(team, po):
    plan = _plan(team, po, minimum_observation_days=12)
    _healthy(plan)
    _check(plan, dt.datetime(2026, 11, 13, 10, tzinfo=dt.UTC))

    result = decision_evidence(plan, now=NOW).result

    assert result.recommendation == Recommendation.NOT_YET_DECIDABLE
    assert result.words == "Not yet decidable: 10 of 12 business days observed"


def test_a_fired_unresolved_trigger_recommends_roll_back_and_comes_first(team, po):
    plan = _plan(team, po)
    _healthy(plan)
    _check(plan, dt.datetime(2026, 11, 13, 10, tzinfo=dt.UTC))
    latency = plan.rollback_triggers.get(position=2)
    TriggerEpisode.objects.create(
        plan=plan, trigger=latency, description="p95 latency > 300 ms for 30 minutes",
        breach_started_at=dt.datetime(2026, 11, 13, 9, 2, tzinfo=dt.UTC),
        fired_at=dt.datetime(2026, 11, 13, 9, 32, tzinfo=dt.UTC), value=412.0,
    )  # fmt: skip

    evidence = decision_evidence(plan, now=NOW)

    assert evidence.result.recommendation == Recommendation.ROLL_BACK
    assert "fired at Fri 13 Nov 2026, 09:32" in evidence.result.words
    assert evidence.triggers[0].trigger_id == latency.pk
    assert evidence.triggers[0].unresolved


def test_not_enough_evidence_says_how_much_more_would_decide_it(team, po):
    plan = _plan(team, po)
    begin = dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)
    # p95 latency: only 40 values (a 95th percentile interval needs more), well under 300 ms.
    _push(plan, "p95_latency", [200.0 + i for i in range(40)], start=begin)
    # P2 defects per 1,000 sessions: no defect in 600 sessions, threshold < 2 per 1,000.
    _push(plan, "p2_defects", [0], start=begin)
    _push(plan, "sessions", [600], start=begin)
    _check(plan, dt.datetime(2026, 11, 13, 10, tzinfo=dt.UTC))

    evidence = decision_evidence(plan, now=NOW)
    latency = next(c for c in evidence.criteria if c.name.startswith("p95"))
    rate = next(c for c in evidence.criteria if c.name.startswith("P2"))

    assert latency.verdict == Verdict.NOT_ENOUGH_EVIDENCE
    assert latency.more is not None and latency.more.more and latency.more.more > 0
    assert latency.more_words.startswith("needs about")
    assert "estimate that assumes the current rate holds" in latency.more_words
    assert rate.verdict == Verdict.NOT_ENOUGH_EVIDENCE
    assert "more sessions with no P2 defect" in rate.more_words
    assert evidence.result.recommendation == Recommendation.NOT_YET_DECIDABLE


def test_a_criterion_changed_since_its_check_is_not_judged_on_the_old_verdict(team, po):
    plan = _plan(team, po)
    _healthy(plan)
    _check(plan, dt.datetime(2026, 11, 13, 10, tzinfo=dt.UTC))
    ExitCriterion.objects.filter(plan=plan, position=3).update(threshold=4.9)

    evidence = decision_evidence(plan, now=NOW)

    csat = next(c for c in evidence.criteria if c.position == 3)
    assert csat.verdict == Verdict.NOT_ENOUGH_EVIDENCE
    assert "Changed since the check of Fri 13 Nov, 10:00" in csat.reason
    assert evidence.result.recommendation == Recommendation.NOT_YET_DECIDABLE


def test_snapshot_is_json_and_deterministic(team, po):
    plan = _plan(team, po)
    _healthy(plan)
    _check(plan, dt.datetime(2026, 11, 13, 10, tzinfo=dt.UTC))

    first = decision_evidence(plan, now=NOW).snapshot()
    second = decision_evidence(plan, now=NOW).snapshot()

    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["recommendation"]["value"] == "go"
    assert len(first["criteria"]) == 5
    assert first["criteria"][0]["verdict"] == "met"


@pytest.mark.parametrize("extra", [0, 6])
def test_query_count_is_constant(team, po, extra, django_assert_max_num_queries):
    plan = _plan(team, po)
    _healthy(plan)
    latency = metric_by_key(key="p95_latency", team_id=team.pk)
    for i in range(extra):  # more criteria, some of them percentiles without enough evidence
        ExitCriterion.objects.create(
            plan=plan, position=10 + i, metric=latency, aggregation="percentile",
            percentile=99.9, comparator="lt", threshold=300, unit="ms", min_sample_size=60,
        )  # fmt: skip
    for day in range(3 + extra):
        _check(plan, dt.datetime(2026, 11, 5 + day, 10, tzinfo=dt.UTC))
    TriggerEpisode.objects.create(
        plan=plan, trigger=plan.rollback_triggers.first(), description="P1 defects > 0",
        breach_started_at=NOW, fired_at=NOW, value=1,
    )  # fmt: skip

    # 13, plus one that reads the sample of every percentile without enough evidence at once.
    with django_assert_max_num_queries(14):
        decision_evidence(plan, now=NOW)
