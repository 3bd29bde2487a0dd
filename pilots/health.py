"""Plan health: every gap the seed warns about, as plain functions over a loaded plan.

Each rule takes a plan whose sections are loaded (``selectors.plan_detail``) and returns the gaps
it finds; ``plan_health`` runs them all. Rules read only what is already loaded: the panel is
re-rendered on every edit and must not add queries per row.

Pages that show the health of many plans (the portfolio) load them with
``selectors.plan_health_queryset`` instead, in one query: whether a list has a row comes as a
``has_<list>`` flag on the plan and the few values read row by row as arrays (the metric names
of criteria without a threshold, the on-call shifts' days, the segments' shares, the team's
holidays). Rules read lists through ``_has`` and the helpers below, which accept either way of
loading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from accounts.ui import plural
from pilots import timeline
from pilots.models import CohortSegment, PilotPlan, ScopeItem, Section


@dataclass(frozen=True)
class Gap:
    section: str  # a Section value: the panel links to #section-<section>
    code: str  # stable identifier, for tests and the API
    message: str

    @property
    def section_label(self) -> str:
        return str(Section(self.section).label)


Rule = Callable[[PilotPlan], Iterable[Gap]]


def _has(plan: PilotPlan, name: str) -> bool:
    """Whether ``plan`` has a row in its list ``name`` (a related name, or ``included_scope``):
    the ``has_<name>`` flag when the plan was loaded with ``plan_health_queryset``, else its
    prefetched rows."""
    flag = getattr(plan, f"has_{name}", None)
    if flag is not None:
        return bool(flag)
    if name == "included_scope":
        return any(i.kind == ScopeItem.Kind.INCLUDED for i in plan.scope_items.all())
    return bool(getattr(plan, name).all())


# Each helper reads ``plan_health_queryset``'s arrays when the plan has them, else the rows
# ``plan_detail_queryset`` prefetched.


def _unset_threshold_metrics(plan: PilotPlan) -> list[str]:
    """The metric names of the exit criteria without a numeric threshold, in order."""
    names = getattr(plan, "unset_threshold_metrics", None)
    if names is not None:
        return list(names)
    return [c.metric.name for c in plan.exit_criteria.all() if c.threshold is None]


def _on_call_spans(plan: PilotPlan) -> list[tuple[dt.date, dt.date]]:
    """Each on-call shift's first and last day."""
    starts = getattr(plan, "on_call_starts", None)
    if starts is not None:
        return list(zip(starts, plan.on_call_ends, strict=True))  # type: ignore[attr-defined]
    return [(s.starts_on, s.ends_on) for s in plan.on_call.all()]


def _segment_shares(plan: PilotPlan) -> list[tuple[str, Decimal]]:
    """Each segment's dimension and intended share, in order."""
    dimensions = getattr(plan, "segment_dimensions", None)
    if dimensions is not None:
        return list(zip(dimensions, plan.segment_shares, strict=True))  # type: ignore[attr-defined]
    return [(s.dimension, Decimal(s.intended_share)) for s in plan.segments.all()]


def holiday_dates(plan: PilotPlan) -> list[dt.date]:
    """The days the plan's team marked as holidays (``selectors.plan_days_left`` too)."""
    dates = getattr(plan, "holiday_dates", None)
    if dates is not None:
        return list(dates)
    return [h.date for h in plan.team.holidays.all()]


def empty_sections(plan: PilotPlan) -> Iterable[Gap]:
    def gap(section: Section, message: str) -> Gap:
        return Gap(section, f"empty_{section.value}", message)

    if not _has(plan, "included_scope"):
        yield gap(Section.SCOPE, "Scope names no included story or epic slice.")
    if not plan.cohort.description.strip() or not plan.cohort.target_size:
        yield gap(Section.COHORT, "Cohort has no description or target size.")
    if not plan.environment.environment.strip():
        yield gap(Section.ENVIRONMENT, "No pilot environment is named.")
    if not _has(plan, "entry_criteria"):
        yield gap(Section.ENTRY_CRITERIA, "No entry criteria.")
    if not _has(plan, "exit_criteria"):
        yield gap(Section.EXIT_CRITERIA, "No exit criteria: the go / no-go has nothing to go on.")
    if not _has(plan, "dashboards"):
        yield gap(Section.MONITORING, "No monitoring dashboard is linked.")
    if not _has(plan, "response_slas"):
        yield gap(Section.MONITORING, "No response SLA per severity.")
    if not _has(plan, "risks"):
        yield gap(Section.RISKS, "No risks recorded.")
    if plan.start_date is None:
        yield gap(Section.TIMELINE, "No start date.")
    if plan.decision_owner_id is None or plan.rollback_executor_id is None:
        yield gap(Section.OWNERSHIP, "Name who decides at exit and who executes a rollback.")
    if not plan.change_control.strip():
        yield gap(Section.CHANGE_CONTROL, "Say how learnings become Product Backlog items.")


def exit_criteria_quantitative(plan: PilotPlan) -> Iterable[Gap]:
    for name in _unset_threshold_metrics(plan):
        yield Gap(
            Section.EXIT_CRITERIA,
            "exit_criterion_without_threshold",
            f"Exit criterion “{name}” has no numeric threshold.",
        )


def rollback_defined(plan: PilotPlan) -> Iterable[Gap]:
    if not _has(plan, "rollback_triggers"):
        yield Gap(Section.ROLLBACK_TRIGGERS, "no_rollback_trigger", "No rollback trigger.")
    if not _has(plan, "rollback_steps"):
        yield Gap(Section.ROLLBACK_PLAN, "no_rollback_steps", "No rollback steps.")


def rollback_rehearsed(plan: PilotPlan) -> Iterable[Gap]:
    if not _has(plan, "rollback_rehearsals"):
        yield Gap(Section.ROLLBACK_PLAN, "rollback_not_rehearsed", "Rollback never rehearsed.")


def cohort_consent_and_feedback(plan: PilotPlan) -> Iterable[Gap]:
    if not plan.cohort.consent_recorded:
        yield Gap(Section.COHORT, "cohort_without_consent", "Cohort consent is not recorded.")
    if not plan.cohort.feedback_channel.strip():
        yield Gap(Section.COHORT, "cohort_without_feedback_channel", "No feedback channel.")


def real_data_validated(plan: PilotPlan) -> Iterable[Gap]:
    env = plan.environment
    if not env.uses_real_data:
        return
    if not env.masking_rules.strip():
        yield Gap(
            Section.ENVIRONMENT, "real_data_without_masking", "Real data but no masking rules."
        )
    if env.compliance_validated_at is None:
        yield Gap(
            Section.ENVIRONMENT,
            "real_data_not_validated",
            "Real data, but compliance and masking have not been validated.",
        )


def on_call_covers_window(plan: PilotPlan) -> Iterable[Gap]:
    if plan.start_date is None:
        return  # nothing to cover yet; the timeline gap says so
    shifts = _on_call_spans(plan)
    uncovered = [
        day
        for day in timeline.business_days(plan.start_date, plan.business_days, holiday_dates(plan))
        if not any(first <= day <= last for first, last in shifts)
    ]
    if uncovered:
        yield Gap(
            Section.MONITORING,
            "on_call_gap",
            f"On-call coverage misses {plural(len(uncovered), 'business day')} of the pilot, "
            f"first {_day(uncovered[0])}.",
        )


def segment_mix_complete(plan: PilotPlan) -> Iterable[Gap]:
    # Segments of one dimension partition the cohort; each dimension must add up to 100 %.
    totals: dict[str, Decimal] = {}
    for dimension, share in _segment_shares(plan):
        totals[dimension] = totals.get(dimension, Decimal(0)) + Decimal(share)
    for dimension, total in sorted(totals.items()):
        if total != 100:
            label = CohortSegment.Dimension(dimension).label
            yield Gap(
                Section.COHORT,
                "segment_mix_not_100",
                f"{label} segments add up to {total.normalize():f} %, not 100 %.",
            )


def _day(day: dt.date) -> str:
    return f"{day:%a} {day.day} {day:%b}"  # "Mon 7 Dec", as the plan page writes dates


RULES: tuple[Rule, ...] = (
    empty_sections,
    exit_criteria_quantitative,
    rollback_defined,
    rollback_rehearsed,
    cohort_consent_and_feedback,
    real_data_validated,
    on_call_covers_window,
    segment_mix_complete,
)


def plan_health(plan: PilotPlan) -> list[Gap]:
    """Every gap in ``plan``, in the order of the plan's sections."""
    order = {key: i for i, key in enumerate(Section.values)}
    gaps = [gap for rule in RULES for gap in rule(plan)]
    return sorted(gaps, key=lambda g: order[g.section])
