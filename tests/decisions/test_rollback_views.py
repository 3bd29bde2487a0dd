"""The rollback checklist's pages: the checklist (plain and HTMX), the emergency start's
confirmation, ending, the entry points (red banner, alerts and monitoring pages, plan panel),
every refusal (403 with words, 404 for outsiders) and query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from decisions.models import RollbackRun, RollbackStepRun
from decisions.services.rollback import rollback_start
from pilots.models import PilotPlan, RollbackStep
from tests.decisions.test_rollback import DAY, decision, fire, mark, minute, state, steps
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
Status = RollbackStepRun.Status


def url(name: str, *args: int) -> str:
    return reverse(f"decisions:{name}", args=args)


@pytest.fixture
def plan(team, po, devops) -> PilotPlan:
    """Running, from the template (three rollback steps); the DevOps engineer executes."""
    return running_plan(team=team, owner=po, start_date=DAY, rollback_executor=devops)


@pytest.fixture
def run(plan, devops) -> RollbackRun:
    return rollback_start(plan=plan, user=devops, episode=fire(plan))


def mark_post(client, plan, step, status, note="", version=None, **extra):
    step.refresh_from_db()
    data = {"status": status, "note": note, "version": step.version if version is None else version}
    return client.post(url("rollback_step_mark", plan.pk, step.pk), data, **extra)


# --- the checklist page ---------------------------------------------------------------------------


def test_the_checklist_shows_steps_communication_plan_and_verification(
    client_for, plan, run, devops
):
    minute(plan, 210.0)
    state(plan, "ok")
    body = client_for(devops).get(url("rollback", plan.pk)).content.decode()

    assert body.count('data-testid="rollback-step"') == 4
    assert "Switch the saved-cards feature flag off for the cohort" in body
    assert "Post in #pilot-saved-cards" in body  # the communication plan beside it
    assert 'data-testid="verification" data-verdict="recovered"' in body
    assert "Recovered: “p95 latency &gt; 300 ms for 30 minutes” is OK" in body
    assert body.count('data-testid="mark-form"') == 4
    assert "Recovered — mark done" in body
    assert 'data-testid="end-form"' in body
    assert "Emergency rollback" in body and "Not done yet" in body  # status in words


def test_the_product_owner_watches_without_forms(client_for, plan, run, po, stakeholder):
    for user in (po, stakeholder):
        body = client_for(user).get(url("rollback", plan.pk)).content.decode()
        assert body.count('data-testid="rollback-step"') == 4
        assert 'data-testid="mark-form"' not in body and 'data-testid="end-form"' not in body
        assert "(the rollback executor) works it" in body


def test_no_rollback_yet_is_an_empty_state(client_for, plan, po):
    body = client_for(po).get(url("rollback", plan.pk)).content.decode()
    assert 'data-testid="no-rollback"' in body


def test_a_plan_without_steps_shows_a_warning(client_for, plan, devops):
    RollbackStep.objects.filter(plan=plan).delete()
    rollback_start(plan=plan, user=devops, episode=fire(plan))
    body = client_for(devops).get(url("rollback", plan.pk)).content.decode()
    assert 'data-testid="no-steps-warning"' in body
    assert body.count('data-testid="rollback-step"') == 1


def test_outsiders_get_404_everywhere(client_for, plan, run, outsider):
    client = client_for(outsider)
    step = steps(run)[0]
    assert client.get(url("rollback", plan.pk)).status_code == 404
    assert mark_post(client, plan, step, "done").status_code == 404
    assert client.post(url("rollback_end", plan.pk, run.pk)).status_code == 404
    start = url("rollback_start", plan.pk) + f"?episode={run.episode_id}"
    assert client.get(start).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, plan, run):
    response = client.get(url("rollback", plan.pk))
    assert response.status_code == 302 and "/login" in response.url


def test_earlier_runs_are_listed_below(client_for, plan, run, devops, po):
    for step in steps(run):
        mark(step, devops, "done")
    from decisions.services.rollback import rollback_end

    rollback_end(run=run, user=devops)
    PilotPlan.objects.filter(pk=plan.pk).update(status="evaluating")
    rollback_start(plan=plan, user=po, episode=run.episode)
    body = client_for(po).get(url("rollback", plan.pk)).content.decode()
    assert body.count('data-testid="earlier-run"') == 1
    assert 'data-testid="run-state"' in body and "In progress" in body


# --- marking ------------------------------------------------------------------------------------


def test_marking_without_javascript_redirects_back(client_for, plan, run, devops):
    step = steps(run)[0]
    response = mark_post(client_for(devops), plan, step, "done")
    assert response.status_code == 302
    assert response.url == url("rollback", plan.pk) + f"#step-{step.pk}"
    step.refresh_from_db()
    assert step.status == Status.DONE and step.done_by == devops


def test_marking_with_htmx_swaps_the_one_step(client_for, plan, run, devops):
    step = steps(run)[1]
    response = mark_post(client_for(devops), plan, step, "skipped", "Not deployed yet", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.strip().startswith(f'<li id="step-{step.pk}"')
    assert 'data-status="skipped"' in body and "Not deployed yet" in body
    assert 'data-testid="undo-open"' in body


def test_the_verification_step_partial_shows_its_evidence(client_for, plan, run, devops):
    state(plan, "fired")
    minute(plan, 480.0)
    verify = steps(run)[-1]
    response = mark_post(
        client_for(devops), plan, verify, "failed", "Still slow", **HTMX
    ).content.decode()
    assert 'data-verdict="not_recovered"' in response and "Still breached" in response


@pytest.mark.parametrize("htmx", [False, True])
def test_a_skip_without_reason_is_a_422_with_the_words(client_for, plan, run, devops, htmx):
    step = steps(run)[0]
    response = mark_post(client_for(devops), plan, step, "skipped", "", **(HTMX if htmx else {}))
    assert response.status_code == 422
    assert "Say why the step is skipped." in response.content.decode()
    step.refresh_from_db()
    assert step.status == Status.PENDING


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_form_is_a_409_with_the_other_persons_mark(
    client_for, plan, run, devops, developer, htmx
):
    step = steps(run)[0]
    seen = step.version
    PilotPlan.objects.filter(pk=plan.pk).update(rollback_executor=developer)
    mark(step, developer, "failed", "Flag service down")
    response = mark_post(
        client_for(devops), plan, step, "done", version=seen, **(HTMX if htmx else {})
    )
    body = response.content.decode()
    assert response.status_code == 409
    assert f"{developer.display_name} marked it “Failed”" in body and "Flag service down" in body


@pytest.mark.parametrize("who", ["po", "developer", "sm", "stakeholder"])
def test_members_other_than_the_executor_or_devops_may_not_mark(
    client_for, plan, run, who, request
):
    user = request.getfixturevalue(who)
    step = steps(run)[0]
    for extra in ({}, HTMX):
        response = mark_post(client_for(user), plan, step, "done", **extra)
        assert response.status_code == 403
    step.refresh_from_db()
    assert step.status == Status.PENDING


# --- ending ---------------------------------------------------------------------------------------


def test_ending_with_steps_left_is_refused_and_lists_them(client_for, plan, run, devops):
    response = client_for(devops).post(url("rollback_end", plan.pk, run.pk))
    body = response.content.decode()
    assert response.status_code == 409
    assert 'data-testid="end-error"' in body and "Not done yet: 1. Switch" in body


def test_ending_when_every_step_is_marked(client_for, plan, run, devops):
    for step in steps(run):
        mark(step, devops, "done")
    response = client_for(devops).post(url("rollback_end", plan.pk, run.pk))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.ended_by == devops
    body = client_for(devops).get(url("rollback", plan.pk)).content.decode()
    assert "Ended" in body and 'data-testid="mark-form"' not in body


@pytest.mark.parametrize("who", ["po", "developer"])
def test_others_may_not_end(client_for, plan, run, devops, who, request):
    for step in steps(run):
        mark(step, devops, "done")
    response = client_for(request.getfixturevalue(who)).post(url("rollback_end", plan.pk, run.pk))
    assert response.status_code == 403
    run.refresh_from_db()
    assert run.ended_at is None


# --- the emergency start ------------------------------------------------------------------------


def test_the_start_page_says_what_happens_and_who_is_told(
    client_for, plan, po, devops, developer, sm
):
    episode = fire(plan)
    response = client_for(po).get(url("rollback_start", plan.pk) + f"?episode={episode.pk}")
    body = response.content.decode()
    assert response.status_code == 200
    assert "3 rollback steps" in body and "verify the triggering metric recovered" in body
    for person in (po, devops, developer, sm):
        assert person.display_name in body
    assert not RollbackRun.objects.exists()  # GET starts nothing


def test_posting_starts_the_emergency_rollback(client_for, plan, devops):
    episode = fire(plan)
    response = client_for(devops).post(url("rollback_start", plan.pk), {"episode": episode.pk})
    assert response.status_code == 302 and response.url == url("rollback", plan.pk)
    run = RollbackRun.objects.get()
    assert run.emergency and run.episode == episode and run.started_by == devops


def test_starting_twice_is_a_409(client_for, plan, run, devops):
    response = client_for(devops).post(url("rollback_start", plan.pk), {"episode": run.episode_id})
    assert response.status_code == 409
    assert "already in progress" in response.content.decode()


def test_a_missing_or_foreign_episode_is_404(client_for, plan, team, po, devops):
    client = client_for(devops)
    assert client.get(url("rollback_start", plan.pk)).status_code == 404
    assert client.get(url("rollback_start", plan.pk) + "?episode=x").status_code == 404
    other = running_plan(team=team, owner=po, start_date=plan.start_date)
    foreign = fire(other, other.rollback_triggers.get(metric__key="p95_latency"))
    assert client.get(url("rollback_start", plan.pk) + f"?episode={foreign.pk}").status_code == 404


@pytest.mark.parametrize("who", ["developer", "sm", "stakeholder"])
def test_members_who_may_not_start_get_403(client_for, plan, who, request):
    episode = fire(plan)
    client = client_for(request.getfixturevalue(who))
    assert client.get(url("rollback_start", plan.pk) + f"?episode={episode.pk}").status_code == 403
    assert client.post(url("rollback_start", plan.pk), {"episode": episode.pk}).status_code == 403
    assert not RollbackRun.objects.exists()


# --- entry points ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "shown"),
    [("po", True), ("devops", True), ("developer", False), ("stakeholder", False)],
)
def test_the_banner_offers_an_emergency_rollback_to_those_allowed(
    client_for, plan, who, shown, request
):
    episode = fire(plan)
    client = client_for(request.getfixturevalue(who))
    link = f"{url('rollback_start', plan.pk)}?episode={episode.pk}"
    for page in (
        reverse("pilots:plan_document", args=[plan.pk]),
        reverse("metrics:alerts", args=[plan.pk]),
        reverse("metrics:monitoring", args=[plan.pk]),
    ):
        body = client.get(page).content.decode()
        assert (link in body) is shown, page


def test_the_plan_page_shows_a_rollback_in_progress(client_for, plan, run, developer, devops):
    body = client_for(developer).get(reverse("pilots:plan_document", args=[plan.pk])).content
    assert b'data-testid="rollback-panel"' in body and b"0 of 4 steps marked" in body
    for step in steps(run):
        mark(step, devops, "done")
    from decisions.services.rollback import rollback_end

    rollback_end(run=run, user=devops)
    body = client_for(developer).get(reverse("pilots:plan_document", args=[plan.pk])).content
    assert b'data-testid="rollback-panel"' not in body


def test_the_decision_rollback_page(client_for, plan, po, devops):
    rollback_start(plan=plan, user=po, decision=decision(plan, po))
    body = client_for(devops).get(url("rollback", plan.pk)).content.decode()
    assert "Carries out the Roll back decision" in body
    assert "No rollback trigger fired" in body


# --- query counts ---------------------------------------------------------------------------------


def test_the_checklist_page_query_count_does_not_grow_with_steps(
    client_for, plan, devops, django_assert_num_queries
):
    run = rollback_start(plan=plan, user=devops, episode=fire(plan))
    client = client_for(devops)
    page = url("rollback", plan.pk)
    client.get(page)
    with django_assert_num_queries(20, exact=False) as few:
        client.get(page)
    for i in range(5, 25):
        RollbackStepRun.objects.create(run=run, position=i, action=f"More {i}")
    mark(steps(run)[0], devops, "done")
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(page)
    assert response.content.decode().count('data-testid="rollback-step"') == 24


def test_the_step_partial_query_count(client_for, plan, run, devops, django_assert_num_queries):
    client = client_for(devops)
    step = steps(run)[0]
    # Session, user, plan, role; the step; the locked step, role, update; the step and run
    # again for the partial (and pghistory's context).
    with django_assert_num_queries(14, exact=False):
        response = mark_post(client, plan, step, "done", **HTMX)
    assert response.status_code == 200
