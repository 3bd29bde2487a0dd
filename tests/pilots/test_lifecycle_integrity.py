"""Lifecycle integrity: Decided and Closed plans are read-only; submitting over plan-health gaps
needs an override; a sign-off needs a complete checklist and an edit voids it; an entry criterion
met needs evidence and names who confirmed it; an early start asks first; moving a running
plan's start date recomputes its end date first."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.ui import day_text
from core.exceptions import Conflict
from metrics.models import Sample
from pilots import services, timeline
from pilots.editable import PlanReadOnly
from pilots.models import OnCallShift, PilotPlan, PlanTransition, SignOff
from pilots.review import REVIEWS
from pilots.services.lifecycle import plan_today, plan_transition
from pilots.services.review import review_update, signoff_create
from tests.factories import post_pilot_review_written, row_append, running_plan, section_edit

pytestmark = pytest.mark.django_db

API = "/api/v1/plans"


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder):
    return services.plan_create_from_template(team=team, author=po, today=dt.date(2026, 11, 24))


def _set_status(plan: PilotPlan, status: str) -> PilotPlan:
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    plan.refresh_from_db()
    return plan


def send(client: Client, method: str, url: str, data: Any = None, *, if_match: int | None = None):  # type: ignore[no-untyped-def]
    headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
    body = json.dumps(data) if data is not None else ""
    return client.generic(method, url, body, content_type="application/json", headers=headers)


def _version(plan: PilotPlan, key: str) -> int:
    return services.section_versions(plan=plan)[key]


def _answer_all(plan: PilotPlan, kind: str, user, answer: str = "yes") -> None:  # type: ignore[no-untyped-def]
    review = plan.reviews.filter(kind=kind).first()
    review_update(
        plan=plan,
        kind=kind,
        user=user,
        expected_version=review.version if review else 1,
        values={"checklist": {key: answer for key, _ in REVIEWS[kind].checklist}},
    )


# --- Decided and Closed plans are read-only --------------------------------------------------


@pytest.fixture(params=["decided", "closed"])
def finished(request, plan):  # type: ignore[no-untyped-def]
    return _set_status(plan, request.param)


def test_a_finished_plan_refuses_every_kind_of_write_in_its_services(finished, po, sm, devops):
    before = PilotPlan.objects.get(pk=finished.pk).version
    with pytest.raises(PlanReadOnly, match=finished.get_status_display()):
        section_edit(finished, "overview", po, title="Rewritten after the fact")
    with pytest.raises(PlanReadOnly):
        row_append(finished, "risks", po, description="Late risk", likelihood="low", impact="low")
    criterion = finished.entry_criteria.first()
    with pytest.raises(PlanReadOnly):
        services.row_remove(
            plan=finished,
            kind=services.row_kind("entry-criteria"),
            row_id=criterion.pk,
            user=po,
            expected_version=_version(finished, "entry_criteria"),
        )
    with pytest.raises(PlanReadOnly):
        services.environment_set_compliance(
            plan=finished,
            user=sm,
            validated=False,
            expected_version=_version(finished, "environment"),
        )
    with pytest.raises(PlanReadOnly):
        review_update(
            plan=finished, kind="readiness", user=sm, expected_version=1, values={"notes": "x"}
        )
    assert PilotPlan.objects.get(pk=finished.pk).version == before
    assert finished.entry_criteria.filter(pk=criterion.pk).exists()


def test_a_plan_closed_while_an_edit_was_open_is_not_claimed(plan, po):
    """The compare-and-set refuses too, when the loaded plan still says Draft."""
    stale = PilotPlan.objects.get(pk=plan.pk)
    _set_status(plan, "closed")

    with pytest.raises(PlanReadOnly):
        section_edit(stale, "overview", po, title="Too late")
    assert PilotPlan.objects.get(pk=plan.pk).title != "Too late"


def test_a_finished_plan_page_says_read_only_and_offers_no_edit_controls(
    finished, po, client_for, django_assert_max_num_queries
):
    client = client_for(po)
    with django_assert_max_num_queries(40):
        response = client.get(reverse("pilots:plan_detail", args=[finished.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="read-only-notice"' in html
    assert f"This plan is {finished.get_status_display()}: it is read-only" in html
    assert reverse("pilots:section_edit", args=[finished.pk, "overview"]) not in html
    assert reverse("pilots:row_add", args=[finished.pk, "risks"]) not in html


def test_a_finished_plan_refuses_html_and_htmx_edits_with_the_reason(finished, po, client_for):
    client = client_for(po)
    url = reverse("pilots:section", args=[finished.pk, "overview"])
    data = {"version": _version(finished, "overview"), "title": "New", "summary": ""}

    plain = client.post(url, data)
    htmx = client.post(url, data, headers={"HX-Request": "true"})
    form = client.get(reverse("pilots:section_edit", args=[finished.pk, "overview"]))

    for response in (plain, htmx, form):
        assert response.status_code == 403
        assert "read-only" in response.content.decode()
    assert PilotPlan.objects.get(pk=finished.pk).title == finished.title
    # htmx swaps no 403: the reason comes as an error toast the page shows (static/js/app.js).
    shown = json.loads(htmx.headers["HX-Trigger"])["showToast"]
    assert shown["level"] == "error"
    assert f"This plan is {finished.get_status_display()}: it is read-only" in shown["message"]
    assert "HX-Trigger" not in plain.headers


def test_a_finished_plan_refuses_api_writes_with_403_naming_the_state(finished, po, sm, client_for):
    client = client_for(po)
    section = send(
        client,
        "PATCH",
        f"{API}/{finished.pk}/sections/overview",
        {"title": "New"},
        if_match=_version(finished, "overview"),
    )
    row = send(
        client,
        "POST",
        f"{API}/{finished.pk}/rows/risks",
        {"description": "Late", "likelihood": "low", "impact": "low"},
        if_match=_version(finished, "risks"),
    )
    review = send(
        client_for(sm),
        "PATCH",
        f"{API}/{finished.pk}/reviews/readiness",
        {"notes": "x"},
        if_match=1,
    )

    for response in (section, row, review):
        assert response.status_code == 403, response.content
        body = response.json()
        assert body["plan_status"] == finished.status
        assert "read-only" in body["detail"]


def test_a_finished_plan_takes_no_samples_over_the_api_or_as_csv(finished, po, client_for):
    client = client_for(po)
    pushed = send(
        client,
        "POST",
        f"{API}/{finished.pk}/samples",
        [{"metric": "p95_latency", "value": 120, "observed_at": timezone.now().isoformat()}],
    )
    csv = SimpleUploadedFile(
        "samples.csv",
        f"metric,value,observed_at\np95_latency,120,{timezone.now():%Y-%m-%dT%H:%M:%SZ}\n".encode(),
    )
    uploaded = client.post(reverse("metrics:sample_upload", args=[finished.pk]), {"file": csv})

    assert pushed.status_code == 422
    assert finished.get_status_display() in json.dumps(pushed.json())
    assert uploaded.status_code in (403, 422)
    assert not Sample.objects.filter(plan_id=finished.pk).exists()


def test_a_decided_plan_can_still_be_closed(plan, sm, client_for):
    _set_status(plan, "decided")
    post_pilot_review_written(plan, sm)
    response = client_for(sm).get(
        reverse("pilots:plan_lifecycle", args=[plan.pk]), headers={"HX-Request": "true"}
    )
    assert 'data-testid="step-form-close"' in response.content.decode()

    plan_transition(plan=plan, action="close", user=sm)
    assert PilotPlan.objects.get(pk=plan.pk).status == "closed"


def test_outsiders_and_stakeholders_are_refused_before_the_state_is_told(
    finished, outsider, stakeholder, client_for
):
    url = f"{API}/{finished.pk}/sections/overview"
    version = _version(finished, "overview")
    assert (
        send(client_for(outsider), "PATCH", url, {"title": "x"}, if_match=version).status_code
        == 404
    )
    refused = send(client_for(stakeholder), "PATCH", url, {"title": "x"}, if_match=version)
    assert refused.status_code == 403
    assert "plan_status" not in refused.json()


# --- submitting over plan-health gaps ---------------------------------------------------------


def test_submitting_with_health_gaps_is_refused_with_the_list(plan, po):
    with pytest.raises(Conflict, match="Plan health lists open gaps") as refused:
        plan_transition(plan=plan, action="submit", user=po)
    assert "on-call" in refused.value.message.lower()
    assert PilotPlan.objects.get(pk=plan.pk).status == "draft"


def test_an_override_needs_a_reason(plan, po):
    with pytest.raises(ValidationError) as refused:
        plan_transition(plan=plan, action="submit", user=po, override_gaps=True)
    assert "reason" in refused.value.message_dict


def test_an_override_is_recorded_and_shown_to_reviewers(plan, po, sm, client_for):
    transition = plan_transition(
        plan=plan,
        action="submit",
        user=po,
        override_gaps=True,
        reason="On-call rota is agreed; it goes in tomorrow.",
    )

    assert transition.overridden_gaps
    assert any("on-call" in gap.lower() for gap in transition.overridden_gaps)
    page = client_for(sm).get(reverse("pilots:plan_review", args=[plan.pk])).content.decode()
    assert 'data-testid="gaps-override"' in page
    assert "On-call rota is agreed" in page


def test_the_lifecycle_panel_asks_for_the_override(plan, po, client_for):
    client = client_for(po)
    panel = client.get(
        reverse("pilots:plan_lifecycle", args=[plan.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert 'data-testid="override-gaps"' in panel

    url = reverse("pilots:plan_transition", args=[plan.pk, "submit"])
    refused = client.post(url, {"reason": ""}, headers={"HX-Request": "true"})
    taken = client.post(
        url,
        {"override_gaps": "true", "reason": "Known gaps"},
        headers={"HX-Request": "true"},
    )

    assert refused.status_code == 409
    assert "Plan health lists open gaps" in refused.content.decode()
    assert taken.status_code == 200
    assert PilotPlan.objects.get(pk=plan.pk).status == "in_review"


def test_the_api_refuses_a_submission_over_gaps_and_takes_the_override(plan, po, client_for):
    client = client_for(po)
    url = f"{API}/{plan.pk}/transitions"

    refused = send(client, "POST", url, {"action": "submit"})
    taken = send(
        client, "POST", url, {"action": "submit", "override_gaps": True, "reason": "Known gaps"}
    )

    assert refused.status_code == 409
    assert refused.json()["confirm_with"] == "override_gaps"
    assert taken.status_code == 201
    assert PlanTransition.objects.get(pk=taken.json()["id"]).overridden_gaps


# --- sign-off needs a complete checklist; an edit voids it ------------------------------------


@pytest.fixture
def in_review(plan, po):
    plan_transition(plan=plan, action="submit", user=po, override_gaps=True, reason="Test")
    plan.refresh_from_db()
    return plan


def test_signing_with_unanswered_checklist_questions_is_refused(in_review, sm):
    with pytest.raises(Conflict, match="Answer every checklist question"):
        signoff_create(plan=in_review, kind="readiness", user=sm)

    _answer_all(in_review, "readiness", sm, answer="na")
    assert signoff_create(plan=in_review, kind="readiness", user=sm).signed_by == sm


def test_a_no_needs_a_note(in_review, sm):
    with pytest.raises(ValidationError) as refused:
        review_update(
            plan=in_review,
            kind="readiness",
            user=sm,
            expected_version=1,
            values={"checklist": {"risks_owned": "no"}},
        )
    assert "checklist_notes" in refused.value.message_dict

    review = review_update(
        plan=in_review,
        kind="readiness",
        user=sm,
        expected_version=1,
        values={
            "checklist": {"risks_owned": "no"},
            "checklist_notes": {"risks_owned": "Two risks lack an owner."},
        },
    )
    assert review.checklist == {"risks_owned": "no"}
    assert review.checklist_notes == {"risks_owned": "Two risks lack an owner."}


def test_editing_a_signed_review_voids_its_sign_off(in_review, sm):
    _answer_all(in_review, "readiness", sm)
    signoff = signoff_create(plan=in_review, kind="readiness", user=sm)
    review = in_review.reviews.get(kind="readiness")

    review_update(
        plan=in_review,
        kind="readiness",
        user=sm,
        expected_version=review.version,
        values={"notes": "On second thought: the rota is thin."},
    )

    signoff.refresh_from_db()
    assert signoff.voided_at is not None
    assert signoff.voided_by == sm
    assert "review was edited" in signoff.voided_reason
    assert not SignOff.objects.filter(plan=in_review, kind="readiness", voided_at=None).exists()


def test_saving_a_review_unchanged_keeps_its_sign_off(in_review, sm):
    _answer_all(in_review, "readiness", sm)
    signoff = signoff_create(plan=in_review, kind="readiness", user=sm)
    review = in_review.reviews.get(kind="readiness")

    review_update(
        plan=in_review, kind="readiness", user=sm, expected_version=review.version, values={}
    )

    signoff.refresh_from_db()
    assert signoff.voided_at is None


def test_the_review_form_takes_yes_no_and_not_applicable_with_notes(in_review, sm, client_for):
    client = client_for(sm)
    url = reverse("pilots:review_save", args=[in_review.pk, "readiness"])
    answers = {f"q_{key}": "yes" for key, _ in REVIEWS["readiness"].checklist}

    no_note = client.post(url, {"version": 1, **answers, "q_training_done": "no"})
    saved = client.post(
        url,
        {
            "version": 1,
            **answers,
            "q_training_done": "no",
            "n_training_done": "Cohort training is on Friday.",
            "q_compliance_checked": "na",
        },
    )

    assert no_note.status_code == 422
    assert "Say why the answer is no" in no_note.content.decode()
    assert saved.status_code == 302
    review = in_review.reviews.get(kind="readiness")
    assert review.checklist["training_done"] == "no"
    assert review.checklist["compliance_checked"] == "na"
    assert review.checklist_notes == {"training_done": "Cohort training is on Friday."}


def test_the_review_api_reads_and_writes_answers_and_notes(in_review, sm, client_for):
    client = client_for(sm)
    response = send(
        client,
        "PATCH",
        f"{API}/{in_review.pk}/reviews/readiness",
        {
            "checklist": {"risks_owned": "no", "support_ready": "na"},
            "checklist_notes": {"risks_owned": "No owner for the data risk"},
        },
        if_match=1,
    )

    assert response.status_code == 200, response.content
    answers = {q["key"]: (q["answer"], q["note"]) for q in response.json()["checklist"]}
    assert answers["risks_owned"] == ("no", "No owner for the data risk")
    assert answers["support_ready"] == ("na", "")
    assert answers["training_done"] == (None, "")


# --- entry criteria need evidence and name who confirmed them ---------------------------------


def _criterion_update(plan, user, criterion, **values):  # type: ignore[no-untyped-def]
    return services.row_update(
        plan=plan,
        kind=services.row_kind("entry-criteria"),
        row_id=criterion.pk,
        user=user,
        expected_version=_version(plan, "entry_criteria"),
        values=values,
    )


def test_marking_an_entry_criterion_met_needs_evidence(plan, sm):
    criterion = plan.entry_criteria.first()

    with pytest.raises(ValidationError) as refused:
        _criterion_update(plan, sm, criterion, status="met")

    assert refused.value.message_dict == {
        "evidence_url": ["Give the evidence that it is met: a link or a note."]
    }
    criterion.refresh_from_db()
    assert criterion.status == "pending"


def test_a_met_entry_criterion_records_who_confirmed_it_and_shows_it(plan, sm, po, client_for):
    criterion = plan.entry_criteria.first()
    before = timezone.now()

    row = _criterion_update(
        plan, sm, criterion, status="met", evidence_note="Signed off in the sprint review"
    )

    assert row.confirmed_by == sm
    assert before <= row.confirmed_at <= timezone.now()
    page = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()
    assert "Confirmed by" in page and sm.display_name in page
    markdown = client_for(po).get(reverse("pilots:plan_markdown", args=[plan.pk])).content.decode()
    assert sm.display_name in markdown
    assert "Signed off in the sprint review" in markdown


def test_a_confirmation_cannot_lie_in_the_future(plan, sm):
    criterion = plan.entry_criteria.first()

    with pytest.raises(ValidationError) as refused:
        _criterion_update(
            plan,
            sm,
            criterion,
            status="met",
            evidence_url="https://ci.example.com/run/1",
            confirmed_at=timezone.now() + dt.timedelta(days=2),
        )

    assert "confirmed_at" in refused.value.message_dict


def test_the_api_names_the_evidence_field(plan, sm, client_for):
    criterion = plan.entry_criteria.first()
    url = f"{API}/{plan.pk}/rows/entry-criteria/{criterion.pk}"

    refused = send(
        client_for(sm), "PATCH", url, {"status": "met"}, if_match=_version(plan, "entry_criteria")
    )

    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["evidence_url"]


# --- an early start asks first and moves the start date --------------------------------------


@pytest.fixture
def approved(plan, po, sm, developer):
    """Approved, with a start date three days ahead and on-call covering the window."""
    today = plan_today(plan)
    section_edit(plan, "timeline", po, start_date=today + dt.timedelta(days=3))
    plan.refresh_from_db()
    OnCallShift.objects.create(
        plan=plan,
        person=developer,
        starts_on=today - dt.timedelta(days=7),
        ends_on=plan.end_date + dt.timedelta(days=7),
    )
    _set_status(plan, "approved")
    return plan


def test_starting_before_the_start_date_asks_first(approved, devops):
    with pytest.raises(Conflict, match="confirm the early start"):
        plan_transition(plan=approved, action="start", user=devops)
    assert PilotPlan.objects.get(pk=approved.pk).status == "approved"


def test_a_confirmed_early_start_moves_the_start_date_to_today(approved, devops):
    planned = approved.start_date
    today = plan_today(approved)

    transition = plan_transition(
        plan=approved, action="start", user=devops, confirm_early_start=True
    )

    approved.refresh_from_db()
    assert approved.status == "running"
    assert approved.start_date == today
    assert approved.end_date == timeline.end_date(today, approved.business_days)
    assert day_text(planned) in transition.reason  # "Thu 10 Dec 2026", the product's one format
    assert day_text(today) in transition.reason


def test_the_api_asks_for_the_early_start_flag(approved, devops, client_for):
    client = client_for(devops)
    url = f"{API}/{approved.pk}/transitions"

    refused = send(client, "POST", url, {"action": "start"})
    taken = send(client, "POST", url, {"action": "start", "confirm_early_start": True})

    assert refused.status_code == 409
    assert refused.json()["confirm_with"] == "confirm_early_start"
    assert taken.status_code == 201
    assert PilotPlan.objects.get(pk=approved.pk).start_date == plan_today(approved)


def test_the_lifecycle_panel_asks_to_confirm_an_early_start(approved, devops, client_for):
    client = client_for(devops)
    panel = client.get(
        reverse("pilots:plan_lifecycle", args=[approved.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert 'data-testid="confirm-early-start"' in panel

    url = reverse("pilots:plan_transition", args=[approved.pk, "start"])
    assert client.post(url, {}, headers={"HX-Request": "true"}).status_code == 409
    taken = client.post(url, {"confirm_early_start": "true"}, headers={"HX-Request": "true"})
    assert taken.status_code == 200
    assert PilotPlan.objects.get(pk=approved.pk).status == "running"


# --- a running plan's start date moves past its old end date ----------------------------------


def test_a_running_plans_start_date_moves_past_its_old_end_date(team, po):
    plan = running_plan(team=team, owner=po, start_date=dt.date(2026, 12, 7), business_days=5)
    assert plan.end_date == dt.date(2026, 12, 11)

    section_edit(plan, "timeline", po, start_date=dt.date(2026, 12, 21))

    plan.refresh_from_db()
    assert plan.start_date == dt.date(2026, 12, 21)
    assert plan.end_date == dt.date(2026, 12, 25)
