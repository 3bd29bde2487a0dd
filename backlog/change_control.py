"""Change control: backlog items created or re-prioritised because of a pilot, and their log.

From a failing exit criterion, a fired rollback trigger, a defect, a feedback comment or a review
finding, a team member creates a backlog item in one step, pre-filled and linked
(:func:`backlog_item_raise`), or the Product Owner moves an existing item with a reason
(:func:`backlog_item_reprioritise`). Each writes its ``ChangeControlEntry`` in the same
transaction as the change: a change without its log line, or a log line without its change,
cannot happen. The plan's log (:func:`change_control_log`) lists them all.

``source`` names what the change came from (``ChangeControlEntry.Source``); ``source_id`` is that
row's id where there is one. The criterion, trigger and finding are linked on the item (the
item's own foreign keys); other sources (feedback) are kept on the log entry by id, so a new
source needs no change here.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import Perm, team_for_member
from backlog.models import BacklogItem, ChangeControlEntry, Feedback, Finding
from backlog.services import backlog_item_create, backlog_item_move, team_backlog_lock
from pilots import wording
from pilots.models import ExitCriterion, PilotPlan, RollbackTrigger

Source = ChangeControlEntry.Source
Action = ChangeControlEntry.Action
REASON_MAX = 2000
WORDS_MAX = 300


def _plan(team_id: int, plan_id: int) -> PilotPlan:
    plan = PilotPlan.objects.filter(pk=plan_id, team_id=team_id).first()
    if plan is None:
        raise ValidationError({"plan": f"No plan {plan_id} in this team."})
    return plan


def _source_row(
    plan: PilotPlan, source: str, source_id: int | None
) -> tuple[dict[str, object], str]:
    """The item's links for ``source`` and what it says, in words. A criterion, trigger or
    finding must be the plan's own (anything else is refused, naming the field)."""
    if source not in Source.values:
        raise ValidationError({"source": f"Unknown source “{source}”: use {', '.join(Source)}."})
    model = {
        Source.CRITERION: ExitCriterion,
        Source.TRIGGER: RollbackTrigger,
        Source.FINDING: Finding,
    }.get(Source(source))
    if source == Source.FEEDBACK:
        # The feedback names its item (``Feedback.backlog_item``, set by the caller); the log
        # keeps the comment.
        feedback = Feedback.objects.filter(plan=plan, pk=source_id).first()
        if feedback is None:
            raise ValidationError({"source_id": f"No cohort feedback {source_id} in this plan."})
        return {}, (feedback.comment or "A score without a comment")[:WORDS_MAX]
    if model is None:
        return {}, ""
    if source_id is None:
        raise ValidationError({"source_id": f"Name the {Source(source).label.lower()}."})
    query = model.objects.filter(plan=plan, pk=source_id)
    if model is not Finding:
        query = query.select_related("metric")
    row = query.first()
    if row is None:
        raise ValidationError(
            {"source_id": f"No {Source(source).label.lower()} {source_id} in this plan."}
        )
    if isinstance(row, ExitCriterion):
        words = wording.criterion_text(row)
    elif isinstance(row, RollbackTrigger):
        words = wording.trigger_text(row)
    else:
        words = row.text  # type: ignore[attr-defined]
    return {source: row}, words[:WORDS_MAX]


def _reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not reason:
        raise ValidationError({"reason": "Say why: the change-control log keeps it."})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX:,} characters."})
    return reason


@transaction.atomic
def backlog_item_raise(
    *,
    team_id: int,
    user: User,
    plan_id: int,
    source: str,
    title: str,
    source_id: int | None = None,
    finding_text: str = "",
    reason: str = "",
    kind: str = BacklogItem.Kind.IMPROVEMENT,
    severity: str = "",
    description: str = "",
    estimate: int | None = None,
    at_top: bool = False,
) -> BacklogItem:
    """Create a backlog item because of ``plan`` — from its exit criterion, rollback trigger,
    review finding (``source_id``, or ``finding_text`` to record the finding first), a defect or
    cohort feedback (``source_id`` kept on the log) — linked to what it came from, and log it.
    Members who may change the backlog (``Perm.BACKLOG_EDIT``)."""
    team, _role = team_for_member(user=user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    plan = _plan(team.pk, plan_id)
    reason = _reason(reason, required=False)
    if source == Source.FINDING and source_id is None:
        text = finding_text.strip()
        if not text:
            raise ValidationError({"finding_text": "Write the finding first."})
        finding = Finding(plan=plan, created_by=user, text=text)
        finding.full_clean()
        finding.save()
        source_id = finding.pk
    links, words = _source_row(plan, source, source_id)
    item = backlog_item_create(
        team_id=team.pk,
        user=user,
        title=title,
        kind=kind,
        severity=severity,
        description=description,
        estimate=estimate,
        at_top=at_top,
        origin=source,
        plan=plan,
        **links,
    )
    ChangeControlEntry.objects.create(
        team=team,
        plan=plan,
        item=item,
        reference=item.reference,
        title=item.title,
        action=Action.CREATED,
        source=source,
        source_id=source_id,
        source_words=words,
        reason=reason,
        new_position=item.position,
        actor=user,
    )
    return item


@transaction.atomic
def backlog_item_reprioritise(
    *,
    team_id: int,
    user: User,
    plan_id: int,
    item_id: int,
    reason: str,
    source: str,
    source_id: int | None = None,
    before_id: int | None = None,
    to_top: bool = False,
) -> BacklogItem:
    """Move an existing item because of ``plan`` (to the top, or just above ``before_id``, or
    to the bottom when neither), with a required ``reason``, and log it with the old and new
    place. The order is the Product Owner's call (``Perm.BACKLOG_ORDER``)."""
    team, _role = team_for_member(user=user, team_id=team_id, perm=Perm.BACKLOG_ORDER)
    plan = _plan(team.pk, plan_id)
    reason = _reason(reason, required=True)
    _links, words = _source_row(plan, source, source_id)
    team_backlog_lock(team.pk)  # the old place, read under the lock the move takes
    item = BacklogItem.objects.filter(team=team, pk=item_id).first()
    if item is None:
        raise ValidationError({"item": f"No backlog item {item_id} in this team."})
    if to_top:
        first = BacklogItem.objects.filter(team=team).order_by("position").first()
        before_id = first.pk if first is not None else None
    moved = backlog_item_move(team_id=team.pk, item_id=item.pk, user=user, before_id=before_id)
    ChangeControlEntry.objects.create(
        team=team,
        plan=plan,
        item=moved,
        reference=moved.reference,
        title=moved.title,
        action=Action.REPRIORITISED,
        source=source,
        source_id=source_id,
        source_words=words,
        reason=reason,
        old_position=item.position,
        new_position=moved.position,
        actor=user,
    )
    return moved


def change_control_log(*, plan_id: int) -> QuerySet[ChangeControlEntry]:
    """The plan's log, newest first, with each item's current status (the caller scopes the
    plan to the viewer)."""
    return (
        ChangeControlEntry.objects.filter(plan_id=plan_id)
        .select_related("actor", "item")
        .order_by("-at", "-pk")
    )


# What an item raised from each source is, unless the person changes it. A fired trigger or a
# failing criterion calls for work (an improvement); logging it as a defect would also count it
# towards the defect metrics, which is the person's call.
_PREFILL = {
    Source.CRITERION: ("Exit criterion not met: {words}", BacklogItem.Kind.IMPROVEMENT, ""),
    Source.TRIGGER: ("Rollback trigger fired: {words}", BacklogItem.Kind.IMPROVEMENT, ""),
    Source.DEFECT: ("", BacklogItem.Kind.DEFECT, BacklogItem.Severity.P2),
    Source.FEEDBACK: ("{words}", BacklogItem.Kind.STORY, ""),
    Source.FINDING: ("{words}", BacklogItem.Kind.IMPROVEMENT, ""),
}


def raise_initial(
    *, plan: PilotPlan, source: str, source_id: int | None, text: str = ""
) -> dict[str, object]:
    """The pre-filled values of the "create backlog item" form for ``source`` (a refused source
    raises ``ValidationError`` naming the field)."""
    if source == Source.FINDING and source_id is None:
        words = text.strip()[:WORDS_MAX]
    else:
        _links, words = _source_row(plan, source, source_id)
        words = words or text.strip()[:WORDS_MAX]
    title, kind, severity = _PREFILL[Source(source)]
    return {
        "title": title.format(words=words)[:200],
        "kind": kind,
        "severity": severity,
        "description": f"From the pilot “{plan.title}”." + (f"\n\n{words}" if words else ""),
        "source": source,
        "source_id": source_id,
        "finding_text": text.strip() if source == Source.FINDING and source_id is None else "",
    }
