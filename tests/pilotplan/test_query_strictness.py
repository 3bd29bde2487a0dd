"""Query parameters are read strictly: an empty, repeated or unreadable value is a 400 naming the
parameter, never silently "no filter" or the first page (the schema fuzzer sends such values)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["page=", "page=0", "page=-1", "page=abc", "page=1&page=2"])
def test_a_page_must_be_one_whole_number_from_one(client_for, po, query) -> None:  # type: ignore[no-untyped-def]
    response = client_for(po).get(f"/api/v1/teams?{query}")
    assert response.status_code == 400
    assert response.json()["errors"] == {"page": ["Give one page number, a whole number from 1."]}


def test_a_page_past_the_last_is_404(client_for, po) -> None:  # type: ignore[no-untyped-def]
    assert client_for(po).get("/api/v1/teams?page=1").status_code == 200
    assert client_for(po).get("/api/v1/teams?page=99").status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [("unread=maybe", "unread"), ("unread=", "unread"), ("kind=", "kind"),
     ("unread=true&unread=false", "unread"), ("kind=nonsense", "kind")],
)  # fmt: skip
def test_a_filter_value_it_cannot_read_is_refused(client_for, po, query, field) -> None:  # type: ignore[no-untyped-def]
    response = client_for(po).get(f"/api/v1/notifications?{query}")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_good_filter_values_still_filter(client_for, po) -> None:  # type: ignore[no-untyped-def]
    for query in ("unread=true", "unread=false", ""):
        assert client_for(po).get(f"/api/v1/notifications?{query}").status_code == 200
