"""Writes about the backlog: findings, and the team's prioritised backlog items.

Every write that numbers or orders a team's items takes the team's backlog lock first (a
transaction-scoped advisory lock): two people dragging items at the same moment are served one
after the other, so positions stay 1..N with no duplicate and no gap, and references are never
handed out twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.models import Team, User
from accounts.permissions import Perm, team_for_member
from backlog.events import backlog_items_created_publish
from backlog.models import BacklogItem, Finding
from backlog.signals import defects_changed_send
from core.exceptions import PreconditionFailed
from pilots.models import PilotPlan

# The first key of the backlog's advisory locks (the second is the team's id).
_LOCK_CLASS = 0x6B6C  # "bl"

# Fields an edit may change; order, numbering and origin links have their own paths.
EDITABLE = ("reference", "title", "description", "kind", "severity", "status", "estimate")


@transaction.atomic
def finding_create(*, plan: PilotPlan, user: User, text: str) -> Finding:
    finding = Finding(plan=plan, created_by=user, text=text.strip())
    finding.full_clean()
    finding.save()
    return finding


class ItemConflict(PreconditionFailed):
    """Someone saved the item after the version this edit was based on (412)."""

    def __init__(self, item: BacklogItem):
        super().__init__(
            f"{item.reference} was changed by someone else while you were editing (now version "
            f"{item.version}). Your changes were not saved."
        )
        self.item = item


def team_backlog_lock(team_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, team_id])


def _member_team(*, user: User, team_id: int, perm: Perm) -> Team:
    team, _role = team_for_member(user=user, team_id=team_id, perm=perm)
    return team


def _item(team: Team, item_id: int) -> BacklogItem:
    item = BacklogItem.objects.filter(team=team, pk=item_id).first()
    if item is None:
        raise ValidationError({"item": f"No backlog item {item_id} in this team."})
    return item


def next_number(team: Team) -> int:
    return (BacklogItem.objects.filter(team=team).aggregate(n=Max("number"))["n"] or 0) + 1


def last_position(team: Team) -> int:
    return BacklogItem.objects.filter(team=team).aggregate(p=Max("position"))["p"] or 0


def _clean(item: BacklogItem) -> None:
    # The deferred unique position is the lock's business, not the form's.
    item.full_clean(validate_constraints=False)
    item.validate_constraints(exclude={"position"})


def _plan_of_team(team: Team, plan: PilotPlan | None) -> None:
    if plan is not None and plan.team_id != team.pk:
        raise ValidationError({"plan": "The plan belongs to another team."})


@transaction.atomic
def backlog_item_create(
    *,
    team_id: int,
    user: User,
    title: str,
    kind: str = BacklogItem.Kind.STORY,
    severity: str = "",
    description: str = "",
    reference: str = "",
    status: str = BacklogItem.Status.NEW,
    estimate: int | None = None,
    at_top: bool = False,
    origin: str = BacklogItem.Origin.MANUAL,
    plan: PilotPlan | None = None,
    **sources: Any,
) -> BacklogItem:
    """Add an item at the bottom of the backlog (or the top), with a generated reference unless
    one is given. ``sources`` are the optional links (criterion, trigger, finding)."""
    team = _member_team(user=user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    _plan_of_team(team, plan)
    team_backlog_lock(team.pk)
    number = next_number(team)
    item = BacklogItem(
        team=team,
        number=number,
        reference=reference.strip() or f"{BacklogItem.PREFIX.get(kind, 'BL')}-{number}",
        title=title.strip(),
        description=description.strip(),
        kind=kind,
        severity=severity,
        status=status,
        estimate=estimate,
        origin=origin,
        plan=plan,
        created_by=user,
        position=1 if at_top else last_position(team) + 1,
        **sources,
    )
    _clean(item)
    if at_top:
        BacklogItem.objects.filter(team=team).update(position=F("position") + 1)
    item.save(force_insert=True)
    if is_counted_defect(item):
        defects_changed_send([item.plan_id])
    backlog_items_created_publish(team_id=team.pk, items=[item])
    return item


def is_counted_defect(item: BacklogItem) -> bool:
    """Could ``item`` count towards a pilot's defect metrics (a defect logged against a plan)?
    The receiver decides the rest (severity P1 to P3, not Won't do, the plan Running)."""
    return item.kind == BacklogItem.Kind.DEFECT and item.plan_id is not None


# The fields whose change re-counts the plan's defects.
_COUNTED = ("kind", "severity", "status", "plan_id")


@transaction.atomic
def backlog_item_update(
    *, team_id: int, item_id: int, user: User, expected_version: int, values: dict[str, Any]
) -> BacklogItem:
    """Change an item's editable fields, refused (412) if it changed since ``expected_version``."""
    team = _member_team(user=user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "This field cannot be changed here." for name in unknown})
    item = BacklogItem.objects.select_for_update().filter(team=team, pk=item_id).first()
    if item is None:
        raise ValidationError({"item": f"No backlog item {item_id} in this team."})
    if item.version != expected_version:
        raise ItemConflict(item)
    before = {name: getattr(item, name) for name in _COUNTED}
    was_defect = is_counted_defect(item)
    for name, value in values.items():
        setattr(item, name, value.strip() if isinstance(value, str) else value)
    if item.kind != BacklogItem.Kind.DEFECT and "severity" not in values:
        item.severity = ""  # a defect turned story loses its severity
    _clean(item)
    item.version += 1
    item.updated_at = timezone.now()
    item.save()
    changed = any(getattr(item, name) != old for name, old in before.items())
    if changed and (was_defect or is_counted_defect(item)):
        defects_changed_send([before["plan_id"], item.plan_id])
    return item


@transaction.atomic
def backlog_item_move(
    *, team_id: int, item_id: int, user: User, before_id: int | None
) -> BacklogItem:
    """Put an item just above ``before_id`` (None: at the bottom), shifting the items between
    its old and new place by one, in one statement under the team's lock.

    Naming the neighbour rather than an index keeps a drag correct when someone else moved
    other items since the page was loaded."""
    team = _member_team(user=user, team_id=team_id, perm=Perm.BACKLOG_ORDER)
    team_backlog_lock(team.pk)
    item = _item(team, item_id)
    if before_id == item.pk:
        return item
    old = item.position
    if before_id is None:
        new = last_position(team)
    else:
        neighbour = _item(team, before_id)
        new = neighbour.position if neighbour.position < old else neighbour.position - 1
    if new == old:
        return item
    low, high = min(old, new), max(old, new)
    step = 1 if new < old else -1
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE backlog_backlogitem
               SET position = CASE WHEN id = %(item)s THEN %(new)s ELSE position + %(step)s END
             WHERE team_id = %(team)s AND position BETWEEN %(low)s AND %(high)s
            """,
            {"item": item.pk, "new": new, "step": step, "team": team.pk, "low": low, "high": high},
        )
    item.position = new
    return item


@transaction.atomic
def backlog_item_delete(*, team_id: int, item_id: int, user: User) -> None:
    """Delete an item and close the gap it leaves in the order."""
    team = _member_team(user=user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    team_backlog_lock(team.pk)
    item = _item(team, item_id)
    counted = is_counted_defect(item)
    item.delete()
    BacklogItem.objects.filter(team=team, position__gt=item.position).update(
        position=F("position") - 1
    )
    if counted:
        defects_changed_send([item.plan_id])


@transaction.atomic
def backlog_items_status_set(
    *, team_id: int, item_ids: Iterable[int], user: User, status: str
) -> int:
    """Give many items one status (bulk change from the backlog page). All or nothing: an id
    that is not the team's refuses the whole change."""
    team = _member_team(user=user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    if status not in BacklogItem.Status.values:
        raise ValidationError({"status": f"Unknown status “{status}”."})
    ids = set(item_ids)
    if not ids:
        raise ValidationError({"items": "Select at least one item."})
    found = set(BacklogItem.objects.filter(team=team, pk__in=ids).values_list("pk", flat=True))
    if missing := ids - found:
        raise ValidationError(
            {"items": f"No backlog item {', '.join(map(str, sorted(missing)))} in this team."}
        )
    changed = BacklogItem.objects.filter(team=team, pk__in=ids).update(
        status=status, version=F("version") + 1, updated_at=timezone.now()
    )
    defects_changed_send(
        BacklogItem.objects.filter(team=team, pk__in=ids, kind=BacklogItem.Kind.DEFECT)
        .exclude(plan=None)
        .values_list("plan_id", flat=True)
        .distinct()
    )
    return changed
