"""Every CSV import channel (backlog and participants, page and API) reads an upload the same
way: a file that is not UTF-8, or an API call without CSV, is refused on ``file`` and nothing is
saved."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Team, User
from backlog.models import BacklogItem, Participant
from tests.backlog.participants_helpers import segmented_plan

pytestmark = pytest.mark.django_db

# "Zoë" in Latin-1: a spreadsheet's "CSV (Windows)" export, not UTF-8.
LATIN_1 = "name,title\nZo\u00eb,Zo\u00eb\n".encode("latin-1")


def _channels(team: Team, po: User) -> dict[str, str]:
    plan = segmented_plan(team, po)
    return {
        "backlog page": f"/teams/{team.pk}/backlog/import",
        "backlog api": f"/api/v1/teams/{team.pk}/backlog/import",
        "participants page": f"/plans/{plan.pk}/participants/import",
        "participants api": f"/api/v1/plans/{plan.pk}/participants/import",
    }


def test_a_file_that_is_not_utf8_is_refused_everywhere(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    for channel, url in _channels(team, po).items():
        upload = SimpleUploadedFile("export.csv", LATIN_1, content_type="text/csv")
        response = client.post(url, {"file": upload})
        expected = 400 if channel.endswith("api") else 422
        assert response.status_code == expected, (channel, response.status_code)
        assert "The file is not UTF-8 text." in response.content.decode(), channel
    assert not BacklogItem.objects.exists() and not Participant.objects.exists()


def test_an_api_call_without_csv_says_how_to_send_it(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    for channel, url in _channels(team, po).items():
        if not channel.endswith("api"):
            continue
        response = client.post(url, {"rows": []}, content_type="application/json")
        assert response.status_code == 400, channel
        assert "Send CSV as text/csv or a file upload." in response.content.decode(), channel
