"""Long row lists over the API (issue #15): the plan document holds the first rows of each list
with a count and the URL of the rest, and each list's endpoint answers page by page."""

from __future__ import annotations

import pytest
from django.test import Client

from pilots import services
from pilots.api.serializers import ROWS_PER_PAGE
from pilots.services import ROW_KINDS, section_versions
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

RISKS = 120


@pytest.fixture
def plan(team, po):
    plan = PilotPlanFactory(team=team, owner=po, title="Saved cards pilot")
    kind = ROW_KINDS["risks"]
    for i in range(RISKS):
        services.row_add(
            plan=plan,
            kind=kind,
            user=po,
            expected_version=section_versions(plan=plan)["risks"],
            values={"description": f"Risk {i}", "likelihood": "low", "impact": "low"},
        )
    return plan


def test_the_document_holds_the_first_rows_and_says_where_the_rest_is(client_for, po, plan):
    body = client_for(po).get(f"/api/v1/plans/{plan.pk}").json()

    risks = body["sections"]["risks"]["risks"]
    assert len(risks) == ROWS_PER_PAGE == 50
    assert [r["description"] for r in risks[:2]] == ["Risk 0", "Risk 1"]
    ref = body["row_lists"]["risks"]
    assert ref == {
        "count": RISKS,
        "complete": False,
        "url": f"http://testserver/api/v1/plans/{plan.pk}/rows/risks",
        "next": f"http://testserver/api/v1/plans/{plan.pk}/rows/risks?page=2",
    }
    assert set(body["row_lists"]) == set(ROW_KINDS)
    assert body["row_lists"]["dashboards"] == {
        "count": 0,
        "complete": True,
        "url": f"http://testserver/api/v1/plans/{plan.pk}/rows/dashboards",
        "next": None,
    }


def test_following_next_reads_the_rest_of_the_list_in_order(client_for, po, plan):
    client = client_for(po)
    document = client.get(f"/api/v1/plans/{plan.pk}").json()
    rows = list(document["sections"]["risks"]["risks"])
    url = document["row_lists"]["risks"]["next"]
    pages = 0
    while url:
        page = client.get(url).json()
        assert page["count"] == RISKS
        assert page["previous"] is not None
        rows += page["rows"]
        url = page["next"]
        pages += 1
    assert pages == 2
    assert [r["description"] for r in rows] == [f"Risk {i}" for i in range(RISKS)]
    assert [r["position"] for r in rows] == list(range(1, RISKS + 1))


def test_a_list_answers_its_first_page_with_a_count_and_links(client_for, po, plan):
    body = client_for(po).get(f"/api/v1/plans/{plan.pk}/rows/risks").json()
    assert body["count"] == RISKS
    assert len(body["rows"]) == ROWS_PER_PAGE
    assert body["previous"] is None
    assert body["next"] == f"http://testserver/api/v1/plans/{plan.pk}/rows/risks?page=2"
    last = client_for(po).get(f"/api/v1/plans/{plan.pk}/rows/risks?page=3").json()
    assert len(last["rows"]) == RISKS - 2 * ROWS_PER_PAGE
    assert last["next"] is None
    assert last["previous"] == f"http://testserver/api/v1/plans/{plan.pk}/rows/risks?page=2"


def test_a_short_list_is_one_page(client_for, po, plan):
    body = client_for(po).get(f"/api/v1/plans/{plan.pk}/rows/dashboards").json()
    assert body == {
        "kind": "dashboards",
        "section": "monitoring",
        "version": section_versions(plan=plan)["monitoring"],
        "count": 0,
        "next": None,
        "previous": None,
        "rows": [],
    }


@pytest.mark.parametrize("page", ["4", "0", "last-but-one"])
def test_a_page_past_the_end_or_not_a_number_is_404(client_for, po, plan, page):
    response = client_for(po).get(f"/api/v1/plans/{plan.pk}/rows/risks?page={page}")
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid page."


def test_pages_are_refused_to_who_may_not_see_the_plan(client_for, outsider, plan):
    url = f"/api/v1/plans/{plan.pk}/rows/risks?page=2"
    assert client_for(outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 401


def test_a_stakeholder_reads_the_pages(client_for, stakeholder, plan):
    body = client_for(stakeholder).get(f"/api/v1/plans/{plan.pk}/rows/risks?page=3").json()
    assert len(body["rows"]) == RISKS - 2 * ROWS_PER_PAGE


def test_the_schema_documents_the_pages_and_the_row_lists(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    get = schema["paths"]["/api/v1/plans/{plan_id}/rows/risks"]["get"]
    assert "page" in [p["name"] for p in get["parameters"]]
    components = schema["components"]["schemas"]
    listed = next(v for k, v in components.items() if k.startswith("RiskList"))
    assert {"count", "next", "previous", "rows"} <= set(listed["properties"])
    document = components["PlanDocument"]["properties"]
    assert document["row_lists"]["type"] == "object"
    ref = components["RowListRef"]["properties"]
    assert set(ref) == {"count", "complete", "url", "next"}
