"""The daily digest: once per plan and local day, to the team, after the day's first check."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from accounts.models import Notification
from accounts.services import notification_emails_send
from metrics import checks, digest
from metrics.models import CheckRun, CriterionResult, DailyDigest
from pilots.models import PilotPlan, PlanGuest
from tests.factories import running_plan
from tests.metrics.test_checks_support import store, store_series

pytestmark = pytest.mark.django_db

UTC = dt.UTC
MONDAY = dt.date(2025, 1, 6)
TUESDAY = dt.date(2025, 1, 7)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), UTC)


def check(plan: PilotPlan, day: dt.date, hour: int) -> CheckRun:
    """Claim and execute the slot of ``day`` at ``hour`` (as the tick and the worker would)."""
    run = CheckRun.objects.create(
        plan=plan, due_at=at(day, hour), local_date=day, local_time=dt.time(hour)
    )
    assert checks.check_run_execute(run_id=run.pk)
    return CheckRun.objects.get(pk=run.pk)


def digests() -> list[Notification]:
    return list(Notification.objects.filter(kind=Notification.Kind.DAILY_DIGEST).order_by("pk"))


@pytest.fixture
def plan(team, po, sm, developer, stakeholder, outsider):  # type: ignore[no-untyped-def]
    plan = running_plan(team=team, owner=po, start_date=MONDAY, business_days=10)
    PlanGuest.objects.create(plan=plan, user=outsider, invited_by=po)
    return plan


def test_the_first_check_of_the_day_sends_the_team_one_digest(plan, po, sm, developer,
                                                               stakeholder, outsider):  # fmt: skip
    store(plan, "p1_defects", [(at(MONDAY, 8), 0)])
    first = check(plan, MONDAY, 10)

    sent = digests()
    assert {n.user for n in sent} == {po, sm, developer, stakeholder}  # the team, not guests
    assert {n.url for n in sent} == {f"/plans/{plan.pk}/checks"}
    assert len({n.message for n in sent}) == 1
    assert DailyDigest.objects.get().run == first
    message = sent[0].message
    assert message.startswith(f"“{plan.title}” Mon 6 Jan: 1 of 5 criteria met.")
    assert "Not enough evidence:" in message or "without enough evidence" in message
    assert message.endswith("10 business days left.")
    assert len(message) <= 300

    # The day's second check sends nothing more.
    check(plan, MONDAY, 16)
    assert len(digests()) == 4
    assert DailyDigest.objects.count() == 1


def test_the_next_days_digest_says_what_changed_since_the_previous_day(plan):
    store_series(plan, "csat", at(MONDAY, 0), 20, "4.8 + 0.1 * sin(g)")  # too few for a verdict
    check(plan, MONDAY, 10)
    check(plan, MONDAY, 16)
    store(plan, "p1_defects", [(at(MONDAY, 20), 0)])
    store_series(plan, "csat", at(MONDAY, 21), 40, "4.8 + 0.1 * cos(g)")

    tuesday = check(plan, TUESDAY, 10)

    message = digests()[-1].message
    assert message.startswith(f"“{plan.title}” Tue 7 Jan: 2 of 5 criteria met.")
    assert "Since Mon 6 Jan: " in message
    assert "P1 defects total = 0 defects now met" in message
    assert "CSAT mean ≥ 4.2 / 5 now met" in message
    assert message.endswith("9 business days left.")
    assert DailyDigest.objects.get(local_date=TUESDAY).run == tuesday


def test_a_day_without_changes_says_so(plan):
    check(plan, MONDAY, 10)
    check(plan, TUESDAY, 10)
    assert "Since Mon 6 Jan: no change." in digests()[-1].message


def test_the_digest_stays_within_300_characters_however_many_criteria():
    plan = PilotPlan(title="A pilot with a rather long title for its digest")
    run = CheckRun(local_date=MONDAY)
    results = [
        CriterionResult(
            criterion_id=i, position=i, label=f"Metric number {i}, a long name, mean ≥ {i} units",
            verdict=["met", "not_met", "not_enough_evidence"][i % 3],
        )
        for i in range(1, 13)
    ]  # fmt: skip
    before = [
        CriterionResult(
            criterion_id=r.criterion_id, position=r.position, label=r.label, verdict="met"
        )
        for r in results
    ]
    message = digest.digest_message(
        plan=plan, run=run, results=results, previous=CheckRun(local_date=dt.date(2025, 1, 3)),
        previous_results=before, days_left=3,
    )  # fmt: skip
    assert len(message) <= 300
    assert message.startswith("“A pilot with a rather long title for its digest” Mon 6 Jan: 4 of")
    assert "4 not met" in message and "3 business days left." in message


def test_the_digest_email_carries_the_summary(plan, po):
    po.email_notifications = True
    po.save(update_fields=["email_notifications"])
    check(plan, MONDAY, 10)
    notification = Notification.objects.get(user=po, kind=Notification.Kind.DAILY_DIGEST)

    assert notification_emails_send(notification_ids=[notification.pk]) == 1

    (email,) = mail.outbox
    assert email.subject == "[Pilotplan] Daily digest"
    assert notification.message in email.body
    assert email.body.endswith(f"/plans/{plan.pk}/checks")


def test_verdict_changes_match_criteria_by_identity_not_by_label():
    old = [CriterionResult(criterion_id=1, position=1, label="A", verdict="met"),
           CriterionResult(criterion_id=2, position=2, label="B", verdict="not_met")]  # fmt: skip
    new = [CriterionResult(criterion_id=1, position=1, label="A (edited)", verdict="met"),
           CriterionResult(criterion_id=2, position=2, label="B", verdict="met"),
           CriterionResult(criterion_id=3, position=3, label="C", verdict="met")]  # fmt: skip
    changes = digest.verdict_changes(before=old, after=new)
    assert [(r.label, was) for r, was in changes] == [("B", "not_met"), ("C", None)]
