"""Cohort participants through their services: consent, segments, enrolment, withdrawal,
erasure (history included), CSV import and export, and the stored representativeness check."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from pghistory.models import Events

from accounts.models import Team, User
from backlog.models import CohortFit, Participant
from backlog.participants import selectors
from backlog.participants.exchange import participants_csv, participants_csv_import
from backlog.participants.fit import cohort_fit_refresh
from backlog.participants.services import (
    ParticipantConflict,
    enrolment_link_regenerate,
    enrolment_link_revoke,
    participant_enrol,
    participant_erase,
    participant_withdraw,
    participant_withdraw_by_token,
)
from core.exceptions import Conflict
from pilots.models import PilotPlan
from tests.backlog.participants_helpers import CONSENT, add, link, segmented_plan
from tests.factories import section_edit

pytestmark = pytest.mark.django_db


# --- consent and segments ------------------------------------------------------------------------


def test_an_opt_in_only_cohort_refuses_a_participant_without_consent(team: Team, po: User) -> None:
    plan = segmented_plan(team, po, opt_in=True)
    with pytest.raises(ValidationError) as refused:
        add(plan, po, consent=False)
    assert "opt-in only" in refused.value.message_dict["consent"][0]
    assert not Participant.objects.exists()
    relaxed = segmented_plan(team, po, opt_in=False)
    person = add(relaxed, po, consent=False)
    assert not person.has_consent and person.consent_text == ""


def test_consent_recorded_by_the_team_keeps_when_how_and_the_text(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    person = add(plan, po, name="Ana", email="ana@example.test")
    assert person.consent_method == Participant.ConsentMethod.RECORDED_BY_TEAM
    assert person.consent_given_at is not None and person.consent_text == CONSENT
    with pytest.raises(ValidationError) as no_text:
        add(plan, po, consent_text="  ")
    assert "consent_text" in no_text.value.message_dict


def test_segments_must_be_the_plans_values_one_per_dimension(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    with pytest.raises(ValidationError) as unknown:
        add(plan, po, region="Region Z")
    assert "“Region Z” is not one of Region A, Region B." in unknown.value.message_dict["region"]
    with pytest.raises(ValidationError) as missing:
        add(plan, po, region="")
    assert missing.value.message_dict["region"] == ["Choose one of the plan's segments."]
    with pytest.raises(ValidationError) as unused:
        add(plan, po, name="X", segments={"region": "Region A", "audience": "internal"})
    assert "no internal / external segments" in unused.value.message_dict["audience"][0]
    spelled = add(plan, po, region="region b")
    assert spelled.region == "Region B"  # stored in the plan's spelling


def test_an_email_joins_a_plan_once_whatever_its_case(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    add(plan, po, email="Ana@Example.test")
    with pytest.raises(ValidationError) as twice:
        add(plan, po, email="ana@example.TEST")
    assert twice.value.message_dict["email"] == [
        "Another participant of this plan has this e-mail."
    ]


# --- the enrolment link and the personal withdraw link -------------------------------------------


def test_opting_in_through_the_link_records_its_consent_text(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    token = link(plan, po).token
    person = participant_enrol(
        token=token, name="Ana", email="ana@example.test", segments={"region": "Region B"},
        consent=True,
    )  # fmt: skip
    assert person.consent_method == Participant.ConsentMethod.ENROLMENT_LINK
    assert person.consent_text == CONSENT and person.withdraw_token
    with pytest.raises(ValidationError) as unconsented:
        participant_enrol(token=token, name="Bo", segments={"region": "Region A"}, consent=False)
    assert "consent" in unconsented.value.message_dict
    assert Participant.objects.count() == 1


@pytest.mark.parametrize("status", ["draft", "in_review", "evaluating", "decided", "closed"])
def test_the_link_is_open_only_while_approved_or_running(team: Team, po: User, status: str) -> None:
    plan = segmented_plan(team, po, status=PilotPlan.Status.APPROVED)
    token = link(plan, po).token
    participant_enrol(token=token, name="Ana", segments={"region": "Region A"}, consent=True)
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    with pytest.raises(Http404):
        participant_enrol(token=token, name="Bo", segments={"region": "Region A"}, consent=True)


def test_a_revoked_or_replaced_link_stops_working(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    old = link(plan, po).token
    new = enrolment_link_regenerate(plan_id=plan.pk, user=po).token
    assert new != old
    with pytest.raises(Http404):
        participant_enrol(token=old, name="Ana", segments={"region": "Region A"}, consent=True)
    enrolment_link_revoke(plan_id=plan.pk, user=po)
    with pytest.raises(Http404):
        participant_enrol(token=new, name="Ana", segments={"region": "Region A"}, consent=True)


def test_a_participant_withdraws_through_their_personal_link_once(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    person = participant_enrol(
        token=link(plan, po).token, name="Ana", segments={"region": "Region A"}, consent=True
    )
    withdrawn = participant_withdraw_by_token(token=person.withdraw_token)
    assert withdrawn.status == Participant.Status.WITHDRAWN and withdrawn.withdrawn_at
    assert withdrawn.withdraw_token is None
    with pytest.raises(Http404):
        participant_withdraw_by_token(token=person.withdraw_token)


def test_the_team_withdraws_at_the_version_it_read(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    person = add(plan, po)
    with pytest.raises(ParticipantConflict):
        participant_withdraw(plan_id=plan.pk, participant_id=person.pk, user=po, expected_version=9)
    done = participant_withdraw(
        plan_id=plan.pk, participant_id=person.pk, user=po, expected_version=person.version
    )
    with pytest.raises(Conflict):
        participant_withdraw(
            plan_id=plan.pk, participant_id=person.pk, user=po, expected_version=done.version
        )


# --- erasure -------------------------------------------------------------------------------------


def _history_text(participant: Participant) -> str:
    """Every audit event of the participant, as text (what a database dump would show)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(e)::text FROM backlog_participantevent e WHERE pgh_obj_id = %s",
            [participant.pk],
        )
        return " ".join(row[0] for row in cursor.fetchall())


def test_erasure_removes_the_personal_data_everywhere_and_keeps_the_counts(
    team: Team, po: User
) -> None:
    plan = segmented_plan(team, po)
    person = add(plan, po, name="Ana Secret", email="ana.secret@example.test", external_ref="C-991")
    add(plan, po, region="Region B")
    person = participant_withdraw(
        plan_id=plan.pk, participant_id=person.pk, user=po, expected_version=person.version
    )
    before = selectors.cohort_counts(plan_id=plan.pk)
    assert Events.objects.filter(pgh_obj_model="backlog.Participant").count() >= 3

    erased = participant_erase(
        plan_id=plan.pk, participant_id=person.pk, user=po, expected_version=person.version
    )

    row = Participant.objects.get(pk=person.pk)
    assert (row.name, row.email, row.external_ref, row.withdraw_token) == ("", "", "", None)
    assert row.erased_at is not None and row.region == "Region A" and row.has_consent
    assert erased.display_name == f"Erased participant #{person.pk}"
    history = _history_text(row)
    assert history and "Region A" in history  # the trail is there …
    for secret in ("Ana Secret", "ana.secret@example.test", "C-991"):
        assert secret not in history  # … without the person in it
    after = selectors.cohort_counts(plan_id=plan.pk)
    assert (after.active, after.withdrawn, after.erased) == (before.active, before.withdrawn, 1)
    assert after.by_dimension == before.by_dimension
    with pytest.raises(Conflict):
        participant_erase(
            plan_id=plan.pk, participant_id=person.pk, user=po, expected_version=row.version
        )


def test_only_the_product_owner_erases_and_outsiders_find_nothing(
    team: Team, po: User, sm: User, stakeholder: User, outsider: User
) -> None:
    plan = segmented_plan(team, po)
    person = add(plan, po, name="Ana")
    for user in (sm, stakeholder):
        with pytest.raises(PermissionDenied):
            participant_erase(plan_id=plan.pk, participant_id=person.pk, user=user,
                              expected_version=1)  # fmt: skip
    with pytest.raises(Http404):
        participant_erase(plan_id=plan.pk, participant_id=person.pk, user=outsider,
                          expected_version=1)  # fmt: skip
    with pytest.raises(PermissionDenied):
        add(plan, stakeholder)
    assert Participant.objects.get(pk=person.pk).name == "Ana"


# --- CSV -----------------------------------------------------------------------------------------


def test_an_import_with_bad_lines_saves_nothing_and_names_every_line(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)
    text = (
        "name,email,region,consent,consent_text\r\n"
        f"Ana,ana@example.test,Region A,yes,{CONSENT}\r\n"
        "Bo,not-an-email,Region A,yes,ok\r\n"
        "Cy,cy@example.test,Region Z,yes,ok\r\n"
        "Di,di@example.test,Region B,no,\r\n"
        "Ed,ana@example.test,Region B,yes,ok\r\n"
    )
    with pytest.raises(ValidationError) as refused:
        participants_csv_import(plan_id=plan.pk, user=po, text=text)
    lines = refused.value.message_dict["file"]
    assert lines[0].startswith("Line 3, email:")
    assert lines[1].startswith("Line 4, region: “Region Z”")
    assert lines[2].startswith("Line 5, consent:") and "opt-in only" in lines[2]
    assert lines[3] == "Line 6, email: appears twice in the file."
    assert not Participant.objects.exists()


def test_export_then_import_round_trips_the_cohort(team: Team, po: User) -> None:
    source = segmented_plan(team, po)
    add(source, po, name="=Ana", email="ana@example.test", external_ref="C-1")
    add(source, po, name="Bo", region="Region B", external_ref="C-2")
    gone = add(source, po, name="Cy", region="Region B", email="cy@example.test")
    participant_withdraw(plan_id=source.pk, participant_id=gone.pk, user=po,
                         expected_version=gone.version)  # fmt: skip
    text = participants_csv(Participant.objects.filter(plan=source))
    assert "'=Ana" in text  # a spreadsheet would run it as a formula

    target = segmented_plan(team, po)
    result = participants_csv_import(plan_id=target.pk, user=po, text=text)
    assert (result.created, result.unchanged) == (3, 0)

    def rows(plan: PilotPlan) -> list[tuple[object, ...]]:
        return list(
            Participant.objects.filter(plan=plan).order_by("pk").values_list(
                "name", "email", "external_ref", "region", "status", "consent_text",
                "consent_method", "consent_given_at", "withdrawn_at",
            )
        )  # fmt: skip

    assert rows(target) == rows(source)
    again = participants_csv_import(plan_id=target.pk, user=po, text=text)
    # People are recognised by e-mail or external reference: a second import adds nobody.
    assert (again.created, again.unchanged) == (0, 3)


# --- representativeness --------------------------------------------------------------------------


def _fit(plan: PilotPlan) -> CohortFit:
    (fit,) = selectors.cohort_fit_for_plan(plan_id=plan.pk)
    return fit


def _import(plan: PilotPlan, user: User, counts: dict[str, int]) -> None:
    lines = ["name,region,consent,consent_text"]
    for region, n in counts.items():
        lines += [f"P{region}{i},{region},yes,ok" for i in range(n)]
    participants_csv_import(plan_id=plan.pk, user=user, text="\r\n".join(lines))


def test_a_skewed_cohort_is_stored_as_skewed_naming_the_segment(team: Team, po: User) -> None:
    plan = segmented_plan(team, po)  # intended 60 / 40
    _import(plan, po, {"Region A": 20, "Region B": 80})
    fit = _fit(plan)
    assert fit.status == CohortFit.Status.SKEWED and fit.participants == 100
    assert fit.largest_segment == "Region A" and fit.largest_gap_points == pytest.approx(-40)
    assert fit.p_value is not None and fit.p_value < 0.001
    assert fit.headline == "Region: Region A under-represented by 40 pp (p < 0.001)"


def test_a_trivial_gap_in_a_big_cohort_is_not_flagged(team: Team, po: User) -> None:
    plan = segmented_plan(team, po, regions=(("Region A", 50), ("Region B", 50)))
    _import(plan, po, {"Region A": 5200, "Region B": 4800})  # 52 %: p < 0.001, 2 points
    fit = _fit(plan)
    assert fit.p_value is not None and fit.p_value < 0.001
    assert fit.status == CohortFit.Status.REPRESENTATIVE


def test_the_check_follows_withdrawals_segments_and_the_practical_bound(
    team: Team, po: User, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        plan = segmented_plan(team, po, regions=(("Region A", 50), ("Region B", 50)))
    assert _fit(plan).status == CohortFit.Status.NOT_ENOUGH  # the segments' change computed it
    _import(plan, po, {"Region A": 570, "Region B": 430})  # 57 %: 7 points, p < 0.001
    assert _fit(plan).status == CohortFit.Status.SKEWED
    with django_capture_on_commit_callbacks(execute=True):
        section_edit(plan, "cohort", po, practical_bound=10)
    assert _fit(plan).status == CohortFit.Status.REPRESENTATIVE
    assert _fit(plan).practical_bound == 10
    withdrawn = Participant.objects.filter(plan=plan, region="Region B")[:60]
    for person in withdrawn:
        participant_withdraw(plan_id=plan.pk, participant_id=person.pk, user=po,
                             expected_version=person.version)  # fmt: skip
    fit = _fit(plan)
    assert fit.participants == 940 and fit.status == CohortFit.Status.SKEWED  # 60.6 %


def test_refreshing_is_idempotent_and_forgets_dimensions_no_longer_used(
    team: Team, po: User
) -> None:
    plan = segmented_plan(team, po)
    add(plan, po)
    first = cohort_fit_refresh(plan_id=plan.pk)
    assert [f.dimension for f in cohort_fit_refresh(plan_id=plan.pk)] == ["region"]
    assert CohortFit.objects.filter(plan=plan).count() == 1
    assert first[0].status == CohortFit.Status.NOT_ENOUGH
    plan.segments.all().delete()
    assert cohort_fit_refresh(plan_id=plan.pk) == []
    assert not CohortFit.objects.filter(plan=plan).exists()
