"""My work: what waits for each person, by role and person rules, across teams; the page and the
home page's summary, with a fixed number of queries whatever the amount of work."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Team, User
from decisions.models import PostPilotReview, RollbackRun, RollbackStepRun
from decisions.my_work import my_work
from metrics.models import TriggerEpisode
from pilots.models import PilotPlan, SignOff
from pilots.services.plans import plan_create_from_template
from tests.factories import running_plan

pytestmark = pytest.mark.django_db


def _in_review(team: Team, po: User, title: str = "In review") -> PilotPlan:
    plan = plan_create_from_template(team=team, author=po, today=timezone.localdate())
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.IN_REVIEW, title=title)
    plan.refresh_from_db()
    return plan


def _work(team: Team, po: User, sm: User, devops: User) -> dict[str, PilotPlan]:
    """One plan of each kind of waiting work in ``team``."""
    reviewed = _in_review(team, po)
    SignOff.objects.create(plan=reviewed, kind="readiness", signed_by=sm, plan_version=1)
    start = timezone.localdate() - dt.timedelta(days=3)
    alarmed = running_plan(team=team, owner=po, start_date=start, title="Alarmed")
    TriggerEpisode.objects.create(
        plan=alarmed, description="Any P1 defect", breach_started_at=timezone.now()
    )
    evaluating = running_plan(team=team, owner=po, start_date=start, title="Evaluating")
    PilotPlan.objects.filter(pk=evaluating.pk).update(status=PilotPlan.Status.EVALUATING)
    rolling = running_plan(
        team=team, owner=po, start_date=start, title="Rolling back", rollback_executor=devops
    )
    run = RollbackRun.objects.create(plan=rolling, started_by=po)
    RollbackStepRun.objects.create(run=run, position=1, action="Turn the flag off")
    RollbackStepRun.objects.create(
        run=run, position=2, action="Tell support", status="done", done_by=devops,
        done_at=timezone.now(),
    )  # fmt: skip
    decided = running_plan(team=team, owner=po, start_date=start, title="Decided")
    PostPilotReview.objects.create(plan=decided, due_on=timezone.localdate())
    return {"reviewed": reviewed, "alarmed": alarmed, "evaluating": evaluating}


def _what(user: User) -> dict[str, list[str]]:
    return {g.key: [f"{t.what} | {t.plan.title}" for t in g.tasks] for g in my_work(user=user)}


def test_each_role_sees_what_it_may_act_on(
    team: Team, po: User, sm: User, developer: User, devops: User, stakeholder: User,
    outsider: User,
) -> None:  # fmt: skip
    _work(team, po, sm, devops)

    assert _what(po) == {
        "alerts": ["Acknowledge a fired rollback trigger | Alarmed"],
        "rollbacks": [],  # the checklist is DevOps's, and this plan's executor's
        "decisions": ["Record the go / iterate / roll-back decision | Evaluating"],
        "reviews": ["Sign the business review | In review"],
        "entry": ["Confirm the entry criteria | In review"],
        "post_pilot": ["Complete the post-pilot review | Decided"],
    }
    sm_work = _what(sm)
    assert sm_work["reviews"] == []  # the readiness review is signed
    assert sm_work["decisions"] == [] and sm_work["entry"] == []
    assert _what(developer)["reviews"] == ["Sign the feasibility review | In review"]
    ops = _what(devops)
    assert ops["rollbacks"] == ["Execute the rollback | Rolling back"]
    assert ops["entry"] == ["Confirm the entry criteria | In review"]  # DevOps may start pilots
    assert all(tasks == [] for tasks in _what(stakeholder).values())
    assert all(tasks == [] for tasks in _what(outsider).values())


def test_done_work_leaves_the_list(team: Team, po: User, sm: User, devops: User) -> None:
    plans = _work(team, po, sm, devops)
    SignOff.objects.create(plan=plans["reviewed"], kind="business", signed_by=po, plan_version=1)
    TriggerEpisode.objects.filter(plan=plans["alarmed"]).update(
        acknowledged_at=timezone.now(), acknowledged_by=po
    )
    PostPilotReview.objects.update(
        findings="F", went_well="W", to_improve="I", completed_at=timezone.now(), completed_by=po
    )
    work = _what(po)
    assert work["reviews"] == [] and work["alerts"] == [] and work["post_pilot"] == []


def test_the_page_lists_everything_with_its_link(
    client_for, team: Team, po: User, sm: User, devops: User
) -> None:  # type: ignore[no-untyped-def]
    plans = _work(team, po, sm, devops)
    page = client_for(po).get("/my-work")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-testid="task"') == 5
    assert f'href="/plans/{plans["evaluating"].pk}/decision"' in html
    assert f'href="/plans/{plans["alarmed"].pk}/alerts"' in html
    assert f'href="/plans/{plans["reviewed"].pk}/review"' in html


def test_the_home_page_loads_the_summary_on_top(
    client_for, team: Team, po: User, sm: User, devops: User
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    assert 'hx-get="/my-work/summary"' in client.get("/").content.decode()
    empty = client.get("/my-work/summary").content.decode()
    assert 'data-testid="my-work-empty"' in empty
    _work(team, po, sm, devops)
    summary = client.get("/my-work/summary").content.decode()
    assert 'data-testid="my-work-count">5<' in summary
    assert summary.count('data-testid="task"') == 5


def test_the_queries_do_not_grow_with_the_work(
    client_for, team: Team, po: User, sm: User, devops: User
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    client.get("/my-work")  # the session and the user, as every later request
    with CaptureQueriesContext(connection) as empty:
        assert client.get("/my-work").status_code == 200
    _work(team, po, sm, devops)
    _work(team, po, sm, devops)
    with CaptureQueriesContext(connection) as full:
        assert client.get("/my-work").status_code == 200
    # Session, user, memberships, one query per kind (the sign-offs only when a plan is in review).
    assert (len(empty), len(full)) == (9, 10), [q["sql"][:80] for q in full]


def test_anonymous_visitors_are_sent_to_log_in(client) -> None:  # type: ignore[no-untyped-def]
    for url in ("/my-work", "/my-work/summary"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
