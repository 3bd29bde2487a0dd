"""Defects logged in the backlog against a running pilot count towards its P1 / P2 / P3 defect
metrics at once, and are re-counted on every change (decisions.defects)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from backlog.exchange import backlog_csv_import
from backlog.models import BacklogItem
from backlog.services import (
    backlog_item_create,
    backlog_item_delete,
    backlog_item_update,
    backlog_items_status_set,
)
from catalogue.models import MetricDefinition
from decisions.defects import defect_samples_sync
from decisions.evidence import decision_evidence
from metrics.evaluation import window_moments
from metrics.models import Sample
from pilots.models import PilotPlan
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

Kind, Status = BacklogItem.Kind, BacklogItem.Status


@pytest.fixture
def plan(team, po) -> PilotPlan:
    start = timezone.now().date() - dt.timedelta(days=3)  # the plan's zone is UTC
    return running_plan(team=team, owner=po, start_date=start, business_days=20)


def counts(plan: PilotPlan) -> dict[str, int]:
    """The defect metrics' totals over the pilot so far, as checks read them (the rollups)."""
    ids = dict(
        MetricDefinition.objects.filter(
            team=None, key__in=["p1_defects", "p2_defects", "p3_defects"]
        ).values_list("pk", "key")
    )
    start = timezone.now() - dt.timedelta(days=10)
    moments = window_moments(
        plan_id=plan.pk, metric_ids=list(ids), start=start, end=timezone.now() + dt.timedelta(1)
    )
    totals = {key: 0 for key in ids.values()}
    totals.update({ids[pk]: round(m.total) for pk, m in moments.items()})
    return {key.split("_")[0]: n for key, n in totals.items()}


def defect(plan, user, severity="p1", **kw) -> BacklogItem:
    return backlog_item_create(
        team_id=plan.team_id, user=user, title=f"Crash {severity}", kind=Kind.DEFECT,
        severity=severity, plan=plan, **kw,
    )  # fmt: skip


def test_a_defect_counts_the_moment_it_is_saved(plan, po):
    defect(plan, po, "p1")
    defect(plan, po, "p2")
    defect(plan, po, "p2")
    assert counts(plan) == {"p1": 1, "p2": 2, "p3": 0}
    # The decision page's defect counts read the same rollups.
    shown = {d.severity: d.total for d in decision_evidence(plan).defects}
    assert shown == {"P1": 1, "P2": 2, "P3": None}  # no P3 ever reported: no data, not 0


def test_a_severity_change_moves_the_count(plan, po):
    item = defect(plan, po, "p1")
    backlog_item_update(
        team_id=plan.team_id, item_id=item.pk, user=po, expected_version=1,
        values={"severity": "p3"},
    )  # fmt: skip
    assert counts(plan) == {"p1": 0, "p2": 0, "p3": 1}
    backlog_item_update(
        team_id=plan.team_id, item_id=item.pk, user=po, expected_version=2,
        values={"kind": Kind.STORY, "severity": ""},
    )  # fmt: skip
    assert counts(plan) == {"p1": 0, "p2": 0, "p3": 0}


def test_deleting_a_defect_uncounts_it(plan, po):
    kept, gone = defect(plan, po, "p1"), defect(plan, po, "p1")
    backlog_item_delete(team_id=plan.team_id, item_id=gone.pk, user=po)
    assert counts(plan)["p1"] == 1
    assert list(Sample.objects.filter(plan=plan).values_list("external_id", flat=True)) == [
        f"backlog:{kept.pk}:p1"
    ]


def test_wont_do_stops_counting_and_done_still_counts(plan, po):
    a, b = defect(plan, po, "p2"), defect(plan, po, "p2")
    backlog_items_status_set(team_id=plan.team_id, item_ids=[a.pk], user=po, status=Status.DONE)
    assert counts(plan)["p2"] == 2  # fixed, but it was found in the pilot
    backlog_items_status_set(
        team_id=plan.team_id, item_ids=[a.pk, b.pk], user=po, status=Status.WONT_DO
    )
    assert counts(plan)["p2"] == 0
    backlog_items_status_set(team_id=plan.team_id, item_ids=[b.pk], user=po, status=Status.NEW)
    assert counts(plan)["p2"] == 1


def test_a_csv_import_counts_its_defects(plan, po):
    text = (
        "title,type,severity,plan\r\n"
        f"Login fails,defect,P1,{plan.pk}\r\n"
        f"Typo,defect,P3,{plan.pk}\r\n"
        "Not in a pilot,defect,P1,\r\n"
    )
    backlog_csv_import(team_id=plan.team_id, user=po, text=text)
    assert counts(plan) == {"p1": 1, "p2": 0, "p3": 1}
    reference = BacklogItem.objects.get(title="Login fails").reference
    text = f"reference,title,type,severity,plan\r\n{reference},Login fails,defect,P2,{plan.pk}\r\n"
    backlog_csv_import(team_id=plan.team_id, user=po, text=text)
    assert counts(plan) == {"p1": 0, "p2": 1, "p3": 1}


def test_p4_stories_and_plans_not_running_do_not_count(plan, po, team):
    defect(plan, po, "p4")
    backlog_item_create(team_id=team.pk, user=po, title="A story", plan=plan)
    draft = running_plan(team=team, owner=po, start_date=timezone.now().date(), template=False)
    PilotPlan.objects.filter(pk=draft.pk).update(status=PilotPlan.Status.DRAFT)
    defect(draft, po, "p1")
    assert counts(plan) == {"p1": 0, "p2": 0, "p3": 0}
    assert not Sample.objects.filter(plan=draft).exists()


def test_the_sync_is_idempotent(plan, po):
    defect(plan, po, "p1")
    defect_samples_sync(plan_ids=[plan.pk])
    defect_samples_sync(plan_ids=[plan.pk])
    assert Sample.objects.filter(plan=plan).count() == 1
    assert counts(plan)["p1"] == 1


def test_a_refused_save_counts_nothing(plan, po):
    with pytest.raises(Exception):  # noqa: B017 - the severity rule refuses it
        backlog_item_create(
            team_id=plan.team_id, user=po, title="No severity", kind=Kind.DEFECT, plan=plan
        )
    assert not Sample.objects.filter(plan=plan).exists()
