"""The backlog page and its forms, with and without HTMX; who may do what; query counts."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Team, User
from backlog.models import BacklogItem
from backlog.services import backlog_item_create

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "backlog-list"}


def _url(team: Team, rest: str = "") -> str:
    return f"/teams/{team.pk}/backlog{rest}"


def _titles(team: Team) -> list[str]:
    return list(
        BacklogItem.objects.filter(team=team).order_by("position").values_list("title", flat=True)
    )


def _fill(team: Team, po: User, n: int) -> list[BacklogItem]:
    return [backlog_item_create(team_id=team.pk, user=po, title=f"Item {i}") for i in range(n)]


def test_empty_states(client_for, team: Team, po: User, stakeholder: User) -> None:  # type: ignore[no-untyped-def]
    page = client_for(po).get(_url(team)).content.decode()
    assert "The backlog is empty. Add the first item below" in page
    assert 'data-testid="backlog-add"' in page
    reader = client_for(stakeholder).get(_url(team)).content.decode()
    assert "The backlog is empty." in reader and 'data-testid="backlog-add"' not in reader
    assert "Stakeholders can read the backlog but not change it." in reader
    _fill(team, po, 1)
    none = client_for(po).get(_url(team) + "?status=done").content.decode()
    assert "No item matches these filters." in none


def test_the_page_lists_in_priority_order_with_constant_queries(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    _fill(team, po, 5)
    client.get(_url(team))
    with CaptureQueriesContext(connection) as one_page:
        assert client.get(_url(team)).status_code == 200
    _fill(team, po, 120)
    with CaptureQueriesContext(connection) as many:
        response = client.get(_url(team))
    # Session, user, membership, plans for the filter, count, page, total; with more pages one
    # more: the next page's first item, which a drop on the last row lands above.
    assert len(one_page) == 7, [q["sql"] for q in one_page]
    assert len(many) == 8, [q["sql"] for q in many]
    page = response.content.decode()
    assert page.count('data-testid="backlog-row"') == 50
    assert "Page 1 of 3" in page
    assert page.index(">US-1<") < page.index(">US-2<")
    second = client.get(_url(team) + "?page=3").content.decode()
    assert second.count('data-testid="backlog-row"') == 25


def test_add_without_javascript_redirects_and_with_htmx_swaps_the_list(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    plain = client.post(
        _url(team, "/new"), {"title": "Save a card", "kind": "story", "status": "new"}
    )
    assert plain.status_code == 302 and plain["Location"] == _url(team)
    swapped = client.post(
        _url(team, "/new"),
        {
            "title": "Crash on pay",
            "kind": "defect",
            "severity": "p1",
            "status": "new",
            "at_top": "1",
        },
        **HX,
    )
    assert swapped.status_code == 200
    body = swapped.content.decode()
    assert body.lstrip().startswith('<section id="backlog-list"')
    assert _titles(team) == ["Crash on pay", "Save a card"]


def test_an_invalid_item_is_refused_with_the_field_and_nothing_saved(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(po).post(
        _url(team, "/new"), {"title": "Crash", "kind": "defect", "status": "new"}
    )
    assert response.status_code == 422
    assert "A defect needs a severity (P1 to P4)" in response.content.decode()
    assert not BacklogItem.objects.exists()


def test_edit_with_a_stale_version_says_who_won_and_keeps_their_change(
    client_for, team: Team, po: User, developer: User
) -> None:  # type: ignore[no-untyped-def]
    (item,) = _fill(team, po, 1)
    data = {"title": "Mine", "kind": "story", "status": "ready", "reference": "US-1", "version": 1}
    assert client_for(developer).post(_url(team, f"/{item.pk}"), data).status_code == 302
    stale = client_for(po).post(_url(team, f"/{item.pk}"), data | {"title": "Stale"})
    assert stale.status_code == 409
    assert "changed by someone else" in stale.content.decode()
    item.refresh_from_db()
    assert (item.title, item.status, item.version) == ("Mine", "ready", 2)


def test_move_to_top_bulk_status_and_delete(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    a, b, c = _fill(team, po, 3)
    assert client.post(_url(team, f"/{c.pk}/move"), {"before": "top"}).status_code == 302
    assert _titles(team) == ["Item 2", "Item 0", "Item 1"]
    dropped = client.post(_url(team, f"/{c.pk}/move"), {"before": str(b.pk)}, **HX)
    assert dropped.status_code == 200
    assert _titles(team) == ["Item 0", "Item 2", "Item 1"]
    bulk = client.post(_url(team, "/status"), {"items": [a.pk, b.pk], "status": "done"})
    assert bulk.status_code == 302
    assert set(BacklogItem.objects.filter(status="done").values_list("pk", flat=True)) == {
        a.pk,
        b.pk,
    }
    nothing = client.post(_url(team, "/status"), {"status": "done"})
    assert nothing.status_code == 422 and "Select at least one item." in nothing.content.decode()
    assert client.post(_url(team, f"/{a.pk}/delete"), **HX).status_code == 200
    assert _titles(team) == ["Item 2", "Item 1"]


def test_export_and_import(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    _fill(team, po, 2)
    exported = client.get(_url(team, "/export.csv"))
    assert exported["Content-Disposition"] == f'attachment; filename="backlog-{team.slug}.csv"'
    upload = SimpleUploadedFile("b.csv", b"reference,title\nUS-1,Renamed\n,New one\n", "text/csv")
    imported = client.post(_url(team, "/import"), {"file": upload}, follow=True)
    assert "Imported: 1 added, 1 updated, 0 unchanged." in imported.content.decode()
    assert _titles(team) == ["Renamed", "Item 1", "New one"]
    bad = SimpleUploadedFile("b.csv", b"title,type\nX,epic\n", "text/csv")
    refused = client.post(_url(team, "/import"), {"file": bad})
    assert refused.status_code == 422
    assert "Line 2, type: “epic” is not one of" in refused.content.decode()
    assert len(_titles(team)) == 3


@pytest.mark.parametrize(
    ("rest", "data"),
    [
        ("/new", {"title": "x", "kind": "story", "status": "new"}),
        ("/status", {"items": ["1"], "status": "done"}),
        ("/import", {}),
    ],
)
def test_stakeholders_may_not_change_and_outsiders_see_nothing(
    client_for, team: Team, po: User, stakeholder: User, outsider: User, rest: str, data: dict
) -> None:  # type: ignore[no-untyped-def]
    (item,) = _fill(team, po, 1)
    assert client_for(stakeholder).post(_url(team, rest), data).status_code == 403
    assert client_for(stakeholder).post(_url(team, f"/{item.pk}/delete")).status_code == 403
    assert client_for(stakeholder).post(_url(team, f"/{item.pk}"), {}).status_code == 403
    for url in (_url(team), _url(team, "/export.csv"), _url(team, f"/{item.pk}")):
        assert client_for(outsider).get(url).status_code == 404
    assert client_for(outsider).post(_url(team, rest), data).status_code == 404
    assert _titles(team) == ["Item 0"]


def test_only_the_product_owner_reorders(client_for, team: Team, po: User, sm: User) -> None:  # type: ignore[no-untyped-def]
    _a, b = _fill(team, po, 2)
    assert client_for(sm).post(_url(team, f"/{b.pk}/move"), {"before": "top"}).status_code == 403
    page = client_for(sm).get(_url(team)).content.decode()
    assert "data-sortable" not in page and 'data-testid="to-top"' not in page
    assert "data-sortable" in client_for(po).get(_url(team)).content.decode()
    assert _titles(team) == ["Item 0", "Item 1"]
