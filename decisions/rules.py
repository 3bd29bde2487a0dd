"""The go/no-go recommendation: one ordered table of rules over a plan's evidence, no database.

:func:`recommend` takes a :class:`DecisionInput` (loaded by the caller) and returns the first
rule of :data:`RULES` whose condition holds, with its explanation in plain words. The order is
the policy:

1. A fired rollback trigger that nobody resolved weighs most: **Roll back**, whatever else.
2. No recommendation but "Not yet decidable" before the entry criteria are met and the minimum
   observation period has passed, or when there is no blocking criterion to decide on.
3. A blocking criterion clearly **not met** (its whole interval on the wrong side) → **Iterate**:
   the change does not deliver yet, but nothing shows it does harm (harm is what the rollback
   triggers measure). The decision owner may still roll back, with an override reason.
4. A blocking criterion without enough evidence → **Not yet decidable**.
5. A rollback trigger without fresh data → **Not yet decidable**: Go needs the safety signals.
6. Every blocking criterion met → **Go**; advisory criteria not met are named, never blocking.

:func:`rules_table` lists the table for the page and ``docs/decisions.md`` (a test keeps the
two the same).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from accounts.ui import local_time
from metrics.statistics import Verdict

DEFAULT_MINIMUM_OBSERVATION_DAYS = 3


class Recommendation(enum.StrEnum):
    GO = "go"
    ITERATE = "iterate"
    ROLL_BACK = "roll_back"
    NOT_YET_DECIDABLE = "not_yet_decidable"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Recommendation.GO: "Go",
    Recommendation.ITERATE: "Iterate",
    Recommendation.ROLL_BACK: "Roll back",
    Recommendation.NOT_YET_DECIDABLE: "Not yet decidable",
}


@dataclass(frozen=True)
class CriterionState:
    """An exit criterion's latest verdict; ``name`` as people read it (``criterion_text``)."""

    name: str
    verdict: Verdict
    blocking: bool = True


@dataclass(frozen=True)
class TriggerState:
    """A rollback trigger (``name``: ``trigger_text``) and when each of its episodes that
    nobody resolved fired (a cleared but unresolved episode counts: someone must look)."""

    name: str
    unresolved_fired_at: tuple[dt.datetime, ...] = ()


@dataclass(frozen=True)
class BlindSignal:
    """A rollback trigger that cannot judge now: ``kind`` "no data" or "stale", since when."""

    name: str
    kind: str
    since: dt.datetime


@dataclass(frozen=True)
class DecisionInput:
    """Everything the rules read. ``tz``: the plan's zone, for the times in the words."""

    criteria: tuple[CriterionState, ...]
    triggers: tuple[TriggerState, ...] = ()
    blind_signals: tuple[BlindSignal, ...] = ()
    business_days_observed: int = 0
    minimum_observation_days: int = DEFAULT_MINIMUM_OBSERVATION_DAYS
    unmet_entry_criteria: tuple[str, ...] = ()
    tz: dt.tzinfo = field(default=dt.UTC)

    def __post_init__(self) -> None:
        if self.business_days_observed < 0:
            raise ValueError("business_days_observed must be ≥ 0.")
        if self.minimum_observation_days < 0:
            raise ValueError("minimum_observation_days must be ≥ 0.")

    # --- what the rules ask -----------------------------------------------------------------

    def blocking(self, verdict: Verdict) -> list[CriterionState]:
        return [c for c in self.criteria if c.blocking and c.verdict == verdict]

    def advisory(self, verdict: Verdict) -> list[CriterionState]:
        return [c for c in self.criteria if not c.blocking and c.verdict == verdict]

    @property
    def fired(self) -> list[tuple[dt.datetime, str]]:
        """Unresolved firings, earliest first."""
        return sorted((at, t.name) for t in self.triggers for at in t.unresolved_fired_at)


@dataclass(frozen=True)
class Rule:
    """One row of the table: ``when`` says the condition in words for the table; ``template``
    is filled from :func:`_facts` to explain one plan's recommendation."""

    name: str
    when: str
    condition: Callable[[DecisionInput], bool]
    outcome: Recommendation
    template: str


@dataclass(frozen=True)
class Result:
    recommendation: Recommendation
    rule: Rule
    explanation: str  # the rule applied to this plan, without the recommendation

    @property
    def words(self) -> str:
        """ "Roll back: trigger ‘p95 latency > 300 ms for 30 minutes’ fired at Sun 6 Dec
        2026, 14:32 CET and is unresolved"."""
        return f"{self.recommendation.label}: {self.explanation}"


def _names(items: list[str], limit: int = 3) -> str:
    quoted = [f"‘{n}’" for n in items[:limit]]
    more = len(items) - limit
    if more > 0:
        quoted.append(f"{more} more")
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _time(at: dt.datetime, tz: dt.tzinfo) -> str:
    return local_time(at, tz)


def _others(count: int, noun: str) -> str:
    if count <= 0:
        return ""
    return f" ({count} more {noun}{'' if count == 1 else 's'} also unresolved)"


def _facts(inp: DecisionInput) -> dict[str, str]:
    fired = inp.fired
    blocking_met = inp.blocking(Verdict.MET)
    return {
        "trigger": fired[0][1] if fired else "",
        "fired_at": _time(fired[0][0], inp.tz) if fired else "",
        "other_firings": _others(len(fired) - 1, "firing"),
        "unmet_entry": _names(list(inp.unmet_entry_criteria)) if inp.unmet_entry_criteria else "",
        "observed": str(inp.business_days_observed),
        "minimum": str(inp.minimum_observation_days),
        "not_met": _names([c.name for c in inp.blocking(Verdict.NOT_MET)] or ["—"]),
        "undecided": _names([c.name for c in inp.blocking(Verdict.NOT_ENOUGH_EVIDENCE)] or ["—"]),
        "blind": _names([f"{s.name}" for s in inp.blind_signals] or ["—"]),
        "blind_since": _time(min(s.since for s in inp.blind_signals), inp.tz)
        if inp.blind_signals
        else "",
        "blocking_met": {1: "the blocking criterion", 2: "both blocking criteria"}.get(
            len(blocking_met), f"all {len(blocking_met)} blocking criteria"
        ),
        "advisory_missed": _names(
            [c.name for c in inp.criteria if not c.blocking and c.verdict != Verdict.MET] or ["—"]
        ),
    }


def _blocking(inp: DecisionInput) -> list[CriterionState]:
    return [c for c in inp.criteria if c.blocking]


RULES: tuple[Rule, ...] = (
    Rule(
        "trigger_fired",
        "a rollback trigger fired and is unresolved",
        lambda i: bool(i.fired),
        Recommendation.ROLL_BACK,
        "trigger ‘{trigger}’ fired at {fired_at} and is unresolved{other_firings}",
    ),
    Rule(
        "entry_not_met",
        "an entry criterion is not met",
        lambda i: bool(i.unmet_entry_criteria),
        Recommendation.NOT_YET_DECIDABLE,
        "entry criterion {unmet_entry} not met, so the pilot's evidence is not yet comparable",
    ),
    Rule(
        "observation_period",
        "fewer business days observed than the minimum observation period",
        lambda i: i.business_days_observed < i.minimum_observation_days,
        Recommendation.NOT_YET_DECIDABLE,
        "{observed} of {minimum} business days observed",
    ),
    Rule(
        "no_blocking_criteria",
        "the plan has no blocking exit criterion",
        lambda i: not _blocking(i),
        Recommendation.NOT_YET_DECIDABLE,
        "no blocking exit criterion to decide on",
    ),
    Rule(
        "blocking_not_met",
        "a blocking exit criterion is not met",
        lambda i: bool(i.blocking(Verdict.NOT_MET)),
        Recommendation.ITERATE,
        "blocking criterion {not_met} not met, and no rollback trigger fired",
    ),
    Rule(
        "blocking_undecided",
        "a blocking exit criterion has not enough evidence",
        lambda i: bool(i.blocking(Verdict.NOT_ENOUGH_EVIDENCE)),
        Recommendation.NOT_YET_DECIDABLE,
        "blocking criterion {undecided} has not enough evidence yet",
    ),
    Rule(
        "trigger_blind",
        "a rollback trigger has no fresh data",
        lambda i: bool(i.blind_signals),
        Recommendation.NOT_YET_DECIDABLE,
        "every blocking criterion is met, but rollback trigger {blind} has had no fresh data "
        "since {blind_since}",
    ),
    Rule(
        "go_advisory_missed",
        "every blocking exit criterion is met, an advisory one is not (yet)",
        lambda i: any(not c.blocking and c.verdict != Verdict.MET for c in i.criteria),
        Recommendation.GO,
        "{blocking_met} met; advisory {advisory_missed} not met yet, to follow up",
    ),
    Rule(
        "go",
        "every exit criterion is met",
        lambda i: True,
        Recommendation.GO,
        "{blocking_met} met",
    ),
)


def recommend(inp: DecisionInput) -> Result:
    """The first rule of :data:`RULES` that holds (the last one always does)."""
    for rule in RULES:
        if rule.condition(inp):
            return Result(rule.outcome, rule, rule.template.format(**_facts(inp)))
    raise AssertionError("The last rule always matches.")  # pragma: no cover


def rules_table() -> list[tuple[int, str, str]]:
    """The table as shown on the page and in ``docs/decisions.md``: (order, when,
    recommendation)."""
    return [(n, rule.when, rule.outcome.label) for n, rule in enumerate(RULES, start=1)]
