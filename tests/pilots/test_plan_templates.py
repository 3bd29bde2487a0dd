"""The template library: a team's own plans saved as templates (a snapshot of sections and
rows, without dates, people or one pilot's evidence), new plans started from them, and the
templates page with its permission rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from pilots.models import EntryCriterion, PilotPlan, PlanTemplate
from pilots.services import plans
from pilots.services.templates import (
    plan_create_from_team_template,
    plan_template_delete,
    plan_template_save,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def example(team, po, sm, devops) -> PilotPlan:
    """The built-in example: every list filled, people named, a start date."""
    plan = plans.plan_create_from_template(team=team, author=po)
    EntryCriterion.objects.filter(plan=plan).update(
        status=EntryCriterion.Status.MET,
        evidence_url="https://ci.example.test/1",
        confirmed_by=po,
        confirmed_at=timezone.now(),
    )
    return plan


def test_a_saved_template_copies_content_but_not_dates_people_or_evidence(example, po, sm):
    template = plan_template_save(plan=example, by=sm, name="Checkout pilot")
    assert template.team == example.team and template.created_by == sm

    plan = plan_create_from_team_template(template=template, author=po)

    assert plan.status == PilotPlan.Status.DRAFT and plan.title == "Checkout pilot"
    assert plan.summary == example.summary
    assert plan.business_days == example.business_days
    assert plan.check_times == example.check_times
    assert plan.start_date is None and plan.scrum_master is None
    assert plan.cohort.target_size == 200
    assert plan.rollback_plan.approver is None
    assert plan.rollback_plan.communication_plan == example.rollback_plan.communication_plan
    for related in ("scope_items", "segments", "exit_criteria", "rollback_triggers",
                    "rollback_steps", "risks", "dashboards", "response_slas"):  # fmt: skip
        assert getattr(plan, related).count() == getattr(example, related).count(), related
    assert list(plan.exit_criteria.values_list("metric__key", "threshold")) == list(
        example.exit_criteria.values_list("metric__key", "threshold")
    )
    assert not plan.rollback_steps.filter(owner__isnull=False).exists()
    assert not plan.risks.filter(owner__isnull=False).exists()
    criteria = plan.entry_criteria.all()
    assert {c.status for c in criteria} == {EntryCriterion.Status.PENDING}
    assert {c.evidence_url for c in criteria} == {""}


def test_later_edits_of_the_plan_do_not_change_the_template(example, po):
    template = plan_template_save(plan=example, by=po, name="T")
    example.risks.all().delete()
    plan = plan_create_from_team_template(template=template, author=po, title="Next")
    assert plan.title == "Next" and plan.risks.count() == 1


def test_template_names_are_unique_per_team_and_required(example, po):
    plan_template_save(plan=example, by=po, name="T")
    with pytest.raises(ValidationError) as duplicate:
        plan_template_save(plan=example, by=po, name=" T ")
    assert "name" in duplicate.value.message_dict
    with pytest.raises(ValidationError) as blank:
        plan_template_save(plan=example, by=po, name="  ")
    assert "name" in blank.value.message_dict


@pytest.mark.parametrize("who", ["developer", "devops", "stakeholder"])
def test_only_po_and_sm_save_and_delete_templates(request, example, po, who):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        plan_template_save(plan=example, by=user, name="T")
    template = plan_template_save(plan=example, by=po, name="T")
    with pytest.raises(PermissionDenied):
        plan_template_delete(team=example.team, template_id=template.pk, by=user)
    assert PlanTemplate.objects.count() == 1


# --- pages ---------------------------------------------------------------------------------------


def test_templates_page_for_every_member_with_query_count(
    example, po, developer, client_for, django_assert_max_num_queries
):
    for i in range(3):
        plan_template_save(plan=example, by=po, name=f"T{i}")
    url = reverse("pilots:team_templates", args=[example.team_id])
    reader, manager = client_for(developer), client_for(po)
    with django_assert_max_num_queries(8):
        read = reader.get(url)
    body = read.content.decode()
    assert body.count('data-testid="template-row"') == 3
    assert 'data-testid="template-builtin"' in body
    assert "templates-read-only" in body and "template-form" not in body
    with django_assert_max_num_queries(9):
        managed = manager.get(f"{url}?plan={example.pk}")
    assert 'data-testid="template-form"' in managed.content.decode()


def test_templates_page_is_404_for_non_members(example, outsider, client_for):
    url = reverse("pilots:team_templates", args=[example.team_id])
    assert client_for(outsider).get(url).status_code == 404


def test_save_and_delete_through_the_page(example, po, developer, client_for):
    client = client_for(po)
    save = reverse("pilots:team_template_save", args=[example.team_id])
    response = client.post(save, {"plan": example.pk, "name": "Ours"}, headers=HTMX)
    assert response.status_code == 200 and "saved as the template" in response.content.decode()
    template = PlanTemplate.objects.get()

    again = client.post(save, {"plan": example.pk, "name": "Ours"}, headers=HTMX)
    assert again.status_code == 422 and "already has a template" in again.content.decode()

    delete = reverse("pilots:team_template_delete", args=[example.team_id, template.pk])
    assert client_for(developer).post(delete).status_code == 403
    confirm = client.get(delete)
    assert confirm.status_code == 200 and "confirm-delete" in confirm.content.decode()
    assert client.post(delete).status_code == 302
    assert not PlanTemplate.objects.exists()


def test_new_plan_page_offers_team_templates_and_starts_from_one(example, po, client_for):
    template = plan_template_save(plan=example, by=po, name="Ours")
    client = client_for(po)
    page = client.get(reverse("pilots:plan_new")).content.decode()
    assert "Ours · Checkout" in page and "Built-in example" in page

    response = client.post(
        reverse("pilots:plan_new"),
        {"how": "template", "template-template": template.pk, "template-team": example.team_id,
         "template-title": "Next pilot"},
    )  # fmt: skip
    assert response.status_code == 302
    plan = PilotPlan.objects.get(title="Next pilot")
    assert plan.exit_criteria.count() == example.exit_criteria.count()


def test_a_template_of_another_team_is_refused(example, po, other_team, client_for):
    from accounts.models import Membership

    Membership.objects.create(team=other_team, user=po, role=Membership.Role.PRODUCT_OWNER)
    template = plan_template_save(plan=example, by=po, name="Ours")
    response = client_for(po).post(
        reverse("pilots:plan_new"),
        {"how": "template", "template-template": template.pk, "template-team": other_team.pk},
    )
    assert response.status_code == 422
    assert "belongs to another team" in response.content.decode()


def test_plan_page_offers_save_as_template_to_po_and_sm_only(example, po, developer, client_for):
    url = reverse("pilots:plan_detail", args=[example.pk])
    assert "save-as-template" in client_for(po).get(url).content.decode()
    assert "save-as-template" not in client_for(developer).get(url).content.decode()
