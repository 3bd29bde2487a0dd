"""Reads about a plan's cohort participants: the list, the counts and the stored check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from backlog.models import DIMENSIONS, CohortFit, EnrolmentLink, Participant
from core.precompiled import Precompiled

# The list's filters besides the segment dimensions (region=…, customer_type=…).
STATUS_FILTER = "status"
SEARCH = "q"


def participants_for_plan(
    *, plan_id: int, filters: Mapping[str, str] | None = None
) -> QuerySet[Participant]:
    """The plan's participants, newest first, narrowed by ``status`` (active / withdrawn), a
    value per segment dimension and ``q`` (name, e-mail or external reference contains). An
    unknown status is a 400 naming the filter, never an empty list that looks like "nobody"."""
    rows = Participant.objects.filter(plan_id=plan_id).order_by("-created_at", "-pk")
    filters = filters or {}
    status = (filters.get(STATUS_FILTER) or "").strip()
    if status:
        if status not in Participant.Status.values:
            raise ValidationError(
                {STATUS_FILTER: f"Unknown status “{status}”: use active or withdrawn."}
            )
        rows = rows.filter(status=status)
    for dimension in DIMENSIONS:
        value = (filters.get(dimension) or "").strip()
        if value:
            rows = rows.filter(**{f"{dimension}__iexact": value})
    q = (filters.get(SEARCH) or "").strip()
    if q:
        rows = rows.filter(
            Q(name__icontains=q) | Q(email__icontains=q) | Q(external_ref__icontains=q)
        )
    return rows


def participant_get(*, plan_id: int, participant_id: int) -> Participant | None:
    return Participant.objects.filter(plan_id=plan_id, pk=participant_id).first()


@dataclass(frozen=True)
class SegmentCount:
    value: str
    active: int
    withdrawn: int


@dataclass(frozen=True)
class CohortCounts:
    """How many take part, per status and per segment: what everyone who reads the plan may
    see (no personal data)."""

    active: int = 0
    withdrawn: int = 0
    erased: int = 0
    consented: int = 0
    by_dimension: dict[str, list[SegmentCount]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.active + self.withdrawn


def cohort_counts(*, plan_id: int) -> CohortCounts:
    """The counts per status and segment value, in one query."""
    rows = (
        Participant.objects.filter(plan_id=plan_id)
        .order_by()
        .values("status", *DIMENSIONS)
        .annotate(
            n=Count("pk"),
            erased=Count("pk", filter=Q(erased_at__isnull=False)),
            consented=Count("pk", filter=~Q(consent_method="")),
        )
    )
    active = withdrawn = erased = consented = 0
    per: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        is_active = row["status"] == Participant.Status.ACTIVE
        active += row["n"] if is_active else 0
        withdrawn += 0 if is_active else row["n"]
        erased += row["erased"]
        consented += row["consented"]
        for dimension in DIMENSIONS:
            if row[dimension]:
                pair = per.setdefault(dimension, {}).setdefault(row[dimension], [0, 0])
                pair[0 if is_active else 1] += row["n"]
    by_dimension = {
        dimension: [SegmentCount(v, a, w) for v, (a, w) in sorted(values.items())]
        for dimension, values in per.items()
    }
    return CohortCounts(active, withdrawn, erased, consented, by_dimension)


def cohort_fit_for_plan(*, plan_id: int) -> list[CohortFit]:
    """The stored representativeness check of the plan, one row per segment dimension it uses
    (empty: no segments). One query; the rows are current (recomputed on every change)."""
    return _COHORT_FIT.run(plan_id=plan_id)


# Compiled once per process (core.precompiled): the plan page asks it on every view.
_COHORT_FIT = Precompiled(
    lambda *, plan_id: CohortFit.objects.filter(plan_id=plan_id).order_by("dimension")
)


def cohort_skewed_exists() -> Exists:
    """For querysets of plans: whether any segment dimension of the plan's cohort is skewed, as
    an ``Exists`` annotation (``decisions.selectors.portfolio_rows`` adds it to its one query
    instead of asking per plan)."""
    return Exists(CohortFit.objects.filter(plan_id=OuterRef("pk"), status=CohortFit.Status.SKEWED))


def enrolment_link_for_plan(*, plan_id: int) -> EnrolmentLink | None:
    return EnrolmentLink.objects.filter(plan_id=plan_id).first()
