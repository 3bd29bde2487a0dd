"""Everything the go/no-go decision rests on, for one plan, loaded in a constant number of queries.

:func:`decision_evidence` gathers the plan's evidence as it stands — each exit criterion's latest
verdict (from the newest done check run), its trend over the pilot and how much more evidence
would decide it; the entry criteria; the rollback triggers with their states and episodes; the
defects reported by severity; the sign-offs; the business days observed — and asks
:func:`decisions.rules.recommend` for the recommendation. The decision page, the deployment gate
and the decision record all read this one object; a record freezes
:meth:`DecisionEvidence.snapshot`.

Honest signals: a criterion never checked, or changed since its last check, is "not enough
evidence" with the reason; a trigger without fresh data is named in ``missing``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, Q
from django.utils import timezone

from accounts.models import TeamHoliday
from accounts.ui import local_time, zone_of
from catalogue.comparators import symbol
from catalogue.models import MetricDefinition
from decisions import evidence_needed, rules
from decisions.evidence_needed import EvidenceNeeded
from metrics import statistics
from metrics.checks import check_run_latest_done
from metrics.evaluation import window_moments
from metrics.models import (
    CheckRun,
    CriterionResult,
    Sample,
    SignalEpisode,
    TriggerEpisode,
    TriggerState,
)
from metrics.monitoring import number_display
from metrics.slots import PlanWindowError, plan_window
from metrics.statistics import Verdict
from pilots import timeline, wording
from pilots.models import (
    EntryCriterion,
    ExitCriterion,
    PilotPlan,
    RollbackTrigger,
    SignOff,
)
from pilots.review import REVIEWS

# How many past check runs the trend of a criterion shows (two checks a day: a month).
TREND_RUNS = 60
# A percentile's "more evidence" projection reads the window's sample; beyond this many values it
# is not attempted (a sample that large has decided long ago, or the interval straddles).
PERCENTILE_PROJECTION_LIMIT = 50_000
# The defect counts shown by severity, by the built-in catalogue's keys.
DEFECT_METRICS = (("p1_defects", "P1"), ("p2_defects", "P2"), ("p3_defects", "P3"))
STATES_AFTER_START = (
    PilotPlan.Status.RUNNING,
    PilotPlan.Status.EVALUATING,
    PilotPlan.Status.DECIDED,
    PilotPlan.Status.CLOSED,
)


@dataclass(frozen=True)
class CriterionEvidence:
    criterion_id: int | None
    position: int
    name: str
    blocking: bool
    comparator: str
    threshold: float | None
    unit: str
    value: float | None
    low: float | None
    high: float | None
    sample_size: int
    method: str
    verdict: Verdict
    reason: str
    trend: tuple[float, ...] = ()
    more: EvidenceNeeded | None = None
    more_words: str = ""

    @property
    def verdict_label(self) -> str:
        return CriterionResult.Verdict(self.verdict.value).label

    @property
    def value_text(self) -> str:
        if self.value is None:
            return "—"
        return " ".join(p for p in (number_display(self.value), self.unit) if p)

    @property
    def threshold_text(self) -> str:
        return wording.threshold_text(self.comparator, self.threshold, self.unit)

    @property
    def interval_text(self) -> str:
        if self.low is None or self.high is None:
            return ""
        if self.low == self.high:
            return "exact"
        unit = f" {self.unit}" if self.unit else ""
        return f"95 % interval {number_display(self.low)}–{number_display(self.high)}{unit}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "criterion_id": self.criterion_id,
            "position": self.position,
            "name": self.name,
            "blocking": self.blocking,
            "comparator": self.comparator,
            "comparator_symbol": symbol(self.comparator) if self.comparator else "",
            "threshold": self.threshold,
            "unit": self.unit,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "sample_size": self.sample_size,
            "method": self.method,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "trend": list(self.trend),
            "more_needed": None if self.more is None else self.more.more,
            "more_words": self.more_words,
        }


@dataclass(frozen=True)
class EntryEvidence:
    text: str
    status: str

    @property
    def status_label(self) -> str:
        return EntryCriterion.Status(self.status).label

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "status": self.status}


@dataclass(frozen=True)
class EpisodeEvidence:
    id: int
    fired_at: dt.datetime
    cleared_at: dt.datetime | None
    resolved_at: dt.datetime | None
    value: float | None
    resolution: str

    @property
    def unresolved(self) -> bool:
        return self.resolved_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fired_at": _iso(self.fired_at),
            "cleared_at": _iso(self.cleared_at),
            "resolved_at": _iso(self.resolved_at),
            "value": self.value,
            "resolution": self.resolution,
        }


@dataclass(frozen=True)
class TriggerEvidence:
    trigger_id: int | None
    name: str
    state: str  # TriggerState.State value; "" when never evaluated
    detail: str
    episodes: tuple[EpisodeEvidence, ...] = ()

    @property
    def state_label(self) -> str:
        return TriggerState.State(self.state).label if self.state else "Not evaluated yet"

    @property
    def unresolved(self) -> bool:
        return any(e.unresolved for e in self.episodes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger_id": self.trigger_id,
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "episodes": [e.as_dict() for e in self.episodes],
        }


@dataclass(frozen=True)
class DefectCount:
    severity: str
    total: int | None  # None: never reported

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "total": self.total}


@dataclass(frozen=True)
class SignOffEvidence:
    review: str
    signed_by: str
    signed_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "review": self.review,
            "signed_by": self.signed_by,
            "signed_at": _iso(self.signed_at),
        }


@dataclass(frozen=True)
class DecisionEvidence:
    plan_id: int
    plan_title: str
    plan_status: str
    computed_at: dt.datetime
    result: rules.Result
    criteria: tuple[CriterionEvidence, ...]
    entry: tuple[EntryEvidence, ...] = ()
    triggers: tuple[TriggerEvidence, ...] = ()
    defects: tuple[DefectCount, ...] = ()
    sign_offs: tuple[SignOffEvidence, ...] = ()
    days_left: int | None = None
    business_days_observed: int = 0
    minimum_observation_days: int = rules.DEFAULT_MINIMUM_OBSERVATION_DAYS
    missing: tuple[str, ...] = ()
    last_check_at: dt.datetime | None = None
    tz: dt.tzinfo = field(default=dt.UTC)

    @property
    def recommendation(self) -> str:
        return self.result.recommendation.value

    @property
    def unresolved_triggers(self) -> list[TriggerEvidence]:
        return [t for t in self.triggers if t.unresolved]

    def snapshot(self) -> dict[str, Any]:
        """The evidence as JSON-safe data, deterministic for the same evidence: what a decision
        record freezes (and hashes)."""
        return {
            "plan": {"id": self.plan_id, "title": self.plan_title, "status": self.plan_status},
            "computed_at": _iso(self.computed_at),
            "last_check_at": _iso(self.last_check_at),
            "time_zone": str(self.tz),
            "recommendation": {
                "value": self.result.recommendation.value,
                "label": self.result.recommendation.label,
                "rule": self.result.rule.name,
                "words": self.result.words,
            },
            "criteria": [c.as_dict() for c in self.criteria],
            "entry_criteria": [e.as_dict() for e in self.entry],
            "triggers": [t.as_dict() for t in self.triggers],
            "defects": [d.as_dict() for d in self.defects],
            "sign_offs": [s.as_dict() for s in self.sign_offs],
            "days_left": self.days_left,
            "business_days_observed": self.business_days_observed,
            "minimum_observation_days": self.minimum_observation_days,
            "missing": list(self.missing),
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


# --- loading ---------------------------------------------------------------------------------


def _plan(plan_id: int) -> PilotPlan:
    return (
        PilotPlan.objects.select_related("team")
        .prefetch_related(
            Prefetch("team__holidays", queryset=TeamHoliday.objects.order_by("date")),
            Prefetch("entry_criteria", queryset=EntryCriterion.objects.order_by("position")),
            Prefetch(
                "exit_criteria",
                queryset=ExitCriterion.objects.select_related("metric", "denominator").order_by(
                    "position"
                ),
            ),
            Prefetch(
                "rollback_triggers",
                queryset=RollbackTrigger.objects.select_related("metric", "state").order_by(
                    "position"
                ),
            ),
            Prefetch(
                "sign_offs",
                queryset=SignOff.objects.filter(voided_at__isnull=True)
                .select_related("signed_by")
                .order_by("signed_at"),
            ),
        )
        .get(pk=plan_id)
    )


def _window(plan: PilotPlan) -> tuple[dt.datetime, dt.datetime] | None:
    if plan.start_date is None or plan.end_date is None:
        return None
    try:
        return plan_window(start_date=plan.start_date, end_date=plan.end_date, tz=zone_of(plan))
    except PlanWindowError:
        return None


def business_days_observed(plan: PilotPlan, today: dt.date, holidays: list[dt.date]) -> int:
    """Business days of the pilot so far: from its start to today (or to its end, once the
    time-box ended), both counted. 0 before the start."""
    if plan.start_date is None or plan.status not in STATES_AFTER_START:
        return 0
    last = today if plan.end_date is None else min(today, plan.end_date)
    return timeline.business_days_between(plan.start_date, last, holidays)


def _trends(plan_id: int) -> dict[int, tuple[float, ...]]:
    """Each criterion's value in the plan's last :data:`TREND_RUNS` done check runs, oldest
    first (one query)."""
    runs = CheckRun.objects.filter(plan_id=plan_id, status=CheckRun.Status.DONE).order_by(
        "-due_at"
    )[:TREND_RUNS]
    rows = (
        CriterionResult.objects.filter(run__in=runs, criterion__isnull=False, value__isnull=False)
        .order_by("run__due_at")
        .values_list("criterion_id", "value")
    )
    trend: dict[int, list[float]] = defaultdict(list)
    for criterion_id, value in rows:
        trend[criterion_id].append(value)
    return {k: tuple(v) for k, v in trend.items()}


def _changed(criterion: ExitCriterion, result: CriterionResult) -> bool:
    threshold = None if criterion.threshold is None else float(criterion.threshold)
    return (
        result.comparator != criterion.comparator
        or result.threshold != threshold
        or result.blocking != criterion.blocking
        or not wording.criterion_text(criterion).startswith(result.label.removesuffix("…"))
    )


def _criteria(
    plan: PilotPlan, run: CheckRun | None, tz: dt.tzinfo
) -> list[tuple[ExitCriterion, CriterionResult | None, str]]:
    """Each live exit criterion with its latest result, or None and why there is none."""
    results = {r.criterion_id: r for r in run.results.all()} if run else {}
    out = []
    for criterion in plan.exit_criteria.all():
        result = results.get(criterion.pk)
        if run is None:
            out.append((criterion, None, "Not checked yet: the first check has not run."))
        elif result is None:
            out.append((criterion, None, "Added since the last check: the next check judges it."))
        elif _changed(criterion, result):
            at = local_time(run.due_at, tz, "short")
            why = f"Changed since the check of {at}: the next check judges it."
            out.append((criterion, None, why))
        else:
            out.append((criterion, result, ""))
    return out


def _percentile_values(
    plan: PilotPlan, wanted: list[tuple[ExitCriterion, CriterionResult]], run: CheckRun
) -> dict[int, list[float]]:
    """The window's values of each percentile criterion in ``wanted`` (one query for all)."""
    window = _window(plan)
    if not wanted or window is None:
        return {}
    condition = Q()
    bounds = {}
    for criterion, _ in wanted:
        start = (
            run.due_at - dt.timedelta(hours=criterion.window_hours)
            if criterion.window_hours
            else window[0]
        )
        bounds[criterion.pk] = (criterion.metric_id, start, run.due_at)
        condition |= Q(
            metric_id=criterion.metric_id, observed_at__gte=start, observed_at__lt=run.due_at
        )
    rows = Sample.objects.filter(condition, plan_id=plan.pk).values_list(
        "metric_id", "observed_at", "value"
    )
    values: dict[int, list[float]] = defaultdict(list)
    for metric_id, observed_at, value in rows:
        for criterion_id, (metric, start, end) in bounds.items():
            if metric == metric_id and start <= observed_at < end:
                values[criterion_id].append(value)
    return values


def _more(
    criterion: ExitCriterion,
    result: CriterionResult,
    per_day: float | None,
    values: list[float] | None,
) -> EvidenceNeeded | None:
    common = {
        "comparator": criterion.comparator,
        "threshold": float(criterion.threshold),  # type: ignore[arg-type]
        "min_sample_size": int(criterion.min_sample_size),
        "per_business_day": per_day,
    }
    try:
        if result.method == statistics.ORDER_STATISTIC:
            if not values or criterion.percentile is None:
                return None
            return evidence_needed.evidence_for_percentile(
                values=values, q=float(criterion.percentile), unit="samples", **common
            )
        unit = criterion.denominator.name.lower() if criterion.denominator else "samples"
        return evidence_needed.evidence_for_result(
            method=result.method,
            value=result.value,
            low=result.low,
            high=result.high,
            sample_size=result.sample_size,
            per_n=criterion.per_n,
            unit=unit,
            event_name=criterion.metric.name.removesuffix("s"),
            **common,
        )
    except ValueError:
        return None


def _defects(
    plan: PilotPlan, window: tuple[dt.datetime, dt.datetime] | None, now: dt.datetime
) -> list[DefectCount]:
    """The defects reported during the pilot so far, by severity: the built-in count metrics'
    totals, read from the rollups (one query for metric ids, one for the totals)."""
    totals: dict[str, float] = {}
    if window is not None and window[0] < now:
        ids = dict(
            MetricDefinition.objects.filter(
                team__isnull=True, key__in=[key for key, _ in DEFECT_METRICS]
            ).values_list("pk", "key")
        )
        moments = window_moments(
            plan_id=plan.pk, metric_ids=list(ids), start=window[0], end=min(window[1], now)
        )
        totals = {ids[metric_id]: m.total for metric_id, m in moments.items()}
    return [
        DefectCount(label, None if key not in totals else round(totals[key]))
        for key, label in DEFECT_METRICS
    ]


def _triggers(plan: PilotPlan) -> tuple[list[TriggerEvidence], dict[int, dt.datetime]]:
    """The triggers, unresolved ones first, and since when each blind trigger is blind."""
    episodes: dict[int | None, list[EpisodeEvidence]] = defaultdict(list)
    names: dict[int | None, str] = {}
    for e in TriggerEpisode.objects.filter(plan_id=plan.pk).order_by("-fired_at"):
        episodes[e.trigger_id].append(
            EpisodeEvidence(e.pk, e.fired_at, e.cleared_at, e.resolved_at, e.value, e.resolution)
        )
        names.setdefault(e.trigger_id, e.description)
    blind_since = dict(
        SignalEpisode.objects.filter(plan_id=plan.pk, ended_at__isnull=True).values_list(
            "trigger_id", "started_at"
        )
    )
    out = []
    for trigger in plan.rollback_triggers.all():
        state = getattr(trigger, "state", None)
        out.append(
            TriggerEvidence(
                trigger.pk,
                wording.trigger_text(trigger),
                state.state if state else "",
                state.detail if state else "",
                tuple(episodes.pop(trigger.pk, [])),
            )
        )
        if state and state.state in (TriggerState.State.NO_DATA, TriggerState.State.STALE):
            blind_since.setdefault(trigger.pk, state.evaluated_at)
    for trigger_id, items in episodes.items():  # triggers deleted since they fired
        out.append(TriggerEvidence(None, names[trigger_id], "", "", tuple(items)))
    out.sort(key=lambda t: not t.unresolved)  # stable: unresolved first, then plan order
    return out, blind_since


def decision_evidence(plan: PilotPlan, *, now: dt.datetime | None = None) -> DecisionEvidence:
    """The evidence and the recommendation for ``plan`` now (a constant number of queries)."""
    now = now or timezone.now()
    plan = _plan(plan.pk)
    tz = zone_of(plan)
    today = now.astimezone(tz).date()
    holidays = [h.date for h in plan.team.holidays.all()]
    run = check_run_latest_done(plan_id=plan.pk)
    window = _window(plan)
    observed = business_days_observed(plan, today, holidays)
    trends = _trends(plan.pk)
    rows = _criteria(plan, run, tz)
    wanted = [
        (c, r)
        for c, r, _ in rows
        if r is not None
        and r.verdict == Verdict.NOT_ENOUGH_EVIDENCE
        and r.method == statistics.ORDER_STATISTIC
        and 0 < r.sample_size <= PERCENTILE_PROJECTION_LIMIT
    ]
    values = _percentile_values(plan, wanted, run) if run else {}
    criteria = []
    for criterion, result, why in rows:
        threshold = None if criterion.threshold is None else float(criterion.threshold)
        common: dict[str, Any] = {
            "criterion_id": criterion.pk,
            "position": criterion.position,
            "name": wording.criterion_text(criterion),
            "blocking": criterion.blocking,
            "comparator": criterion.comparator,
            "threshold": threshold,
            "unit": criterion.unit,
            "trend": trends.get(criterion.pk, ()),
        }
        if result is None:
            criteria.append(
                CriterionEvidence(
                    **common,
                    value=None,
                    low=None,
                    high=None,
                    sample_size=0,
                    method="",
                    verdict=Verdict.NOT_ENOUGH_EVIDENCE,
                    reason=why,
                )
            )
            continue
        more = None
        verdict = Verdict(result.verdict)
        if verdict == Verdict.NOT_ENOUGH_EVIDENCE and threshold is not None:
            per_day = result.sample_size / observed if observed and result.sample_size else None
            more = _more(criterion, result, per_day, values.get(criterion.pk))
        criteria.append(
            CriterionEvidence(
                **common,
                value=result.value,
                low=result.low,
                high=result.high,
                sample_size=result.sample_size,
                method=result.method,
                verdict=verdict,
                reason=result.reason,
                more=more,
                more_words=more.words() if more else "",
            )
        )
    triggers, blind_since = _triggers(plan)
    missing = []
    blind = []
    for t in triggers:
        if t.trigger_id in blind_since:
            since = blind_since[t.trigger_id]
            blind.append(rules.BlindSignal(t.name, t.state_label.lower(), since))
            missing.append(
                f"Rollback trigger ‘{t.name}’: {t.state_label.lower()} since "
                f"{local_time(since, tz, 'short')}."
            )
    if run is None and plan.status in STATES_AFTER_START:
        missing.append("No check has run yet: every criterion waits for the first check.")
    for c in criteria:
        if c.value is None and c.reason:
            missing.append(f"‘{c.name}’: {c.reason}")
    entry = [EntryEvidence(e.text, e.status) for e in plan.entry_criteria.all()]
    labels = {kind: spec.short_label for kind, spec in REVIEWS.items()}
    sign_offs = [
        SignOffEvidence(
            str(labels.get(s.kind, s.kind)),
            s.signed_by.get_full_name() or s.signed_by.email,
            s.signed_at,
        )
        for s in plan.sign_offs.all()
    ]
    inp = rules.DecisionInput(
        criteria=tuple(rules.CriterionState(c.name, c.verdict, c.blocking) for c in criteria),
        triggers=tuple(
            rules.TriggerState(t.name, tuple(e.fired_at for e in t.episodes if e.unresolved))
            for t in triggers
        ),
        blind_signals=tuple(blind),
        business_days_observed=observed,
        minimum_observation_days=plan.minimum_observation_days,
        unmet_entry_criteria=tuple(
            e.text for e in entry if e.status == EntryCriterion.Status.PENDING
        ),
        tz=tz,
    )
    days_left = None
    if plan.status == PilotPlan.Status.RUNNING and plan.start_date and plan.end_date:
        days_left = timeline.business_days_between(
            max(today, plan.start_date), plan.end_date, holidays
        )
    return DecisionEvidence(
        plan_id=plan.pk,
        plan_title=plan.title,
        plan_status=plan.status,
        computed_at=now,
        result=rules.recommend(inp),
        criteria=tuple(criteria),
        entry=tuple(entry),
        triggers=tuple(triggers),
        defects=tuple(_defects(plan, window, now)),
        sign_offs=tuple(sign_offs),
        days_left=days_left,
        business_days_observed=observed,
        minimum_observation_days=plan.minimum_observation_days,
        missing=tuple(missing),
        last_check_at=run.due_at if run else None,
        tz=tz,
    )
