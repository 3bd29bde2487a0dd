"""The team backlog's services: references, order, edits and who may do what."""

from __future__ import annotations

import random
import threading

import pghistory
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from pghistory.models import Events

from accounts.models import Membership, Team, User
from backlog.models import BacklogItem
from backlog.services import (
    ItemConflict,
    backlog_item_create,
    backlog_item_delete,
    backlog_item_move,
    backlog_item_update,
    backlog_items_status_set,
)
from tests.factories import MembershipFactory, PilotPlanFactory

Kind, Status = BacklogItem.Kind, BacklogItem.Status


def _order(team: Team) -> list[str]:
    return list(
        BacklogItem.objects.filter(team=team).order_by("position").values_list("title", flat=True)
    )


def _positions(team: Team) -> list[int]:
    return list(
        BacklogItem.objects.filter(team=team)
        .order_by("position")
        .values_list("position", flat=True)
    )


def _items(team: Team, po: User, *titles: str) -> list[BacklogItem]:
    return [backlog_item_create(team_id=team.pk, user=po, title=t) for t in titles]


def test_references_are_generated_per_type_from_one_running_number(team: Team, po: User) -> None:
    story = backlog_item_create(team_id=team.pk, user=po, title="Save a card")
    defect = backlog_item_create(
        team_id=team.pk, user=po, title="Card saved twice", kind=Kind.DEFECT, severity="p2"
    )
    given = backlog_item_create(team_id=team.pk, user=po, title="Imported", reference="JIRA-77")
    spike = backlog_item_create(team_id=team.pk, user=po, title="Try tokens", kind=Kind.SPIKE)
    assert [story.reference, defect.reference, given.reference, spike.reference] == [
        "US-1", "DE-2", "JIRA-77", "SP-4",
    ]  # fmt: skip
    assert _positions(team) == [1, 2, 3, 4]
    assert story.created_by == po and story.origin == BacklogItem.Origin.MANUAL


def test_a_reference_is_unique_per_team_only(team: Team, po: User, other_team: Team) -> None:
    backlog_item_create(team_id=team.pk, user=po, title="One", reference="US-145")
    with pytest.raises(ValidationError) as error:
        backlog_item_create(team_id=team.pk, user=po, title="Two", reference="US-145")
    assert error.value.message_dict == {"reference": ["Another item already has this reference."]}
    other_po = MembershipFactory(team=other_team, role=Membership.Role.PRODUCT_OWNER).user
    backlog_item_create(team_id=other_team.pk, user=other_po, title="Two", reference="US-145")
    assert BacklogItem.objects.filter(reference="US-145").count() == 2


@pytest.mark.parametrize(
    ("kind", "severity"), [(Kind.DEFECT, ""), (Kind.STORY, "p1"), (Kind.DEFECT, "p9")]
)
def test_severity_belongs_to_defects_only(team: Team, po: User, kind: str, severity: str) -> None:
    with pytest.raises(ValidationError) as error:
        backlog_item_create(team_id=team.pk, user=po, title="X", kind=kind, severity=severity)
    assert "severity" in error.value.message_dict
    assert not BacklogItem.objects.exists()


def test_a_new_item_goes_to_the_bottom_or_the_top(team: Team, po: User) -> None:
    _items(team, po, "a", "b")
    backlog_item_create(team_id=team.pk, user=po, title="urgent", at_top=True)
    assert _order(team) == ["urgent", "a", "b"]
    assert _positions(team) == [1, 2, 3]


def test_moving_names_the_neighbour_it_lands_above(team: Team, po: User) -> None:
    a, _b, c, d = _items(team, po, "a", "b", "c", "d")
    backlog_item_move(team_id=team.pk, item_id=d.pk, user=po, before_id=a.pk)
    assert _order(team) == ["d", "a", "b", "c"]
    backlog_item_move(team_id=team.pk, item_id=a.pk, user=po, before_id=c.pk)
    assert _order(team) == ["d", "b", "a", "c"]
    backlog_item_move(team_id=team.pk, item_id=d.pk, user=po, before_id=None)
    assert _order(team) == ["b", "a", "c", "d"]
    backlog_item_move(team_id=team.pk, item_id=c.pk, user=po, before_id=d.pk)  # already there
    assert _order(team) == ["b", "a", "c", "d"]
    assert _positions(team) == [1, 2, 3, 4]


def test_moving_before_an_item_of_another_team_is_refused(
    team: Team, po: User, other_team: Team
) -> None:
    (a,) = _items(team, po, "a")
    other_po = MembershipFactory(team=other_team, role=Membership.Role.PRODUCT_OWNER).user
    foreign = backlog_item_create(team_id=other_team.pk, user=other_po, title="theirs")
    with pytest.raises(ValidationError):
        backlog_item_move(team_id=team.pk, item_id=a.pk, user=po, before_id=foreign.pk)
    with pytest.raises(ValidationError):
        backlog_item_move(team_id=team.pk, item_id=foreign.pk, user=po, before_id=None)


def test_deleting_closes_the_gap(team: Team, po: User) -> None:
    _a, b, _c = _items(team, po, "a", "b", "c")
    backlog_item_delete(team_id=team.pk, item_id=b.pk, user=po)
    assert _order(team) == ["a", "c"]
    assert _positions(team) == [1, 2]


def test_an_edit_based_on_a_stale_version_is_refused_and_changes_nothing(
    team: Team, po: User, developer: User
) -> None:
    (item,) = _items(team, po, "Save a card")
    backlog_item_update(
        team_id=team.pk, item_id=item.pk, user=developer, expected_version=1,
        values={"status": Status.IN_PROGRESS, "estimate": 3},
    )  # fmt: skip
    with pytest.raises(ItemConflict, match="US-1 was changed by someone else"):
        backlog_item_update(
            team_id=team.pk, item_id=item.pk, user=po, expected_version=1,
            values={"title": "Stale"},
        )  # fmt: skip
    item.refresh_from_db()
    assert (item.title, item.status, item.estimate, item.version) == (
        "Save a card", Status.IN_PROGRESS, 3, 2,
    )  # fmt: skip


def test_an_edit_is_validated_whole(team: Team, po: User) -> None:
    (item,) = _items(team, po, "Save a card")
    with pytest.raises(ValidationError) as error:
        backlog_item_update(
            team_id=team.pk, item_id=item.pk, user=po, expected_version=1,
            values={"kind": Kind.DEFECT, "title": "Now a defect"},
        )  # fmt: skip
    assert "severity" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        backlog_item_update(
            team_id=team.pk, item_id=item.pk, user=po, expected_version=1,
            values={"position": 9},
        )  # fmt: skip
    assert error.value.message_dict == {"position": ["This field cannot be changed here."]}
    item.refresh_from_db()
    assert (item.kind, item.title, item.version) == (Kind.STORY, "Save a card", 1)


def test_bulk_status_is_all_or_nothing(team: Team, po: User, other_team: Team) -> None:
    a, b = _items(team, po, "a", "b")
    other_po = MembershipFactory(team=other_team, role=Membership.Role.PRODUCT_OWNER).user
    foreign = backlog_item_create(team_id=other_team.pk, user=other_po, title="theirs")
    with pytest.raises(ValidationError, match=f"No backlog item {foreign.pk} in this team"):
        backlog_items_status_set(
            team_id=team.pk, item_ids=[a.pk, foreign.pk], user=po, status=Status.DONE
        )
    assert set(BacklogItem.objects.values_list("status", flat=True)) == {Status.NEW}
    changed = backlog_items_status_set(
        team_id=team.pk, item_ids=[a.pk, b.pk], user=po, status=Status.READY
    )
    assert changed == 2
    assert list(BacklogItem.objects.filter(team=team).values_list("status", "version")) == [
        (Status.READY, 2), (Status.READY, 2),
    ]  # fmt: skip


def test_a_plan_of_another_team_cannot_be_linked(team: Team, po: User, other_team: Team) -> None:
    foreign_plan = PilotPlanFactory(team=other_team)
    with pytest.raises(ValidationError, match="another team"):
        backlog_item_create(team_id=team.pk, user=po, title="x", plan=foreign_plan)


def test_who_may_change_the_backlog_and_its_order(
    team: Team, po: User, sm: User, developer: User, devops: User, stakeholder: User,
    outsider: User,
) -> None:  # fmt: skip
    a, _b = _items(team, po, "a", "b")
    for writer in (sm, developer, devops):
        item = backlog_item_create(team_id=team.pk, user=writer, title=f"by {writer.pk}")
        with pytest.raises(PermissionDenied, match="Only the team's Product Owner can change"):
            backlog_item_move(team_id=team.pk, item_id=item.pk, user=writer, before_id=a.pk)
    with pytest.raises(PermissionDenied, match="Stakeholders can read the backlog"):
        backlog_item_create(team_id=team.pk, user=stakeholder, title="x")
    with pytest.raises(PermissionDenied):
        backlog_items_status_set(team_id=team.pk, item_ids=[a.pk], user=stakeholder, status="done")
    with pytest.raises(PermissionDenied):
        backlog_item_delete(team_id=team.pk, item_id=a.pk, user=stakeholder)
    for call in (
        lambda: backlog_item_create(team_id=team.pk, user=outsider, title="x"),
        lambda: backlog_item_move(team_id=team.pk, item_id=a.pk, user=outsider, before_id=None),
        lambda: backlog_item_delete(team_id=team.pk, item_id=a.pk, user=outsider),
        lambda: backlog_item_update(
            team_id=team.pk, item_id=a.pk, user=outsider, expected_version=1, values={}
        ),
    ):
        with pytest.raises(Http404):
            call()
    assert BacklogItem.objects.filter(team=team).count() == 5
    assert _order(team)[:2] == ["a", "b"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_moves_and_creates_lose_and_duplicate_nothing(team: Team, po: User) -> None:
    """Six threads, each on its own PostgreSQL connection, drag items about and add new ones at
    once: the order stays 1..N, every item is there once, every reference is unique."""
    items = _items(team, po, *[f"item {i}" for i in range(30)])
    ids = [item.pk for item in items]
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for step in range(15):
                if step % 5 == 4:
                    backlog_item_create(
                        team_id=team.pk, user=po, title=f"new {seed}-{step}", at_top=seed % 2 == 0
                    )
                    continue
                moved, before = rng.sample(ids, 2)
                backlog_item_move(
                    team_id=team.pk, item_id=moved, user=po,
                    before_id=None if step % 7 == 0 else before,
                )  # fmt: skip
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = list(BacklogItem.objects.filter(team=team).values_list("pk", "position", "reference"))
    assert len(rows) == 30 + 6 * 3
    assert sorted(position for _pk, position, _ref in rows) == list(range(1, len(rows) + 1))
    assert set(ids) <= {pk for pk, _position, _ref in rows}
    assert len({ref for _pk, _position, ref in rows}) == len(rows)


def test_backlog_changes_are_audited_with_actor_and_before_and_after_bulk_moves_included(
    team, po
) -> None:  # type: ignore[no-untyped-def]
    first = backlog_item_create(team_id=team.pk, user=po, title="First")
    second = backlog_item_create(team_id=team.pk, user=po, title="Second")
    with pghistory.context(user=po.pk):
        backlog_item_move(team_id=team.pk, item_id=second.pk, user=po, before_id=first.pk)
        backlog_items_status_set(
            team_id=team.pk, user=po, item_ids=[first.pk, second.pk], status="done"
        )
    events = Events.objects.filter(pgh_model="backlog.BacklogItemEvent", pgh_label="update")
    moved = [e for e in events if "position" in (e.pgh_diff or {})]
    # The move is one UPDATE of both rows: each row's before and after is recorded.
    assert {tuple(e.pgh_diff["position"]) for e in moved} == {(2, 1), (1, 2)}
    done = [e for e in events if "status" in (e.pgh_diff or {})]
    assert len(done) == 2 and all(e.pgh_diff["status"] == ["new", "done"] for e in done)
    assert all(e.pgh_context["user"] == po.pk for e in moved + done)
