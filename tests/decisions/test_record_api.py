"""The decision record over the API: /api/v1/plans/{id}/decisions and …/decision-comments."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Membership
from accounts.tokens import personal_token_create
from decisions.models import DecisionComment, DecisionRecord
from decisions.services import decision as service
from pilots.models import PilotPlan, PlanGuest
from tests.decisions.conftest import MET, NOT_MET
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ONE_DAY = dt.timedelta(days=1)
GO = {"outcome": "go", "rationale": "Every blocking criterion met."}


@pytest.fixture(autouse=True)
def _stubs(monkeypatch):  # type: ignore[no-untyped-def]
    """The rollback and the post-pilot review are other parts' (stubs until merge)."""
    monkeypatch.setattr(service, "rollback_start", lambda **kw: None)
    monkeypatch.setattr(service, "post_pilot_review_open", lambda **kw: None)


def _url(plan: PilotPlan, tail: str = "decisions") -> str:
    return f"/api/v1/plans/{plan.pk}/{tail}"


def _post(client: Client, url: str, body: dict) -> object:  # type: ignore[type-arg]
    return client.post(url, json.dumps(body), content_type="application/json")


def test_the_decision_owner_records_and_reads_the_decision(decidable, po, client_for):
    plan = decidable()
    client = client_for(po)
    assert client.get(_url(plan)).json() == {
        "count": 0, "next": None, "previous": None, "results": []
    }  # fmt: skip

    response = _post(client, _url(plan), GO)

    assert response.status_code == 201, response.content
    body = response.json()
    record = DecisionRecord.objects.get()
    assert body["id"] == record.pk and body["plan"] == plan.pk
    assert (body["outcome"], body["outcome_label"]) == ("go", "Go")
    assert (body["recommendation"], body["recommendation_rule"]) == ("go", "go")
    assert body["is_override"] is False and body["override_reason"] == ""
    assert body["intact"] is True and body["problems"] == []
    assert body["evidence"] == record.evidence
    assert [c["verdict"] for c in body["evidence"]["criteria"]] == [MET] * 5
    assert (body["evidence_hash"], body["record_hash"]) == (
        record.evidence_hash,
        record.record_hash,
    )
    assert (body["supersedes"], body["superseded_by"], body["iteration"]) == (None, None, None)
    assert body["recorded_by"]["id"] == po.pk
    assert PilotPlan.objects.get(pk=plan.pk).status == PilotPlan.Status.DECIDED

    listed = client.get(_url(plan)).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == record.pk
    assert "evidence" not in listed["results"][0]
    assert client.get(_url(plan, f"decisions/{record.pk}")).json() == body


def test_a_correction_over_the_api_supersedes_and_both_stay(decidable, po, client_for):
    plan = decidable()
    client = client_for(po)
    first = _post(client, _url(plan), GO).json()
    correction = {
        "outcome": "iterate",
        "rationale": "Support is not ready.",
        "override_reason": "Support macros are missing.",
        "supersedes": first["id"],
    }
    second = _post(client, _url(plan), correction)
    assert second.status_code == 201, second.content
    second = second.json()
    assert second["supersedes"] == first["id"]
    assert second["supersedes_hash"] == first["record_hash"]
    assert second["is_override"] is True
    assert second["iteration"] == PilotPlan.objects.get(cloned_from=plan).pk
    listed = client.get(_url(plan)).json()["results"]
    assert [(r["id"], r["superseded_by"]) for r in listed] == [
        (second["id"], None),
        (first["id"], second["id"]),
    ]
    # Superseding the old record again: 409, naming the current one.
    again = _post(client, _url(plan), {**correction, "supersedes": first["id"]})
    assert again.status_code == 409
    assert f"record #{second['id']}" in again.json()["detail"]


def test_bad_input_is_400_naming_the_field(decidable, po, client_for):
    plan = decidable([MET, NOT_MET, MET, MET, MET])  # recommends Iterate
    client = client_for(po)
    cases = [
        ({"outcome": "maybe", "rationale": "x"}, "outcome"),
        ({"outcome": "go", "rationale": ""}, "rationale"),
        ({"outcome": "go", "rationale": "   "}, "rationale"),
        ({"outcome": "go", "rationale": "Fine by me."}, "override_reason"),
        ({**GO, "override_reason": "y", "supersedes": 999}, "supersedes"),
    ]  # fmt: skip
    for body, field in cases:
        response = _post(client, _url(plan), body)
        assert response.status_code == 400, (body, response.content)
        assert list(response.json()["errors"]) == [field], response.json()
    assert (
        "needs an override reason"
        in _post(client, _url(plan), {"outcome": "go", "rationale": "Fine."}).json()["errors"][
            "override_reason"
        ][0]
    )
    assert not DecisionRecord.objects.exists()


def test_a_plan_that_is_not_running_is_409(team, po, client_for, decidable):
    plan = decidable()
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.APPROVED)
    response = _post(client_for(po), _url(plan), GO)
    assert response.status_code == 409
    assert "Running or Evaluating" in response.json()["detail"]


@pytest.mark.parametrize("person", ["sm", "developer", "devops", "stakeholder"])
def test_only_the_decision_owner_may_record(decidable, request, person, client_for):
    plan = decidable()
    response = _post(client_for(request.getfixturevalue(person)), _url(plan), {"outcome": "x"})
    assert response.status_code == 403  # before any 400: who first
    detail = response.json()["detail"]
    assert "(the decision owner) records this pilot's decision" in detail or (
        detail == "Stakeholders can read the decision but not record it."
    )
    assert not DecisionRecord.objects.exists()


def test_another_product_owner_is_told_who_decides(decidable, team, po, client_for):
    plan = decidable()
    other = MembershipFactory(team=team, role=Membership.Role.PRODUCT_OWNER).user
    response = _post(client_for(other), _url(plan), GO)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"{po.display_name} (the decision owner) records this pilot's decision."
    )


def test_a_named_decision_owner_who_is_not_the_po_may(decidable, sm, po, client_for):
    plan = decidable(decision_owner=sm)
    assert _post(client_for(po), _url(plan), GO).status_code == 403
    assert _post(client_for(sm), _url(plan), GO).status_code == 201


def test_outsiders_find_nothing_and_guests_read_only(decidable, po, outsider, client_for):
    plan = decidable()
    record = _post(client_for(po), _url(plan), GO).json()
    outside = client_for(outsider)
    for url in (
        _url(plan),
        _url(plan, f"decisions/{record['id']}"),
        _url(plan, "decision-comments"),
    ):
        assert outside.get(url).status_code == 404
    assert _post(outside, _url(plan), GO).status_code == 404
    assert _post(outside, _url(plan, "decision-comments"), {"text": "Hi"}).status_code == 404

    guest = UserFactory()
    PlanGuest.objects.create(plan=plan, user=guest, invited_by=po)
    invited = client_for(guest)
    assert invited.get(_url(plan)).status_code == 200
    assert invited.get(_url(plan, f"decisions/{record['id']}")).json()["intact"] is True
    assert _post(invited, _url(plan), GO).status_code == 403
    refused = _post(invited, _url(plan, "decision-comments"), {"text": "Hi"})
    assert refused.status_code == 403
    assert "Invited stakeholders read" in refused.json()["detail"]


def test_a_record_of_another_plan_is_404(decidable, po, client_for):
    plan, other = decidable(), decidable()
    record = _post(client_for(po), _url(plan), GO).json()
    assert client_for(po).get(_url(other, f"decisions/{record['id']}")).status_code == 404


def test_anonymous_callers_and_team_api_keys_may_not(decidable, po, team):
    plan = decidable()
    assert Client().get(_url(plan)).status_code == 401
    assert _post(Client(), _url(plan), GO).status_code == 401
    _key, secret = api_key_create(team=team, name="ci", scopes=["read", "write"], created_by=po)
    key = Client(headers={"Authorization": f"Bearer {secret}"})
    assert key.get(_url(plan)).status_code == 200  # a read key reads the record
    refused = _post(key, _url(plan), GO)  # but deciding is a person's act
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("API keys may not")
    assert not DecisionRecord.objects.exists()


def test_the_decision_owners_personal_token_records_the_decision(decidable, po, team):
    plan = decidable()
    token = personal_token_create(
        user=po, name="release", scopes=["read", "write"], expires_at=timezone.now() + ONE_DAY
    )[1]
    response = _post(Client(headers={"Authorization": f"Bearer {token}"}), _url(plan), GO)
    assert response.status_code == 201, response.content
    assert DecisionRecord.objects.get().recorded_by == po
    read_only = personal_token_create(
        user=po, name="read", scopes=["read"], expires_at=timezone.now() + ONE_DAY
    )[1]
    refused = _post(Client(headers={"Authorization": f"Bearer {read_only}"}), _url(plan), GO)
    assert refused.status_code == 403


def test_members_comment_over_the_api(decidable, po, stakeholder, client_for):
    plan = decidable()
    response = _post(client_for(stakeholder), _url(plan, "decision-comments"), {"text": " Ready. "})
    assert response.status_code == 201
    assert response.json()["text"] == "Ready."
    assert response.json()["author"]["id"] == stakeholder.pk
    blank = _post(client_for(po), _url(plan, "decision-comments"), {"text": "  "})
    assert blank.status_code == 400 and list(blank.json()["errors"]) == ["text"]
    listed = client_for(po).get(_url(plan, "decision-comments")).json()
    assert [c["text"] for c in listed["results"]] == ["Ready."]
    assert DecisionComment.objects.count() == 1


def test_the_transitions_endpoint_refuses_decide_with_the_way_to_decide(decidable, po, client_for):
    plan = decidable()
    PilotPlan.objects.filter(pk=plan.pk).update(status=PilotPlan.Status.EVALUATING)
    response = _post(
        client_for(po),
        _url(plan, "transitions"),
        {"action": "decide", "decision": "go", "reason": "Met"},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "action": [
            "Record the decision on the plan's decision page "
            f"(POST /api/v1/plans/{plan.pk}/decisions)."
        ]
    }
    listed = client_for(po).get(_url(plan, "transitions")).json()["available"]
    decide = next(step for step in listed if step["action"] == "decide")
    assert decide["blockers"][0].startswith("Record the decision on the plan's decision page")


def test_the_list_and_a_record_read_in_constant_queries(decidable, po, client_for):
    plan = decidable()
    client = client_for(po)

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    record = _post(client, _url(plan), GO).json()
    one = queries(_url(plan)), queries(_url(plan, f"decisions/{record['id']}"))
    for n in range(3):
        record = _post(
            client, _url(plan), {**GO, "rationale": f"Wording {n}.", "supersedes": record["id"]}
        ).json()
    four = queries(_url(plan)), queries(_url(plan, f"decisions/{record['id']}"))
    assert one == four
    assert four[0] <= 6
