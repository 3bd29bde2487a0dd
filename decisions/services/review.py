"""The post-pilot review: opened by the decision, written by the team, completed before closing
(docs/user-guide.md, "The post-pilot review").

- ``post_pilot_review_open``: when the decision is recorded; due ``POST_PILOT_REVIEW_DAYS``
  business days after the decision's local date (weekends and the team's holidays skipped).
  Idempotent: a correcting decision leaves the review, its text and its due date as they are.
- ``post_pilot_review_save``: the team's writers edit the three parts, compare-and-set on
  ``version``; a stale save is refused with the other person's text (``ReviewConflict``).
- ``post_pilot_review_complete``: the Product Owner or Scrum Master completes it once all three
  parts are written. Both stay possible while the plan is Decided; a Closed plan's review is
  history.
- ``post_pilot_reviews_remind``: published by the tick every minute (``decisions.tasks``) tells
  the plan owner, the Scrum Master and the decision owner one business day before the due date,
  and once more when the review is overdue. Each reminder is claimed by a conditional UPDATE of
  its timestamp, so two workers (or a retried task) send it once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import dateformat, timezone

from accounts.models import Notification, TeamHoliday, User
from accounts.permissions import Perm, require, role_in_team
from accounts.services import notify
from accounts.ui import zone_of
from core.exceptions import Conflict
from decisions.models.review import PART_MAX_LENGTH, PARTS, PostPilotReview
from pilots import timeline
from pilots.extensions import PlanPanel
from pilots.models import PilotPlan

logger = logging.getLogger(__name__)

Status = PilotPlan.Status
ONE_DAY = dt.timedelta(days=1)
# Reminders go out from this local hour on their day: a team hears of a review in the morning,
# not from a run just after midnight.
REMIND_FROM = dt.time(9, 0)


def _day(day: dt.date) -> str:
    """ "Thu 10 Dec": how the review's dates read everywhere (page, panel, guard, reminders)."""
    return dateformat.format(day, "D j M")


def _holidays(team_id: int, after: dt.date) -> frozenset[dt.date]:
    return frozenset(
        TeamHoliday.objects.filter(team_id=team_id, date__gt=after).values_list("date", flat=True)
    )


def post_pilot_review_due(*, decided_on: dt.date, holidays: frozenset[dt.date]) -> dt.date:
    """The due date of a review whose decision fell on ``decided_on`` (a local date): the
    ``POST_PILOT_REVIEW_DAYS``-th business day after it. A decision on Thu 3 Dec is due
    Thu 10 Dec (Fri, Mon, Tue, Wed, Thu)."""
    return timeline.end_date(decided_on + ONE_DAY, settings.POST_PILOT_REVIEW_DAYS, holidays)


def plan_today(plan: PilotPlan, now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(zone_of(plan)).date()


@transaction.atomic
def post_pilot_review_open(*, plan: PilotPlan, decided_at: dt.datetime) -> PostPilotReview:
    """The plan's post-pilot review, opened now if it has none. A second call (a correcting
    decision, a retried request) returns the existing review unchanged; two at once insert one
    row (``ON CONFLICT DO NOTHING`` on the one-per-plan key)."""
    existing = PostPilotReview.objects.filter(plan_id=plan.pk).first()
    if existing is not None:
        return existing
    decided_on = decided_at.astimezone(zone_of(plan)).date()
    due = post_pilot_review_due(decided_on=decided_on, holidays=_holidays(plan.team_id, decided_on))
    PostPilotReview.objects.bulk_create(
        [PostPilotReview(plan_id=plan.pk, due_on=due)], ignore_conflicts=True
    )
    return PostPilotReview.objects.get(plan_id=plan.pk)


def post_pilot_review_for_plan(plan: PilotPlan) -> PostPilotReview | None:
    """The plan's review (None before the decision). A Decided plan without one (decided before
    reviews existed, or by a path that did not open it) gets it now, due from its decision:
    opening is idempotent and changes nothing a person wrote."""
    reviews = PostPilotReview.objects.filter(plan_id=plan.pk).select_related(
        "completed_by", "updated_by"
    )
    review = reviews.first()
    if review is None and plan.status == Status.DECIDED:
        post_pilot_review_open(plan=plan, decided_at=plan.decided_at or plan.updated_at)
        review = reviews.first()
    return review


class ReviewConflict(Conflict):
    """A stale save: ``current`` is the review as the other person saved it."""

    def __init__(self, message: str, current: PostPilotReview) -> None:
        super().__init__(message)
        self.current = current


def _require_writable(plan_id: int) -> None:
    """The review changes while the plan is Decided. Locks the plan row, so a save or a
    completion and the close step (which locks it too) happen one after the other."""
    status = (
        PilotPlan.objects.select_for_update()
        .filter(pk=plan_id)
        .values_list("status", flat=True)
        .get()
    )
    if status == Status.CLOSED:
        raise Conflict("The pilot is Closed: its post-pilot review can no longer change.")
    if status != Status.DECIDED:
        raise Conflict("The post-pilot review opens when the decision is recorded.")


def _clean_parts(values: dict[str, str]) -> dict[str, str]:
    cleaned, errors = {}, {}
    for field, label, _words in PARTS:
        text = (values.get(field) or "").strip()
        if "\x00" in text:
            errors[field] = f"{label}: the text holds a character that cannot be stored."
        elif len(text) > PART_MAX_LENGTH:
            errors[field] = f"{label}: keep it under {PART_MAX_LENGTH:,} characters."
        cleaned[field] = text
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def post_pilot_review_save(
    *,
    review: PostPilotReview,
    user: User,
    findings: str,
    went_well: str,
    to_improve: str,
    expected_version: int,
) -> PostPilotReview:
    """Save the three parts, if nobody saved since ``expected_version``; otherwise raise
    ``ReviewConflict`` carrying what they saved, and change nothing. A completed review stays
    editable until the pilot closes, but keeps all three parts written."""
    plan_id = review.plan_id
    team_id = PilotPlan.objects.values_list("team_id", flat=True).get(pk=plan_id)
    require(role_in_team(user=user, team_id=team_id), Perm.POSTPILOT_EDIT)
    values = _clean_parts({"findings": findings, "went_well": went_well, "to_improve": to_improve})
    _require_writable(plan_id)
    if PostPilotReview.objects.filter(pk=review.pk, completed_at__isnull=False).exists():
        emptied = {
            field: f"A completed review keeps all three parts: write {words}."
            for field, _label, words in PARTS
            if not values[field]
        }
        if emptied:
            raise ValidationError(emptied)
    claimed = PostPilotReview.objects.filter(pk=review.pk, version=expected_version).update(
        **values, version=F("version") + 1, updated_by=user, updated_at=timezone.now()
    )
    current = PostPilotReview.objects.select_related("updated_by", "completed_by").get(pk=review.pk)
    if not claimed:
        who = current.updated_by.display_name if current.updated_by else "Someone"
        raise ReviewConflict(
            f"{who} saved this review while you were editing (now version {current.version}). "
            "Your text was not saved: theirs is shown beside yours; save again to keep yours.",
            current,
        )
    return current


@transaction.atomic
def post_pilot_review_complete(*, review: PostPilotReview, user: User) -> PostPilotReview:
    """Complete the review: the Product Owner or Scrum Master, once findings, what went well
    and what to improve are all written (each missing one named). The pilot may then close."""
    team_id = PilotPlan.objects.values_list("team_id", flat=True).get(pk=review.plan_id)
    require(role_in_team(user=user, team_id=team_id), Perm.POSTPILOT_COMPLETE)
    _require_writable(review.plan_id)
    locked = (
        PostPilotReview.objects.select_for_update(of=("self",))
        .select_related("completed_by")
        .get(pk=review.pk)
    )
    if locked.completed_at is not None:
        raise Conflict(
            f"The post-pilot review was already completed by "
            f"{locked.completed_by.display_name if locked.completed_by else 'someone'}."
        )
    missing = {
        field: f"Write {words} before completing the review."
        for field, _label, words in PARTS
        if not getattr(locked, field).strip()
    }
    if missing:
        raise ValidationError(missing)
    now = timezone.now()
    PostPilotReview.objects.filter(pk=locked.pk).update(
        completed_by=user,
        completed_at=now,
        version=F("version") + 1,
        updated_by=user,
        updated_at=now,
    )
    return PostPilotReview.objects.select_related("updated_by", "completed_by").get(pk=locked.pk)


# --- where the review stands, in words ---------------------------------------------------------


@dataclass(frozen=True)
class DueState:
    """The review's state for the page and the panel: ``value`` picks the chip's tint, ``label``
    and ``words`` say it (colour never alone)."""

    value: str  # completed · open · due_today · overdue
    label: str
    words: str


def post_pilot_review_due_state(review: PostPilotReview, *, today: dt.date) -> DueState:
    if review.completed_at is not None:
        return DueState("completed", "Completed", f"Completed (it was due {_day(review.due_on)}).")
    days = (today - review.due_on).days
    if days > 0:
        late = "1 day" if days == 1 else f"{days} days"
        return DueState(
            "overdue", "Overdue", f"Overdue: it was due {_day(review.due_on)}, {late} ago."
        )
    if days == 0:
        return DueState("due_today", "Due today", f"Due today, {_day(review.due_on)}.")
    return DueState("open", "Open", f"Due {_day(review.due_on)}.")


def post_pilot_review_blockers(plan: PilotPlan) -> list[str]:
    """Why the pilot may not close yet, as far as its review goes (``decisions.guards``)."""
    review = PostPilotReview.objects.filter(plan_id=plan.pk).only("due_on", "completed_at").first()
    if review is not None and review.completed_at is not None:
        return []
    due = f" (due {_day(review.due_on)})" if review is not None else ""
    return [f"Complete the post-pilot review before closing the pilot{due}."]


def post_pilot_review_plan_panel(plan: PilotPlan) -> PlanPanel | None:
    """The plan page's panel (registered in ``decisions.apps``): for a Decided plan, when the
    review is due and how much is written; for a Closed one, the completed review's text. No
    query for plans in any other state."""
    if plan.status not in (Status.DECIDED, Status.CLOSED):
        return None
    review = PostPilotReview.objects.filter(plan_id=plan.pk).select_related("completed_by").first()
    state = post_pilot_review_due_state(review, today=plan_today(plan)) if review else None
    return PlanPanel(
        "decisions/review_panel.html",
        {"plan": plan, "review": review, "state": state, "parts": _parts(review)},
    )


def _parts(review: PostPilotReview | None) -> list[tuple[str, str, str]]:
    """(field, label, text) of each part, in the page's order."""
    return [(field, label, getattr(review, field) if review else "") for field, label, _ in PARTS]


# --- reminders ---------------------------------------------------------------------------------


def _previous_business_day(day: dt.date, holidays: frozenset[dt.date]) -> dt.date:
    """The last business day before ``day`` (at most a year back: a calendar of holidays
    cannot make this loop for ever)."""
    earlier = day - ONE_DAY
    for _ in range(366):
        if timeline.is_business_day(earlier, holidays):
            return earlier
        earlier -= ONE_DAY
    return day - ONE_DAY


def _recipients(plan: PilotPlan) -> list[User]:
    """The plan owner, the Scrum Master and the decision owner (the owner when none is named);
    ``notify`` tells each person once however many of these they are."""
    return [u for u in (plan.owner, plan.scrum_master, plan.decision_owner or plan.owner) if u]


def _remind_one(review: PostPilotReview, *, now: dt.datetime, holidays: frozenset[dt.date]) -> int:
    """Send what ``review`` is owed now (0 or 1 reminder). Claimed first by a conditional UPDATE,
    so a concurrent run finds nothing left to send."""
    plan = review.plan
    zone = zone_of(plan)

    def reached(day: dt.date) -> bool:
        return now >= dt.datetime.combine(day, REMIND_FROM, tzinfo=zone)

    url = reverse("decisions:post_pilot_review", args=[plan.pk])
    still_open = PostPilotReview.objects.filter(pk=review.pk, completed_at__isnull=True)
    parts = f"{review.parts_written} of {review.parts_total} parts written"
    if reached(review.due_on + ONE_DAY):
        # Overdue. Also marks the reminder before it as done, so a review first seen overdue
        # (the job was down) gets one message, not two.
        if not still_open.filter(overdue_reminded_at__isnull=True).update(
            overdue_reminded_at=now, reminded_at=Coalesce(F("reminded_at"), now)
        ):
            return 0
        message = (
            f"The post-pilot review of “{plan.title}” was due {_day(review.due_on)} and is not "
            f"completed ({parts}): the pilot cannot close until it is."
        )
    elif reached(_previous_business_day(review.due_on, holidays)):
        if not still_open.filter(reminded_at__isnull=True).update(reminded_at=now):
            return 0
        message = (
            f"The post-pilot review of “{plan.title}” is due {_day(review.due_on)} ({parts}). "
            "Complete it so the pilot can close."
        )
    else:
        return 0
    notify(
        users=_recipients(plan),
        kind=Notification.Kind.REVIEW_DUE,
        message=message,
        url=url,
        actor=None,
    )
    return 1


def post_pilot_reviews_remind(*, now: dt.datetime) -> int:
    """Send the reminders owed now; return how many reviews were reminded. The open reviews of
    Decided plans still owing one are loaded in one query, their teams' holidays in another;
    each review is then reminded in a transaction of its own, and one that fails is logged and
    left for the next run while the others go on."""
    reviews = list(
        PostPilotReview.objects.filter(completed_at__isnull=True, plan__status=Status.DECIDED)
        .filter(Q(reminded_at__isnull=True) | Q(overdue_reminded_at__isnull=True))
        .select_related("plan__owner", "plan__scrum_master", "plan__decision_owner")
        .order_by("due_on", "pk")
    )
    if not reviews:
        return 0
    holidays: dict[int, set[dt.date]] = defaultdict(set)
    earliest = min(r.due_on for r in reviews) - dt.timedelta(days=366)
    for team_id, day in TeamHoliday.objects.filter(
        team_id__in={r.plan.team_id for r in reviews}, date__gte=earliest
    ).values_list("team_id", "date"):
        holidays[team_id].add(day)
    sent = 0
    for review in reviews:
        try:
            with transaction.atomic():
                sent += _remind_one(
                    review, now=now, holidays=frozenset(holidays[review.plan.team_id])
                )
        except Exception:  # one review's failure must not stop the others' reminders
            logger.exception(
                "Post-pilot review reminder failed for plan %s; the others go on", review.plan_id
            )
    return sent
