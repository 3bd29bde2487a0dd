"""The participants page, the public enrolment and withdraw pages, and where the
representativeness check shows (plan page, decision page, portfolio): who sees what, query
counts, and flows without JavaScript."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Team, User
from backlog.models import CohortFit, Participant
from backlog.participants.exchange import participants_csv_import
from backlog.participants.services import enrolment_link_revoke
from pilots.models import PilotPlan
from tests.backlog.participants_helpers import CONSENT, add, link, segmented_plan
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db


def _url(plan: PilotPlan, rest: str = "") -> str:
    return f"/plans/{plan.pk}/participants{rest}"


def _skew(plan: PilotPlan, user: User) -> None:
    """20 % in Region A against an intended 60 %: skewed."""
    lines = ["name,region,consent,consent_text"]
    lines += [f"A{i},Region A,yes,ok" for i in range(20)]
    lines += [f"B{i},Region B,yes,ok" for i in range(80)]
    participants_csv_import(plan_id=plan.pk, user=user, text="\r\n".join(lines))


# --- the participants page -----------------------------------------------------------------------


def test_the_page_lists_people_for_writers_with_constant_queries(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    client = client_for(po)
    add(plan, po, name="Ana Lima")
    client.get(_url(plan))
    with CaptureQueriesContext(connection) as few:
        first = client.get(_url(plan))
    for i in range(60):
        add(plan, po, name=f"Person {i}", region="Region B")
    with CaptureQueriesContext(connection) as many:
        response = client.get(_url(plan))
    assert first.status_code == response.status_code == 200
    # Session, user, plan with its cohort, role, segments, counts, fit, list count, list page,
    # enrolment link: the same with 1 participant or 61.
    assert len(few) == len(many) == 10, "\n".join(q["sql"][:120] for q in many)
    page = response.content.decode()
    assert page.count('data-testid="participant-row"') == 50 and "Page 1 of 2" in page
    assert 'data-testid="active-count">61<' in page
    assert 'data-testid="enrolment-link"' in page and 'data-testid="participant-add"' in page


def test_stakeholders_see_counts_but_nobody_by_name(
    client_for, team: Team, po: User, stakeholder: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    add(plan, po, name="Ana Lima", email="ana@example.test")
    reader = client_for(stakeholder)
    page = reader.get(_url(plan)).content.decode()
    assert 'data-testid="active-count">1<' in page
    assert "Ana Lima" not in page and "ana@example.test" not in page
    assert "Stakeholders see the cohort&#x27;s counts per segment, not who takes part." in page
    assert 'data-testid="enrolment-link"' not in page
    assert reader.get(_url(plan, "/export.csv")).status_code == 403
    assert reader.post(_url(plan, "/new"), {"name": "X"}).status_code == 403


def test_outsiders_and_anonymous_find_no_page(
    client_for, team: Team, po: User, outsider: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    assert client_for(outsider).get(_url(plan)).status_code == 404
    assert client_for(outsider).post(_url(plan, "/link"), {"consent_text": "x"}).status_code == 404
    assert Client().get(_url(plan)).status_code == 302


def test_adding_by_hand_redirects_and_a_refusal_names_the_field(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    client = client_for(po)
    refused = client.post(_url(plan, "/new"), {"name": "Ana", "region": "Region A"})
    assert refused.status_code == 422
    assert "opt-in only" in refused.content.decode()
    done = client.post(
        _url(plan, "/new"),
        {"name": "Ana", "region": "Region A", "consent": "on", "consent_text": CONSENT},
    )
    assert done.status_code == 302 and done["Location"] == _url(plan)
    assert Participant.objects.get(plan=plan).consent_text == CONSENT


def test_an_import_with_a_bad_line_lists_it_and_saves_nothing(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    text = "name,region,consent,consent_text\r\nAna,Region A,yes,ok\r\nBo,Region Q,yes,ok\r\n"
    upload = SimpleUploadedFile("p.csv", text.encode(), content_type="text/csv")
    response = client_for(po).post(_url(plan, "/import"), {"file": upload})
    assert response.status_code == 422
    assert (
        "Line 3, region: “Region Q” is not one of Region A, Region B." in response.content.decode()
    )
    assert not Participant.objects.exists()


def test_erasure_asks_first_and_is_the_product_owners(
    client_for, team: Team, po: User, sm: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    person = add(plan, po, name="Ana Lima")
    assert client_for(sm).get(_url(plan, f"/{person.pk}/erase")).status_code == 403
    confirm = client_for(po).get(_url(plan, f"/{person.pk}/erase"))
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert Participant.objects.get(pk=person.pk).name == "Ana Lima"  # nothing yet
    done = client_for(po).post(_url(plan, f"/{person.pk}/erase"), {"version": person.version})
    assert done.status_code == 302
    assert Participant.objects.get(pk=person.pk).name == ""
    stale = client_for(po).post(_url(plan, f"/{person.pk}/erase"), {"version": 1})
    assert stale.status_code == 409


def test_withdraw_from_the_page(client_for, team: Team, po: User, developer: User) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    person = add(plan, po)
    done = client_for(developer).post(_url(plan, f"/{person.pk}/withdraw"), {"version": 1})
    assert done.status_code == 302
    assert Participant.objects.get(pk=person.pk).status == Participant.Status.WITHDRAWN


# --- the public pages ----------------------------------------------------------------------------


def test_a_person_opts_in_and_gets_their_withdraw_link(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    token = link(plan, po).token
    visitor = Client(enforce_csrf_checks=False)
    form = visitor.get(f"/join/{token}")
    assert form.status_code == 200 and CONSENT in form.content.decode()
    unconsented = visitor.post(f"/join/{token}", {"name": "Ana", "region": "Region A"})
    assert unconsented.status_code == 422 and not Participant.objects.exists()
    joined = visitor.post(f"/join/{token}", {"name": "Ana", "region": "Region A", "consent": "on"})
    assert joined.status_code == 201
    withdraw = re.search(r'href="http://testserver(/join/withdraw/[^"]+)"', joined.content.decode())
    assert withdraw is not None
    assert visitor.get(withdraw.group(1)).status_code == 200
    assert visitor.post(withdraw.group(1)).status_code == 200
    assert Participant.objects.get().status == Participant.Status.WITHDRAWN
    assert visitor.get(withdraw.group(1)).status_code == 404


def test_opt_ins_are_rate_limited_per_address_and_per_link(settings, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    settings.ENROL_RATE_PER_ADDRESS, settings.ENROL_RATE_PER_LINK = 2, 3
    plan = segmented_plan(team, po)
    token = link(plan, po).token

    def join(address: str, name: str):  # type: ignore[no-untyped-def]
        data = {"name": name, "region": "Region A", "consent": "on"}
        return Client(REMOTE_ADDR=address).post(f"/join/{token}", data)

    assert [join("10.0.0.1", n).status_code for n in ("Ana", "Ben")] == [201, 201]
    refused = join("10.0.0.1", "Cid")  # a third from the same address
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many sign-ups from your network" in refused.content.decode()
    assert join("10.0.0.2", "Dan").status_code == 201  # another address: the link's third
    limited = join("10.0.0.3", "Eve")  # the link's own limit
    assert limited.status_code == 429 and "through this link" in limited.content.decode()
    assert sorted(Participant.objects.values_list("name", flat=True)) == ["Ana", "Ben", "Dan"]
    assert Client().get(f"/join/{token}").status_code == 200  # reading the form is not counted


def test_an_unknown_or_revoked_link_is_a_clear_404(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    token = link(plan, po).token
    assert Client().get("/join/nothing-here").status_code == 404
    enrolment_link_revoke(plan_id=plan.pk, user=po)
    response = Client().get(f"/join/{token}")
    assert response.status_code == 404
    assert "This enrolment link is not open" in response.content.decode()
    assert plan.title not in response.content.decode()


def test_the_public_page_costs_few_queries(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    token = link(plan, po).token
    with CaptureQueriesContext(connection) as ctx:
        assert Client().get(f"/join/{token}").status_code == 200
    assert len(ctx) == 2, [q["sql"] for q in ctx]  # the link with its plan, the segments


# --- where the check shows -----------------------------------------------------------------------


def test_the_plan_page_flags_a_skewed_cohort(client_for, team: Team, po: User) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po)
    _skew(plan, po)
    page = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()
    assert "Cohort skewed." in page
    assert "Region: Region A under-represented by 40 pp (p &lt; 0.001)" in page
    plain = PilotPlanFactory(team=team, owner=po)
    assert (
        'data-testid="cohort-fit-panel"'
        not in client_for(po).get(reverse("pilots:plan_document", args=[plain.pk])).content.decode()
    )


def test_the_plan_page_says_when_the_cohort_is_representative(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    plan = segmented_plan(team, po, regions=(("Region A", 50), ("Region B", 50)))
    lines = ["name,region,consent,consent_text"]
    lines += [f"A{i},Region A,yes,ok" for i in range(510)] + [
        f"B{i},Region B,yes,ok" for i in range(490)
    ]
    participants_csv_import(plan_id=plan.pk, user=po, text="\r\n".join(lines))
    page = client_for(po).get(reverse("pilots:plan_document", args=[plan.pk])).content.decode()
    assert "Cohort skewed" not in page
    assert "Region: representative (1000 active participants)" in page


def test_the_decision_page_and_the_portfolio_show_the_check(
    client_for, team: Team, po: User
) -> None:  # type: ignore[no-untyped-def]
    skewed = segmented_plan(team, po)
    _skew(skewed, po)
    fine = segmented_plan(team, po)
    add(fine, po)
    decision = client_for(po).get(f"/plans/{skewed.pk}/decision").content.decode()
    assert 'data-testid="cohort-card"' in decision
    assert "Region A under-represented by 40 pp" in decision
    portfolio = client_for(po).get("/portfolio").content.decode()
    assert portfolio.count('data-testid="cohort-skewed-marker"') == 1
    assert CohortFit.objects.filter(status="skewed").count() == 1
