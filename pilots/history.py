"""A plan's history in the reader's words (the History tab, ``/plans/<id>/history``).

Every recorded change to the plan — its sections and rows (pghistory's audit events), state
changes, time-box extensions, sign-offs and voided sign-offs — as sentences naming the person and
their role: "Ana Lima (Product Owner) changed the cohort: Target size 200 → 250". Changes follow
one another in **edit sessions**: the same person's changes with less than ``SESSION_GAP`` between
them read as one entry. A reader filters by section and by person; the raw audit record of every
change (model, operation, diff) stays one click away for auditors.

Bounded: the newest ``HISTORY_EDITS`` audit events (and every lifecycle record); a fixed number of
queries whatever the plan's history.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pghistory.models
from django.contrib.auth import get_user_model
from django.db import models

from accounts.models import Membership
from pilots.models import PilotPlan, PlanTransition, Section, SignOff, TimeboxExtension
from pilots.review import REVIEWS
from pilots.selectors_review import SYSTEM_ACTOR, diff_lines, edit_text, tracked_model, value_text
from pilots.services import ROW_KINDS
from pilots.services.sections import SINGLETONS

HISTORY_EDITS = 1000
SESSION_GAP = dt.timedelta(minutes=15)
LIFECYCLE = "lifecycle"  # the pseudo-section of state changes, extensions and sign-offs
_DATE = models.DateField()

# Which section an audited model belongs to.
_SECTION_OF: dict[type[models.Model], str] = {
    kind.model: str(kind.section) for kind in ROW_KINDS.values()
}
_SECTION_OF |= {
    model: str(section)
    for model, section in zip(
        SINGLETONS,
        (Section.COHORT, Section.ENVIRONMENT, Section.MONITORING, Section.ROLLBACK_PLAN),
        strict=False,
    )
}
_SECTION_OF[PilotPlan] = str(Section.OVERVIEW)


@dataclass
class Change:
    at: dt.datetime
    actor_id: int | None
    section: str  # a Section value, or LIFECYCLE
    sentence: str  # "changed the cohort"
    details: list[str] = field(default_factory=list)  # "Target size: 200 → 250"
    raw: str = ""  # the audit record as stored, for auditors


@dataclass
class Session:
    actor_id: int | None
    who: str  # "Ana Lima (Product Owner)"
    started_at: dt.datetime
    ended_at: dt.datetime
    changes: list[Change]

    @property
    def sections(self) -> list[str]:
        return sorted({c.section for c in self.changes})


def section_choices() -> list[tuple[str, str]]:
    return [(LIFECYCLE, "State, sign-offs and time-box"), *Section.choices]


def _section_of(model: type[models.Model] | None) -> str:
    if model is None:
        return str(Section.OVERVIEW)
    return _SECTION_OF.get(model, str(Section.OVERVIEW))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _changes(plan: PilotPlan) -> list[Change]:
    changes: list[Change] = []
    for t in PlanTransition.objects.filter(plan=plan):
        changes.append(
            Change(t.at, t.actor_id, LIFECYCLE,
                   f"moved the plan from {t.get_from_status_display()} to "
                   f"{t.get_to_status_display()}", [t.reason] if t.reason else [])
        )  # fmt: skip
    for x in TimeboxExtension.objects.filter(plan=plan):
        old, new = (value_text(_DATE, d.isoformat()) for d in (x.old_end_date, x.new_end_date))
        changes.append(
            Change(x.at, x.actor_id, LIFECYCLE,
                   f"extended the time-box: last day {old} → {new}", [x.reason])
        )  # fmt: skip
    for s in SignOff.objects.filter(plan=plan).select_related("signed_by"):
        label = REVIEWS[s.kind].short_label
        changes.append(
            Change(s.signed_at, s.signed_by_id, LIFECYCLE,
                   f"signed the {label} review (plan version {s.plan_version})")
        )  # fmt: skip
        if s.voided_at:
            changes.append(
                Change(s.voided_at, s.voided_by_id, LIFECYCLE,
                       f"voided {s.signed_by.display_name}’s {label} sign-off",
                       [s.voided_reason] if s.voided_reason else [])
            )  # fmt: skip
    events = pghistory.models.Events.objects.references(plan).order_by("-pgh_created_at")
    for e in events[:HISTORY_EDITS]:
        tracked = tracked_model(e)
        model = e.pgh_model.split(".")[-1].removesuffix("Event")
        raw = json.dumps(
            {"model": e.pgh_model, "operation": e.pgh_label, "diff": e.pgh_diff},
            default=str, ensure_ascii=False, indent=1,
        )  # fmt: skip
        changes.append(
            Change(e.pgh_created_at, (e.pgh_context or {}).get("user"), _section_of(tracked),
                   _lower_first(edit_text(e.pgh_label, tracked, model)),
                   diff_lines(e.pgh_diff, tracked), raw)
        )  # fmt: skip
    changes.sort(key=lambda c: c.at, reverse=True)
    return changes


def plan_history(
    *, plan: PilotPlan, section: str = "", person: int | None = None
) -> tuple[list[Session], list[tuple[int, str]]]:
    """The plan's edit sessions, newest first, filtered by ``section`` and ``person`` (a user
    id); and the people who appear in it (id, name), for the person filter. A ``person`` who
    appears nowhere in the history filters nothing (the whole history, computed once)."""
    changes = _changes(plan)
    ids = {c.actor_id for c in changes if c.actor_id}
    users = (
        {u.pk: u.display_name for u in get_user_model().objects.filter(pk__in=ids)} if ids else {}
    )
    members = Membership.objects.filter(team_id=plan.team_id, user_id__in=ids)
    roles = dict(members.values_list("user_id", "role")) if ids else {}
    people = sorted(users.items(), key=lambda item: item[1].lower())
    if section:
        changes = [c for c in changes if c.section == section]
    if person is not None and person in users:
        changes = [c for c in changes if c.actor_id == person]
    sessions: list[Session] = []
    for change in changes:  # newest first: a session grows backwards in time
        last = sessions[-1] if sessions else None
        if last and last.actor_id == change.actor_id and last.started_at - change.at < SESSION_GAP:
            last.changes.append(change)
            last.started_at = change.at
            continue
        if change.actor_id is None:
            who = SYSTEM_ACTOR
        else:
            name = users.get(change.actor_id, "A former member")
            role = roles.get(change.actor_id)
            who = f"{name} ({Membership.Role(role).label})" if role else name
        sessions.append(Session(change.actor_id, who, change.at, change.at, [change]))
    return sessions, people
