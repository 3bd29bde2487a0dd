"""The cohort's representativeness, computed when it changes and stored (``CohortFit``).

``pilots.representativeness.segment_fit`` compares the active participants' mix with the plan's
intended shares, one segment dimension at a time. It can take ~0.15 s (the exact multinomial
test of a small cohort), so pages never compute it: every write that changes the participants
recomputes it in its own transaction, under the plan's participant lock (so two enrolments at
once cannot store a result that misses one of them), and a change of the cohort section
(segments, practical bound: ``pilots.signals.cohort_changed``, sent after commit) recomputes it
in a transaction of its own. The stored rows are what the plan page, the decision page, the
portfolio and the API read.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from backlog.models import DIMENSIONS, CohortFit, Participant
from pilots.models import Cohort, CohortSegment
from pilots.representativeness import segment_fit

# The first key of the participants' advisory lock (the second is the plan's id).
_LOCK_CLASS = 0x7061  # "pa"


def participants_lock(plan_id: int) -> None:
    """Serialise the writes to one plan's participants until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, plan_id])


def active_counts(plan_id: int) -> dict[str, Counter[str]]:
    """Active participants per dimension and value, in one query (blank values left out: a
    participant added before the plan used a dimension is not counted in it)."""
    rows = (
        Participant.objects.filter(plan_id=plan_id, status=Participant.Status.ACTIVE)
        .order_by()
        .values(*DIMENSIONS)
        .annotate(n=Count("pk"))
    )
    counts: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    for row in rows:
        for dimension in DIMENSIONS:
            if row[dimension]:
                counts[dimension][row[dimension]] += row["n"]
    return counts


def _row(plan_id: int, dimension: str, fit: Any, bound: Decimal) -> CohortFit:
    largest = fit.largest
    return CohortFit(
        plan_id=plan_id,
        dimension=dimension,
        status=str(fit.status),
        participants=fit.n,
        p_value=fit.p_value,
        method=fit.method or "",
        practical_bound=bound,
        largest_segment=largest.value[:100] if largest else "",
        largest_gap_points=round(largest.gap_points, 3) if largest else 0.0,
        segments=[
            {
                "value": s.value,
                "observed": s.observed,
                "intended_percent": round(s.intended_percent, 3),
                "observed_percent": round(s.observed_percent, 3),
            }
            for s in fit.segments
        ],
        summary=fit.summary[:300],
        computed_at=timezone.now(),
    )


@transaction.atomic
def cohort_fit_refresh(*, plan_id: int) -> list[CohortFit]:
    """Recompute and store the fit of every segment dimension the plan uses (and forget the
    dimensions it no longer uses). Takes the plan's participant lock: callers that already hold
    it (the participant services) take it again at no cost."""
    participants_lock(plan_id)
    bound = Cohort.objects.filter(plan_id=plan_id).values_list("practical_bound", flat=True).first()
    if bound is None:  # the plan is gone
        return []
    intended: dict[str, list[tuple[str, float]]] = {}
    for dimension, value, share in CohortSegment.objects.filter(plan_id=plan_id).values_list(
        "dimension", "value", "intended_share"
    ):
        intended.setdefault(dimension, []).append((value, float(share)))
    counts = active_counts(plan_id) if intended else {}
    rows = [
        _row(
            plan_id,
            dimension,
            segment_fit(
                observed=sorted(counts[dimension].items()),
                intended=shares,
                practical_bound=float(bound),
            ),
            bound,
        )
        for dimension, shares in intended.items()
    ]
    CohortFit.objects.filter(plan_id=plan_id).exclude(dimension__in=list(intended)).delete()
    if rows:
        CohortFit.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["plan", "dimension"],
            update_fields=[
                "status", "participants", "p_value", "method", "practical_bound",
                "largest_segment", "largest_gap_points", "segments", "summary", "computed_at",
            ],
        )  # fmt: skip
    return rows


def cohort_changed_receiver(sender: Any, *, plan_id: int, **kwargs: Any) -> None:
    """``pilots.signals.cohort_changed`` (connected in ``backlog.apps``): the segments or the
    practical bound changed and committed; recompute from what is committed now."""
    cohort_fit_refresh(plan_id=plan_id)
