"""The backlog as CSV: export, import, and the round trip between teams."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Membership, Team, User
from backlog.exchange import COLUMNS, backlog_csv, backlog_csv_import
from backlog.models import BacklogItem
from backlog.services import backlog_item_create, backlog_item_move
from tests.factories import MembershipFactory, PilotPlanFactory

Kind = BacklogItem.Kind


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _fields(team: Team) -> list[tuple]:
    return list(
        BacklogItem.objects.filter(team=team)
        .order_by("position")
        .values_list("reference", "title", "kind", "severity", "status", "estimate", "description")
    )


@pytest.fixture
def backlog(team: Team, po: User) -> list[BacklogItem]:
    plan = PilotPlanFactory(team=team, owner=po)
    items = [
        backlog_item_create(team_id=team.pk, user=po, title="Save a card", estimate=5, plan=plan),
        backlog_item_create(
            team_id=team.pk, user=po, title="=HYPERLINK(\"http://evil\")", kind=Kind.DEFECT,
            severity="p1", description="Line one\nline two, with a comma", status="ready",
        ),
        backlog_item_create(team_id=team.pk, user=po, title="Spike: tokens", kind=Kind.SPIKE),
    ]  # fmt: skip
    backlog_item_move(team_id=team.pk, item_id=items[2].pk, user=po, before_id=items[0].pk)
    return items


def test_export_lists_items_in_priority_order_with_formulas_defused(
    team: Team, backlog: list[BacklogItem]
) -> None:
    rows = _rows(backlog_csv(BacklogItem.objects.filter(team=team)))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["reference"] for r in rows] == ["SP-3", "US-1", "DE-2"]
    assert rows[1]["plan"] == str(backlog[0].plan_id) and rows[1]["estimate"] == "5"
    assert rows[2]["title"] == '\'=HYPERLINK("http://evil")'
    assert (rows[2]["type"], rows[2]["severity"], rows[2]["status"]) == ("defect", "p1", "ready")
    assert rows[2]["description"] == "Line one\nline two, with a comma"


def test_round_trip_into_another_team_keeps_every_field_and_the_order(
    team: Team, backlog: list[BacklogItem], other_team: Team
) -> None:
    rows = _rows(backlog_csv(BacklogItem.objects.filter(team=team)))
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    writer.writerows({**row, "plan": ""} for row in rows)  # the plan is the first team's
    text = out.getvalue()
    other_po = MembershipFactory(team=other_team, role=Membership.Role.PRODUCT_OWNER).user
    result = backlog_csv_import(team_id=other_team.pk, user=other_po, text=text)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert _fields(other_team) == _fields(team)
    assert set(BacklogItem.objects.filter(team=other_team).values_list("origin", flat=True)) == {
        BacklogItem.Origin.IMPORT
    }
    # Importing the same file again changes nothing.
    again = backlog_csv_import(team_id=other_team.pk, user=other_po, text=text)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_import_updates_known_references_and_adds_the_rest_at_the_bottom(
    team: Team, po: User, backlog: list[BacklogItem]
) -> None:
    text = (
        "reference,title,type,severity,status,estimate\n"
        "US-1,Save a card (v2),Story,,In progress,8\n"
        ",Card form flickers,defect,P3,,\n"
        "US-4,Given reference,story,,,\n"
        ",Generated after a given US-4,story,,,\n"
    )
    result = backlog_csv_import(team_id=team.pk, user=po, text=text)
    assert (result.created, result.updated, result.unchanged) == (3, 1, 0)
    assert _fields(team)[1] == ("US-1", "Save a card (v2)", "story", "", "in_progress", 8, "")
    # One running number: the given US-4 takes number 5 too, so the next generated is US-6.
    assert [f[0] for f in _fields(team)][3:] == ["DE-4", "US-4", "US-6"]
    assert list(
        BacklogItem.objects.filter(team=team)
        .order_by("position")
        .values_list("position", flat=True)
    ) == [1, 2, 3, 4, 5, 6]


def test_a_bad_file_is_refused_whole_naming_every_bad_line(
    team: Team, po: User, backlog: list[BacklogItem]
) -> None:
    before = _fields(team)
    text = (
        "reference,title,type,severity,estimate,plan\n"
        "US-1,Renamed,story,,3,\n"
        "X-1,,story,,,\n"
        "X-2,A defect,defect,,,\n"
        "X-3,Weird,epic,,,\n"
        "X-4,Points,story,,lots,\n"
        "X-5,Plan,story,,,999999\n"
        "US-1,Twice,story,,,\n"
    )
    with pytest.raises(ValidationError) as error:
        backlog_csv_import(team_id=team.pk, user=po, text=text)
    assert error.value.message_dict["file"] == [
        "Line 3, title: This field cannot be blank.",
        "Line 4, severity: A defect needs a severity (P1 to P4); other types have none.",
        "Line 5, type: “epic” is not one of story, defect, improvement, spike.",
        "Line 6, estimate: “lots” is not a whole number of story points.",
        "Line 7, plan: “999999” is not the id of one of the team's plans.",
        "Line 8, reference: “US-1” appears twice in the file.",
    ]
    assert _fields(team) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("reference,name\nUS-1,x\n", "Unknown column “name”"),
        ("reference\nUS-1\n", "The header has no “title” column."),
        ("title,title\nx,y\n", "The column “title” appears twice."),
        ("title\nx,y\n", "Line 2: more cells than the header has columns."),
    ],
)
def test_a_malformed_file_gets_a_clear_error(team: Team, po: User, text: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        backlog_csv_import(team_id=team.pk, user=po, text=text)
    assert any(message in m for m in error.value.message_dict["file"])
    assert not BacklogItem.objects.exists()


def test_stakeholders_cannot_import(team: Team, stakeholder: User) -> None:
    with pytest.raises(PermissionDenied):
        backlog_csv_import(team_id=team.pk, user=stakeholder, text="title\nx\n")
    assert not BacklogItem.objects.exists()
