"""Rows of list sections (scope items, segments, criteria, triggers, steps, …): add, edit, move,
remove. One set of functions for every kind of row; ``ROW_KINDS`` says what each kind is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction
from django.db.models import Max
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from pilots.editable import plan_require_editable
from pilots.models import (
    CohortSegment,
    Dashboard,
    EntryCriterion,
    ExitCriterion,
    OnCallShift,
    PilotPlan,
    ResponseSla,
    Risk,
    RollbackRehearsal,
    RollbackStep,
    RollbackTrigger,
    ScopeItem,
    Section,
)
from pilots.services.sections import section_claim, validate_references


@dataclass(frozen=True)
class RowKind:
    slug: str  # in URLs and the API: /plans/7/rows/exit-criteria/3
    model: type[models.Model]
    section: Section
    fields: tuple[str, ...]
    label: str  # singular, for buttons: "Add exit criterion"

    @property
    def ordered(self) -> bool:
        return any(f.name == "position" for f in self.model._meta.fields)


ROW_KINDS: dict[str, RowKind] = {
    kind.slug: kind
    for kind in (
        RowKind("scope-items", ScopeItem, Section.SCOPE,
                ("kind", "reference", "title", "reason"), "scope item"),
        RowKind("segments", CohortSegment, Section.COHORT,
                ("dimension", "value", "intended_share"), "segment"),
        RowKind("entry-criteria", EntryCriterion, Section.ENTRY_CRITERIA,
                ("text", "kind", "status", "evidence_url", "evidence_note", "waiver_reason",
                 "confirmed_at"), "entry criterion"),
        RowKind("exit-criteria", ExitCriterion, Section.EXIT_CRITERIA,
                ("metric", "aggregation", "percentile", "denominator", "per_n", "comparator",
                 "threshold", "unit", "window_hours", "min_sample_size", "blocking"),
                "exit criterion"),
        RowKind("dashboards", Dashboard, Section.MONITORING, ("name", "url"), "dashboard"),
        RowKind("on-call", OnCallShift, Section.MONITORING,
                ("person", "person_name", "starts_on", "ends_on"), "on-call shift"),
        RowKind("response-slas", ResponseSla, Section.MONITORING,
                ("severity", "response_minutes"), "response SLA"),
        RowKind("rollback-triggers", RollbackTrigger, Section.ROLLBACK_TRIGGERS,
                ("metric", "comparator", "threshold", "mode", "sustained_minutes", "description"),
                "rollback trigger"),
        RowKind("rollback-steps", RollbackStep, Section.ROLLBACK_PLAN,
                ("action", "owner", "expected_minutes"), "rollback step"),
        RowKind("rehearsals", RollbackRehearsal, Section.ROLLBACK_PLAN,
                ("rehearsed_on", "outcome", "notes"), "rehearsal"),
        RowKind("risks", Risk, Section.RISKS,
                ("description", "likelihood", "impact", "mitigation", "owner"), "risk"),
    )
}  # fmt: skip


def row_kind(slug: str) -> RowKind:
    try:
        return ROW_KINDS[slug]
    except KeyError:
        raise Http404(f"No such list: {slug}") from None


def _row(plan: PilotPlan, kind: RowKind, row_id: int) -> Any:
    row = kind.model._default_manager.filter(plan=plan, pk=row_id).first()
    if row is None:
        raise Http404(f"No such {kind.label}")
    return row


def _siblings(plan: PilotPlan, kind: RowKind, row: Any) -> models.QuerySet:
    qs = kind.model._default_manager.filter(plan=plan)
    if kind.model is ScopeItem:  # included and excluded items are ordered separately
        qs = qs.filter(kind=row.kind)
    return qs


def _apply(plan: PilotPlan, kind: RowKind, row: Any, values: dict[str, Any], user: User) -> None:
    unknown = set(values) - set(kind.fields)
    if unknown:
        raise ValidationError({name: "Not a field of this list." for name in sorted(unknown)})
    before = _confirmed_facts(row) if isinstance(row, EntryCriterion) and row.pk else None
    for name, value in values.items():
        setattr(row, name, value)
    errors: dict[str, Any] = {}
    if isinstance(row, EntryCriterion):
        errors = _confirm(row, before, values, user)
    try:
        # The database's deferred unique position constraint is not checked by full_clean.
        row.full_clean(exclude=["plan"])
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    if "evidence_url" in errors:  # said once on the field, whether by _confirm or the rule
        said: list[ValidationError] = []
        for error in errors["evidence_url"]:
            if not any(e.messages == error.messages for e in said):
                said.append(error)
        errors["evidence_url"] = said
        errors[NON_FIELD_ERRORS] = [
            e for e in errors.get(NON_FIELD_ERRORS, []) if EVIDENCE_NEEDED not in e.messages
        ]
        if not errors[NON_FIELD_ERRORS]:
            del errors[NON_FIELD_ERRORS]
    for model, field, value, required, message in _REQUIRED_WITH:
        # A CHECK on a NULL column is "unknown", which passes; name the missing field instead.
        if not isinstance(row, model) or getattr(row, field) != value:
            continue
        if getattr(row, required) is None:
            errors.setdefault(required, []).append(message)
    if errors:
        raise ValidationError(errors)
    if (
        isinstance(row, ResponseSla)
        and ResponseSla.objects.filter(plan=plan, severity=row.severity).exclude(pk=row.pk).exists()
    ):
        # Excluding ``plan`` above skips UNIQUE(plan, severity); say so on the field instead
        # of letting the INSERT fail.
        raise ValidationError(
            {"severity": f"There is already a response SLA for {row.get_severity_display()}."}
        )
    validate_references(plan=plan, instance=row, fields=tuple(values))


EVIDENCE_NEEDED = EntryCriterion.EVIDENCE_NEEDED


def _confirmed_facts(row: EntryCriterion) -> tuple[Any, ...]:
    return (row.status, row.confirmed_at)


def _confirm(
    row: EntryCriterion, before: tuple[Any, ...] | None, values: dict[str, Any], user: User
) -> dict[str, Any]:
    """Whoever marks a criterion met or waived is the one who confirmed it, now or at the
    ``confirmed_at`` they give (never in the future); editing its evidence later does not change
    that. Met needs evidence."""
    errors: dict[str, Any] = {}
    if row.status == EntryCriterion.Status.PENDING:
        row.confirmed_by, row.confirmed_at = None, None
        return errors
    if row.status == EntryCriterion.Status.MET and not (
        row.evidence_url.strip() or row.evidence_note.strip()
    ):
        errors["evidence_url"] = [ValidationError(EVIDENCE_NEEDED)]
    now = timezone.now()
    given_at = values.get("confirmed_at")
    if (
        before is None
        or before[0] != row.status
        or (given_at is not None and given_at != before[1])
        or row.confirmed_by_id is None
    ):
        row.confirmed_by = user
        row.confirmed_at = given_at or now
    elif row.confirmed_at is None:  # left empty in a form: the confirmation stands as it was
        row.confirmed_at = before[1]
    if row.confirmed_at and row.confirmed_at > now:
        errors["confirmed_at"] = [ValidationError("A confirmation cannot lie in the future.")]
    return errors


# (model, field, value, the field that value requires, message)
_REQUIRED_WITH = (
    (RollbackTrigger, "mode", RollbackTrigger.Mode.SUSTAINED, "sustained_minutes",
     "Say for how many minutes the breach must last."),
    (ExitCriterion, "aggregation", ExitCriterion.Aggregation.PERCENTILE, "percentile",
     "Say which percentile (e.g. 95)."),
    (ExitCriterion, "aggregation", ExitCriterion.Aggregation.RATE_PER, "per_n",
     "Say per how many (e.g. 1000)."),
)  # fmt: skip


@transaction.atomic
def row_add(
    *, plan: PilotPlan, kind: RowKind, user: User, expected_version: int, values: dict[str, Any]
) -> Any:
    plan_require_editable(plan)
    row = kind.model(plan=plan)
    if kind.ordered:
        row.position = 0  # placeholder so validation passes; set below
    _apply(plan, kind, row, values, user)
    section_claim(plan=plan, key=kind.section, expected_version=expected_version, user=user)
    if kind.ordered:
        last = _siblings(plan, kind, row).aggregate(last=Max("position"))["last"]
        row.position = (last or 0) + 1
    row.save()
    return row


@transaction.atomic
def row_update(
    *,
    plan: PilotPlan,
    kind: RowKind,
    row_id: int,
    user: User,
    expected_version: int,
    values: dict[str, Any],
) -> Any:
    plan_require_editable(plan)
    row = _row(plan, kind, row_id)
    old_kind = row.kind if isinstance(row, ScopeItem) else None
    _apply(plan, kind, row, values, user)
    section_claim(plan=plan, key=kind.section, expected_version=expected_version, user=user)
    if old_kind is not None and row.kind != old_kind:
        # Included and excluded items are numbered separately: the item goes to the end of its
        # new list, and the list it left closes the gap.
        last = _siblings(plan, kind, row).aggregate(last=Max("position"))["last"]
        row.position = (last or 0) + 1
        row.save()
        _renumber(kind.model._default_manager.filter(plan=plan, kind=old_kind))
        return row
    row.save()
    return row


@transaction.atomic
def row_remove(
    *, plan: PilotPlan, kind: RowKind, row_id: int, user: User, expected_version: int
) -> None:
    plan_require_editable(plan)
    row = _row(plan, kind, row_id)
    section_claim(plan=plan, key=kind.section, expected_version=expected_version, user=user)
    row.delete()
    if kind.ordered:
        _renumber(_siblings(plan, kind, row))


@transaction.atomic
def row_move(
    *,
    plan: PilotPlan,
    kind: RowKind,
    row_id: int,
    user: User,
    expected_version: int,
    offset: int,
) -> None:
    """Move a row ``offset`` places (-1 up, +1 down), clamped to the list's ends."""
    plan_require_editable(plan)
    if not kind.ordered:
        raise ValidationError({"position": "This list has no order to change."})
    row = _row(plan, kind, row_id)
    rows = list(_siblings(plan, kind, row).order_by("position"))
    index = next(i for i, r in enumerate(rows) if r.pk == row.pk)
    target = max(0, min(len(rows) - 1, index + offset))
    section_claim(plan=plan, key=kind.section, expected_version=expected_version, user=user)
    rows.insert(target, rows.pop(index))
    _renumber_rows(rows)


def _renumber(queryset: models.QuerySet) -> None:
    _renumber_rows(list(queryset.order_by("position")))


def _renumber_rows(rows: list[Any]) -> None:
    # Positions are unique per list with the check deferred to commit, so rows may briefly
    # share a position while they are rewritten here.
    changed = []
    for position, row in enumerate(rows, start=1):
        if row.position != position:
            row.position = position
            changed.append(row)
    if changed:
        type(changed[0])._default_manager.bulk_update(changed, ["position"])
