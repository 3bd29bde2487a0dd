"""The plan pages: the list, starting a plan, the plan page with every section swapping between
view and edit (HTMX and plain posts), lost-update protection, plan health, and who may do what."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Membership, TeamHoliday
from pilots.forms import SECTION_FORMS
from pilots.models import (
    CohortSegment,
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    PlanSection,
    Risk,
    RollbackRehearsal,
    ScopeItem,
    Section,
)
from pilots.services import plan_create, plan_create_from_template
from tests.factories import MembershipFactory, PilotPlanFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

WEDNESDAY = dt.date(2026, 12, 9)  # "today" in these tests: next Monday is 14 Dec 2026
NEXT_MONDAY = dt.date(2026, 12, 14)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def today(monkeypatch):
    monkeypatch.setattr("pilots.views.plans._today", lambda time_zone: WEDNESDAY)
    return WEDNESDAY


@pytest.fixture
def plan(team, po, sm, devops):
    """The built-in template's plan (the seed's example) in ``team``, started by ``po``."""
    return plan_create_from_template(team=team, author=po, today=WEDNESDAY)


def url(name, *args):
    return reverse(f"pilots:{name}", args=args)


def version(plan, key):
    return PlanSection.objects.get(plan=plan, key=key).version


# Valid data for each single-valued section's form (the plan's team members filled in).
def valid_data(key, plan, people):
    po, sm, devops = people
    return {
        Section.OVERVIEW: {
            "title": "Saved cards, Region A",
            "summary": "Prove saved cards.",
            "release_ref": "PI-7",
        },
        Section.TIMELINE: {
            "time_zone": "Europe/Berlin",
            "start_date": "2026-12-14",
            "business_days": "10",
            "check_times": "16:00, 10:00",
        },
        Section.OWNERSHIP: {
            "owner": po.pk,
            "scrum_master": sm.pk,
            "decision_owner": po.pk,
            "rollback_executor": devops.pk,
        },
        Section.CHANGE_CONTROL: {"change_control": "Findings become backlog items the same day."},
        Section.COHORT: {
            "description": "200 internal users in Region A",
            "target_size": "200",
            "opt_in_required": "on",
            "consent_recorded": "on",
            "feedback_channel": "#pilot-feedback",
        },
        Section.ENVIRONMENT: {
            "environment": "pilot-eu-1",
            "data_migration_rules": "None",
            "privacy_constraints": "GDPR",
            "masking_rules": "Mask card numbers",
            "uses_real_data": "on",
        },
        Section.MONITORING: {
            "communication_cadence": "Daily note at 16:30",
            "training_done": "on",
            "training_notes": "Support trained on 1 Dec",
        },
        Section.ROLLBACK_PLAN: {
            "data_considerations": "Keep tokens",
            "approver": po.pk,
            "communication_plan": "Post in #pilot",
        },
    }[key]


# --- the plan page -----------------------------------------------------------------------------


def test_plan_page_shows_every_section_in_the_products_order(client_for, po, plan):
    response = client_for(po).get(url("plan_detail", plan.pk))

    assert response.status_code == 200
    body = response.content.decode()
    positions = [body.index(f'id="section-{key}"') for key in Section.values]
    assert positions == sorted(positions)
    assert "US-145" in body and "Payment gateways" in body  # the row lists are in place
    assert 'id="plan-health"' in body
    assert 'hx-trigger="planChanged from:body"' in body
    # Editors get an Edit button on every section with fields of its own.
    for key in SECTION_FORMS:
        assert f'data-testid="edit-{key}"' in body


def test_plan_page_query_count_does_not_grow_with_rows(
    client_for, po, plan, team, django_assert_num_queries
):
    client = client_for(po)
    page = url("plan_detail", plan.pk)
    client.get(page)  # warm the session
    # Session, user, the plan with its sections (14), the viewer's role, the backlog status of
    # the scope's references (1, pilots.extensions.scope_item_statuses). The panels above the
    # document (red banner, failing jobs, rollback in progress, the cohort's stored check) ask
    # only when the plan's query flags something to show (pilots.extensions.plan_panel_flags):
    # nothing here. The row lists' add forms load when unfolded.
    with django_assert_num_queries(18) as few:
        client.get(page)

    metric = plan.exit_criteria.first().metric
    for i in range(2, 12):
        ScopeItem.objects.create(plan=plan, position=i + 1, reference=f"US-{i}", title="More")
        CohortSegment.objects.create(
            plan=plan, position=i, dimension="audience", value=f"S{i}", intended_share=Decimal(1)
        )
        ExitCriterion.objects.create(
            plan=plan, position=i + 5, metric=metric, aggregation="total", comparator="eq",
            threshold=Decimal(0),
        )  # fmt: skip
        OnCallShift.objects.create(
            plan=plan, person=po, starts_on=NEXT_MONDAY, ends_on=NEXT_MONDAY + dt.timedelta(i)
        )
        RollbackRehearsal.objects.create(plan=plan, outcome="passed")
        Risk.objects.create(plan=plan, position=i, description="More", likelihood="low",
                            impact="low", owner=po)  # fmt: skip
        TeamHoliday.objects.create(team=team, date=NEXT_MONDAY + dt.timedelta(days=i))
    MembershipFactory(team=team, role=Membership.Role.DEVELOPER)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(page)
    assert response.content.decode().count('data-testid="row"') > 60


def test_stakeholders_read_the_page_without_edit_controls(client_for, stakeholder, plan):
    response = client_for(stakeholder).get(url("plan_detail", plan.pk))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="read-only"' in body
    assert 'data-testid="edit-' not in body
    assert 'data-testid="row-add-form"' not in body
    assert "start-next-monday" not in body
    assert "US-145" in body


def test_the_header_reloads_itself_with_the_current_state_after_any_change(
    client_for, po, stakeholder, plan, django_assert_num_queries
):
    page = client_for(po).get(url("plan_detail", plan.pk)).content.decode()
    assert f'hx-get="{url("plan_head", plan.pk)}?active=plan&amp;access=1&amp;lifecycle=1"' in page
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.IN_REVIEW)

    client = client_for(po)
    client.get(url("plan_head", plan.pk))  # the session, as every later request has it
    with django_assert_num_queries(4):  # session, user, plan, role
        head = client.get(url("plan_head", plan.pk) + "?active=review").content.decode()
    assert 'data-value="in_review"' in head and "Review and sign off…" in head
    assert f'<a href="/plans/{plan.pk}/review" aria-current="page">' in head
    assert 'data-testid="read-only"' not in head
    unknown_tab = client.get(url("plan_head", plan.pk) + "?active=evil").content.decode()
    assert 'aria-current="page"' not in unknown_tab.split('data-testid="plan-tabs"')[1]
    reader = client_for(stakeholder).get(url("plan_head", plan.pk) + "?access=1").content.decode()
    assert 'data-testid="read-only"' in reader and "Review and sign off…" not in reader
    # On the plan page (lifecycle=1) the header loads the lifecycle steps as its own buttons
    # instead of linking to the review page.
    on_plan_page = client.get(url("plan_head", plan.pk) + "?lifecycle=1").content.decode()
    assert "Review and sign off…" not in on_plan_page
    assert f'hx-get="{url("plan_lifecycle", plan.pk)}?in=header"' in on_plan_page


def test_outsiders_get_404_and_anonymous_users_the_login_page(client, client_for, outsider, plan):
    gets = [
        url("plan_detail", plan.pk),
        url("plan_health", plan.pk),
        url("plan_head", plan.pk),
        url("section", plan.pk, "cohort"),
        url("section_edit", plan.pk, "cohort"),
    ]
    posts = [
        url("section", plan.pk, "cohort"),
        url("environment_compliance", plan.pk),
        url("timeline_start_next_monday", plan.pk),
    ]
    data = {"version": "1", "description": "Mine now", "validated": "true"}
    for path in gets:
        assert client_for(outsider).get(path, **HTMX).status_code == 404
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    for path in posts:
        assert client_for(outsider).post(path, data, **HTMX).status_code == 404
        response = client.post(path, data)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    assert set(PlanSection.objects.filter(plan=plan).values_list("version", flat=True)) == {1}


def test_stakeholders_may_not_open_forms_or_save(client_for, stakeholder, plan, po, sm, devops):
    client = client_for(stakeholder)
    data = {"version": "1", **valid_data(Section.COHORT, plan, (po, sm, devops))}

    assert client.get(url("section_edit", plan.pk, "cohort"), **HTMX).status_code == 403
    assert client.post(url("section", plan.pk, "cohort"), data, **HTMX).status_code == 403
    assert client.post(url("section", plan.pk, "cohort"), data).status_code == 403
    assert client.post(url("environment_compliance", plan.pk), data).status_code == 403
    assert client.post(url("timeline_start_next_monday", plan.pk), data).status_code == 403
    plan.cohort.refresh_from_db()
    assert plan.cohort.feedback_channel == ""
    assert version(plan, "cohort") == 1


@pytest.mark.parametrize("role", ["sm", "developer", "devops"])
def test_every_editing_role_can_save_a_section(request, client_for, plan, role):
    user = request.getfixturevalue(role)
    response = client_for(user).post(
        url("section", plan.pk, "change_control"),
        {"version": "1", "change_control": f"Written by {role}"},
        **HTMX,
    )
    assert response.status_code == 200
    plan.refresh_from_db()
    assert plan.change_control == f"Written by {role}"


# --- section partials --------------------------------------------------------------------------


@pytest.mark.parametrize("key", Section.values)
def test_view_partial_of_each_section(client_for, po, plan, key, django_assert_num_queries):
    client = client_for(po)
    client.get(url("plan_detail", plan.pk))
    with django_assert_num_queries(30, exact=False):
        response = client.get(url("section", plan.pk, key), **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert body.strip().startswith(f'<article id="section-{key}"')


def test_view_partial_without_htmx_goes_to_the_section_on_the_page(client_for, po, plan):
    response = client_for(po).get(url("section", plan.pk, "cohort"))
    assert response.status_code == 302
    # The document (the plan page of every state: a running plan opens on its cockpit).
    assert response["Location"] == url("plan_document", plan.pk) + "#section-cohort"


@pytest.mark.parametrize("key", list(SECTION_FORMS))
def test_edit_partial_of_each_section_with_fields(
    client_for, po, plan, key, django_assert_num_queries
):
    client = client_for(po)
    client.get(url("plan_detail", plan.pk))
    with django_assert_num_queries(30, exact=False):
        response = client.get(url("section_edit", plan.pk, key), **HTMX)

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert f'data-testid="section-form-{key}"' in body
    assert '<input type="hidden" name="version" value="1">' in body
    assert f'hx-post="{url("section", plan.pk, key)}"' in body


@pytest.mark.parametrize("key", ["scope", "exit_criteria", "risks"])
def test_list_sections_have_no_edit_form_of_their_own(client_for, po, plan, key):
    client = client_for(po)
    assert client.get(url("section_edit", plan.pk, key), **HTMX).status_code == 404
    assert client.post(url("section", plan.pk, key), {"version": "1"}, **HTMX).status_code == 404


def test_unknown_section_is_404(client_for, po, plan):
    assert client_for(po).get(url("section", plan.pk, "nonsense"), **HTMX).status_code == 404


@pytest.mark.parametrize("key", list(SECTION_FORMS))
def test_saving_each_section_returns_its_view_and_tells_the_page(
    client_for, po, sm, devops, plan, key
):
    data = {"version": "1", **valid_data(key, plan, (po, sm, devops))}

    response = client_for(po).post(url("section", plan.pk, key), data, **HTMX)

    assert response.status_code == 200, response.content.decode()[:2000]
    body = response.content.decode()
    assert "<html" not in body
    assert body.strip().startswith(f'<article id="section-{key}"')
    assert json.loads(response.headers["HX-Trigger"]) == {
        "planChanged": {"section": key},
        "showToast": {"message": f"{Section(key).label} saved.", "level": "success"},
    }
    assert version(plan, key) == 2


def test_saved_values_are_stored_and_shown(client_for, po, sm, devops, plan):
    data = {"version": "1", **valid_data(Section.COHORT, plan, (po, sm, devops))}
    response = client_for(po).post(url("section", plan.pk, "cohort"), data, **HTMX)

    assert "#pilot-feedback" in response.content.decode()
    plan.cohort.refresh_from_db()
    assert plan.cohort.consent_recorded is True
    assert plan.cohort.feedback_channel == "#pilot-feedback"
    assert plan.cohort.target_size == 200


def test_saving_the_overview_updates_the_page_title_out_of_band(client_for, po, sm, devops, plan):
    data = {"version": "1", **valid_data(Section.OVERVIEW, plan, (po, sm, devops))}
    response = client_for(po).post(url("section", plan.pk, "overview"), data, **HTMX)

    assert '<h1 id="plan-title" hx-swap-oob="true">Saved cards, Region A</h1>' in (
        response.content.decode()
    )


def test_saving_a_list_section_with_fields_refreshes_its_lists_with_the_new_version(
    client_for, po, sm, devops, plan
):
    data = {"version": "1", **valid_data(Section.MONITORING, plan, (po, sm, devops))}
    body = client_for(po).post(url("section", plan.pk, "monitoring"), data, **HTMX).content.decode()

    assert 'data-testid="rows-dashboards"' in body
    assert 'name="version" value="2"' in body
    assert 'name="version" value="1"' not in body


def test_query_count_of_a_save_is_constant(
    client_for, po, sm, devops, plan, django_assert_num_queries
):
    client = client_for(po)
    client.get(url("plan_detail", plan.pk))
    data = {"version": "1", **valid_data(Section.ROLLBACK_PLAN, plan, (po, sm, devops))}
    with django_assert_num_queries(60, exact=False):
        response = client.post(url("section", plan.pk, "rollback_plan"), data, **HTMX)
    assert response.status_code == 200


def test_invalid_save_shows_the_error_on_the_field_and_saves_nothing(client_for, po, plan):
    response = client_for(po).post(
        url("section", plan.pk, "overview"),
        {"version": "1", "title": "  ", "summary": "Kept"},
        **HTMX,
    )

    assert response.status_code == 422
    body = response.content.decode()
    assert "<html" not in body
    assert re.search(r'id="id_title_error" role="alert">This field is required', body)
    assert "Kept" in body  # the typed value stays in the form
    assert '<input type="hidden" name="version" value="1">' in body
    assert "HX-Trigger" not in response.headers
    plan.refresh_from_db()
    assert plan.title == "Saved cards pilot (from template)"
    assert version(plan, "overview") == 1


@pytest.mark.parametrize(
    ("check_times", "message"),
    [
        ("10:00, 25:00", "“25:00” is not a time of day"),
        ("ten o'clock", "is not a time of day"),
        (" , ", "Give at least one daily check time"),
    ],
)
def test_check_times_are_parsed_with_a_clear_error(client_for, po, plan, check_times, message):
    data = {
        "version": "1",
        "time_zone": "Europe/Berlin",
        "start_date": "2026-12-14",
        "business_days": "10",
        "check_times": check_times,
    }
    response = client_for(po).post(url("section", plan.pk, "timeline"), data, **HTMX)

    assert response.status_code == 422
    assert message in response.content.decode()
    plan.refresh_from_db()
    assert plan.check_times == [dt.time(10), dt.time(16)]


def test_check_times_are_saved_sorted_and_shown_as_typed(client_for, po, plan):
    data = {
        "version": "1",
        "time_zone": "Europe/Berlin",
        "start_date": "2026-12-14",
        "business_days": "10",
        "check_times": "16:00, 9:30,10:00",
    }
    client = client_for(po)
    client.post(url("section", plan.pk, "timeline"), data, **HTMX)

    plan.refresh_from_db()
    assert plan.check_times == [dt.time(9, 30), dt.time(10), dt.time(16)]
    edit = client.get(url("section_edit", plan.pk, "timeline"), **HTMX).content.decode()
    assert 'value="09:30, 10:00, 16:00"' in edit


@pytest.mark.parametrize("days", ["0", "-3", "261", "ten"])
def test_business_days_out_of_range_are_refused(client_for, po, plan, days):
    data = {"version": "1", "time_zone": "UTC", "business_days": days, "check_times": "10:00"}
    response = client_for(po).post(url("section", plan.pk, "timeline"), data, **HTMX)

    assert response.status_code == 422
    assert 'id="id_business_days_error"' in response.content.decode()
    plan.refresh_from_db()
    assert plan.business_days == 10


def test_people_outside_the_team_are_refused_on_the_field(client_for, po, outsider, plan):
    data = {"version": "1", "owner": po.pk, "decision_owner": outsider.pk}
    response = client_for(po).post(url("section", plan.pk, "ownership"), data, **HTMX)

    assert response.status_code == 422
    assert "Choose a member of the plan&#x27;s team." in response.content.decode()
    plan.refresh_from_db()
    assert plan.decision_owner == po


def test_people_choices_are_the_team_members(client_for, po, sm, devops, outsider, plan):
    body = client_for(po).get(url("section_edit", plan.pk, "ownership"), **HTMX).content.decode()

    assert f'<option value="{sm.pk}"' in body
    assert f'<option value="{outsider.pk}"' not in body


def test_no_js_save_redirects_to_the_section(client_for, po, sm, devops, plan):
    data = {"version": "1", **valid_data(Section.COHORT, plan, (po, sm, devops))}
    response = client_for(po).post(url("section", plan.pk, "cohort"), data)

    assert response.status_code == 302
    # The document (the plan page of every state: a running plan opens on its cockpit).
    assert response["Location"] == url("plan_document", plan.pk) + "#section-cohort"
    assert version(plan, "cohort") == 2


def test_no_js_edit_and_invalid_save_render_the_whole_page(client_for, po, plan):
    client = client_for(po)
    edit = client.get(url("section_edit", plan.pk, "overview"))
    invalid = client.post(url("section", plan.pk, "overview"), {"version": "1", "title": ""})

    for response in (edit, invalid):
        body = response.content.decode()
        assert "<html" in body
        assert 'data-testid="section-form-overview"' in body
        assert 'id="section-risks"' in body  # the rest of the plan is there
    assert invalid.status_code == 422
    assert "This field is required" in invalid.content.decode()
    # The page around the form shows what is saved, not the refused value.
    assert '<h1 id="plan-title">Saved cards pilot (from template)</h1>' in invalid.content.decode()


def test_a_form_without_its_version_is_a_bad_request(client_for, po, plan):
    response = client_for(po).post(
        url("section", plan.pk, "change_control"), {"change_control": "x"}
    )
    assert response.status_code == 400


# --- lost updates ------------------------------------------------------------------------------


def test_stale_save_is_refused_with_the_other_persons_values(client_for, po, sm, devops, plan):
    po_data = {
        "version": "1",
        **valid_data(Section.COHORT, plan, (po, sm, devops)),
        "feedback_channel": "#po-channel",
    }
    sm_data = {**po_data, "feedback_channel": "#sm-channel", "description": "SM's cohort"}
    assert (
        client_for(po).post(url("section", plan.pk, "cohort"), po_data, **HTMX).status_code == 200
    )

    response = client_for(sm).post(url("section", plan.pk, "cohort"), sm_data, **HTMX)

    assert response.status_code == 409
    body = response.content.decode()
    assert "<html" not in body
    assert f"Cohort was changed by {po.display_name} while you were editing" in body
    assert "Your changes were not saved." in body
    assert (
        f'data-testid="theirs-feedback_channel">Saved by {po.display_name}: <strong>#po-channel'
        in body
    )
    assert 'value="#sm-channel"' in body  # the SM's typing is kept
    assert "SM&#x27;s cohort" in body
    # The form now carries the saved version: saving again replaces it knowingly.
    assert '<input type="hidden" name="version" value="2">' in body
    assert "HX-Trigger" not in response.headers
    plan.cohort.refresh_from_db()
    assert plan.cohort.feedback_channel == "#po-channel"
    assert version(plan, "cohort") == 2


def test_no_js_stale_save_shows_the_conflict_on_the_page(client_for, po, plan):
    client_for(po).post(
        url("section", plan.pk, "change_control"), {"version": "1", "change_control": "First"}
    )
    response = client_for(po).post(
        url("section", plan.pk, "change_control"), {"version": "1", "change_control": "Second"}
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert "<html" in body
    assert "Change control was changed by" in body
    assert "Second" in body
    plan.refresh_from_db()
    assert plan.change_control == "First"


def test_editing_different_sections_never_conflicts(client_for, po, sm, devops, plan):
    people = (po, sm, devops)
    cohort = {"version": "1", **valid_data(Section.COHORT, plan, people)}
    overview = {"version": "1", **valid_data(Section.OVERVIEW, plan, people)}
    assert client_for(po).post(url("section", plan.pk, "cohort"), cohort).status_code == 302
    assert client_for(sm).post(url("section", plan.pk, "overview"), overview).status_code == 302


# --- timeline and compliance -------------------------------------------------------------------


def test_starts_next_monday_button_sets_the_start_and_computes_the_end(client_for, po, today):
    plan = PilotPlanFactory(team=po.teams.get(), owner=po)
    TeamHoliday.objects.create(team=plan.team, date=dt.date(2026, 12, 25), name="Christmas")
    data = {
        "version": "1",
        "time_zone": "Europe/Berlin",
        "start_date": "",
        "business_days": "10",
        "check_times": "10:00, 16:00",
        "start": "next_monday",
    }
    response = client_for(po).post(url("section", plan.pk, "timeline"), data, **HTMX)

    assert response.status_code == 200
    plan.refresh_from_db()
    assert plan.start_date == NEXT_MONDAY
    assert plan.end_date == dt.date(2026, 12, 28)  # Christmas is skipped
    body = response.content.decode()
    assert "Mon 28 Dec 2026" in body
    assert "Christmas (Fri 25 Dec)" in body


def test_one_click_start_next_monday_from_the_view(client_for, po, today, plan):
    PilotPlan.objects.filter(pk=plan.pk).update(start_date=None, end_date=None)
    response = client_for(po).post(
        url("timeline_start_next_monday", plan.pk), {"version": "1"}, **HTMX
    )

    assert response.status_code == 200
    assert "planChanged" in response.headers["HX-Trigger"]
    plan.refresh_from_db()
    assert (plan.start_date, plan.end_date) == (NEXT_MONDAY, dt.date(2026, 12, 25))

    stale = client_for(po).post(url("timeline_start_next_monday", plan.pk), {"version": "1"})
    assert stale.status_code == 409
    assert "Timeline was changed by" in stale.content.decode()


def test_the_edit_form_offers_next_monday_in_the_plans_time_zone(client_for, po, plan, today):
    body = client_for(po).get(url("section_edit", plan.pk, "timeline"), **HTMX).content.decode()
    assert 'name="start" value="next_monday"' in body
    assert "Starts next Monday (Mon 14 Dec)" in body


def test_compliance_is_validated_and_withdrawn(client_for, po, sm, devops, plan):
    client = client_for(sm)
    env = {"version": "1", **valid_data(Section.ENVIRONMENT, plan, (po, sm, devops))}
    client.post(url("section", plan.pk, "environment"), env)

    response = client.post(
        url("environment_compliance", plan.pk), {"version": "2", "validated": "true"}, **HTMX
    )

    assert response.status_code == 200
    assert "planChanged" in response.headers["HX-Trigger"]
    assert f"validated by {sm.display_name}" in response.content.decode()
    plan.environment.refresh_from_db()
    assert plan.environment.compliance_validated_by == sm

    withdrawn = client.post(
        url("environment_compliance", plan.pk), {"version": "3", "validated": "false"}
    )
    assert withdrawn.status_code == 302
    plan.environment.refresh_from_db()
    assert plan.environment.compliance_validated_at is None


def test_compliance_cannot_be_validated_without_masking_rules(client_for, po, plan):
    client = client_for(po)
    client.post(
        url("section", plan.pk, "environment"),
        {"version": "1", "environment": "pilot", "uses_real_data": "on"},
    )
    response = client.post(
        url("environment_compliance", plan.pk), {"version": "2", "validated": "true"}, **HTMX
    )

    assert response.status_code == 422
    assert "Write the masking rules before validating them." in response.content.decode()
    plan.environment.refresh_from_db()
    assert plan.environment.compliance_validated_at is None
    assert version(plan, "environment") == 2


# --- plan health -------------------------------------------------------------------------------


def test_health_panel_lists_every_gap_with_a_link_to_its_section(
    client_for, po, plan, django_assert_num_queries
):
    client = client_for(po)
    client.get(url("plan_detail", plan.pk))
    with django_assert_num_queries(25, exact=False) as counted:
        response = client.get(url("plan_health", plan.pk), **HTMX)

    body = response.content.decode()
    assert "<html" not in body
    assert 'hx-trigger="planChanged from:body"' in body
    codes = re.findall(r'data-code="([a-z_0-9]+)"', body)
    assert set(codes) == {
        "empty_environment",
        "rollback_not_rehearsed",
        "cohort_without_consent",
        "cohort_without_feedback_channel",
        "on_call_gap",
    }
    assert '<a href="#section-cohort">Cohort</a>: Cohort consent is not recorded.' in body

    # The same number of queries however many rows the plan has.
    for _ in range(5):
        OnCallShift.objects.create(plan=plan, person=po, starts_on=NEXT_MONDAY, ends_on=NEXT_MONDAY)
        RollbackRehearsal.objects.create(plan=plan, outcome="passed")
    with django_assert_num_queries(len(counted.captured_queries)):
        client.get(url("plan_health", plan.pk), **HTMX)


def test_health_panel_is_green_when_nothing_is_missing(client_for, po, sm, devops, plan):
    client = client_for(po)
    people = (po, sm, devops)
    client.post(
        url("section", plan.pk, "cohort"), {"version": "1", **valid_data("cohort", plan, people)}
    )
    client.post(
        url("section", plan.pk, "environment"), {"version": "1", "environment": "pilot-eu-1"}
    )
    RollbackRehearsal.objects.create(plan=plan, outcome="passed")
    OnCallShift.objects.create(
        plan=plan, person=devops, starts_on=plan.start_date, ends_on=plan.end_date
    )

    body = client.get(url("plan_health", plan.pk), **HTMX).content.decode()

    assert 'data-testid="plan-complete"' in body
    assert 'data-testid="gap"' not in body


# --- the list of plans -------------------------------------------------------------------------


def test_plan_list_shows_the_users_plans_across_teams(client_for, po, plan, other_team):
    mine_elsewhere = PilotPlanFactory(team=other_team, owner=UserFactory(), title="Elsewhere pilot")
    MembershipFactory(team=other_team, user=po, role=Membership.Role.STAKEHOLDER)
    not_mine = PilotPlanFactory(title="Hidden pilot")

    response = client_for(po).get(url("plan_list"))

    body = response.content.decode()
    assert response.status_code == 200
    assert f'href="{url("plan_detail", plan.pk)}"' in body
    assert f'href="{url("plan_detail", mine_elsewhere.pk)}"' in body
    assert not_mine.title not in body
    assert 'data-testid="new-plan"' in body
    assert "Mon 14 Dec 2026" in body and "Fri 25 Dec 2026" in body


def test_plan_list_is_paginated_with_constant_queries(
    client_for, po, team, django_assert_num_queries
):
    client = client_for(po)
    client.get(url("plan_list"))
    for i in range(3):
        plan_create(team=team, author=po, title=f"Pilot {i}")
    # Session, user, the user's teams, the count and the page of plans.
    with django_assert_num_queries(5) as few:
        client.get(url("plan_list"))
    for i in range(3, 30):
        plan_create(team=team, author=po, title=f"Pilot {i}")
    with django_assert_num_queries(len(few.captured_queries)):
        first = client.get(url("plan_list"))
    second = client.get(url("plan_list") + "?page=2")

    assert first.content.decode().count('data-testid="plan-row"') == 25
    assert second.content.decode().count('data-testid="plan-row"') == 5
    assert "Page 2 of 2" in second.content.decode()


def test_plan_list_empty_states(client_for, po, developer):
    assert "start a plan" in client_for(po).get(url("plan_list")).content.decode()
    body = client_for(developer).get(url("plan_list")).content.decode()
    assert "Your team's Product Owner starts them" in body
    assert 'data-testid="new-plan"' not in body
    loner = UserFactory()
    assert "create your team" in client_for(loner).get(url("plan_list")).content.decode()


def test_plan_list_needs_login(client):
    response = client.get(url("plan_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- starting a plan ---------------------------------------------------------------------------


def test_po_starts_a_plan_from_scratch(client_for, po, team):
    response = client_for(po).post(
        url("plan_new"),
        {"how": "scratch", "scratch-team": team.pk, "scratch-title": " Quick pilot ",
         "scratch-summary": "Try it"},
    )  # fmt: skip

    plan = PilotPlan.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("plan_detail", plan.pk)
    assert (plan.title, plan.summary, plan.owner, plan.team) == ("Quick pilot", "Try it", po, team)


def test_po_starts_a_plan_from_the_template(client_for, po, team, today):
    client = client_for(po)
    response = client.post(url("plan_new"), {"how": "template", "template-team": team.pk})

    plan = PilotPlan.objects.get()
    assert response["Location"] == url("plan_detail", plan.pk)
    assert plan.start_date == NEXT_MONDAY
    assert [i.reference for i in plan.scope_items.filter(kind="included")] == ["US-145", "US-152"]
    page = client.get(response["Location"]).content.decode()
    assert "started. Plan health lists what is still missing." in page


def test_po_clones_an_earlier_plan(client_for, po, plan):
    response = client_for(po).post(
        url("plan_new"), {"how": "clone", "clone-source": plan.pk, "clone-title": ""}
    )

    copy = PilotPlan.objects.exclude(pk=plan.pk).get()
    assert response["Location"] == url("plan_detail", copy.pk)
    assert copy.title == "Saved cards pilot (from template) (copy)"
    assert copy.cloned_from == plan
    assert copy.exit_criteria.count() == 5


def test_new_plan_page_offers_the_po_teams_and_their_plans(
    client_for, po, plan, other_team, django_assert_num_queries
):
    MembershipFactory(team=other_team, user=po, role=Membership.Role.DEVELOPER)
    client = client_for(po)
    client.get(url("plan_list"))
    # Session, user, the user's teams, the plans they may copy and their teams' templates.
    with django_assert_num_queries(5):
        response = client.get(url("plan_new"))

    body = response.content.decode()
    assert f'<option value="{plan.team.pk}">Checkout</option>' in body
    assert f'<option value="{other_team.pk}"' not in body
    assert "In Elsewhere you are the Developer" in body
    assert f'<option value="{plan.pk}">Saved cards pilot (from template) · Checkout' in body


def test_only_the_product_owner_starts_plans(client_for, developer, stakeholder, team, plan):
    for user in (developer, stakeholder):
        client = client_for(user)
        page = client.get(url("plan_new")).content.decode()
        assert "You are not the Product Owner of any team" in page
        scratch = {"how": "scratch", "scratch-team": team.pk, "scratch-title": "Mine"}
        assert client.post(url("plan_new"), scratch).status_code == 403
        template = {"how": "template", "template-team": team.pk}
        assert client.post(url("plan_new"), template).status_code == 403
        clone = {"how": "clone", "clone-source": plan.pk}
        assert client.post(url("plan_new"), clone).status_code == 403
    assert PilotPlan.objects.count() == 1


def test_outsiders_cannot_start_or_clone_in_a_team_not_theirs(client_for, outsider, team, plan):
    client = client_for(outsider)
    scratch = {"how": "scratch", "scratch-team": team.pk, "scratch-title": "Mine"}
    assert client.post(url("plan_new"), scratch).status_code == 404
    assert (
        client.post(url("plan_new"), {"how": "clone", "clone-source": plan.pk}).status_code == 404
    )
    assert PilotPlan.objects.count() == 1


def test_starting_a_plan_without_a_title_shows_the_error(client_for, po, team):
    response = client_for(po).post(
        url("plan_new"), {"how": "scratch", "scratch-team": team.pk, "scratch-title": ""}
    )
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()
    assert not PilotPlan.objects.exists()


def test_starting_a_plan_needs_a_way_and_a_login(client, client_for, po):
    assert client_for(po).post(url("plan_new"), {"how": "magic"}).status_code == 400
    response = client.get(url("plan_new"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_other_teams_plans_are_not_offered_for_cloning(client_for, po, other_team):
    foreign = plan_create(team=other_team, author=UserFactory(), title="Foreign")
    second = TeamFactory()
    MembershipFactory(team=second, user=po, role=Membership.Role.PRODUCT_OWNER)
    body = client_for(po).get(url("plan_new")).content.decode()
    assert foreign.title not in body
