"""The History tab: a plan's changes in business words with the person and their role, grouped
in edit sessions, filtered by section and person, the raw record one click away."""

from __future__ import annotations

import datetime as dt

import pghistory
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from pilots.history import plan_history
from pilots.models import PilotPlan, PlanTransition
from pilots.services import plan_create_from_template
from tests.factories import section_edit

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(team, po: User, sm: User) -> PilotPlan:  # type: ignore[no-untyped-def]
    plan = plan_create_from_template(team=team, author=po, today=timezone.localdate())
    with pghistory.context(user=po.pk):
        section_edit(plan, "cohort", po, target_size=250)
        section_edit(plan, "cohort", po, feedback_channel="#pilot-cards")
    with pghistory.context(user=sm.pk):
        section_edit(plan, "environment", sm, masking_rules="Masked copy of production")
    PlanTransition.objects.create(
        plan=plan, from_status="draft", to_status="in_review", actor=po, reason="Ready"
    )
    return plan


def _url(plan: PilotPlan, query: str = "") -> str:
    return f"/plans/{plan.pk}/history{query}"


def test_changes_read_as_sentences_by_person_and_role(plan: PilotPlan, po: User, sm: User) -> None:
    sessions, people = plan_history(plan=plan)
    assert sorted(name for _, name in people) == sorted([po.display_name, sm.display_name])
    whos = {s.who for s in sessions}
    mine = [c for s in sessions if s.who == f"{po.display_name} (Product Owner)" for c in s.changes]
    sentences = [c.sentence for c in mine]
    assert "changed the cohort" in sentences
    cohort = [c for c in mine if c.sentence == "changed the cohort"]
    assert any(
        d.startswith("Target size: ") and d.endswith(" → 250") for c in cohort for d in c.details
    )
    assert "moved the plan from Draft to In review" in sentences
    assert f"{sm.display_name} (Scrum Master)" in whos
    assert all(c.raw.startswith("{") for c in mine if c.section != "lifecycle")


def test_one_persons_changes_close_together_are_one_session(plan: PilotPlan, po: User) -> None:
    sessions, _ = plan_history(plan=plan)
    # Newest first: the PO's step, the SM's edit, the PO's two cohort edits as one session, and
    # the plan's creation by the template (no person in its audit context).
    mine = [s for s in sessions if s.actor_id == po.pk]
    assert [len([c for c in s.changes if c.section == "cohort"]) for s in mine] == [0, 2]
    assert sessions[-1].who == "Pilotplan (automatically)"
    PlanTransition.objects.filter(plan=plan).update(at=timezone.now() + dt.timedelta(hours=1))
    later, _ = plan_history(plan=plan)
    assert later[0].changes[0].sentence.startswith("moved the plan")
    assert len(later[0].changes) == 1  # an hour later: a session of its own


def test_the_page_filters_by_section_and_person(
    client_for, plan: PilotPlan, po: User, sm: User
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    page = client.get(_url(plan)).content.decode()
    assert "Raw audit record" in page and "(Product Owner)" in page
    cohort = client.get(_url(plan, "?section=cohort")).content.decode()
    sections = {part.split('"')[0] for part in cohort.split('data-section="')[1:]}
    assert sections == {"cohort"}
    smith = client.get(_url(plan, f"?person={sm.pk}")).content.decode()
    assert "(Scrum Master)" in smith and "(Product Owner)" not in smith
    nothing = client.get(_url(plan, f"?section=risks&person={sm.pk}")).content.decode()
    assert 'data-testid="history-empty"' in nothing and "No changes match" in nothing
    ignored = client.get(_url(plan, "?section=evil&person=abc"))
    assert ignored.status_code == 200 and "(Product Owner)" in ignored.content.decode()


def test_the_page_has_a_fixed_number_of_queries(
    client_for, plan: PilotPlan, po: User, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    client.get(_url(plan))
    with django_assert_max_num_queries(12):
        assert client.get(_url(plan)).status_code == 200
    with pghistory.context(user=po.pk):
        for size in range(300, 320):
            section_edit(plan, "cohort", po, target_size=size)
    with django_assert_max_num_queries(12):
        assert client.get(_url(plan)).status_code == 200


def test_an_unknown_person_shows_everyone_with_the_same_queries_as_a_known_one(
    client_for, plan: PilotPlan, po: User, sm: User, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(po)
    client.get(_url(plan))
    with CaptureQueriesContext(connection) as known:
        client.get(_url(plan, f"?person={sm.pk}"))
    with django_assert_num_queries(len(known)):
        page = client.get(_url(plan, "?person=999999")).content.decode()
    assert "(Product Owner)" in page and "(Scrum Master)" in page  # the whole history
    assert '<option value="">Everyone</option>' in page and "Clear filters" not in page


def test_outsiders_get_404_and_anonymous_visitors_the_login(
    client, client_for, plan: PilotPlan, outsider: User
) -> None:  # type: ignore[no-untyped-def]
    assert client_for(outsider).get(_url(plan)).status_code == 404
    response = client.get(_url(plan))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
