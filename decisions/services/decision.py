"""The go/no-go decision record: recorded once by the plan's decision owner, never changed.

``decision_record`` freezes the decision page's evidence (``decisions.evidence``) with the
decision, takes the lifecycle to Decided (the only way there: ``plan_transition`` refuses
``decide`` without ``via_record``) and sets off the outcome: Go tells the team and the invited
stakeholders that the plan is marked for full release; Iterate drafts the next iteration with
what it must address; Roll back opens the rollback checklist. A correction is a new record that
supersedes the current one; the database refuses any edit or delete of a record (migration 0001),
and the hashes make an edit made around that refusal detectable (``decision_record_verify``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Notification, User
from accounts.permissions import Perm, allows, refusal, require, role_in_team
from accounts.services import notify
from backlog.models import BacklogItem
from core.exceptions import Conflict
from decisions.events import decision_recorded_publish
from decisions.evidence import decision_evidence
from decisions.models import DecisionComment, DecisionRecord, IterateItem
from decisions.rules import Recommendation
from decisions.selectors import decision_head
from decisions.services.review import post_pilot_review_open
from decisions.services.rollback import rollback_start
from metrics.statistics import Verdict
from pilots.access import is_guest
from pilots.models import PilotPlan, PlanGuest
from pilots.services.lifecycle import plan_transition
from pilots.services.plans import plan_clone

Status = PilotPlan.Status
Outcome = DecisionRecord.Outcome

TEXT_MAX = 5000  # rationale, override reason and comments: a page of text, not a document
# A first decision is for a pilot that runs or has ended its time-box; a correction for a
# Decided one (a Closed pilot's decision is history).
FIRST_FROM = (Status.RUNNING, Status.EVALUATING)

_VERDICT_WORDS = {
    Verdict.NOT_MET: "not met",
    Verdict.NOT_ENOUGH_EVIDENCE: "not enough evidence",
}


# --- who decides -----------------------------------------------------------------------------


def decision_owner(plan: PilotPlan) -> User:
    """The person who records ``plan``'s decision: its decision owner, or else its owner (the
    Product Owner)."""
    return plan.decision_owner or plan.owner


def decision_record_refusal(*, plan: PilotPlan, user: User) -> str:
    """Why ``user`` may not record ``plan``'s decision, in words; "" when they may. The role
    rule (``Perm.DECISION_RECORD``) and the person rule (only the decision owner)."""
    role = role_in_team(user=user, team_id=plan.team_id)
    if not allows(role, Perm.DECISION_RECORD):
        return refusal(Perm.DECISION_RECORD, role)
    owner = decision_owner(plan)
    if owner.pk != user.pk:
        return f"{owner.display_name} (the decision owner) records this pilot's decision."
    return ""


def decision_require_owner(*, plan: PilotPlan, user: User) -> None:
    if reason := decision_record_refusal(plan=plan, user=user):
        raise PermissionDenied(reason)


# --- hashes ----------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The one serialisation every hash covers: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def evidence_hash(evidence: dict[str, Any]) -> str:
    return _sha256(evidence)


def as_stored(evidence: dict[str, Any]) -> dict[str, Any]:
    """``evidence`` as PostgreSQL's jsonb will give it back, so the hash taken now matches the
    one ``decision_record_verify`` takes later: jsonb keeps numbers as decimals (1e16 comes back
    as 10000000000000000, an int) and its own key order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (%s::jsonb)::text", [canonical_json(evidence)])
        (text,) = cursor.fetchone()
    return json.loads(text)


def record_hash(record: DecisionRecord) -> str:
    """The SHA-256 of every field of ``record`` but the hash itself (the evidence by its hash)."""
    recorded_at = record.recorded_at.astimezone(dt.UTC).isoformat()
    return _sha256(
        {
            "plan": record.plan_id,
            "outcome": record.outcome,
            "rationale": record.rationale,
            "override_reason": record.override_reason,
            "recommendation": record.recommendation,
            "recommendation_rule": record.recommendation_rule,
            "recommendation_words": record.recommendation_words,
            "evidence_hash": record.evidence_hash,
            "supersedes": record.supersedes_id,
            "supersedes_hash": record.supersedes_hash,
            "recorded_by": record.recorded_by_id,
            "recorded_at": recorded_at,
        }
    )


def decision_record_verify(record: DecisionRecord) -> list[str]:
    """What no longer matches in ``record`` and the records it corrects, in words; empty when
    the chain is intact. One query, whatever the chain's length."""
    chain = {r.pk: r for r in DecisionRecord.objects.filter(plan_id=record.plan_id)}
    problems: list[str] = []
    current: DecisionRecord | None = chain.get(record.pk, record)
    seen: set[int] = set()
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        prefix = "" if current.pk == record.pk else f"Record #{current.pk} (which it corrects): "
        problems.extend(prefix + p for p in _problems(current, chain))
        current = chain.get(current.supersedes_id) if current.supersedes_id else None
    return problems


def _problems(record: DecisionRecord, chain: dict[int, DecisionRecord]) -> list[str]:
    problems = []
    if evidence_hash(record.evidence) != record.evidence_hash:
        problems.append("its frozen evidence changed after it was recorded.")
    if record.supersedes_id is None:
        if record.supersedes_hash:
            problems.append("it carries the hash of a corrected record but corrects none.")
    else:
        previous = chain.get(record.supersedes_id)
        if previous is None:
            problems.append(f"the record it corrects (#{record.supersedes_id}) is not this plan's.")
        elif previous.record_hash != record.supersedes_hash:
            problems.append(
                f"the record it corrects (#{previous.pk}) changed after this one was recorded."
            )
    if record_hash(record) != record.record_hash:
        problems.append("its fields changed after it was recorded (the record hash differs).")
    return problems


# --- recording ---------------------------------------------------------------------------------


def _validate(*, outcome: str, rationale: str, override_reason: str) -> dict[str, str]:
    errors = {}
    if outcome not in Outcome.values:
        errors["outcome"] = "Choose go, iterate or roll back."
    if not rationale.strip():
        errors["rationale"] = "Say why: the record keeps it."
    elif len(rationale) > TEXT_MAX:
        errors["rationale"] = f"Keep the rationale under {TEXT_MAX:,} characters."
    if len(override_reason) > TEXT_MAX:
        errors["override_reason"] = f"Keep the override reason under {TEXT_MAX:,} characters."
    return errors


def _require_state(
    plan: PilotPlan, head: DecisionRecord | None, supersedes: DecisionRecord | None
) -> None:
    """A first decision: Running or Evaluating, nothing recorded yet. A correction: Decided, and
    it supersedes the current head (the latest record nobody superseded)."""
    if supersedes is None:
        if head is not None:
            raise Conflict(
                f"The decision is recorded already (record #{head.pk}: "
                f"{head.get_outcome_display()}): a correction supersedes record #{head.pk}."
            )
        if plan.status not in FIRST_FROM:
            raise Conflict(
                "A decision is recorded for a Running or Evaluating pilot; "
                f"this one is {plan.get_status_display()}."
            )
        return
    if plan.status != Status.DECIDED:
        raise Conflict(
            "A correction is recorded for a Decided pilot; "
            f"this one is {plan.get_status_display()}."
        )
    if head is None or supersedes.pk != head.pk:
        current = f"record #{head.pk}" if head is not None else "no record"
        raise Conflict(
            f"The current decision is {current}, not record #{supersedes.pk}: "
            f"a correction supersedes the current one. Reload and try again."
        )


@transaction.atomic
def decision_record(
    *,
    plan: PilotPlan,
    user: User,
    outcome: str,
    rationale: str,
    override_reason: str = "",
    supersedes: DecisionRecord | None = None,
    iterate_items: Sequence[int] = (),
) -> DecisionRecord:
    """Record ``plan``'s decision, or correct it (``supersedes``: the current record).

    Only the decision owner. The evidence is the decision page's as it stands now, frozen in
    the record with its hash; going against its recommendation needs ``override_reason``. An
    Iterate decision lists the backlog items the next iteration takes on (``iterate_items``,
    ids of the team's items, in order), stored with the record."""
    # Lock the plan: two decisions, or a decision and a lifecycle step, never interleave.
    locked = (
        PilotPlan.objects.select_for_update(of=("self",))
        .select_related("owner", "decision_owner")
        .get(pk=plan.pk)
    )
    decision_require_owner(plan=locked, user=user)
    if errors := _validate(outcome=outcome, rationale=rationale, override_reason=override_reason):
        raise ValidationError(errors)
    head = decision_head(plan_id=locked.pk)
    _require_state(locked, head, supersedes)
    items = _iterate_items(plan=locked, outcome=outcome, item_ids=iterate_items)

    evidence = decision_evidence(locked)
    result = evidence.result
    recommendation = Recommendation(evidence.recommendation)
    if outcome != recommendation and not override_reason.strip():
        raise ValidationError(
            {
                "override_reason": f"The recommendation is {recommendation.label}: "
                f"deciding {Outcome(outcome).label} goes against it and needs an override "
                "reason, shown wherever the decision is."
            }
        )
    snapshot = as_stored(evidence.snapshot())

    if supersedes is None:
        if locked.status == Status.RUNNING:
            plan_transition(
                plan=locked,
                action="evaluate",
                user=user,
                reason="The time-box ends with the decision.",
                via_record=True,
            )
        plan_transition(
            plan=locked,
            action="decide",
            user=user,
            reason=rationale.strip(),
            decision=outcome,
            via_record=True,
        )
        recorded_at = locked.decided_at
    else:
        recorded_at = timezone.now()
        # The plan is read-only to edits, but this is the system correcting its own record.
        PilotPlan.objects.filter(pk=locked.pk).update(
            decision=outcome, decided_by=user, decided_at=recorded_at
        )
        locked.decision, locked.decided_by, locked.decided_at = outcome, user, recorded_at
    assert recorded_at is not None

    record = DecisionRecord(
        plan=locked,
        outcome=outcome,
        rationale=rationale.strip(),
        override_reason=override_reason.strip() if outcome != recommendation else "",
        recommendation=recommendation.value,
        recommendation_rule=result.rule.name,
        recommendation_words=result.words,
        evidence=snapshot,
        evidence_hash=evidence_hash(snapshot),
        supersedes=supersedes,
        supersedes_hash=supersedes.record_hash if supersedes is not None else "",
        recorded_by=user,
        recorded_at=recorded_at,
    )
    record.record_hash = record_hash(record)
    record.full_clean()
    record.save(force_insert=True)
    IterateItem.objects.bulk_create(
        IterateItem(record=record, item=i, position=n, reference=i.reference, title=i.title)
        for n, i in enumerate(items, start=1)
    )

    # The outcome's consequences. A correction that keeps Iterate drafts no second iteration;
    # every Roll back record goes to the rollback, which links a correction to the open run (or
    # to an emergency run started before the decision) instead of starting another.
    changed = supersedes is None or supersedes.outcome != outcome
    iteration = None
    if changed and outcome == Outcome.ITERATE:
        iteration = _iteration_create(plan=locked, user=user, record=record)
    if outcome == Outcome.ROLL_BACK:
        rollback_start(plan=locked, user=user, decision=record)
    _announce(plan=locked, record=record, iteration=iteration, correction=supersedes is not None)
    if supersedes is None:
        post_pilot_review_open(plan=locked, decided_at=record.recorded_at)
    for name in ("status", "decision", "decided_by_id", "decided_at"):
        setattr(plan, name, getattr(locked, name))  # the caller's copy reads as the plan now is
    return record


ITERATE_ITEMS_MAX = 50


def _iterate_items(*, plan: PilotPlan, outcome: str, item_ids: Sequence[int]) -> list[BacklogItem]:
    """The team's backlog items named by ``item_ids``, in that order; refused (naming the
    field) for another outcome, an item of another team, a repeat or too many."""
    ids = list(item_ids)
    if not ids:
        return []
    if outcome != Outcome.ITERATE:
        raise ValidationError(
            {"iterate_items": "Only an Iterate decision lists backlog items for the next one."}
        )
    if len(ids) > ITERATE_ITEMS_MAX:
        raise ValidationError(
            {"iterate_items": f"List at most {ITERATE_ITEMS_MAX} items for one iteration."}
        )
    if len(set(ids)) != len(ids):
        raise ValidationError({"iterate_items": "An item is listed twice."})
    found = BacklogItem.objects.filter(team_id=plan.team_id, pk__in=ids).in_bulk()
    if missing := [pk for pk in ids if pk not in found]:
        raise ValidationError(
            {"iterate_items": f"No backlog item {', '.join(map(str, missing))} in this team."}
        )
    return [found[pk] for pk in ids]


# --- outcomes ----------------------------------------------------------------------------------

_ITERATION = re.compile(r"^(?P<base>.*) — iteration (?P<n>\d+)$")


def iteration_title(title: str) -> str:
    """“Saved cards” → “Saved cards — iteration 2”; “… — iteration 2” → “… — iteration 3”."""
    match = _ITERATION.match(title)
    base, number = (match["base"], int(match["n"]) + 1) if match else (title, 2)
    suffix = f" — iteration {number}"
    limit = PilotPlan._meta.get_field("title").max_length or 200
    return base[: limit - len(suffix)].rstrip() + suffix


def must_address(evidence: dict[str, Any], rationale: str) -> str:
    """What the next iteration must address: the criteria the frozen evidence found not met or
    without enough evidence, one line each, in words."""
    lines = []
    for criterion in evidence.get("criteria", ()):
        verdict = criterion.get("verdict")
        if verdict not in _VERDICT_WORDS:
            continue
        line = f"- {criterion.get('name', 'A criterion')}: {_VERDICT_WORDS[verdict]}"
        if detail := criterion.get("reason"):
            line += f" — {detail}"
        if more := criterion.get("more_words"):
            line += f" ({more})"
        lines.append(line)
    if not lines:
        lines.append("- Every exit criterion was met; the decision to iterate says why below.")
    lines.append(f"Why the previous pilot iterates: {rationale.strip()}")
    return "\n".join(lines)


def _iteration_create(*, plan: PilotPlan, user: User, record: DecisionRecord) -> PilotPlan:
    """The next iteration: a Draft clone of ``plan`` (linked both ways, ``cloned_from`` /
    ``clones``), without a start date (its time-box is to be set), owned like ``plan``."""
    iteration = plan_clone(source=plan, author=user, title=iteration_title(plan.title))
    fields = {
        "owner_id": plan.owner_id,
        "decision_owner_id": plan.decision_owner_id,
        "must_address": must_address(record.evidence, record.rationale),
    }
    PilotPlan.objects.filter(pk=iteration.pk).update(**fields)
    for name, value in fields.items():
        setattr(iteration, name, value)
    return iteration


_OUTCOME_WORDS = {
    Outcome.GO: "Go — the plan is marked for full release.",
    Outcome.ITERATE: "Iterate — the next iteration “{iteration}” is drafted.",
    Outcome.ROLL_BACK: "Roll back — the rollback checklist is open.",
}


def _announce(
    *, plan: PilotPlan, record: DecisionRecord, iteration: PilotPlan | None, correction: bool
) -> None:
    """Tell the team and the plan's invited stakeholders (``decision_made``); mail goes out
    after commit (``notify``)."""
    members = [
        m.user for m in Membership.objects.filter(team_id=plan.team_id).select_related("user")
    ]
    guests = [g.user for g in PlanGuest.objects.filter(plan=plan).select_related("user")]
    what = _OUTCOME_WORDS[Outcome(record.outcome)].format(
        iteration=iteration.title if iteration is not None else "next iteration"
    )
    verb = "Decision on “{title}” corrected" if correction else "Decision on “{title}”"
    message = f"{verb.format(title=plan.title)}: {what}"
    if record.is_override:
        message += " (against the recommendation)"
    notify(
        users=[*members, *guests],
        kind=Notification.Kind.DECISION_MADE,
        actor=record.recorded_by,
        url=reverse("decisions:decision", args=[plan.pk]),
        message=message,
    )
    decision_recorded_publish(plan=plan, record=record, summary=message, iteration=iteration)


# --- comments ----------------------------------------------------------------------------------

COMMENTABLE = (Status.RUNNING, Status.EVALUATING, Status.DECIDED)


@transaction.atomic
def decision_comment_add(*, plan: PilotPlan, user: User, text: str) -> DecisionComment:
    """A team member's comment on the decision page (stakeholders too; invited guests read)."""
    role = role_in_team(user=user, team_id=plan.team_id)
    if role is None and is_guest(user=user, plan_id=plan.pk):
        raise PermissionDenied(
            "Invited stakeholders read the decision page but cannot comment on it."
        )
    require(role, Perm.DECISION_COMMENT)
    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write the comment first."})
    if len(text) > TEXT_MAX:
        raise ValidationError({"text": f"Keep a comment under {TEXT_MAX:,} characters."})
    if plan.status not in COMMENTABLE:
        raise Conflict(
            "Comments on the decision are for a Running, Evaluating or Decided pilot; "
            f"this one is {plan.get_status_display()}."
        )
    return DecisionComment.objects.create(plan=plan, author=user, text=text)
