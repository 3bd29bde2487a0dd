"""How exit criteria and rollback triggers read: one wording for every page, export and message.

The plan page, the printable page and Markdown export, the monitoring dashboard, the alerts
(banner, notifications, e-mails, webhooks) and the check history all print a criterion or a
trigger with these functions, so the same rule reads the same everywhere:

- an exit criterion (``criterion_text``): "CSAT mean ≥ 4.2 / 5", "p95 latency percentile 95 <
  300 ms", "P2 defects rate per 1,000 sessions < 2", "Errors as % of requests ≤ 0.5 %",
  "CSAT mean ≥ (no threshold yet)";
- a rollback trigger (``trigger_text``): "p95 latency > 300 ms for 30 minutes", "P1 defects > 0
  (any occurrence)".

A trigger's own ``description`` is the author's note about it; it is shown next to this text
where there is room, never instead of it. Entry criteria are free text and read as written.

Pure functions over already-loaded rows (a criterion with its ``metric`` and ``denominator``, a
trigger with its ``metric``): no query, and no import of the models, which call these functions
for their ``__str__``. Comparator symbols come from the one table, ``catalogue.comparators``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from catalogue import comparators

if TYPE_CHECKING:
    from pilots.models import ExitCriterion, RollbackTrigger

NO_THRESHOLD = "(no threshold yet)"
ANY_OCCURRENCE = "(any occurrence)"
UNKNOWN = "?"

# A metric's unit that names its kind rather than a unit: "P1 defects > 0", not "> 0 count".
_KIND_UNITS = frozenset({"count", "score"})


def number_text(value: Decimal | float | int | None) -> str:
    """A threshold or parameter as written: 4.2, 0.5, 300, 1,000 (no trailing zeros)."""
    if value is None:
        return UNKNOWN
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(exact.normalize(), ",f")


def duration_text(minutes: int | None) -> str:
    """A number of minutes: "1 minute", "30 minutes"."""
    if minutes is None:
        return f"{UNKNOWN} minutes"
    return f"{minutes:,} minute" if minutes == 1 else f"{minutes:,} minutes"


def threshold_text(comparator: str, threshold: Decimal | float | None, unit: str = "") -> str:
    """The comparison's right-hand side: "≥ 4.2 / 5", "> 300 ms", "≥ (no threshold yet)" (a
    unit without a number says nothing)."""
    if threshold is None:
        return f"{comparators.symbol(comparator)} {NO_THRESHOLD}"
    return " ".join(p for p in (comparators.symbol(comparator), number_text(threshold), unit) if p)


def criterion_text(criterion: ExitCriterion) -> str:
    """An exit criterion in one line: metric, measure, comparator, threshold and unit."""
    aggregation = criterion.aggregation
    denominator = criterion.denominator.name.lower() if criterion.denominator else UNKNOWN
    unit = criterion.unit
    if aggregation == "percentile":
        measure = f"percentile {number_text(criterion.percentile)}"
    elif aggregation == "rate_per":
        measure = f"rate per {number_text(criterion.per_n)} {denominator}"
        if unit.lower().startswith("per "):
            unit = ""  # "per 1,000 sessions" is already in the measure
    elif aggregation == "ratio":
        measure = f"as % of {denominator}"
        unit = unit or "%"
    else:
        measure = str(aggregation)  # latest, mean, max, min, total
    threshold = threshold_text(criterion.comparator, criterion.threshold, unit)
    return f"{criterion.metric.name} {measure} {threshold}"


def trigger_text(trigger: RollbackTrigger) -> str:
    """A rollback trigger in one line: the comparison, then how long it must hold."""
    metric = trigger.metric
    unit = "" if metric.unit in _KIND_UNITS else metric.unit
    text = f"{metric.name} {threshold_text(trigger.comparator, trigger.threshold, unit)}"
    if trigger.mode == "sustained":
        return f"{text} for {duration_text(trigger.sustained_minutes)}"
    return f"{text} {ANY_OCCURRENCE}"
