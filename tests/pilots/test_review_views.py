"""The review, sign-off and lifecycle panels of the plan page: HTMX partials, plain posts, refused
steps that explain themselves, who may do what, and constant query counts."""

from __future__ import annotations

import datetime as dt

import pghistory
import pytest
from django.urls import reverse

from pilots import services
from pilots.models import (
    EntryCriterion,
    OnCallShift,
    PilotPlan,
    PlanTransition,
    Review,
    RollbackRehearsal,
    SignOff,
)
from pilots.services.lifecycle import plan_transition
from pilots.services.review import signoff_create
from tests.factories import OVERRIDE, checklist_answered, row_append

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder):
    plan = services.plan_create_from_template(team=team, author=po, today=dt.date(2026, 11, 24))
    checklist_answered(plan)
    return plan


def url(name, *args):
    return reverse(f"pilots:{name}", args=args)


def _submitted(plan, po):
    plan_transition(plan=plan, action="submit", user=po, **OVERRIDE)
    plan.refresh_from_db()
    return plan


def _meet_entry_criteria(plan, user):
    kind = services.row_kind("entry-criteria")
    for criterion in EntryCriterion.objects.filter(plan=plan):
        services.row_update(
            plan=plan, kind=kind, row_id=criterion.pk, user=user,
            expected_version=services.section_versions(plan=plan)["entry_criteria"],
            values={"status": "met", "evidence_url": "https://ci.example.com/1"},
        )  # fmt: skip


def _signed(plan, po, sm, developer):
    _submitted(plan, po)
    _meet_entry_criteria(plan, sm)
    for kind, user in (("business", po), ("readiness", sm), ("feasibility", developer)):
        signoff_create(plan=plan, kind=kind, user=user)
    plan.refresh_from_db()
    return plan


# --- lifecycle panel -----------------------------------------------------------------------------


def test_plan_page_loads_the_panels(client_for, po, plan):
    html = client_for(po).get(url("plan_detail", plan.pk)).content.decode()
    assert url("plan_lifecycle", plan.pk) in html
    assert url("plan_reviews", plan.pk) in html
    assert url("plan_history", plan.pk) in html  # the audit history is a tab of its own


def test_lifecycle_panel_offers_submit_to_the_po(client_for, po, plan, django_assert_num_queries):
    client = client_for(po)
    # Submit reads plan health (the whole plan, in a constant number of queries) to ask for an
    # override of its gaps.
    with django_assert_num_queries(20, exact=False) as few:
        response = client.get(url("plan_lifecycle", plan.pk), **HTMX)
    html = response.content.decode()
    assert 'data-testid="lifecycle-state">Draft' in html
    assert 'data-testid="step-form-submit"' in html
    assert 'data-testid="override-gaps"' in html
    for i in range(5):
        row_append(plan, "risks", po, description=f"Risk {i}", likelihood="low", impact="low")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url("plan_lifecycle", plan.pk), **HTMX)


def test_lifecycle_panel_query_count_is_constant(
    client_for, po, sm, developer, plan, django_assert_num_queries
):
    client = client_for(po)
    _signed(plan, po, sm, developer)
    with django_assert_num_queries(20, exact=False) as few:
        client.get(url("plan_lifecycle", plan.pk), **HTMX)
    for i in range(5):
        row_append(plan, "risks", sm, description=f"Risk {i}", likelihood="low", impact="low")
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url("plan_lifecycle", plan.pk), **HTMX)


def test_submit_via_htmx_rerenders_and_tells_the_page(client_for, po, plan):
    response = client_for(po).post(
        url("plan_transition", plan.pk, "submit"),
        {"reason": "Ready", "override_gaps": "true"},
        **HTMX,
    )
    assert response.status_code == 200
    assert "planChanged" in response["HX-Trigger"]
    assert 'data-testid="lifecycle-state">In review' in response.content.decode()
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.IN_REVIEW
    assert PlanTransition.objects.get(plan=plan).reason == "Ready"


def test_submit_without_js_redirects_to_the_review_page(client_for, po, plan):
    response = client_for(po).post(
        url("plan_transition", plan.pk, "submit"), {"reason": "Ready", "override_gaps": "true"}
    )
    assert response.status_code == 302
    assert response["Location"] == url("plan_review", plan.pk) + "#plan-lifecycle"
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.IN_REVIEW


def test_refused_approve_explains_itself_and_changes_nothing(client_for, po, plan):
    _submitted(plan, po)
    client = client_for(po)
    panel = client.get(url("plan_lifecycle", plan.pk), **HTMX).content.decode()
    assert "The business review is not signed off." in panel
    assert 'data-testid="step-form-approve"' not in panel

    response = client.post(url("plan_transition", plan.pk, "approve"), **HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert 'data-testid="lifecycle-error"' in html
    assert "The readiness review is not signed off." in html
    assert "Entry criteria not met or waived" in html
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.IN_REVIEW


def test_refused_step_without_js_renders_the_review_page(client_for, po, plan):
    _submitted(plan, po)
    response = client_for(po).post(url("plan_transition", plan.pk, "approve"))
    assert response.status_code == 409
    assert "The business review is not signed off." in response.content.decode()


def test_wrong_role_sees_why_and_is_refused_with_403(client_for, sm, plan):
    client = client_for(sm)
    panel = client.get(url("plan_lifecycle", plan.pk), **HTMX).content.decode()
    assert "Only the team&#x27;s Product Owner can" in panel
    response = client.post(url("plan_transition", plan.pk, "submit"), **HTMX)
    assert response.status_code == 403
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.DRAFT


def test_approve_and_start_through_the_panel(client_for, po, sm, developer, plan):
    _signed(plan, po, sm, developer)
    client = client_for(po)
    assert client.post(url("plan_transition", plan.pk, "approve"), **HTMX).status_code == 200
    OnCallShift.objects.create(
        plan=plan, person=sm, starts_on=plan.start_date, ends_on=plan.end_date
    )
    RollbackRehearsal.objects.create(plan=plan, outcome="passed")
    response = client.post(url("plan_transition", plan.pk, "start"), **HTMX)
    assert response.status_code == 200, response.content.decode()
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.RUNNING


def test_the_panel_sends_the_decision_to_the_decision_page(client_for, po, plan):
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.EVALUATING)
    client = client_for(po)
    panel = client.get(url("plan_lifecycle", plan.pk), **HTMX).content.decode()
    assert 'name="decision"' not in panel  # no decision form here any more
    assert f'href="{reverse("decisions:decision", args=[plan.pk])}"' in panel
    assert "Open the decision page" in panel
    response = client.post(
        url("plan_transition", plan.pk, "decide"), {"decision": "go", "reason": "Met"}, **HTMX
    )
    assert response.status_code == 422
    assert "Record the decision on the plan&#x27;s decision page" in response.content.decode()
    plan.refresh_from_db()
    assert (plan.status, plan.decision) == (PilotPlan.Status.EVALUATING, "")


def test_a_running_plan_links_to_the_decision_page(client_for, po, plan):
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.RUNNING)
    panel = client_for(po).get(url("plan_lifecycle", plan.pk), **HTMX).content.decode()
    assert 'data-testid="decision-page-note"' in panel


def test_unknown_step_is_404(client_for, po, plan):
    assert client_for(po).post(url("plan_transition", plan.pk, "fly"), **HTMX).status_code == 404


# --- reviews -------------------------------------------------------------------------------------


def test_review_cards_query_count_is_constant(
    client_for, po, sm, developer, plan, django_assert_num_queries
):
    client = client_for(sm)
    _submitted(plan, po)
    assert (
        'data-testid="sign-readiness"'
        in client.get(url("plan_reviews", plan.pk), **HTMX).content.decode()
    )
    signoff_create(plan=plan, kind="readiness", user=sm)
    with django_assert_num_queries(20, exact=False) as few:
        client.get(url("plan_reviews", plan.pk), **HTMX)
    signoff_create(plan=plan, kind="business", user=po)
    for i in range(3):  # each edit of a covered section voids readiness; SM signs again
        row_append(plan, "risks", developer, description=f"R{i}", likelihood="low", impact="low")
        signoff_create(plan=plan, kind="readiness", user=sm)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url("plan_reviews", plan.pk), **HTMX)


def test_reviewer_edits_their_card_in_place(client_for, sm, plan):
    client = client_for(sm)
    response = client.get(url("review_edit", plan.pk, "readiness"), **HTMX)
    assert response.status_code == 200
    assert 'data-testid="review-form-readiness"' in response.content.decode()
    response = client.post(
        url("review_save", plan.pk, "readiness"),
        {
            "version": 1,
            "notes": "Looks good",
            "q_risks_owned": "yes",
            "q_support_ready": "na",
            "concerns": "",
        },
        **HTMX,
    )
    assert response.status_code == 200
    assert "reviewChanged" in response["HX-Trigger"]
    assert "Looks good" in response.content.decode()
    review = Review.objects.get(plan=plan, kind="readiness")
    assert review.checklist == {"risks_owned": "yes", "support_ready": "na"}
    assert "training_done" not in review.checklist  # not answered


def test_stale_review_save_is_refused_with_409(client_for, sm, plan):
    client = client_for(sm)
    client.post(url("review_save", plan.pk, "readiness"), {"version": 1, "notes": "A"}, **HTMX)
    response = client.post(
        url("review_save", plan.pk, "readiness"), {"version": 1, "notes": "B"}, **HTMX
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "Your changes were not saved." in html
    assert "B</textarea>" in html
    assert Review.objects.get(plan=plan, kind="readiness").notes == "A"


def test_review_save_without_js_redirects(client_for, po, plan):
    response = client_for(po).post(url("review_save", plan.pk, "business"), {"version": 1})
    assert response.status_code == 302
    assert response["Location"].endswith("#review-business")


def test_sign_off_via_htmx(client_for, po, sm, plan):
    _submitted(plan, po)
    response = client_for(sm).post(url("review_sign", plan.pk, "readiness"), **HTMX)
    assert response.status_code == 200
    assert "reviewChanged" in response["HX-Trigger"]
    assert 'data-testid="signoff-active"' in response.content.decode()
    assert SignOff.objects.get(plan=plan).signed_by == sm


def test_sign_off_blockers_are_listed_and_a_refused_sign_is_409(client_for, sm, plan):
    client = client_for(sm)
    html = client.get(url("plan_reviews", plan.pk), **HTMX).content.decode()
    assert "Sign-offs are given while the plan is in review; it is Draft." in html
    assert 'data-testid="sign-readiness"' not in html
    response = client.post(url("review_sign", plan.pk, "readiness"), **HTMX)
    assert response.status_code == 409
    assert "Sign-offs are given while the plan is in review" in response.content.decode()
    assert not SignOff.objects.exists()


def test_voided_signoff_is_shown_with_who_and_why_and_rereview_needed(
    client_for, po, sm, developer, plan
):
    _submitted(plan, po)
    signoff_create(plan=plan, kind="readiness", user=sm)
    row_append(plan, "risks", developer, description="New", likelihood="low", impact="low")
    client = client_for(po)
    html = client.get(url("plan_reviews", plan.pk), **HTMX).content.decode()
    assert 'data-testid="signoff-voided"' in html
    assert "Risks was edited by" in html
    panel = client.get(url("plan_lifecycle", plan.pk), **HTMX).content.decode()
    assert 'data-testid="rereview-needed"' in panel
    assert "readiness" in panel


# --- timeline ------------------------------------------------------------------------------------


def test_timeline_merges_transitions_signoffs_voids_and_edits(
    client_for, po, sm, developer, plan, django_assert_num_queries
):
    _submitted(plan, po)
    signoff_create(plan=plan, kind="readiness", user=sm)
    with pghistory.context(user=developer.pk):
        row_append(plan, "risks", developer, description="New", likelihood="low", impact="low")
    client = client_for(po)
    with django_assert_num_queries(10, exact=False) as few:
        response = client.get(url("plan_timeline", plan.pk), **HTMX)
    html = response.content.decode()
    assert "Draft → In review" in html
    assert "Signed off the readiness review" in html
    assert "Voided" in html
    assert 'data-kind="edit"' in html
    assert developer.display_name in html
    # Edits in the reader's words: the model's name and raw field values stay out.
    assert "Added a risk" in html
    assert "Status: Draft → In review" in html
    assert "insert:" not in html and "update:" not in html and "PilotPlan" not in html
    for i in range(3):
        row_append(plan, "risks", sm, description=f"R{i}", likelihood="low", impact="low")
    signoff_create(plan=plan, kind="business", user=po)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url("plan_timeline", plan.pk), **HTMX)


def test_review_page_without_js_shows_all_panels(client_for, stakeholder, plan):
    html = client_for(stakeholder).get(url("plan_review", plan.pk)).content.decode()
    assert 'data-testid="lifecycle"' in html
    assert 'data-testid="reviews"' in html
    assert 'data-testid="timeline"' in html


# --- permissions ---------------------------------------------------------------------------------


def test_stakeholders_read_but_may_not_sign_edit_or_step(client_for, po, stakeholder, plan):
    _submitted(plan, po)
    client = client_for(stakeholder)
    for name in ("plan_lifecycle", "plan_reviews", "plan_timeline"):
        assert client.get(url(name, plan.pk), **HTMX).status_code == 200
    html = client.get(url("plan_reviews", plan.pk), **HTMX).content.decode()
    assert 'data-testid="edit-review-' not in html
    assert 'data-testid="sign-' not in html
    panel = client.get(url("plan_lifecycle", plan.pk), **HTMX).content.decode()
    assert "<form" not in panel
    assert client.post(url("review_sign", plan.pk, "business"), **HTMX).status_code == 403
    assert client.get(url("review_edit", plan.pk, "business"), **HTMX).status_code == 403
    response = client.post(url("review_save", plan.pk, "business"), {"version": 1}, **HTMX)
    assert response.status_code == 403
    assert client.post(url("plan_transition", plan.pk, "withdraw"), **HTMX).status_code == 403
    assert not SignOff.objects.exists()


def test_a_member_may_not_fill_another_roles_review(client_for, developer, plan):
    client = client_for(developer)
    assert client.get(url("review_edit", plan.pk, "business"), **HTMX).status_code == 403


@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("plan_review", (), "get"),
        ("plan_lifecycle", (), "get"),
        ("plan_reviews", (), "get"),
        ("plan_timeline", (), "get"),
        ("review_edit", ("business",), "get"),
        ("review_save", ("business",), "post"),
        ("review_sign", ("business",), "post"),
        ("plan_transition", ("submit",), "post"),
    ],
)
def test_outsiders_get_404_and_anonymous_users_the_login_page(
    client, client_for, outsider, plan, name, args, method
):
    target = url(name, plan.pk, *args)
    response = getattr(client_for(outsider), method)(target, {"version": 1}, **HTMX)
    assert response.status_code == 404
    response = getattr(client, method)(target)
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    plan.refresh_from_db()
    assert plan.status == PilotPlan.Status.DRAFT
