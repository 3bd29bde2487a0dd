"""The team backlog over /api/v1/: shapes, filters, preconditions, CSV, and who may do what."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Team, User
from backlog.models import BacklogItem
from backlog.services import backlog_item_create
from tests.factories import PilotPlanFactory


def _url(team: Team, rest: str = "") -> str:
    return f"/api/v1/teams/{team.pk}/backlog{rest}"


@pytest.fixture
def api(client_for, po: User):  # type: ignore[no-untyped-def]
    return client_for(po)


def test_create_read_and_list_in_priority_order(api: Client, team: Team, po: User) -> None:
    plan = PilotPlanFactory(team=team, owner=po)
    first = api.post(_url(team), {"title": "Save a card", "estimate": 5, "plan": plan.pk})
    assert first.status_code == 201, first.json()
    assert first["ETag"] == '"1"'
    body = first.json()
    assert body | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0, "reference": "US-1", "title": "Save a card", "description": "", "type": "story",
        "severity": "", "status": "new", "priority": 1, "estimate": 5, "origin": "manual",
        "plan": plan.pk, "criterion": None, "trigger": None, "finding": None, "version": 1,
        "created_at": "", "updated_at": "",
    }  # fmt: skip
    top = api.post(
        _url(team),
        {"title": "Crash", "type": "defect", "severity": "p1", "at_top": True},
        content_type="application/json",
    )
    assert top.status_code == 201 and top.json()["reference"] == "DE-2"
    listing = api.get(_url(team)).json()
    assert listing["count"] == 2
    assert [i["reference"] for i in listing["results"]] == ["DE-2", "US-1"]
    assert api.get(_url(team, f"/{body['id']}")).json()["title"] == "Save a card"


def test_filters_narrow_the_list_and_unknown_values_are_refused(
    api: Client, team: Team, po: User
) -> None:
    backlog_item_create(team_id=team.pk, user=po, title="Story one")
    backlog_item_create(team_id=team.pk, user=po, title="Bug", kind="defect", severity="p2")
    backlog_item_create(team_id=team.pk, user=po, title="Spike", kind="spike", status="ready")
    refs = lambda query: [i["reference"] for i in api.get(_url(team) + query).json()["results"]]  # noqa: E731
    assert refs("?type=defect,spike") == ["DE-2", "SP-3"]
    assert refs("?status=ready") == ["SP-3"]
    assert refs("?severity=p2") == ["DE-2"]
    assert refs("?q=story") == ["US-1"]
    bad = api.get(_url(team) + "?status=open")
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "status": ["Unknown status “open”: use new, ready, in_progress, done, wont_do."]
    }
    assert api.get(_url(team) + "?plan=abc").status_code == 400


def test_a_change_needs_the_version_it_read(api: Client, team: Team, po: User) -> None:
    item = backlog_item_create(team_id=team.pk, user=po, title="Save a card")
    url = _url(team, f"/{item.pk}")
    missing = api.patch(url, {"status": "ready"}, content_type="application/json")
    assert missing.status_code == 428
    ok = api.patch(url, {"status": "ready"}, content_type="application/json", HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200 and ok["ETag"] == '"2"' and ok.json()["status"] == "ready"
    stale = api.patch(url, {"title": "Stale"}, content_type="application/json", HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert "changed by someone else" in stale.json()["detail"]
    invalid = api.patch(
        url, {"type": "defect"}, content_type="application/json", HTTP_IF_MATCH='"2"'
    )
    assert invalid.status_code == 400 and "severity" in invalid.json()["errors"]
    item.refresh_from_db()
    assert (item.title, item.status, item.kind, item.version) == (
        "Save a card",
        "ready",
        "story",
        2,
    )


def test_move_bulk_status_and_delete(api: Client, team: Team, po: User) -> None:
    a, b, c = (backlog_item_create(team_id=team.pk, user=po, title=t) for t in "abc")
    moved = api.post(_url(team, f"/{c.pk}/move"), {"before": a.pk}, content_type="application/json")
    assert moved.status_code == 200 and moved.json()["priority"] == 1
    nowhere = api.post(
        _url(team, f"/{c.pk}/move"), {"before": 999999}, content_type="application/json"
    )
    assert nowhere.status_code == 400 and "before" in nowhere.json()["errors"]
    done = api.post(
        _url(team, "/status"), {"items": [a.pk, b.pk], "status": "done"},
        content_type="application/json",
    )  # fmt: skip
    assert done.json() == {"changed": 2}
    assert api.delete(_url(team, f"/{a.pk}")).status_code == 204
    results = api.get(_url(team)).json()["results"]
    assert [(i["title"], i["priority"], i["status"]) for i in results] == [
        ("c", 1, "new"), ("b", 2, "done"),
    ]  # fmt: skip


def test_csv_out_and_in(api: Client, team: Team, po: User) -> None:
    backlog_item_create(team_id=team.pk, user=po, title="Save a card")
    exported = api.get(_url(team, ".csv"))
    assert exported.status_code == 200
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    assert exported.content.decode().splitlines()[1].startswith("US-1,Save a card,story")
    imported = api.post(
        _url(team, "/import"),
        "title,type,severity\nCard form flickers,defect,P3\n",
        content_type="text/csv",
    )
    assert imported.status_code == 200, imported.json()
    assert imported.json() == {"created": 1, "updated": 0, "unchanged": 0}
    refused = api.post(_url(team, "/import"), "title,type\n,story\n", content_type="text/csv")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"file": ["Line 2, title: This field cannot be blank."]}
    assert BacklogItem.objects.filter(team=team).count() == 2


def test_outsiders_and_stakeholders(
    client_for, team: Team, po: User, stakeholder: User, outsider: User
) -> None:  # type: ignore[no-untyped-def]
    item = backlog_item_create(team_id=team.pk, user=po, title="Save a card")
    reader = client_for(stakeholder)
    assert reader.get(_url(team)).status_code == 200
    assert reader.get(_url(team, ".csv")).status_code == 200
    assert reader.post(_url(team), {"title": "x"}).status_code == 403
    assert reader.delete(_url(team, f"/{item.pk}")).status_code == 403
    assert (
        reader.post(_url(team, "/import"), "title\nx\n", content_type="text/csv").status_code == 403
    )
    stranger = client_for(outsider)
    for response in (
        stranger.get(_url(team)),
        stranger.get(_url(team, ".csv")),
        stranger.get(_url(team, f"/{item.pk}")),
        stranger.post(_url(team), {"title": "x"}),
        stranger.post(
            _url(team, f"/{item.pk}/move"), {"before": None}, content_type="application/json"
        ),
    ):
        assert response.status_code == 404
    # Another team's item id under this team's URL does not exist either.
    assert client_for(po).get(f"/api/v1/teams/{team.pk}/backlog/999999").status_code == 404
    assert Client().get(_url(team)).status_code == 401
    assert BacklogItem.objects.count() == 1
