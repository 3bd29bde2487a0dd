"""Plans with a segmented cohort, and participants in them, for the participants' tests."""

from __future__ import annotations

from typing import Any

from accounts.models import Team, User
from backlog.models import EnrolmentLink, Participant
from backlog.participants.services import enrolment_link_save, participant_add
from pilots.models import PilotPlan
from tests.factories import PilotPlanFactory, row_append

CONSENT = "I agree to try the saved-cards pilot and to be asked for feedback."


def segmented_plan(
    team: Team,
    owner: User,
    *,
    status: str = PilotPlan.Status.RUNNING,
    regions: tuple[tuple[str, int], ...] = (("Region A", 60), ("Region B", 40)),
    opt_in: bool = True,
) -> PilotPlan:
    """A plan whose cohort is split by region (60 / 40 by default), in ``status``."""
    plan = PilotPlanFactory(team=team, owner=owner, title="Saved cards")
    for value, share in regions:
        row_append(plan, "segments", owner, dimension="region", value=value, intended_share=share)
    PilotPlan.objects.filter(pk=plan.pk).update(status=status)
    plan.cohort.opt_in_required = opt_in
    plan.cohort.save(update_fields=["opt_in_required"])
    plan.refresh_from_db()
    return plan


def add(plan: PilotPlan, user: User, region: str = "Region A", **values: Any) -> Participant:
    values.setdefault("name", f"Person {Participant.objects.count() + 1}")
    values.setdefault("consent", True)
    values.setdefault("consent_text", CONSENT)
    values.setdefault("segments", {"region": region})
    return participant_add(plan_id=plan.pk, user=user, **values)


def link(plan: PilotPlan, user: User) -> EnrolmentLink:
    return enrolment_link_save(plan_id=plan.pk, user=user, consent_text=CONSENT)
