"""Change control: items created or re-prioritised because of a pilot, their log, the pages,
and the plan scope's backlog references."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backlog.change_control import backlog_item_raise, backlog_item_reprioritise
from backlog.models import BacklogItem, ChangeControlEntry, Feedback, Finding
from backlog.services import backlog_item_create, backlog_item_update
from pilots import wording
from pilots.models import PilotPlan
from tests.factories import running_plan

pytestmark = pytest.mark.django_db

Source, Action = ChangeControlEntry.Source, ChangeControlEntry.Action


@pytest.fixture
def plan(team, po) -> PilotPlan:
    start = timezone.now().date() - dt.timedelta(days=2)  # the plan's zone is UTC
    return running_plan(team=team, owner=po, start_date=start, business_days=20)


def _raise(plan, user, source, source_id=None, **kw) -> BacklogItem:  # type: ignore[no-untyped-def]
    return backlog_item_raise(
        team_id=plan.team_id, user=user, plan_id=plan.pk, source=source, source_id=source_id,
        title=kw.pop("title", f"From a {source}"), **kw,
    )  # fmt: skip


def _fill(team, po, n: int) -> list[BacklogItem]:  # type: ignore[no-untyped-def]
    return [backlog_item_create(team_id=team.pk, user=po, title=f"Item {i}") for i in range(n)]


# --- services ------------------------------------------------------------------------------------


def test_raising_from_each_source_links_the_item_and_logs_it(plan, po, developer):
    criterion = plan.exit_criteria.order_by("position").first()
    trigger = plan.rollback_triggers.order_by("position").first()
    from_criterion = _raise(plan, developer, Source.CRITERION, criterion.pk, reason="Errors high")
    from_trigger = _raise(plan, po, Source.TRIGGER, trigger.pk)
    from_finding = _raise(plan, po, Source.FINDING, finding_text="Onboarding copy confused people")
    feedback = Feedback.objects.create(plan=plan, csat=2, comment="Checkout froze")
    from_feedback = _raise(plan, po, Source.FEEDBACK, feedback.pk)
    from_defect = _raise(plan, po, Source.DEFECT, kind="defect", severity="p3")

    assert from_criterion.criterion == criterion and from_criterion.origin == "criterion"
    assert from_trigger.trigger == trigger and from_trigger.origin == "trigger"
    finding = Finding.objects.get(plan=plan)
    assert finding.text == "Onboarding copy confused people"
    assert from_finding.finding == finding and from_finding.origin == "finding"
    assert from_defect.kind == "defect" and from_defect.plan == plan
    assert {i.plan_id for i in (from_criterion, from_trigger, from_feedback)} == {plan.pk}

    log = {e.item_id: e for e in ChangeControlEntry.objects.filter(plan=plan)}
    assert set(log) == {i.pk for i in (from_criterion, from_trigger, from_finding,
                                       from_feedback, from_defect)}  # fmt: skip
    entry = log[from_criterion.pk]
    assert (entry.action, entry.actor, entry.reason) == (Action.CREATED, developer, "Errors high")
    assert entry.source_words == wording.criterion_text(criterion)
    assert log[from_feedback.pk].source_id == feedback.pk
    assert log[from_feedback.pk].source_words == "Checkout froze"
    assert log[from_trigger.pk].source_words == wording.trigger_text(trigger)
    assert log[from_finding.pk].source_words == "Onboarding copy confused people"


def test_a_source_of_another_plan_is_refused_and_nothing_is_saved(plan, po, team):
    other = running_plan(team=team, owner=po, start_date=plan.start_date)
    criterion = other.exit_criteria.first()
    with pytest.raises(ValidationError) as error:
        _raise(plan, po, Source.CRITERION, criterion.pk)
    assert "source_id" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        _raise(plan, po, "gossip")
    assert "source" in error.value.message_dict
    assert not BacklogItem.objects.exists() and not ChangeControlEntry.objects.exists()


def test_reprioritise_moves_the_item_and_logs_where_from_and_to(plan, po, team):
    items = _fill(team, po, 4)
    trigger = plan.rollback_triggers.first()
    moved = backlog_item_reprioritise(
        team_id=team.pk, user=po, plan_id=plan.pk, item_id=items[3].pk, to_top=True,
        reason="P1 defects in the pilot", source=Source.TRIGGER, source_id=trigger.pk,
    )  # fmt: skip
    assert moved.position == 1
    entry = ChangeControlEntry.objects.get(item=items[3])
    assert (entry.action, entry.old_position, entry.new_position) == (Action.REPRIORITISED, 4, 1)
    assert entry.reason == "P1 defects in the pilot" and entry.source == Source.TRIGGER
    backlog_item_reprioritise(
        team_id=team.pk, user=po, plan_id=plan.pk, item_id=items[3].pk, before_id=items[2].pk,
        reason="Less urgent after the fix", source=Source.DEFECT,
    )  # fmt: skip
    assert list(
        BacklogItem.objects.filter(team=team).order_by("position").values_list("title", flat=True)
    ) == ["Item 0", "Item 1", "Item 3", "Item 2"]


def test_reprioritise_requires_a_reason(plan, po, team):
    items = _fill(team, po, 2)
    for reason in ("", "   "):
        with pytest.raises(ValidationError) as error:
            backlog_item_reprioritise(
                team_id=team.pk, user=po, plan_id=plan.pk, item_id=items[1].pk, to_top=True,
                reason=reason, source=Source.DEFECT,
            )  # fmt: skip
        assert error.value.message_dict["reason"] == ["Say why: the change-control log keeps it."]
    assert BacklogItem.objects.get(pk=items[1].pk).position == 2
    assert not ChangeControlEntry.objects.exists()


def test_who_may_raise_and_reprioritise(plan, po, developer, stakeholder, outsider, team):
    items = _fill(team, po, 2)
    with pytest.raises(PermissionDenied):
        _raise(plan, stakeholder, Source.DEFECT, kind="defect", severity="p2")
    with pytest.raises(Http404):
        _raise(plan, outsider, Source.DEFECT, kind="defect", severity="p2")
    with pytest.raises(PermissionDenied):  # the order is the Product Owner's call
        backlog_item_reprioritise(
            team_id=team.pk, user=developer, plan_id=plan.pk, item_id=items[1].pk, to_top=True,
            reason="Because", source=Source.DEFECT,
        )  # fmt: skip
    assert not ChangeControlEntry.objects.exists()


def test_the_log_is_complete_every_raise_and_reprioritise_leaves_one_entry(plan, po, team):
    _fill(team, po, 3)
    criterion = plan.exit_criteria.first()
    calls = 0
    for n in range(3):
        item = _raise(plan, po, Source.CRITERION, criterion.pk, title=f"Fix {n}")
        calls += 1
        backlog_item_reprioritise(
            team_id=team.pk, user=po, plan_id=plan.pk, item_id=item.pk, to_top=True,
            reason=f"Reason {n}", source=Source.CRITERION, source_id=criterion.pk,
        )  # fmt: skip
        calls += 1
    # Edits and moves made outside change control are not pilot changes: no entry.
    backlog_item_update(
        team_id=team.pk, item_id=item.pk, user=po, expected_version=1, values={"title": "Edited"}
    )
    entries = ChangeControlEntry.objects.filter(plan=plan)
    assert entries.count() == calls
    assert entries.filter(action=Action.CREATED).count() == 3
    assert set(entries.filter(action=Action.REPRIORITISED).values_list("reason", flat=True)) == {
        "Reason 0", "Reason 1", "Reason 2"
    }  # fmt: skip


# --- pages ---------------------------------------------------------------------------------------


def test_the_raise_page_is_prefilled_from_the_failing_criterion(client_for, plan, po):
    criterion = plan.exit_criteria.order_by("position").first()
    client = client_for(po)
    url = f"/plans/{plan.pk}/backlog/raise?source=criterion&source_id={criterion.pk}"
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Exit criterion not met: P1 defects" in body
    # Session, user, the plan, the viewer's role (twice: plan access, team access), the
    # criterion with its metric.
    assert len(queries) <= 7, [q["sql"] for q in queries]

    response = client.post(
        f"/plans/{plan.pk}/backlog/raise",
        {"title": "Stop the P1s", "kind": "improvement", "source": "criterion",
         "source_id": criterion.pk, "reason": "Blocking criterion not met"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == f"/plans/{plan.pk}/change-control"
    item = BacklogItem.objects.get(title="Stop the P1s")
    assert item.criterion == criterion


def test_a_finding_from_the_review_becomes_an_item_in_one_step(client_for, plan, po):
    client = client_for(po)
    text = "Users did not find the saved-card toggle"
    page = client.get(f"/plans/{plan.pk}/backlog/raise?source=finding&text={quote(text)}")
    assert text in page.content.decode()
    client.post(
        f"/plans/{plan.pk}/backlog/raise",
        {"title": text, "kind": "improvement", "source": "finding", "finding_text": text},
    )
    item = BacklogItem.objects.get(title=text)
    assert item.finding.text == text and item.origin == "finding"
    assert ChangeControlEntry.objects.get(item=item).source == Source.FINDING


def test_the_raise_form_shows_a_refusal_on_its_field(client_for, plan, po):
    response = client_for(po).post(
        f"/plans/{plan.pk}/backlog/raise",
        {"title": "A defect", "kind": "defect", "source": "defect"},
    )
    assert response.status_code == 422
    assert "A defect needs a severity" in response.content.decode()
    assert not BacklogItem.objects.exists()


def test_the_reprioritise_page_needs_a_reason(client_for, plan, po, team):
    items = _fill(team, po, 3)
    client = client_for(po)
    assert client.get(f"/plans/{plan.pk}/backlog/reprioritise?source=defect").status_code == 200
    data = {"reference": items[2].reference, "to": "top", "source": "defect", "reason": ""}
    response = client.post(f"/plans/{plan.pk}/backlog/reprioritise", data)
    assert response.status_code == 422
    assert "Say why: the change-control log keeps it." in response.content.decode()
    data["reason"] = "The pilot's users need it first"
    assert client.post(f"/plans/{plan.pk}/backlog/reprioritise", data).status_code == 302
    assert BacklogItem.objects.get(pk=items[2].pk).position == 1


def test_the_log_page_lists_who_when_why_and_the_status_now(client_for, plan, po, team):
    criterion = plan.exit_criteria.first()
    item = _raise(plan, po, Source.CRITERION, criterion.pk, reason="Blocking", title="Fix it")
    client = client_for(po)
    url = f"/plans/{plan.pk}/change-control"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        body = client.get(url).content.decode()
    assert "Fix it" in body and "Blocking" in body and po.display_name in body and "New" in body
    backlog_item_update(
        team_id=team.pk, item_id=item.pk, user=po, expected_version=1, values={"status": "done"}
    )
    for n in range(10):
        _raise(plan, po, Source.CRITERION, criterion.pk, title=f"More {n}")
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).content.decode()
    assert len(many) == len(few), [q["sql"] for q in many]
    assert body.count('data-testid="change-control-entry"') == 11
    assert "Done" in body


def test_the_log_shows_times_in_the_plans_time_zone(client_for, plan, po):
    PilotPlan.objects.filter(pk=plan.pk).update(time_zone="Asia/Tokyo")  # UTC+9, no DST
    item = _raise(plan, po, Source.CRITERION, plan.exit_criteria.first().pk, title="Zone")
    entry = ChangeControlEntry.objects.get(item=item)
    at = dt.datetime(2026, 12, 7, 1, 57, tzinfo=dt.UTC)
    ChangeControlEntry.objects.filter(pk=entry.pk).update(at=at)
    body = client_for(po).get(f"/plans/{plan.pk}/change-control").content.decode()
    # The UTC clock appears only in the machine's datetime="…", never as text.
    assert ">Mon 7 Dec 2026, 10:57 JST</time>" in body and ", 01:57" not in body


def test_empty_log(client_for, plan, stakeholder):
    body = client_for(stakeholder).get(f"/plans/{plan.pk}/change-control").content.decode()
    assert 'data-testid="change-control-empty"' in body
    assert 'data-testid="log-defect"' not in body  # stakeholders read


def test_pages_refuse_stakeholders_and_hide_from_outsiders(
    client_for, plan, stakeholder, developer, outsider, client
):
    raise_url = f"/plans/{plan.pk}/backlog/raise?source=defect"
    move_url = f"/plans/{plan.pk}/backlog/reprioritise?source=defect"
    assert client_for(stakeholder).get(raise_url).status_code == 403
    assert client_for(stakeholder).post(raise_url, {"title": "x"}).status_code == 403
    assert client_for(developer).get(move_url).status_code == 403
    for url in (raise_url, move_url, f"/plans/{plan.pk}/change-control",
                f"/teams/{plan.team_id}/backlog/references?q=US"):  # fmt: skip
        assert client_for(outsider).get(url).status_code == 404
        assert client.get(url).status_code == 302  # anonymous: the login page


def test_references_suggest_the_teams_items(client_for, team, po):
    backlog_item_create(team_id=team.pk, user=po, title="Saved cards", reference="US-145")
    backlog_item_create(team_id=team.pk, user=po, title="Other")
    client = client_for(po)
    body = client.get(f"/teams/{team.pk}/backlog/references?reference=us-14").content.decode()
    assert '<option value="US-145">Saved cards · New</option>' in body
    assert "Other" not in body
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/teams/{team.pk}/backlog/references?q=")
    assert len(queries) == 4  # session, user, membership, the items


# --- the plan's scope ----------------------------------------------------------------------------


def test_the_plan_shows_each_scope_references_backlog_status(client_for, plan, po, team):
    # The template's scope names US-145 and US-152; only US-145 is in the backlog.
    item = backlog_item_create(team_id=team.pk, user=po, title="Save a card", reference="US-145")
    backlog_item_update(
        team_id=team.pk, item_id=item.pk, user=po, expected_version=1,
        values={"status": "in_progress"},
    )  # fmt: skip
    body = client_for(po).get(f"/plans/{plan.pk}/document").content.decode()
    assert 'data-reference="US-145">US-145 <span class="chip">In progress</span>' in body
    assert 'data-reference="US-152">US-152 <span class="chip">not in the backlog</span>' in body
    assert '<datalist id="backlog-references">' in body


def test_the_scope_reference_input_autocompletes_from_the_backlog(client_for, plan, po):
    url = reverse("pilots:row_list", args=[plan.pk, "scope-items"]) + "?add=1"
    body = client_for(po).get(url).content.decode()
    assert 'list="backlog-references"' in body
    assert f'hx-get="/teams/{plan.team_id}/backlog/references"' in body
