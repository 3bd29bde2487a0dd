"""Participants over /api/v1/: the same services as the page; If-Match on withdraw and erase;
personal data for the writers' roles, counts for everyone who reads the plan."""

from __future__ import annotations

import pytest

from accounts.models import Team, User
from backlog.models import Participant
from tests.backlog.participants_helpers import CONSENT, add, segmented_plan

pytestmark = pytest.mark.django_db


def _api(plan, rest: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"/api/v1/plans/{plan.pk}/participants{rest}"


def test_create_list_and_read_one(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    client = client_for(po)
    created = client.post(
        _api(plan),
        {"name": "Ana", "email": "ana@example.test", "segments": {"region": "Region A"},
         "consent": True, "consent_text": CONSENT},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created["ETag"] == '"1"'
    body = created.json()
    assert body["segments"] == {"region": "Region A"}
    assert body["consent_method"] == "recorded_by_team"
    listed = client.get(_api(plan) + "?status=active&region=region a").json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "Ana"
    assert client.get(_api(plan, f"/{body['id']}")).json()["email"] == "ana@example.test"
    bad = client.get(_api(plan) + "?status=gone")
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


def test_create_refusals_name_the_field(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    client = client_for(po)
    response = client.post(
        _api(plan), {"name": "Ana", "segments": {"region": "Mars"}}, content_type="application/json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) >= {"consent"} or set(errors) >= {"region"}
    long = client.post(_api(plan), {"name": "x" * 201}, content_type="application/json")
    assert long.status_code == 400 and "name" in long.json()["errors"]
    assert not Participant.objects.exists()


def test_withdraw_and_erase_need_the_current_version(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    person = add(plan, po, name="Ana")
    client = client_for(po)
    assert client.post(_api(plan, f"/{person.pk}/withdraw")).status_code == 428
    stale = client.post(_api(plan, f"/{person.pk}/withdraw"), headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    done = client.post(_api(plan, f"/{person.pk}/withdraw"), headers={"If-Match": '"1"'})
    assert done.status_code == 200 and done.json()["status"] == "withdrawn"
    again = client.post(_api(plan, f"/{person.pk}/withdraw"), headers={"If-Match": '"2"'})
    assert again.status_code == 409
    erased = client.post(_api(plan, f"/{person.pk}/erase"), headers={"If-Match": '"2"'})
    assert erased.status_code == 200 and erased.json()["name"] == ""
    assert erased["ETag"] == '"3"'


def test_who_may_read_and_change(
    client_for, team: Team, po: User, sm: User, stakeholder: User, outsider: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    person = add(plan, po)
    reader = client_for(stakeholder)
    assert reader.get(_api(plan)).status_code == 403
    assert reader.get(_api(plan, f"/{person.pk}")).status_code == 403
    assert reader.get(_api(plan, "/export.csv")).status_code == 403
    assert (
        reader.post(_api(plan, "/import"), "name\r\nX\r\n", content_type="text/csv").status_code
        == 403
    )
    assert (
        client_for(sm)
        .post(_api(plan, f"/{person.pk}/erase"), headers={"If-Match": '"1"'})
        .status_code
        == 403
    )
    summary = reader.get(_api(plan, "/cohort-fit"))
    assert summary.status_code == 200 and summary.json()["active"] == 1
    assert summary.json()["fit"][0]["dimension"] == "region"
    stranger = client_for(outsider)
    assert stranger.get(_api(plan)).status_code == 404
    assert stranger.get(_api(plan, "/cohort-fit")).status_code == 404


def test_csv_over_the_api_round_trips(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    source = segmented_plan(team, po)
    add(source, po, name="Ana", email="ana@example.test")
    text = client_for(po).get(_api(source, "/export.csv")).content.decode()
    target = segmented_plan(team, po)
    imported = client_for(po).post(_api(target, "/import"), text, content_type="text/csv")
    assert imported.status_code == 200 and imported.json() == {"created": 1, "unchanged": 0}
    bad = client_for(po).post(_api(target, "/import"), "nonsense\r\n1\r\n", content_type="text/csv")
    assert bad.status_code == 400 and "file" in bad.json()["errors"]
