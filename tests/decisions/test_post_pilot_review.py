"""The post-pilot review: its due date in business days, opening once, lost-update protection,
completing it, who may do what, the reminders, and closing the pilot only once it is completed.

Plans are put in the Decided state directly (an UPDATE), so these tests depend on nothing but the
review's own services and the lifecycle's close step."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pghistory.models
import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Notification, TeamHoliday
from core.exceptions import Conflict
from decisions.models import PostPilotReview
from decisions.services import review as service
from decisions.services.review import (
    ReviewConflict,
    post_pilot_review_complete,
    post_pilot_review_due,
    post_pilot_review_open,
    post_pilot_review_save,
    post_pilot_reviews_remind,
)
from pilots.models import PilotPlan
from pilots.services.lifecycle import plan_transition
from tests.factories import PilotPlanFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
# Thu 3 Dec 2026, 11:00 in Berlin: the decision. Five business days later is Thu 10 Dec.
DECIDED_AT = dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
TEXT = {
    "findings": "Shoppers reorder groceries mostly.",
    "went_well": "The flag worked per region.",
    "to_improve": "Agree the baseline first.",
}


def decided(team, owner, **fields) -> PilotPlan:  # type: ignore[no-untyped-def]
    plan = PilotPlanFactory(team=team, owner=owner, title=fields.pop("title", "Saved cards"))
    PilotPlan.objects.filter(pk=plan.pk).update(
        status="decided",
        decision="go",
        decided_at=fields.pop("decided_at", DECIDED_AT),
        time_zone=fields.pop("time_zone", "Europe/Berlin"),
        **fields,
    )
    plan.refresh_from_db()
    return plan


@pytest.fixture
def plan(team, po, sm, developer, devops, stakeholder):
    return decided(team, po, scrum_master=sm, decision_owner=devops)


@pytest.fixture
def review(plan):
    return post_pilot_review_open(plan=plan, decided_at=DECIDED_AT)


def save(review, user, **values):  # type: ignore[no-untyped-def]
    return post_pilot_review_save(
        review=review,
        user=user,
        expected_version=values.pop("expected_version", review.version),
        **{**dict.fromkeys(TEXT, ""), **values},
    )


# --- the due date ------------------------------------------------------------------------------


def test_due_five_business_days_after_the_decision_skipping_the_weekend(review):
    assert review.due_on == dt.date(2026, 12, 10)  # Fri, Mon, Tue, Wed, Thu
    assert review.version == 1
    assert not review.findings and review.completed_at is None


def test_a_team_holiday_moves_the_due_date(team, plan):
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 12, 8), name="Works outing")
    TeamHoliday.objects.create(team=team, date=dt.date(2026, 12, 3), name="Before: no effect")

    review = post_pilot_review_open(plan=plan, decided_at=DECIDED_AT)

    assert review.due_on == dt.date(2026, 12, 11)


def test_the_decisions_local_date_counts_in_the_plans_zone(team, po):
    plan = decided(team, po, time_zone="Europe/Berlin")
    late_thursday_utc = dt.datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # Fri 00:30 in Berlin

    review = post_pilot_review_open(plan=plan, decided_at=late_thursday_utc)

    assert review.due_on == dt.date(2026, 12, 11)  # counted from Friday


def test_the_number_of_days_is_a_setting(settings):  # type: ignore[no-untyped-def]
    settings.POST_PILOT_REVIEW_DAYS = 1
    assert post_pilot_review_due(decided_on=dt.date(2026, 12, 4), holidays=frozenset()) == (
        dt.date(2026, 12, 7)  # decided Friday: due Monday
    )


def test_the_default_is_five_business_days():
    assert settings.POST_PILOT_REVIEW_DAYS == 5


def test_opening_again_changes_nothing(review, plan, developer):
    written = save(review, developer, findings="Kept")

    again = post_pilot_review_open(plan=plan, decided_at=DECIDED_AT + dt.timedelta(days=9))

    assert again.pk == review.pk
    assert again.due_on == dt.date(2026, 12, 10)
    assert again.findings == "Kept" and again.version == written.version
    assert PostPilotReview.objects.count() == 1


# --- saving ----------------------------------------------------------------------------------


def test_a_writer_saves_the_three_parts_and_the_version_moves(review, developer):
    saved = save(review, developer, **TEXT)

    assert (saved.findings, saved.went_well, saved.to_improve) == tuple(TEXT.values())
    assert saved.version == 2
    assert saved.updated_by == developer
    assert saved.parts_written == 3


def test_a_stale_save_is_refused_with_the_other_persons_text(review, developer, sm):
    save(review, developer, findings="Developer's findings")

    with pytest.raises(
        ReviewConflict, match=r"saved this review while you were editing \(now version 2\)"
    ) as e:
        save(review, sm, findings="Scrum Master's findings", expected_version=1)

    assert e.value.current.findings == "Developer's findings"
    assert e.value.current.version == 2
    assert PostPilotReview.objects.get().findings == "Developer's findings"
    assert isinstance(e.value, Conflict)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("findings", "x" * 10_001, "under 10,000 characters"),
        ("to_improve", "a\x00b", "cannot be stored"),
    ],
)
def test_each_part_is_bounded(review, developer, field, value, words):
    with pytest.raises(ValidationError) as e:
        save(review, developer, **{field: value})
    assert words in " ".join(e.value.message_dict[field])
    assert PostPilotReview.objects.get().version == 1


# --- completing --------------------------------------------------------------------------------


def test_completing_names_each_missing_part(review, sm):
    partly = save(review, sm, findings="Only this")

    with pytest.raises(ValidationError) as e:
        post_pilot_review_complete(review=partly, user=sm)

    assert e.value.message_dict == {
        "went_well": ["Write what went well before completing the review."],
        "to_improve": ["Write what to improve before completing the review."],
    }
    assert PostPilotReview.objects.get().completed_at is None


def test_the_scrum_master_completes_a_written_review(review, sm):
    done = post_pilot_review_complete(review=save(review, sm, **TEXT), user=sm)

    assert done.completed_by == sm and done.completed_at is not None
    with pytest.raises(Conflict, match="already completed by"):
        post_pilot_review_complete(review=done, user=sm)


def test_a_completed_review_stays_editable_but_keeps_its_three_parts(review, sm, developer):
    done = post_pilot_review_complete(review=save(review, sm, **TEXT), user=sm)

    edited = save(done, developer, **{**TEXT, "findings": "Sharper findings"})
    assert edited.findings == "Sharper findings" and edited.completed_at is not None
    with pytest.raises(ValidationError) as e:
        save(edited, developer, **{**TEXT, "went_well": "  "})
    assert "went_well" in e.value.message_dict


def test_the_database_refuses_a_completed_review_without_its_parts(review, sm):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        PostPilotReview.objects.filter(pk=review.pk).update(
            completed_at=timezone.now(), completed_by=sm
        )


def test_a_closed_plans_review_no_longer_changes(review, plan, sm):
    PilotPlan.objects.filter(pk=plan.pk).update(status="closed")

    with pytest.raises(Conflict, match="Closed"):
        save(review, sm, **TEXT)


def test_every_save_is_in_the_audit_trail(review, developer):
    save(review, developer, findings="Audited")

    events = pghistory.models.Events.objects.filter(pgh_model="decisions.PostPilotReviewEvent")
    assert sorted(e.pgh_label for e in events) == ["insert", "update"]


# --- who may -----------------------------------------------------------------------------------


def test_a_stakeholder_may_not_write(review, stakeholder):
    with pytest.raises(PermissionDenied, match="Stakeholders can read the post-pilot review"):
        save(review, stakeholder, **TEXT)


def test_a_developer_may_write_but_not_complete(review, developer):
    written = save(review, developer, **TEXT)
    with pytest.raises(PermissionDenied, match="Product Owner or Scrum Master"):
        post_pilot_review_complete(review=written, user=developer)


def test_an_outsider_may_not_write(review, outsider):
    with pytest.raises(PermissionDenied):
        save(review, outsider, **TEXT)


# --- closing -----------------------------------------------------------------------------------


def test_closing_waits_for_the_completed_review(plan, review, sm):
    with pytest.raises(Conflict) as e:
        plan_transition(plan=plan, action="close", user=sm)
    assert "Complete the post-pilot review before closing the pilot (due Thu 10 Dec)." in str(
        e.value
    )

    post_pilot_review_complete(review=save(review, sm, **TEXT), user=sm)
    plan_transition(plan=plan, action="close", user=sm, reason="Review done")

    assert PilotPlan.objects.get(pk=plan.pk).status == "closed"


def test_a_decided_plan_without_a_review_cannot_close_either(plan, sm):
    with pytest.raises(
        Conflict, match=r"Complete the post-pilot review before closing the pilot\."
    ):
        plan_transition(plan=plan, action="close", user=sm)


# --- reminders ---------------------------------------------------------------------------------


def at_berlin(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, 0, tzinfo=BERLIN)


def review_due(kind: str = Notification.Kind.REVIEW_DUE) -> list[tuple[str, str]]:
    return sorted(Notification.objects.filter(kind=kind).values_list("user__email", "message"))


def test_no_reminder_before_the_business_day_before(review):
    assert post_pilot_reviews_remind(now=at_berlin(8, 12)) == 0  # Tue; due Thu
    assert post_pilot_reviews_remind(now=at_berlin(9, 8)) == 0  # Wed before 09:00
    assert not Notification.objects.exists()


def test_the_reminder_goes_once_to_owner_scrum_master_and_decision_owner(review, po, sm, devops):
    first = post_pilot_reviews_remind(now=at_berlin(9, 9))
    second = post_pilot_reviews_remind(now=at_berlin(9, 10))

    assert (first, second) == (1, 0)
    told = review_due()
    assert [email for email, _ in told] == sorted([po.email, sm.email, devops.email])
    assert "“Saved cards” is due Thu 10 Dec (0 of 3 parts written)" in told[0][1]
    assert PostPilotReview.objects.get().reminded_at is not None


def test_a_person_holding_two_roles_is_told_once(team, po):
    plan = decided(team, po, title="One person", scrum_master=po, decision_owner=None)
    post_pilot_review_open(plan=plan, decided_at=DECIDED_AT)

    post_pilot_reviews_remind(now=at_berlin(9, 12))

    assert [email for email, _ in review_due()] == [po.email]


def test_a_monday_due_date_is_reminded_on_the_friday(team, po):
    plan = decided(team, po, title="Friday", decided_at=dt.datetime(2026, 11, 30, 10, tzinfo=UTC))
    review = post_pilot_review_open(plan=plan, decided_at=plan.decided_at)
    assert review.due_on == dt.date(2026, 12, 7)  # Mon 30 Nov + 5 business days

    assert post_pilot_reviews_remind(now=at_berlin(4, 9)) == 1  # Fri 4 Dec


def test_once_more_when_overdue_and_then_never_again(review, po, sm, devops):
    post_pilot_reviews_remind(now=at_berlin(9, 12))

    assert post_pilot_reviews_remind(now=at_berlin(10, 20)) == 0  # the due day itself
    assert post_pilot_reviews_remind(now=at_berlin(11, 9)) == 1
    assert post_pilot_reviews_remind(now=at_berlin(14, 9)) == 0

    overdue = [m for _, m in review_due() if "was due" in m]
    assert len(overdue) == 3
    assert "was due Thu 10 Dec and is not completed" in overdue[0]
    assert len(review_due()) == 6


def test_a_review_first_seen_overdue_gets_one_message(review):
    assert post_pilot_reviews_remind(now=at_berlin(15, 9)) == 1
    assert post_pilot_reviews_remind(now=at_berlin(15, 10)) == 0
    assert len(review_due()) == 3
    stored = PostPilotReview.objects.get()
    assert stored.reminded_at is not None and stored.overdue_reminded_at is not None


def test_a_completed_review_is_not_reminded(review, sm):
    post_pilot_review_complete(review=save(review, sm, **TEXT), user=sm)
    assert post_pilot_reviews_remind(now=at_berlin(15, 9)) == 0
    assert not review_due()


def test_two_workers_claim_the_reminder_once(review):
    """The second run read the review before the first one's UPDATE committed: the conditional
    UPDATE finds reminded_at set and sends nothing."""
    stale = PostPilotReview.objects.select_related(
        "plan__owner", "plan__scrum_master", "plan__decision_owner"
    ).get()
    assert service._remind_one(stale, now=at_berlin(9, 12), holidays=frozenset()) == 1
    assert service._remind_one(stale, now=at_berlin(9, 12), holidays=frozenset()) == 0
    assert len(review_due()) == 3


def test_one_failing_review_does_not_stop_the_others(team, po, review, monkeypatch, caplog):
    other = decided(team, po, title="Other")
    post_pilot_review_open(plan=other, decided_at=DECIDED_AT)
    real = service._remind_one

    def flaky(review, **kw):  # type: ignore[no-untyped-def]
        if review.plan_id == other.pk:
            raise RuntimeError("boom")
        return real(review, **kw)

    monkeypatch.setattr(service, "_remind_one", flaky)

    assert post_pilot_reviews_remind(now=at_berlin(9, 12)) == 1
    assert PostPilotReview.objects.get(plan=other).reminded_at is None
    assert f"failed for plan {other.pk}" in caplog.text
