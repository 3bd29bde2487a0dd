"""Defects logged in the backlog count towards the running pilot's defect metrics.

``backlog`` announces every change that can move a plan's defect counts
(``backlog.signals.defects_changed``: a defect added, deleted, or its type, severity, status or
plan changed, one by one, in bulk or by CSV import), inside the writing transaction. This module
receives it (connected in ``decisions.apps``) and brings the plans' ``p1_defects`` /
``p2_defects`` / ``p3_defects`` samples in line with the backlog, in the same transaction.

How a defect counts. A count metric's samples are events, summed over a window (``metrics.
evaluation``: "P1 defects so far" is Σ values). So each counted defect is one sample of value 1,
``source = "backlog"``, named ``backlog:<item id>:<severity>`` (``external_id``), observed when it
started to count. The sync is a reconciliation, not an increment: it reads which defects count
now and which samples exist, stores the missing ones (through ``metrics.ingest.samples_ingest``,
which queues the rollback-trigger evaluation after commit, so "P1 defects > 0, any occurrence"
fires at once) and withdraws the ones that no longer count (``samples_withdraw``, which
recomputes the rollups). Running it twice changes nothing.

What counts: a defect (type Defect) of severity P1, P2 or P3 logged against a plan while the plan
is Running and inside its pilot window, in any status but Won't do (a fixed defect was still
found in the pilot; a Won't do one was judged not to be a defect). P4 has no metric. A plan that
is not Running keeps its samples as they are: the evidence of an ended pilot does not move.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from backlog.models import BacklogItem
from catalogue.models import MetricDefinition
from decisions.evidence import DEFECT_METRICS
from metrics.ingest import IngestRejected, samples_ingest, samples_withdraw
from metrics.models import Sample
from pilots.models import PilotPlan

SOURCE = "backlog"
# Severity → the built-in count metric it feeds.
SEVERITY_METRICS = {"p1": "p1_defects", "p2": "p2_defects", "p3": "p3_defects"}
assert set(SEVERITY_METRICS.values()) == {key for key, _label in DEFECT_METRICS}

log = logging.getLogger(__name__)


def defect_sample_id(item_id: int, severity: str) -> str:
    return f"{SOURCE}:{item_id}:{severity}"


def defects_counted(*, plan_id: int) -> dict[str, str]:
    """``{sample id: metric key}`` of the plan's defects that count now (one query)."""
    rows = (
        BacklogItem.objects.filter(
            plan_id=plan_id, kind=BacklogItem.Kind.DEFECT, severity__in=list(SEVERITY_METRICS)
        )
        .exclude(status=BacklogItem.Status.WONT_DO)
        .values_list("pk", "severity")
    )
    return {defect_sample_id(pk, sev): SEVERITY_METRICS[sev] for pk, sev in rows}


def defect_samples_sync(*, plan_ids: Iterable[int], now: dt.datetime | None = None) -> None:
    """Make the running plans' defect samples match their backlog defects (see the module)."""
    now = now or timezone.now()
    plans = PilotPlan.objects.filter(
        pk__in=sorted(set(plan_ids)), status=PilotPlan.Status.RUNNING
    ).select_related("team")
    metric_ids = list(
        MetricDefinition.objects.filter(key__in=list(SEVERITY_METRICS.values())).values_list(
            "pk", flat=True
        )
    )
    # Every plan's withdrawals before any insertion: a withdrawal locks the samples table (see
    # ``samples_withdraw``), and taking that lock after this transaction inserted samples would
    # be a lock upgrade two transactions can deadlock on.
    todo: list[tuple[PilotPlan, dict[str, str], list[str]]] = []
    for plan in plans:
        wanted = defects_counted(plan_id=plan.pk)
        stored = set(
            Sample.objects.filter(
                plan_id=plan.pk, metric_id__in=metric_ids, source=SOURCE
            ).values_list("external_id", flat=True)
        )
        samples_withdraw(plan_id=plan.pk, source=SOURCE, external_ids=stored - set(wanted))
        todo.append((plan, wanted, sorted(set(wanted) - stored)))
    for plan, wanted, new in todo:
        if not new:
            continue
        # One moment per sync; the natural key (plan, metric, observed_at, source) needs the
        # samples of one metric apart, so each gets its own microsecond.
        rows: list[dict[str, Any]] = [
            {
                "metric": wanted[sample_id],
                "observed_at": (now + dt.timedelta(microseconds=n)).isoformat(),
                "value": 1,
                "source": SOURCE,
                "id": sample_id,
            }
            for n, sample_id in enumerate(new)
        ]
        try:
            samples_ingest(team=plan.team, plan=plan, rows=rows, now=now)
        except IngestRejected as exc:
            # Outside the pilot window (a Running pilot past its end date): the defect is saved,
            # it just cannot count; the next change inside the window counts it.
            log.warning("Defects of plan %s not counted: %s", plan.pk, exc.message)


def on_defects_changed(sender: Any, *, plan_ids: frozenset[int], **kwargs: Any) -> None:
    """``backlog.signals.defects_changed`` receiver."""
    defect_samples_sync(plan_ids=plan_ids)
