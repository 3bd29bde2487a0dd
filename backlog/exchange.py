"""The team backlog as CSV, out and in, so issue trackers can sync with it.

Export writes the items in priority order with one row per item. Import reads the same columns
(only ``title`` is required) and matches rows to items by ``reference``: a known reference updates
that item, an unknown or empty one adds an item at the bottom, in the file's order. The whole file
is checked before anything is saved: one bad row refuses the file, naming every bad line.

Cells that a spreadsheet would run as a formula (starting with = + - @ or a tab) are written with a
leading apostrophe, and read back without it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import Perm, team_for_member
from backlog.events import backlog_items_created_publish
from backlog.models import BacklogItem
from backlog.services import is_counted_defect, last_position, next_number, team_backlog_lock
from backlog.signals import defects_changed_send
from core.csvfile import cell, csv_rows

COLUMNS = ("reference", "title", "type", "severity", "status", "estimate", "plan", "origin")
COLUMNS += ("description",)
MAX_ROWS = 10_000
MAX_ERRORS = 20


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def backlog_csv(items: QuerySet[BacklogItem]) -> str:
    """The items (already scoped and filtered by the caller) as CSV, in priority order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in items.select_related("plan").order_by("position"):
        writer.writerow(
            [
                cell(item.reference),
                cell(item.title),
                item.kind,
                item.severity,
                item.status,
                "" if item.estimate is None else item.estimate,
                item.plan_id or "",
                item.origin,
                cell(item.description),
            ]
        )
    return out.getvalue()


def _choice(value: str, choices: type, column: str) -> str:
    """A code (``in_progress``) or its label (``In progress``), any case."""
    wanted = value.strip().lower()
    for code, label in choices.choices:  # type: ignore[attr-defined]
        if wanted in (code, str(label).lower()):
            return code
    allowed = ", ".join(code for code, _label in choices.choices)  # type: ignore[attr-defined]
    raise ValueError(f"{column}: “{value}” is not one of {allowed}.")


@transaction.atomic
def backlog_csv_import(*, team_id: int, user: User, text: str) -> ImportResult:
    """Update the items whose reference the file names and add the others, all or nothing."""
    team, _role = team_for_member(user=user, team_id=team_id, perm=Perm.BACKLOG_EDIT)
    rows = csv_rows(text, columns=COLUMNS, required=("title",), max_rows=MAX_ROWS, noun="items")
    team_backlog_lock(team.pk)
    existing = {item.reference: item for item in BacklogItem.objects.filter(team=team)}
    plans = set(team.plans.values_list("pk", flat=True))
    number, position = next_number(team), last_position(team)
    errors: list[str] = []
    seen: set[str] = set()
    # References a generated one must not take: the team's and every one the file gives.
    taken = set(existing) | {cells.get("reference", "") for _line, cells in rows}
    to_create: list[BacklogItem] = []
    to_update: list[BacklogItem] = []
    # The plans whose defects the file adds or changes (before and after), to recount.
    defect_plans: set[int | None] = set()
    unchanged = 0
    fields = ("title", "description", "kind", "severity", "status", "estimate", "plan_id")
    for line, cells in rows:
        try:
            values = {
                "title": cells.get("title", ""),
                "description": cells.get("description", ""),
                "kind": _choice(cells.get("type") or "story", BacklogItem.Kind, "type"),
                "severity": _choice(cells["severity"], BacklogItem.Severity, "severity")
                if cells.get("severity")
                else "",
                "status": _choice(cells.get("status") or "new", BacklogItem.Status, "status"),
                "estimate": _estimate(cells.get("estimate", "")),
                "plan_id": _plan(cells.get("plan", ""), plans),
            }
        except ValueError as error:
            errors.append(f"Line {line}, {error}")
            continue
        reference = cells.get("reference", "")
        if reference and reference in seen:
            errors.append(f"Line {line}, reference: “{reference}” appears twice in the file.")
            continue
        if len(reference) > 30:
            errors.append(f"Line {line}, reference: at most 30 characters.")
            continue
        seen.add(reference)
        item = existing.get(reference) if reference else None
        if item is None:
            prefix = BacklogItem.PREFIX.get(values["kind"], "BL")
            while not reference and f"{prefix}-{number}" in taken:
                number += 1
            item = BacklogItem(
                team=team,
                number=number,
                reference=reference or f"{prefix}-{number}",
                position=position + 1,
                origin=BacklogItem.Origin.IMPORT,
                created_by=user,
                **values,
            )
            number, position = number + 1, position + 1
            to_create.append(item)
        elif all(getattr(item, f) == v for f, v in values.items()):
            unchanged += 1
            continue
        else:
            if is_counted_defect(item):
                defect_plans.add(item.plan_id)
            for name, value in values.items():
                setattr(item, name, value)
            item.version += 1
            to_update.append(item)
        if is_counted_defect(item):
            defect_plans.add(item.plan_id)
        try:
            # Field rules and the severity rule, without a query per row: references are
            # checked against ``taken`` above, numbers and positions are handed out here.
            item.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                column = {"kind": "type", "plan": "plan"}.get(field, field)
                errors += [f"Line {line}, {column}: {message}" for message in messages]
    if errors:
        shown = errors[:MAX_ERRORS]
        if len(errors) > MAX_ERRORS:
            shown.append(f"… and {len(errors) - MAX_ERRORS} more.")
        raise ValidationError({"file": shown})
    BacklogItem.objects.bulk_create(to_create)
    BacklogItem.objects.bulk_update(to_update, [*fields, "version"])
    defects_changed_send(defect_plans)
    backlog_items_created_publish(team_id=team.pk, items=to_create)
    return ImportResult(len(to_create), len(to_update), unchanged)


def _estimate(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) > 32767:
        raise ValueError(f"estimate: “{text}” is not a whole number of story points.")
    return int(text)


def _plan(text: str, plans: set[int]) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) not in plans:
        raise ValueError(f"plan: “{text}” is not the id of one of the team's plans.")
    return int(text)
