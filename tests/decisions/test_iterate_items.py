"""An Iterate decision lists the backlog items the next iteration takes on: chosen on the decision
page (the plan's own items first), stored with the record, shown on the record and the plan."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Team
from backlog.models import BacklogItem
from backlog.services import backlog_item_create, backlog_item_update
from decisions.models import DecisionRecord, IterateItem
from decisions.selectors import iterate_candidates
from decisions.services.decision import decision_record
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

WHY = {"rationale": "Checkout errors stay too high.", "override_reason": "The team can fix it."}


@pytest.fixture
def backlog(team, po):  # type: ignore[no-untyped-def]
    return [backlog_item_create(team_id=team.pk, user=po, title=f"Item {i}") for i in range(4)]


def test_an_iterate_record_keeps_its_items_in_order(decidable, po, backlog, client_for):
    plan = decidable()
    chosen = [backlog[2].pk, backlog[0].pk]
    record = decision_record(plan=plan, user=po, outcome="iterate", iterate_items=chosen, **WHY)
    lines = list(IterateItem.objects.filter(record=record).order_by("position"))
    assert [(line.item_id, line.position, line.reference) for line in lines] == [
        (backlog[2].pk, 1, backlog[2].reference),
        (backlog[0].pk, 2, backlog[0].reference),
    ]
    backlog_item_update(
        team_id=plan.team_id, item_id=backlog[2].pk, user=po, expected_version=1,
        values={"status": "in_progress"},
    )  # fmt: skip
    client = client_for(po)
    for url in (
        f"/plans/{plan.pk}/decision",
        f"/plans/{plan.pk}/decision/records/{record.pk}",
        f"/plans/{plan.pk}/",  # the plan's decided panel
    ):
        body = client.get(url).content.decode()
        assert body.count('data-testid="iterate-item"') == 2, url
        listed = body[body.index('data-testid="iterate-items"') :]
        assert listed.index("Item 2") < listed.index("Item 0"), url
        assert "In progress" in listed, url


@pytest.mark.parametrize("outcome", ["go", "roll_back"])
def test_only_an_iterate_decision_lists_items(decidable, po, backlog, outcome):
    plan = decidable()
    with pytest.raises(ValidationError) as error:
        decision_record(plan=plan, user=po, outcome=outcome, iterate_items=[backlog[0].pk], **WHY)
    assert "iterate_items" in error.value.message_dict
    assert not DecisionRecord.objects.filter(plan=plan).exists()


def test_items_of_another_team_or_twice_are_refused(decidable, po, backlog):
    plan = decidable()
    other: Team = TeamFactory()
    foreign = BacklogItem.objects.create(
        team=other, number=1, reference="US-1", title="Theirs", position=1
    )
    for ids in ([foreign.pk], [backlog[0].pk, backlog[0].pk]):
        with pytest.raises(ValidationError) as error:
            decision_record(plan=plan, user=po, outcome="iterate", iterate_items=ids, **WHY)
        assert "iterate_items" in error.value.message_dict
    assert not DecisionRecord.objects.filter(plan=plan).exists()


def test_the_plans_own_open_items_are_offered_first(decidable, po, team, backlog):
    plan = decidable()
    own = backlog_item_create(team_id=team.pk, user=po, title="Raised by the pilot", plan=plan)
    backlog_item_update(
        team_id=team.pk, item_id=backlog[1].pk, user=po, expected_version=1,
        values={"status": "done"},
    )  # fmt: skip
    offered = iterate_candidates(plan)
    assert offered[0] == own
    assert backlog[1] not in offered and len(offered) == 4


def test_the_form_records_the_chosen_items_through_the_confirmation(
    decidable, po, backlog, client_for
):
    plan = decidable()
    client = client_for(po)
    url = f"/plans/{plan.pk}/decision"
    page = client.get(url).content.decode()
    assert 'data-testid="iterate-choice"' in page and backlog[3].reference in page
    data = {"outcome": "iterate", **WHY, "iterate_items": [backlog[3].pk, backlog[1].pk]}
    confirm = client.post(f"{url}/record", data).content.decode()
    assert f'name="iterate_items" value="{backlog[3].pk}"' in confirm
    assert confirm.count('data-testid="iterate-item"') == 2
    response = client.post(f"{url}/record", {**data, "confirm": "1"})
    assert response.status_code == 302
    record = DecisionRecord.objects.get(plan=plan)
    assert list(record.iterate.order_by("position").values_list("item_id", flat=True)) == [
        backlog[3].pk, backlog[1].pk
    ]  # fmt: skip
    refused = client.post(f"{url}/record", {**data, "outcome": "go"})
    assert refused.status_code == 422
    assert "Only an Iterate decision lists backlog items" in refused.content.decode()


def test_the_decision_page_queries_do_not_grow_with_the_backlog(decidable, po, team, client_for):
    plan = decidable()
    client = client_for(po)
    url = f"/plans/{plan.pk}/decision"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(60):
        backlog_item_create(team_id=team.pk, user=po, title=f"More {i}", plan=plan)
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).content.decode()
    assert len(many) == len(few), [q["sql"] for q in many]
    assert body.count('name="iterate_items"') == 50  # the first 50 open items
