"""Reads for the review, sign-off and lifecycle panels of the plan page: each in a constant
number of queries, whatever the plan's history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pghistory.models
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from accounts.models import User
from accounts.ui import day_text
from pilots.editable import plan_is_editable
from pilots.models import PilotPlan, PlanTransition, Review, SignOff, TimeboxExtension
from pilots.review import REVIEWS, ReviewSpec
from pilots.services.lifecycle import Transition, transition_blockers, transitions_from
from pilots.services.review import SIGNABLE, signoff_blockers
from pilots.services.sections import SINGLETONS

TIMELINE_EDITS = 50


@dataclass
class ReviewCard:
    spec: ReviewSpec
    review: Review | None
    active: SignOff | None
    voided: list[SignOff]
    may_fill: bool
    sign_blockers: list[str]

    @property
    def kind(self) -> str:
        return str(self.spec.kind)

    @property
    def version(self) -> int:
        return self.review.version if self.review else 1

    @property
    def checklist(self) -> list[tuple[str, str, str, str]]:
        """(key, question, answer "yes" / "no" / "na" or "", note) per question."""
        answers = self.review.checklist if self.review else {}
        notes = self.review.checklist_notes if self.review else {}
        return [
            (key, q, answers.get(key, ""), notes.get(key, "")) for key, q in self.spec.checklist
        ]

    @property
    def may_sign(self) -> bool:
        return self.may_fill and self.active is None and not self.sign_blockers


def review_cards(*, plan: PilotPlan, user: User) -> list[ReviewCard]:
    """One card per review, with the user's sign-off blockers (only for their own reviews)."""
    reviews = {r.kind: r for r in Review.objects.filter(plan=plan).select_related("updated_by")}
    signoffs = list(SignOff.objects.filter(plan=plan).select_related("signed_by", "voided_by"))
    role = getattr(plan, "viewer_role", None)
    cards = []
    for kind, spec in REVIEWS.items():
        mine = role in spec.roles
        active = next((s for s in signoffs if s.kind == kind and s.voided_at is None), None)
        cards.append(
            ReviewCard(
                spec=spec,
                review=reviews.get(kind),
                active=active,
                voided=[s for s in signoffs if s.kind == kind and s.voided_at is not None],
                may_fill=mine and plan_is_editable(plan),
                sign_blockers=(
                    signoff_blockers(plan=plan, kind=kind, user=user)
                    if mine and active is None
                    else []
                ),
            )
        )
    return cards


def rereview_needed(plan: PilotPlan) -> list[str]:
    """The reviews whose sign-off an edit voided and that nobody has signed again yet."""
    if plan.status not in SIGNABLE:
        return []
    rows = SignOff.objects.filter(plan=plan).values_list("kind", "voided_at")
    voided = {kind for kind, at in rows if at is not None}
    active = {kind for kind, at in rows if at is None}
    return [REVIEWS[k].short_label for k in REVIEWS if k in voided - active]


# The question a step may ask instead of refusing: (step, the keyword that answers it).
QUESTIONS = (("submit", "override_gaps"), ("start", "confirm_early_start"))


@dataclass
class Step:
    transition: Transition
    blockers: list[str]
    # "override_gaps" or "confirm_early_start": the step may be taken once the person answers;
    # ``asks`` says what they are asked.
    question: str = ""
    asks: list[str] = field(default_factory=list)

    @property
    def action(self) -> str:
        return self.transition.action


def _step(plan: PilotPlan, transition: Transition, user: User) -> Step:
    blockers = transition_blockers(plan=plan, action=transition.action, user=user)
    for action, keyword in QUESTIONS:
        if blockers and transition.action == action:
            answered = transition_blockers(plan=plan, action=action, user=user, **{keyword: True})
            if not answered:
                return Step(transition, [], question=keyword, asks=blockers)
    return Step(transition, blockers)


def lifecycle_steps(*, plan: PilotPlan, user: User) -> list[Step]:
    return [_step(plan, t, user) for t in transitions_from(plan.status)]


def gaps_override(plan: PilotPlan) -> PlanTransition | None:
    """The submission that overrode plan-health gaps, while its review round lasts."""
    if plan.status not in (PilotPlan.Status.IN_REVIEW, PilotPlan.Status.APPROVED):
        return None
    submitted = (
        PlanTransition.objects.filter(
            plan=plan, from_status=PilotPlan.Status.DRAFT, to_status=PilotPlan.Status.IN_REVIEW
        )
        .select_related("actor")
        .order_by("-at", "-pk")
        .first()
    )
    return submitted if submitted is not None and submitted.overridden_gaps else None


@dataclass
class Entry:
    at: dt.datetime
    kind: str  # transition, extension, signoff, voided, edit
    who: str
    text: str
    details: list[str] = field(default_factory=list)


SYSTEM_ACTOR = "Pilotplan (automatically)"
_DATE = models.DateField()


def _name(user: Any) -> str:
    return user.display_name if user else "someone"


_VERBS = {"insert": "Added", "update": "Changed", "delete": "Removed"}


def tracked_model(event: Any) -> type[models.Model] | None:
    """The model an audit event is about (ScopeItemEvent → ScopeItem); None if unknown."""
    try:
        return apps.get_model(event.pgh_model).pgh_tracked_model
    except (LookupError, AttributeError, ValueError):
        return None


def edit_text(label: str, tracked: type[models.Model] | None, fallback: str) -> str:
    """An edit in the reader's words: "Added a scope item", "Changed the cohort"."""
    if tracked is None:
        return f"{_VERBS.get(label, label)} {fallback}"
    noun = str(tracked._meta.verbose_name)
    if tracked is PilotPlan:
        return {"insert": "Created the plan", "delete": "Deleted the plan"}.get(
            label, "Changed the plan"
        )
    if tracked in SINGLETONS:  # one per plan, created with it
        return f"{'Set up' if label == 'insert' else _VERBS.get(label, label)} the {noun}"
    article = "an" if noun[:1] in "aeiou" else "a"
    return f"{_VERBS.get(label, label)} {article} {noun}"


def diff_lines(diff: dict[str, Any] | None, tracked: type[models.Model] | None = None) -> list[str]:
    """Each changed field by its label, choices by their words: "Likelihood: Low → High"."""
    out = []
    for name, change in sorted((diff or {}).items()):
        if name in {"version", "updated_at", "updated_by", "updated_by_id"}:
            continue
        before, after = [*change, None, None][:2] if isinstance(change, list) else (None, change)
        field = None
        if tracked is not None:
            try:
                field = tracked._meta.get_field(name)
            except FieldDoesNotExist:
                field = None
        label = str(getattr(field, "verbose_name", "") or name.replace("_", " "))
        label = label[:1].upper() + label[1:]
        if (field is not None and field.is_relation) or isinstance(after, dict | list):
            # A person or a metric (an id means nothing here), or a structure (a checklist).
            out.append(f"{label} changed")
            continue
        out.append(f"{label}: {value_text(field, before)} → {value_text(field, after)}")
    return out


def value_text(field: Any, value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if type(field) is models.DateField and isinstance(value, str):
        try:
            return day_text(dt.date.fromisoformat(value))
        except ValueError:
            pass
    choices = getattr(field, "flatchoices", None)
    if choices and value not in (None, ""):
        return _short(dict(choices).get(value, value))
    return _short(value)


def _short(value: Any) -> str:
    text = "—" if value in (None, "") else str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def plan_timeline(*, plan: PilotPlan) -> list[Entry]:
    """State changes, time-box extensions, sign-offs, voided sign-offs and edits, newest first
    (5–6 queries)."""
    entries: list[Entry] = []
    for t in PlanTransition.objects.filter(plan=plan).select_related("actor"):
        text = f"{t.get_from_status_display()} → {t.get_to_status_display()}"
        who = _name(t.actor) if t.actor_id else SYSTEM_ACTOR  # the time-box ended by itself
        entries.append(Entry(t.at, "transition", who, text, [t.reason] if t.reason else []))
    for x in TimeboxExtension.objects.filter(plan=plan).select_related("actor"):
        old, new = (value_text(_DATE, d.isoformat()) for d in (x.old_end_date, x.new_end_date))
        entries.append(
            Entry(x.at, "extension", _name(x.actor),
                  f"Extended the time-box: last day {old} → {new}", [x.reason])
        )  # fmt: skip
    for s in SignOff.objects.filter(plan=plan).select_related("signed_by", "voided_by"):
        label = REVIEWS[s.kind].short_label
        entries.append(
            Entry(s.signed_at, "signoff", _name(s.signed_by),
                  f"Signed off the {label} review (plan version {s.plan_version})")
        )  # fmt: skip
        if s.voided_at:
            entries.append(
                Entry(s.voided_at, "voided", _name(s.voided_by),
                      f"Voided {s.signed_by.display_name}’s {label} sign-off",
                      [s.voided_reason] if s.voided_reason else [])
            )  # fmt: skip
    events = list(
        pghistory.models.Events.objects.references(plan).order_by("-pgh_created_at")[
            :TIMELINE_EDITS
        ]
    )
    user_ids = {
        (e.pgh_context or {}).get("user") for e in events if (e.pgh_context or {}).get("user")
    }
    names = (
        {u.pk: u.display_name for u in get_user_model().objects.filter(pk__in=user_ids)}
        if user_ids
        else {}
    )
    for e in events:
        uid = (e.pgh_context or {}).get("user")
        model = e.pgh_model.split(".")[-1].removesuffix("Event")
        tracked = tracked_model(e)
        entries.append(
            Entry(e.pgh_created_at, "edit", names.get(uid, "system"),
                  edit_text(e.pgh_label, tracked, model), diff_lines(e.pgh_diff, tracked))
        )  # fmt: skip
    entries.sort(key=lambda x: x.at, reverse=True)
    return entries
