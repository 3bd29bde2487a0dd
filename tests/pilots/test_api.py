"""Plans over the REST API: list, create, the plan document, sections and rows with ETag /
If-Match (428 without, 412 when stale, nothing saved), validation, permissions, query counts and
the OpenAPI schema."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership, TeamHoliday
from catalogue.models import MetricDefinition
from pilots import services
from pilots.api.serializers import ROW_SERIALIZERS, SECTION_SERIALIZERS
from pilots.models import (
    Cohort,
    EntryCriterion,
    EnvironmentAndData,
    ExitCriterion,
    PilotPlan,
    PlanSection,
    RollbackPlan,
    RollbackTrigger,
    Section,
)
from pilots.services import ROW_KINDS, row_kind, section_versions
from tests.factories import MembershipFactory, PilotPlanFactory, TeamFactory, UserFactory
from tests.factories import plan_snapshot as snapshot

pytestmark = pytest.mark.django_db

PLANS = "/api/v1/plans"
WEDNESDAY = dt.date(2026, 3, 4)
MONDAY = dt.date(2026, 3, 2)


def plan_url(plan_id: int) -> str:
    return f"{PLANS}/{plan_id}"


def section_url(plan_id: int, key: str) -> str:
    return f"{PLANS}/{plan_id}/sections/{key}"


def rows_url(plan_id: int, slug: str) -> str:
    return f"{PLANS}/{plan_id}/rows/{slug}"


def row_url(plan_id: int, slug: str, row_id: int) -> str:
    return f"{PLANS}/{plan_id}/rows/{slug}/{row_id}"


def send(
    client: Client, method: str, url: str, data: Any = None, *, if_match: str | int | None = None
):  # type: ignore[no-untyped-def]
    """A JSON request; ``if_match`` as a version number (quoted for you) or a raw header."""
    headers = {}
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"' if isinstance(if_match, int) else if_match
    body = json.dumps(data) if data is not None else ""
    return client.generic(method, url, body, content_type="application/json", headers=headers)


def version(plan: PilotPlan, key: str) -> int:
    return section_versions(plan=plan)[key]


def add_row(plan: PilotPlan, slug: str, user, **values):  # type: ignore[no-untyped-def]
    kind = row_kind(slug)
    return services.row_add(
        plan=plan, kind=kind, user=user, expected_version=version(plan, kind.section), values=values
    )


def metric(key: str) -> MetricDefinition:
    return MetricDefinition.objects.get(key=key, team__isnull=True)


@pytest.fixture
def plan(team, po):  # type: ignore[no-untyped-def]
    return PilotPlanFactory(team=team, owner=po, title="Saved cards")


@pytest.fixture
def template_plan(team, po, sm, developer, devops):  # type: ignore[no-untyped-def]
    return services.plan_create_from_template(team=team, author=po, today=WEDNESDAY)


@pytest.fixture
def anonymous() -> Client:
    return Client()


# --- list ----------------------------------------------------------------------------------------


def test_plan_list_has_the_callers_plans_across_teams_newest_change_first(
    client_for, team, po, other_team, outsider
):
    mine = PilotPlanFactory(team=team, owner=po, title="Saved cards")
    theirs = PilotPlanFactory(team=other_team, owner=outsider, title="Elsewhere pilot")
    MembershipFactory(team=other_team, user=po, role=Membership.Role.STAKEHOLDER)
    PilotPlanFactory(team=TeamFactory(), title="Not mine")

    response = client_for(po).get(PLANS)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [p["id"] for p in body["results"]] == [theirs.pk, mine.pk]
    first = body["results"][1]
    assert first["title"] == "Saved cards"
    assert first["team"] == {"id": team.pk, "name": "Checkout"}
    assert first["status"] == "draft"
    assert first["version"] == 1
    assert first["owner"] == {"id": po.pk, "email": po.email, "full_name": po.full_name}


def test_plan_list_filters_by_team_and_status(client_for, team, po, other_team, outsider):
    draft = PilotPlanFactory(team=team, owner=po)
    PilotPlanFactory(team=team, owner=po, status=PilotPlan.Status.APPROVED)
    MembershipFactory(team=other_team, user=po, role=Membership.Role.DEVELOPER)
    PilotPlanFactory(team=other_team, owner=outsider)
    client = client_for(po)

    by_team = client.get(PLANS, {"team": team.pk}).json()
    by_both = client.get(PLANS, {"team": team.pk, "status": "draft"}).json()

    assert by_team["count"] == 2
    assert [p["id"] for p in by_both["results"]] == [draft.pk]


def test_plan_list_refuses_an_unknown_status(client_for, po):
    response = client_for(po).get(PLANS, {"status": "finished"})

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_plan_list_is_a_constant_number_of_queries(client_for, team, po, django_assert_num_queries):
    client = client_for(po)
    PilotPlanFactory(team=team, owner=po)
    with CaptureQueriesContext(connection) as one:
        client.get(PLANS)
    for _ in range(5):
        PilotPlanFactory(team=team, owner=UserFactory())

    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(PLANS)

    assert response.json()["count"] == 6


def test_anonymous_gets_401_from_the_plan_list(anonymous, db):
    assert anonymous.get(PLANS).status_code == 401


# --- create --------------------------------------------------------------------------------------


def test_po_starts_a_plan_from_scratch(client_for, team, po):
    response = send(
        client_for(po), "POST", PLANS, {"team": team.pk, "title": "Saved cards", "summary": "Why"}
    )

    assert response.status_code == 201
    plan = PilotPlan.objects.get()
    assert response["Location"] == f"http://testserver{plan_url(plan.pk)}"
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body["id"] == plan.pk
    assert body["sections"]["overview"] == {
        "version": 1,
        "title": "Saved cards",
        "summary": "Why",
        "release_ref": "",
    }
    assert (plan.owner, plan.created_by, plan.team) == (po, po, team)


def test_po_starts_a_plan_from_the_template_with_their_own_title(client_for, team, po, sm):
    response = send(
        client_for(po), "POST", PLANS, {"team": team.pk, "title": "Q3 cards", "from_template": True}
    )

    assert response.status_code == 201
    sections = response.json()["sections"]
    assert sections["overview"]["title"] == "Q3 cards"
    assert sections["overview"]["summary"].startswith("Validate saved cards")
    assert [i["reference"] for i in sections["scope"]["scope_items"]][:2] == ["US-145", "US-152"]
    assert sections["timeline"]["check_times"] == ["10:00", "16:00"]
    assert PilotPlan.objects.get().title == "Q3 cards"


def test_po_clones_an_earlier_plan(client_for, team, po, template_plan):
    response = send(client_for(po), "POST", PLANS, {"team": team.pk, "clone_of": template_plan.pk})

    assert response.status_code == 201
    body = response.json()
    assert body["cloned_from"] == template_plan.pk
    assert body["sections"]["overview"]["title"] == f"{template_plan.title} (copy)"
    assert len(body["sections"]["exit_criteria"]["exit_criteria"]) == 5


def test_cloning_a_plan_of_another_team_is_refused(client_for, team, po, other_team, outsider):
    elsewhere = PilotPlanFactory(team=other_team, owner=outsider)

    response = send(client_for(po), "POST", PLANS, {"team": team.pk, "clone_of": elsewhere.pk})

    assert response.status_code == 400
    assert response.json()["errors"] == {"clone_of": ["No such plan in this team."]}
    assert PilotPlan.objects.filter(team=team).count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "colour": "red"}, "colour"),
        ({"from_template": True, "clone_of": 1}, "non_field_errors"),
        ({"from_template": True, "title": ""}, "title"),  # the template's title replaced by blank
    ],
)
def test_an_invalid_new_plan_is_400_naming_the_field_and_nothing_is_saved(
    client_for, team, po, payload, field
):
    response = send(client_for(po), "POST", PLANS, {"team": team.pk, **payload})

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not PilotPlan.objects.exists()


def test_only_the_teams_po_starts_plans(client_for, team, po, sm, stakeholder, outsider):
    payload = {"team": team.pk, "title": "Saved cards"}

    assert send(client_for(sm), "POST", PLANS, payload).status_code == 403
    assert send(client_for(stakeholder), "POST", PLANS, payload).status_code == 403
    assert send(client_for(outsider), "POST", PLANS, payload).status_code == 404
    assert send(Client(), "POST", PLANS, payload).status_code == 401
    assert not PilotPlan.objects.exists()


# --- the plan document ---------------------------------------------------------------------------


def test_plan_document_has_every_section_its_rows_versions_and_health(
    client_for, po, sm, devops, template_plan
):
    response = client_for(sm).get(plan_url(template_plan.pk))

    assert response.status_code == 200
    template_plan.refresh_from_db()
    assert response["ETag"] == f'"{template_plan.version}"'
    body = response.json()
    assert body["status"] == "draft"
    assert body["version"] == template_plan.version
    assert (body["my_role"], body["can_edit"]) == ("scrum_master", True)
    sections = body["sections"]
    assert list(sections) == list(Section.values)
    assert {key: s["version"] for key, s in sections.items()} == section_versions(
        plan=template_plan
    )
    assert sections["timeline"]["start_date"] == "2026-03-09"
    assert sections["timeline"]["end_date"] == "2026-03-20"
    assert sections["timeline"]["business_days"] == 10
    assert sections["ownership"]["owner"] == {
        "id": po.pk,
        "email": po.email,
        "full_name": po.full_name,
    }
    assert sections["ownership"]["rollback_executor"]["email"] == devops.email
    scope = sections["scope"]["scope_items"]
    assert [(i["kind"], i["position"], i["reference"]) for i in scope] == [
        ("included", 1, "US-145"),
        ("included", 2, "US-152"),
        ("excluded", 1, ""),
    ]
    assert sections["cohort"]["segments"][0]["intended_share"] == 100
    csat = sections["exit_criteria"]["exit_criteria"][2]
    assert csat["metric"] == {
        "id": metric("csat").pk,
        "key": "csat",
        "name": metric("csat").name,
        "unit": metric("csat").unit,
    }
    assert (csat["comparator"], csat["threshold"], csat["min_sample_size"]) == ("ge", 4.2, 30)
    triggers = sections["rollback_triggers"]["rollback_triggers"]
    assert [(t["mode"], t["sustained_minutes"]) for t in triggers] == [
        ("any", None),
        ("sustained", 30),
    ]
    assert [s["position"] for s in sections["rollback_plan"]["rollback_steps"]] == [1, 2, 3]
    assert sections["rollback_plan"]["rollback_steps"][0]["owner"]["id"] == devops.pk
    assert [s["severity"] for s in sections["monitoring"]["response_slas"]] == ["p1", "p2"]
    assert sections["monitoring"]["dashboards"][0]["name"] == "P-01"
    codes = {(gap["section"], gap["code"]) for gap in body["health"]}
    assert ("rollback_plan", "rollback_not_rehearsed") in codes
    assert ("cohort", "cohort_without_consent") in codes
    assert all(set(gap) == {"section", "code", "message"} for gap in body["health"])


def test_plan_document_of_a_stakeholder_says_they_cannot_edit(client_for, plan, stakeholder):
    body = client_for(stakeholder).get(plan_url(plan.pk)).json()

    assert (body["my_role"], body["can_edit"]) == ("stakeholder", False)


def test_plan_document_is_404_for_another_team_and_401_anonymous(
    client_for, plan, outsider, anonymous
):
    assert client_for(outsider).get(plan_url(plan.pk)).status_code == 404
    assert client_for(outsider).get(plan_url(plan.pk + 1000)).status_code == 404
    assert anonymous.get(plan_url(plan.pk)).status_code == 401


def fill(plan: PilotPlan, n: int, po, devops) -> None:  # type: ignore[no-untyped-def]
    """``n`` rows in every list of ``plan`` (people and metrics set, so every join is used)."""
    for i in range(n):
        add_row(plan, "scope-items", po, reference=f"US-{i}", title=f"Story {i}")
        add_row(plan, "segments", po, dimension="region", value=f"R{i}", intended_share=10)
        add_row(
            plan,
            "entry-criteria",
            po,
            text=f"Criterion {i}",
            status="met",
            evidence_url=f"https://ci.example.com/{i}",
        )
        add_row(
            plan,
            "exit-criteria",
            po,
            metric=metric("errors"),
            aggregation="rate_per",
            denominator=metric("sessions"),
            per_n=1000,
            comparator="lt",
            threshold=2,
        )
        add_row(plan, "dashboards", po, name=f"D-{i}", url="https://dash.example.com/")
        add_row(plan, "on-call", po, person=devops, starts_on=MONDAY, ends_on=MONDAY)
        add_row(plan, "response-slas", po, severity=f"p{i + 1}", response_minutes=15)
        add_row(
            plan,
            "rollback-triggers",
            po,
            metric=metric("errors"),
            comparator="gt",
            threshold=1,
            mode="any",
        )
        add_row(plan, "rollback-steps", po, action=f"Step {i}", owner=devops)
        add_row(plan, "rehearsals", po, outcome="passed")
        add_row(plan, "risks", po, description=f"Risk {i}", likelihood="low", impact="low",
                owner=po)  # fmt: skip


# Session and user (2); the plan with its one-to-one sections and their people (1); section
# versions, the team's holidays and the first rows of the 11 lists (13); the caller's role (1).
# People and metrics of the rows, entry criteria's confirmers too, are joined in; plan health
# reads the plan's own query and adds none.
PLAN_DOCUMENT_QUERIES = 17


def test_plan_document_is_a_constant_number_of_queries(
    client_for, team, po, devops, django_assert_num_queries
):
    client = client_for(po)
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 3, 10), name="Holiday")
    small = PilotPlanFactory(team=team, owner=po)
    fill(small, 1, po, devops)
    larger = PilotPlanFactory(team=team, owner=po)
    fill(larger, 3, po, devops)

    with django_assert_num_queries(PLAN_DOCUMENT_QUERIES):
        assert client.get(plan_url(small.pk)).status_code == 200
    with django_assert_num_queries(PLAN_DOCUMENT_QUERIES):
        response = client.get(plan_url(larger.pk))

    assert response.status_code == 200
    assert len(response.json()["sections"]["entry_criteria"]["entry_criteria"]) == 3


def test_plan_document_answers_304_to_its_current_etag(client_for, plan, po):
    client = client_for(po)
    etag = client.get(plan_url(plan.pk))["ETag"]

    unchanged = client.get(plan_url(plan.pk), headers={"If-None-Match": etag})
    send(client, "PATCH", section_url(plan.pk, "overview"), {"summary": "New"}, if_match=1)
    changed = client.get(plan_url(plan.pk), headers={"If-None-Match": etag})

    assert unchanged.status_code == 304
    assert unchanged["ETag"] == etag
    assert changed.status_code == 200
    assert changed["ETag"] == '"2"'


# --- single-valued sections ----------------------------------------------------------------------


def test_section_answers_with_its_fields_and_its_version_as_etag(client_for, plan, po, sm):
    services.section_update(
        plan=plan, key=Section.COHORT, user=sm, expected_version=1, values={"target_size": 200}
    )

    response = client_for(po).get(section_url(plan.pk, "cohort"))

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    assert response.json() == {
        "version": 2,
        "description": "",
        "target_size": 200,
        "opt_in_required": True,
        "consent_recorded": False,
        "feedback_channel": "",
        "practical_bound": 5,
    }


def test_a_change_without_if_match_is_428_and_nothing_is_saved(client_for, plan, po):
    before = snapshot(plan)

    response = send(client_for(po), "PATCH", section_url(plan.pk, "cohort"), {"target_size": 5})

    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert snapshot(plan) == before


def test_if_match_star_is_428_too(client_for, plan, po):
    response = send(
        client_for(po), "PATCH", section_url(plan.pk, "cohort"), {"target_size": 5}, if_match="*"
    )

    assert response.status_code == 428


def test_a_stale_change_is_412_with_the_current_version_and_nothing_is_saved(
    client_for, plan, po, sm
):
    # Both read version 1; the Scrum Master saves first.
    assert (
        send(
            client_for(sm),
            "PATCH",
            section_url(plan.pk, "cohort"),
            {"target_size": 200},
            if_match=1,
        ).status_code
        == 200
    )
    before = snapshot(plan)

    response = send(
        client_for(po), "PATCH", section_url(plan.pk, "cohort"), {"target_size": 150}, if_match=1
    )

    assert response.status_code == 412
    body = response.json()
    assert body["section"] == "cohort"
    assert body["current_version"] == 2
    assert body["updated_by"] == {"id": sm.pk, "email": sm.email, "full_name": sm.full_name}
    assert "not saved" in body["detail"]
    assert snapshot(plan) == before
    assert Cohort.objects.get(plan=plan).target_size == 200


def test_the_current_if_match_saves_and_answers_with_the_new_etag(client_for, plan, po):
    client = client_for(po)
    plan_etag = client.get(plan_url(plan.pk))["ETag"]

    response = send(
        client,
        "PATCH",
        section_url(plan.pk, "cohort"),
        {"target_size": 200, "feedback_channel": "#pilot"},
        if_match=1,
    )

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    assert response.json()["version"] == 2
    assert response.json()["target_size"] == 200
    cohort = Cohort.objects.get(plan=plan)
    assert (cohort.target_size, cohort.feedback_channel) == (200, "#pilot")
    assert client.get(plan_url(plan.pk))["ETag"] != plan_etag
    assert PlanSection.objects.get(plan=plan, key="cohort").updated_by == po


@pytest.mark.parametrize("header", ['W/"1"', "1", '"7", "1"'])
def test_if_match_accepts_weak_bare_and_listed_tags(client_for, plan, po, header):
    response = send(
        client_for(po), "PATCH", section_url(plan.pk, "overview"), {"summary": "s"}, if_match=header
    )

    assert response.status_code == 200


def test_a_service_conflict_after_the_check_is_412_too(client_for, plan, po, sm, monkeypatch):
    """Someone saves between the If-Match check and the save: the service's compare-and-set
    refuses it, and the exception handler answers 412 with the version that won."""
    original = services.section_update

    def someone_saves_first(**kwargs: Any) -> PilotPlan:
        original(plan=PilotPlan.objects.get(pk=plan.pk), key="cohort", user=sm,
                 expected_version=1, values={"target_size": 7})  # fmt: skip
        return original(**kwargs)

    monkeypatch.setattr(services, "section_update", someone_saves_first)

    response = send(
        client_for(po), "PATCH", section_url(plan.pk, "cohort"), {"target_size": 9}, if_match=1
    )

    assert response.status_code == 412
    assert response.json()["current_version"] == 2
    assert response.json()["updated_by"]["email"] == sm.email


def test_put_replaces_every_field_and_takes_people_by_id_or_email(client_for, plan, po, sm, devops):
    response = send(
        client_for(po),
        "PUT",
        section_url(plan.pk, "ownership"),
        {
            "owner": po.pk,
            "scrum_master": sm.email.upper(),
            "decision_owner": {"id": po.pk, "email": po.email},  # as read
            "rollback_executor": devops.pk,
        },
        if_match=1,
    )

    assert response.status_code == 200
    assert response.json()["scrum_master"]["id"] == sm.pk
    assert response.json()["rollback_executor"]["email"] == devops.email
    plan.refresh_from_db()
    assert (plan.scrum_master, plan.decision_owner, plan.rollback_executor) == (sm, po, devops)


def test_put_needs_every_field(client_for, plan, po):
    before = snapshot(plan)

    response = send(
        client_for(po), "PUT", section_url(plan.pk, "cohort"), {"target_size": 5}, if_match=1
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "description",
        "opt_in_required",
        "consent_recorded",
        "feedback_channel",
    }
    assert snapshot(plan) == before


def test_a_section_read_can_be_sent_back_with_a_change(client_for, template_plan, po):
    client = client_for(po)
    read = client.get(section_url(template_plan.pk, "rollback_plan"))
    section = read.json()
    section["communication_plan"] = "Call everyone."

    response = send(
        client,
        "PUT",
        section_url(template_plan.pk, "rollback_plan"),
        section,
        if_match=read["ETag"],
    )

    assert response.status_code == 200
    assert response.json()["approver"]["id"] == po.pk
    assert RollbackPlan.objects.get(plan=template_plan).communication_plan == "Call everyone."


def test_timeline_computes_the_end_date_and_takes_check_times_as_hh_mm(client_for, plan, team, po):
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 3, 6), name="Holiday")

    response = send(
        client_for(po),
        "PATCH",
        section_url(plan.pk, "timeline"),
        {"start_date": "2026-03-02", "business_days": 5, "check_times": ["16:00", "09:30"]},
        if_match=1,
    )

    assert response.status_code == 200
    body = response.json()
    assert body["end_date"] == "2026-03-09"  # Mon–Thu, then the holiday Friday is skipped
    assert body["check_times"] == ["09:30", "16:00"]
    plan.refresh_from_db()
    assert plan.end_date == dt.date(2026, 3, 9)
    assert plan.check_times == [dt.time(9, 30), dt.time(16, 0)]


@pytest.mark.parametrize(
    ("key", "payload", "field", "reason"),
    [
        ("timeline", {"business_days": -3}, "business_days", ""),
        ("timeline", {"business_days": 0}, "business_days", "between 1 and 260"),
        ("timeline", {"business_days": 261}, "business_days", "between 1 and 260"),
        ("timeline", {"business_days": "ten"}, "business_days", "valid integer"),
        ("timeline", {"check_times": ["25:00"]}, "check_times", "Time has wrong format"),
        ("timeline", {"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        ("overview", {"title": ""}, "title", "blank"),
        ("overview", {"colour": "red"}, "colour", "Not a field of this section."),
        ("cohort", {"target_size": -1}, "target_size", "greater than or equal to 0"),
        ("ownership", {"scrum_master": 999999}, "scrum_master", "member of the plan's team"),
        ("ownership", {"owner": None}, "owner", "null"),
        ("rollback_plan", {"approver": "nobody@example.test"}, "approver", "member"),
    ],
)
def test_invalid_section_input_is_400_naming_the_field_and_nothing_is_saved(
    client_for, plan, po, key, payload, field, reason
):
    before = snapshot(plan)

    response = send(client_for(po), "PATCH", section_url(plan.pk, key), payload, if_match=1)

    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [field]
    assert reason in " ".join(body["errors"][field])
    assert snapshot(plan) == before


def test_people_from_another_team_are_refused(client_for, plan, po, outsider):
    response = send(
        client_for(po),
        "PATCH",
        section_url(plan.pk, "ownership"),
        {"scrum_master": outsider.pk},
        if_match=1,
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"scrum_master": ["Choose a member of the plan's team."]}


def test_a_stale_and_invalid_change_is_412_the_precondition_comes_first(client_for, plan, po):
    response = send(
        client_for(po), "PATCH", section_url(plan.pk, "timeline"), {"business_days": -1},
        if_match=5,
    )  # fmt: skip

    assert response.status_code == 412


def test_a_list_section_has_no_fields_of_its_own_404_in_json(client_for, plan, po):
    response = client_for(po).get(section_url(plan.pk, "monitoring") + "x")
    scope = client_for(po).get(section_url(plan.pk, "scope"))

    assert response.status_code == 404
    assert scope.status_code == 404
    assert "rows/scope-items" in scope.json()["detail"]


def test_compliance_is_validated_with_who_and_when(client_for, plan, po, sm):
    client = client_for(sm)
    url = section_url(plan.pk, "environment") + "/compliance"

    without_masking = send(client, "POST", url, {"validated": True}, if_match=1)
    send(client, "PATCH", section_url(plan.pk, "environment"), {"masking_rules": "Hash e-mails"},
         if_match=1)  # fmt: skip
    validated = send(client, "POST", url, {"validated": True}, if_match=2)

    assert without_masking.status_code == 400
    assert "masking_rules" in without_masking.json()["errors"]
    assert validated.status_code == 200
    assert validated["ETag"] == '"3"'
    assert validated.json()["compliance_validated_by"]["email"] == sm.email
    assert EnvironmentAndData.objects.get(plan=plan).compliance_validated_by == sm


# --- rows ----------------------------------------------------------------------------------------


def test_exit_criteria_are_added_edited_moved_and_removed_through_the_api(client_for, plan, po):
    client = client_for(po)
    url = rows_url(plan.pk, "exit-criteria")

    csat = send(client, "POST", url, {"metric": "csat", "aggregation": "mean", "comparator": "ge",
                                      "threshold": "4.2", "unit": "/ 5"}, if_match=1)  # fmt: skip
    p1 = send(client, "POST", url, {"metric": metric("p1_defects").pk, "aggregation": "total",
                                    "comparator": "eq", "threshold": 0}, if_match=2)  # fmt: skip

    assert csat.status_code == 201
    assert csat["ETag"] == '"2"'
    csat_id = csat.json()["id"]
    assert csat["Location"] == f"http://testserver{row_url(plan.pk, 'exit-criteria', csat_id)}"
    assert csat.json()["metric"]["key"] == "csat"
    assert csat.json()["threshold"] == 4.2
    assert csat.json()["position"] == 1
    assert p1.json()["position"] == 2
    p1_id = p1.json()["id"]

    moved = send(client, "POST", row_url(plan.pk, "exit-criteria", p1_id) + "/move",
                 {"offset": -1}, if_match=3)  # fmt: skip
    assert moved.status_code == 200
    assert moved["ETag"] == '"4"'
    assert moved.json()["version"] == 4
    assert [(r["id"], r["position"]) for r in moved.json()["rows"]] == [(p1_id, 1), (csat_id, 2)]

    edited = send(client, "PATCH", row_url(plan.pk, "exit-criteria", csat_id),
                  {"threshold": 4.5, "blocking": False}, if_match=4)  # fmt: skip
    assert edited.status_code == 200
    assert edited["ETag"] == '"5"'
    assert (edited.json()["threshold"], edited.json()["blocking"]) == (4.5, False)
    assert edited.json()["metric"]["key"] == "csat"  # untouched by a partial change

    removed = client.delete(row_url(plan.pk, "exit-criteria", p1_id), headers={"If-Match": '"5"'})
    assert removed.status_code == 204
    assert removed["ETag"] == '"6"'

    listed = client.get(url)
    assert listed["ETag"] == '"6"'
    assert listed.json()["section"] == "exit_criteria"
    assert [(r["id"], r["position"]) for r in listed.json()["rows"]] == [(csat_id, 1)]
    criterion = ExitCriterion.objects.get(plan=plan)
    assert (criterion.threshold, criterion.blocking) == (Decimal("4.5"), False)
    assert version(plan, "exit_criteria") == 6


def test_one_row_is_read_with_its_sections_version(client_for, template_plan, po):
    step = template_plan.rollback_steps.get(position=2)

    response = client_for(po).get(row_url(template_plan.pk, "rollback-steps", step.pk))

    assert response.status_code == 200
    assert response["ETag"] == f'"{version(template_plan, "rollback_plan")}"'
    assert response.json()["action"] == step.action


def test_marking_an_entry_criterion_met_records_who_confirmed_it(client_for, plan, developer):
    row = add_row(plan, "entry-criteria", developer, text="Runbook approved")

    response = send(
        client_for(developer),
        "PATCH",
        row_url(plan.pk, "entry-criteria", row.pk),
        {"status": "met", "evidence_url": "https://wiki.example.com/runbook"},
        if_match=2,
    )

    assert response.status_code == 200
    assert response.json()["confirmed_by"]["id"] == developer.pk
    assert EntryCriterion.objects.get(pk=row.pk).confirmed_by == developer


def test_a_rollback_trigger_takes_a_metric_by_key(client_for, plan, devops):
    response = send(
        client_for(devops),
        "POST",
        rows_url(plan.pk, "rollback-triggers"),
        {"metric": "p95_latency", "comparator": "gt", "threshold": 300, "mode": "sustained",
         "sustained_minutes": 30},
        if_match=1,
    )  # fmt: skip

    assert response.status_code == 201
    trigger = RollbackTrigger.objects.get(plan=plan)
    assert (trigger.metric.key, trigger.sustained_minutes) == ("p95_latency", 30)


@pytest.mark.parametrize(
    ("slug", "payload", "field", "reason"),
    [
        ("exit-criteria", {"metric": "csat", "aggregation": "mean", "comparator": "ge",
                           "threshold": "high"}, "threshold", "A valid number is required."),
        ("exit-criteria", {"metric": "happiness", "aggregation": "mean", "comparator": "ge",
                           "threshold": 1}, "metric", "Unknown metric"),
        ("exit-criteria", {"metric": "csat", "aggregation": "percentile", "comparator": "lt",
                           "threshold": 1}, "percentile", "percentile"),
        ("exit-criteria", {"metric": "csat", "aggregation": "mean", "comparator": "≥",
                           "threshold": 1}, "comparator", "not a valid choice"),
        ("rollback-triggers", {"metric": "errors", "comparator": "gt", "threshold": "NaN",
                               "mode": "any"}, "threshold", "A valid number is required."),
        ("rollback-triggers", {"metric": "errors", "comparator": "gt", "threshold": 1,
                               "mode": "sustained"}, "sustained_minutes", "minutes"),
        ("segments", {"dimension": "region", "value": "A", "intended_share": 120},
         "intended_share", "between 0 and 100"),
        ("scope-items", {"kind": "excluded", "title": "Gateways"}, "reason", "excluded"),
        ("scope-items", {"title": "US-1", "priority": 1}, "priority", "Not a field of this list."),
        ("rollback-steps", {"action": "Flag off", "owner": 999999}, "owner", "member"),
        ("dashboards", {"name": "P-01", "url": "not a url"}, "url", "valid URL"),
    ],
)  # fmt: skip
def test_invalid_rows_are_400_naming_the_field_and_nothing_is_saved(
    client_for, plan, po, slug, payload, field, reason
):
    before = snapshot(plan)

    response = send(client_for(po), "POST", rows_url(plan.pk, slug), payload, if_match=1)

    assert response.status_code == 400
    body = response.json()["errors"]
    # Reasons from a table-level CHECK (a share over 100 %, an excluded item without a reason)
    # come from the model without a field name, as on the pages.
    reasons = body.get(field) or body.get("non_field_errors")
    assert reasons, body
    assert reason in " ".join(reasons)
    assert snapshot(plan) == before


def test_a_metric_of_another_team_is_unknown(client_for, plan, po, other_team):
    theirs = MetricDefinition.objects.create(
        team=other_team, key="checkout_time", name="Checkout time", kind="gauge", direction="lower"
    )

    response = send(
        client_for(po),
        "POST",
        rows_url(plan.pk, "exit-criteria"),
        {"metric": theirs.pk, "aggregation": "mean", "comparator": "lt", "threshold": 3},
        if_match=1,
    )

    assert response.status_code == 400
    assert response.json()["errors"]["metric"][0].startswith("Unknown metric")


def test_a_teams_own_metric_is_found_by_key(client_for, plan, team, po):
    own = MetricDefinition.objects.create(
        team=team, key="checkout_time", name="Checkout time", kind="gauge", direction="lower"
    )

    response = send(
        client_for(po),
        "POST",
        rows_url(plan.pk, "exit-criteria"),
        {"metric": "checkout_time", "aggregation": "mean", "comparator": "lt", "threshold": 3},
        if_match=1,
    )

    assert response.status_code == 201
    assert response.json()["metric"]["id"] == own.pk


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "MOVE"])
def test_row_changes_need_the_current_section_version(client_for, plan, po, method):
    row = add_row(plan, "risks", po, description="Cohort too small", likelihood="low",
                  impact="high")  # fmt: skip
    client = client_for(po)
    url, body = {
        "POST": (rows_url(plan.pk, "risks"), {"description": "Another", "likelihood": "low",
                                              "impact": "low"}),
        "PATCH": (row_url(plan.pk, "risks", row.pk), {"impact": "low"}),
        "DELETE": (row_url(plan.pk, "risks", row.pk), None),
        "MOVE": (row_url(plan.pk, "risks", row.pk) + "/move", {"offset": 1}),
    }[method]  # fmt: skip
    http_method = "POST" if method == "MOVE" else method
    before = snapshot(plan)

    missing = send(client, http_method, url, body)
    stale = send(client, http_method, url, body, if_match=1)

    assert missing.status_code == 428
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert snapshot(plan) == before
    current = send(client, http_method, url, body, if_match=2)
    assert current.status_code in {200, 201, 204}
    assert current["ETag"] == '"3"'


def test_a_row_of_another_plan_or_an_unknown_list_is_404(client_for, team, plan, po):
    other = PilotPlanFactory(team=team, owner=po)
    row = add_row(other, "risks", po, description="Elsewhere", likelihood="low", impact="low")
    client = client_for(po)

    assert client.get(row_url(plan.pk, "risks", row.pk)).status_code == 404
    assert send(client, "PATCH", row_url(plan.pk, "risks", row.pk), {"impact": "high"},
                if_match=1).status_code == 404  # fmt: skip
    unknown = client.get(rows_url(plan.pk, "wishes"))
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "No such list: wishes"


def test_an_unordered_list_cannot_be_moved(client_for, plan, po):
    shift = add_row(plan, "on-call", po, person_name="Ops", starts_on=MONDAY, ends_on=MONDAY)

    response = send(
        client_for(po),
        "POST",
        row_url(plan.pk, "on-call", shift.pk) + "/move",
        {"offset": 1},
        if_match=2,
    )

    assert response.status_code == 400
    assert version(plan, "monitoring") == 2


def test_a_row_list_read_shows_the_sections_version(client_for, template_plan, po):
    response = client_for(po).get(rows_url(template_plan.pk, "dashboards"))

    assert response.status_code == 200
    assert response.json()["version"] == version(template_plan, "monitoring")
    assert response["ETag"] == f'"{version(template_plan, "monitoring")}"'
    assert response.json()["rows"][0]["url"] == "https://dashboards.example.com/P-01"


# --- permissions ---------------------------------------------------------------------------------

EDITORS = ["po", "sm", "developer", "devops"]


def _write(kind: str, plan: PilotPlan, po):  # type: ignore[no-untyped-def]
    """(method, url, body, section) of one change of each kind of endpoint."""
    if kind == "section":
        return "PATCH", section_url(plan.pk, "cohort"), {"target_size": 10}, "cohort"
    if kind == "compliance":
        return (
            "POST",
            section_url(plan.pk, "environment") + "/compliance",
            {"validated": False},
            ("environment"),
        )
    row = add_row(plan, "segments", po, dimension="region", value="A", intended_share=50)
    add_row(plan, "segments", po, dimension="region", value="B", intended_share=50)
    return {
        "row_add": ("POST", rows_url(plan.pk, "segments"),
                    {"dimension": "region", "value": "C", "intended_share": 0}, "cohort"),
        "row_edit": ("PATCH", row_url(plan.pk, "segments", row.pk), {"value": "A1"}, "cohort"),
        "row_move": ("POST", row_url(plan.pk, "segments", row.pk) + "/move", {"offset": 1},
                     "cohort"),
        "row_remove": ("DELETE", row_url(plan.pk, "segments", row.pk), None, "cohort"),
    }[kind]  # fmt: skip


WRITES = ["section", "compliance", "row_add", "row_edit", "row_move", "row_remove"]


@pytest.mark.parametrize("kind", WRITES)
@pytest.mark.parametrize("role", EDITORS)
def test_every_editor_role_may_change_the_plan(request, client_for, plan, po, kind, role):
    method, url, body, key = _write(kind, plan, po)
    user = request.getfixturevalue(role)

    response = send(client_for(user), method, url, body, if_match=version(plan, key))

    assert response.status_code in {200, 201, 204}, response.content
    assert PlanSection.objects.get(plan=plan, key=key).updated_by == user


@pytest.mark.parametrize("kind", WRITES)
def test_stakeholders_outsiders_and_anonymous_may_not_change_the_plan(
    client_for, plan, po, stakeholder, outsider, kind
):
    method, url, body, key = _write(kind, plan, po)
    current = version(plan, key)
    before = snapshot(plan)

    as_stakeholder = send(client_for(stakeholder), method, url, body, if_match=current)
    as_outsider = send(client_for(outsider), method, url, body, if_match=current)
    as_anonymous = send(Client(), method, url, body, if_match=current)

    assert as_stakeholder.status_code == 403
    assert "Stakeholders" in as_stakeholder.json()["detail"]
    assert as_outsider.status_code == 404
    assert as_anonymous.status_code == 401
    assert snapshot(plan) == before


@pytest.mark.parametrize(
    "path",
    [
        lambda p, r: plan_url(p.pk),
        lambda p, r: section_url(p.pk, "timeline"),
        lambda p, r: rows_url(p.pk, "risks"),
        lambda p, r: row_url(p.pk, "risks", r.pk),
    ],
    ids=["document", "section", "rows", "row"],
)
def test_every_member_reads_outsiders_get_404_anonymous_401(
    client_for, plan, po, stakeholder, outsider, path
):
    row = add_row(plan, "risks", po, description="Risk", likelihood="low", impact="low")
    url = path(plan, row)

    assert client_for(stakeholder).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 401


# --- the serializers follow the services ---------------------------------------------------------


def test_every_section_and_list_has_a_serializer_with_exactly_the_services_fields():
    for key, spec in services.SECTION_FIELDS.items():
        fields = SECTION_SERIALIZERS[key]().fields
        assert {n for n, f in fields.items() if not f.read_only} == set(spec.fields), key
    for slug, kind in ROW_KINDS.items():
        fields = ROW_SERIALIZERS[slug]().fields
        assert {n for n, f in fields.items() if not f.read_only} == set(kind.fields), slug


# --- root and schema -----------------------------------------------------------------------------


def test_the_api_root_links_to_the_plans(client_for, po):
    assert client_for(po).get("/api/v1/").json()["plans"] == "http://testserver/api/v1/plans"


def test_schema_describes_the_plan_endpoints_with_their_preconditions(client, db):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    prefix = "/api/v1/plans"
    assert {
        prefix,
        f"{prefix}/{{plan_id}}",
        f"{prefix}/{{plan_id}}/sections/cohort",
        f"{prefix}/{{plan_id}}/sections/environment/compliance",
        f"{prefix}/{{plan_id}}/rows/exit-criteria",
        f"{prefix}/{{plan_id}}/rows/exit-criteria/{{row_id}}",
        f"{prefix}/{{plan_id}}/rows/exit-criteria/{{row_id}}/move",
    } <= set(paths)
    assert set(paths[prefix]) >= {"get", "post"}
    assert f"{prefix}/{{plan_id}}/rows/on-call/{{row_id}}/move" not in paths  # not ordered
    writes = [
        paths[f"{prefix}/{{plan_id}}/sections/cohort"]["put"],
        paths[f"{prefix}/{{plan_id}}/sections/cohort"]["patch"],
        paths[f"{prefix}/{{plan_id}}/rows/exit-criteria"]["post"],
        paths[f"{prefix}/{{plan_id}}/rows/exit-criteria/{{row_id}}"]["patch"],
        paths[f"{prefix}/{{plan_id}}/rows/exit-criteria/{{row_id}}"]["delete"],
        paths[f"{prefix}/{{plan_id}}/rows/exit-criteria/{{row_id}}/move"]["post"],
    ]
    for operation in writes:
        if_match = [p for p in operation["parameters"] if p["name"] == "If-Match"]
        assert if_match and if_match[0]["in"] == "header" and if_match[0]["required"]
        assert {"400", "403", "404", "412", "428"} <= set(operation["responses"])
    read = paths[f"{prefix}/{{plan_id}}/sections/cohort"]["get"]["responses"]["200"]
    assert "ETag" in read["headers"]
    failed = schema["components"]["schemas"]["PreconditionFailedOutput"]
    assert {"detail", "current_version", "section", "updated_by"} <= set(failed["properties"])
    exit_request = schema["components"]["schemas"]["ExitCriterionRequest"]
    assert "metric" in exit_request["properties"]
    assert "id" not in exit_request["properties"]
