"""The post-pilot review page and the plan page's panel: who sees a form, who reads, who is
refused (403 with words) or told nothing exists (404); HTMX saves without a reload and a plain
POST redirects; a stale save shows the other person's text; constant query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from decisions.models import PostPilotReview
from decisions.services.review import (
    post_pilot_review_complete,
    post_pilot_review_open,
    post_pilot_review_plan_panel,
    post_pilot_review_save,
)
from pilots.models import PilotPlan, PlanGuest
from tests.factories import PilotPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
DECIDED_AT = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
TEXT = {
    "findings": "Shoppers reorder groceries mostly.",
    "went_well": "The flag worked per region.",
    "to_improve": "Agree the baseline first.",
}


def _status(plan: PilotPlan, status: str, **fields) -> PilotPlan:  # type: ignore[no-untyped-def]
    PilotPlan.objects.filter(pk=plan.pk).update(status=status, **fields)
    plan.refresh_from_db()
    return plan


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards")
    return _status(plan, "decided", decision="go", decided_at=DECIDED_AT, scrum_master=sm)


@pytest.fixture
def review(plan):
    return post_pilot_review_open(plan=plan, decided_at=DECIDED_AT)


def url(plan: PilotPlan) -> str:
    return reverse("decisions:post_pilot_review", args=[plan.pk])


def form(review: PostPilotReview, **values: str) -> dict[str, object]:
    return {"version": review.version, **dict.fromkeys(TEXT, ""), **values}


def written(review: PostPilotReview, user) -> PostPilotReview:  # type: ignore[no-untyped-def]
    return post_pilot_review_save(review=review, user=user, expected_version=review.version, **TEXT)


# --- reading ---------------------------------------------------------------------------------


def test_a_writer_sees_the_form_with_the_due_date(client_for, developer, review, plan):
    html = client_for(developer).get(url(plan)).content.decode()

    assert 'data-testid="review-form"' in html
    assert "Due Thu 10 Dec" in html or "Overdue: it was due Thu 10 Dec" in html
    assert 'data-testid="review-complete"' not in html  # developers write, PO / SM complete


def test_the_scrum_master_sees_complete_the_review(client_for, sm, review, plan):
    html = client_for(sm).get(url(plan)).content.decode()
    assert "Complete the review" in html


def test_overdue_in_words_and_colour(client_for, po, review, plan):
    PostPilotReview.objects.filter(pk=review.pk).update(due_on=dt.date(2020, 1, 6))

    html = client_for(po).get(url(plan)).content.decode()

    assert "Overdue: it was due Mon 6 Jan" in html
    assert "chip-due-overdue" in html and 'class="review-due review-due-overdue"' in html


def test_a_stakeholder_reads_without_a_form(client_for, stakeholder, po, review, plan):
    written(review, po)

    html = client_for(stakeholder).get(url(plan)).content.decode()

    assert 'data-testid="review-form"' not in html
    assert TEXT["went_well"] in html


def test_an_invited_guest_reads_without_a_form(client_for, po, review, plan):
    guest = UserFactory(email="guest@example.test")
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)

    response = client_for(guest).get(url(plan))

    assert response.status_code == 200
    assert 'data-testid="review-form"' not in response.content.decode()
    assert client_for(guest).post(url(plan), form(review, **TEXT)).status_code == 403


def test_an_outsider_is_told_nothing_exists(client_for, outsider, review, plan):
    assert client_for(outsider).get(url(plan)).status_code == 404
    assert client_for(outsider).post(url(plan), form(review, **TEXT)).status_code == 404
    assert PostPilotReview.objects.get().findings == ""


def test_before_the_decision_an_empty_state(client_for, po, team):
    plan = _status(PilotPlanFactory(team=team, owner=po, title="Running"), "running")

    response = client_for(po).get(url(plan))

    assert "The post-pilot review opens when the decision is recorded." in response.content.decode()
    assert not PostPilotReview.objects.exists()
    refused = client_for(po).post(url(plan), {"version": 1, **TEXT})
    assert refused.status_code == 409


def test_a_decided_plan_without_a_review_gets_one_on_first_visit(client_for, po, plan):
    response = client_for(po).get(url(plan))

    assert response.status_code == 200
    assert PostPilotReview.objects.get(plan=plan).due_on == dt.date(2026, 12, 10)


def test_a_closed_plans_review_is_read_only(client_for, po, sm, review, plan):
    post_pilot_review_complete(review=written(review, sm), user=sm)
    _status(plan, "closed")

    html = client_for(po).get(url(plan)).content.decode()

    assert 'data-testid="review-form"' not in html
    assert TEXT["findings"] in html
    assert 'data-testid="review-completed"' in html and sm.display_name in html
    assert client_for(po).post(url(plan), form(review, **TEXT)).status_code == 409


# --- writing -----------------------------------------------------------------------------------


def test_a_plain_post_saves_and_redirects(client_for, developer, review, plan):
    response = client_for(developer).post(url(plan), form(review, findings="Written"))

    assert response.status_code == 302
    assert response["Location"].endswith("#post-pilot-review")
    assert PostPilotReview.objects.get().findings == "Written"


def test_an_htmx_save_answers_the_section_only(client_for, developer, review, plan):
    response = client_for(developer).post(url(plan), form(review, findings="Written"), headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="post-pilot-review"')
    assert "<html" not in html
    assert "Post-pilot review saved." in response["HX-Trigger"]
    assert 'name="version" value="2"' in html


def test_a_stale_save_shows_the_other_persons_text(client_for, developer, sm, review, plan):
    post_pilot_review_save(
        review=review, user=sm, expected_version=1, **{**TEXT, "findings": "Theirs"}
    )

    response = client_for(developer).post(url(plan), form(review, findings="Mine"), headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 409
    assert "while you were editing" in html
    assert 'data-testid="theirs-findings"' in html and "Theirs" in html
    assert "Mine" in html  # the person's own text stays in the form
    assert 'name="version" value="2"' in html  # saving again keeps theirs knowingly
    assert PostPilotReview.objects.get().findings == "Theirs"


def test_a_too_long_part_is_named(client_for, developer, review, plan):
    response = client_for(developer).post(
        url(plan), form(review, to_improve="x" * 10_001), headers=HTMX
    )
    assert response.status_code == 422
    assert "at most 10000 characters" in response.content.decode()


def test_a_stakeholder_may_not_save(client_for, stakeholder, review, plan):
    response = client_for(stakeholder).post(url(plan), form(review, **TEXT))

    assert response.status_code == 403
    assert "Stakeholders can read the post-pilot review but not write it." in (
        response.content.decode()
    )
    assert PostPilotReview.objects.get().version == 1


def test_the_scrum_master_saves_and_completes_in_one_step(client_for, sm, review, plan):
    response = client_for(sm).post(url(plan), {**form(review, **TEXT), "complete": "1"})

    assert response.status_code == 302
    stored = PostPilotReview.objects.get()
    assert stored.completed_by == sm and stored.findings == TEXT["findings"]


def test_completing_with_a_missing_part_saves_nothing_and_names_it(client_for, po, review, plan):
    data = {**form(review, findings="Only this"), "complete": "1"}

    response = client_for(po).post(url(plan), data, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert "Write what went well before completing the review." in html
    assert "Write what to improve before completing the review." in html
    assert "Only this" in html
    stored = PostPilotReview.objects.get()
    assert stored.version == 1 and stored.findings == "" and stored.completed_at is None


def test_a_developer_may_not_complete(client_for, developer, review, plan):
    response = client_for(developer).post(url(plan), {**form(review, **TEXT), "complete": "1"})

    assert response.status_code == 403
    assert PostPilotReview.objects.get().version == 1  # nothing saved either


# --- the plan page's panel ---------------------------------------------------------------------


def test_the_plan_page_says_when_the_review_is_due(client_for, po, review, plan):
    post_pilot_review_save(review=review, user=po, expected_version=1, **{**TEXT, "to_improve": ""})

    html = client_for(po).get(reverse("pilots:plan_detail", args=[plan.pk])).content.decode()

    assert "Post-pilot review due <time datetime=" in html
    assert ">Thu 10 Dec</time></strong> — 2 of 3 parts written." in html
    assert url(plan) in html


def test_a_closed_plan_page_shows_the_completed_review(client_for, stakeholder, sm, review, plan):
    post_pilot_review_complete(review=written(review, sm), user=sm)
    _status(plan, "closed")

    html = client_for(stakeholder).get(reverse("pilots:plan_detail", args=[plan.pk])).content
    html = html.decode()

    assert 'data-testid="review-panel-findings"' in html
    for text in TEXT.values():
        assert text in html
    assert f"Completed by {sm.display_name}" in html


def test_no_panel_before_the_decision(client_for, po, team):
    plan = PilotPlanFactory(team=team, owner=po, title="Draft")
    html = client_for(po).get(reverse("pilots:plan_detail", args=[plan.pk])).content.decode()
    assert 'data-testid="review-panel"' not in html


# --- query counts ----------------------------------------------------------------------------


def test_the_review_page_takes_a_constant_number_of_queries(
    client_for, po, sm, review, plan, django_assert_max_num_queries
):
    client = client_for(po)
    with django_assert_max_num_queries(6):
        assert client.get(url(plan)).status_code == 200
    post_pilot_review_complete(review=written(review, sm), user=sm)
    with django_assert_max_num_queries(6):
        assert client.get(url(plan)).status_code == 200
    with django_assert_max_num_queries(6):
        assert client.get(url(plan), headers=HTMX).status_code == 200


def test_an_htmx_save_takes_a_constant_number_of_queries(
    client_for, developer, review, plan, django_assert_max_num_queries
):
    client = client_for(developer)
    with django_assert_max_num_queries(16):
        response = client.post(url(plan), form(review, **TEXT), headers=HTMX)
    assert response.status_code == 200


def test_the_panel_costs_one_query_and_none_before_the_decision(
    client_for, po, team, review, plan, django_assert_num_queries
):
    draft = PilotPlanFactory(team=team, owner=po, title="Draft")
    with django_assert_num_queries(1):
        panel = post_pilot_review_plan_panel(plan)
    assert panel is not None and panel.context["review"] == review
    with django_assert_num_queries(0):
        assert post_pilot_review_plan_panel(draft) is None
