"""The audit trail: every change to a plan's content is recorded by a database trigger, with
who did it and the before/after, including bulk updates that bypass model save()."""

from __future__ import annotations

import pghistory
import pytest
from django.urls import reverse
from pghistory.models import Events

from pilots.models import Cohort, ScopeItem
from tests.factories import PilotPlanFactory, section_edit

pytestmark = pytest.mark.django_db


def test_a_service_edit_is_recorded_with_actor_and_before_and_after(team, po):
    plan = PilotPlanFactory(team=team, owner=po)
    with pghistory.context(user=po.pk, url="/test"):
        section_edit(plan, "cohort", po, feedback_channel="#pilot")

    event = Events.objects.references(plan).filter(pgh_model="pilots.CohortEvent").last()
    assert event.pgh_label == "update"
    assert event.pgh_diff == {"feedback_channel": ["", "#pilot"]}
    assert event.pgh_context["user"] == po.pk


def test_bulk_updates_and_deletes_are_recorded_too(team, po):
    plan = PilotPlanFactory(team=team, owner=po)
    ScopeItem.objects.create(plan=plan, position=1, reference="US-1", title="One")
    ScopeItem.objects.create(plan=plan, position=2, reference="US-2", title="Two")

    with pghistory.context(user=po.pk):
        ScopeItem.objects.filter(plan=plan).update(title="Renamed")  # no save(), no signals
        Cohort.objects.filter(plan=plan).update(target_size=50)
        ScopeItem.objects.filter(plan=plan, reference="US-2").delete()

    events = Events.objects.references(plan)
    renamed = events.filter(pgh_model="pilots.ScopeItemEvent", pgh_label="update")
    assert renamed.count() == 2
    assert all(e.pgh_diff["title"][1] == "Renamed" for e in renamed)
    assert events.filter(pgh_model="pilots.CohortEvent", pgh_label="update").exists()
    assert events.filter(pgh_model="pilots.ScopeItemEvent", pgh_label="delete").count() == 1


def test_an_edit_through_the_browser_is_attributed_to_the_logged_in_user(team, po, client_for):
    plan = PilotPlanFactory(team=team, owner=po)
    version = plan.sections.get(key="change_control").version
    response = client_for(po).post(
        reverse("pilots:section", args=[plan.pk, "change_control"]),
        {"version": version, "change_control": "Findings become backlog items weekly"},
    )
    assert response.status_code in {200, 302}

    event = Events.objects.references(plan).filter(pgh_model="pilots.PilotPlanEvent").last()
    assert event.pgh_diff["change_control"][1] == "Findings become backlog items weekly"
    assert event.pgh_context["user"] == po.pk


def test_reading_a_page_carries_no_audit_context_and_changing_one_does(team, po, client_for):
    """GETs change nothing, so the audit context's wrapper (which reads every query's text) is
    left off them; a POST still records who made its change."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    plan = PilotPlanFactory(team=team, owner=po)
    client = client_for(po)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("pilots:plan_detail", args=[plan.pk])).status_code == 200
    assert queries.captured_queries
    assert not [q for q in queries.captured_queries if "pghistory.context" in q["sql"]]

    version = plan.sections.get(key="change_control").version
    with CaptureQueriesContext(connection) as queries:
        client.post(
            reverse("pilots:section", args=[plan.pk, "change_control"]),
            {"version": version, "change_control": "Weekly"},
        )
    assert [q for q in queries.captured_queries if "pghistory.context" in q["sql"]]
    event = Events.objects.references(plan).filter(pgh_model="pilots.PilotPlanEvent").last()
    assert event.pgh_context["user"] == po.pk
