"""The go/no-go recommendation: one case per rule, the precedence, and the documented table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pytest

from decisions.rules import (
    RULES,
    BlindSignal,
    CriterionState,
    DecisionInput,
    Recommendation,
    TriggerState,
    recommend,
    rules_table,
)
from metrics.statistics import Verdict

MET, NOT_MET, UNDECIDED = Verdict.MET, Verdict.NOT_MET, Verdict.NOT_ENOUGH_EVIDENCE
FIRED = dt.datetime(2026, 12, 3, 14, 32, tzinfo=dt.UTC)
LATENCY = "p95 latency > 300 ms for 30 minutes"

CSAT = CriterionState("CSAT mean ≥ 4.2", MET)
P2 = CriterionState("P2 defects rate per 1,000 sessions ≤ 1", MET)

# Every blocking criterion met, the period passed, nothing fired: Go. Each case changes one thing.
GOOD = DecisionInput(
    criteria=(CSAT, P2, CriterionState("NPS mean ≥ 30", MET, blocking=False)),
    triggers=(TriggerState(LATENCY),),
    business_days_observed=5,
)


def case(**changes: object) -> DecisionInput:
    return dataclasses.replace(GOOD, **changes)  # type: ignore[arg-type]


CASES = [
    (
        "trigger_fired",
        case(triggers=(TriggerState(LATENCY, (FIRED,)),)),
        "Roll back: trigger ‘p95 latency > 300 ms for 30 minutes’ fired at Thu 3 Dec 2026, "
        "14:32 UTC and is unresolved",
    ),
    (
        "entry_not_met",
        case(unmet_entry_criteria=("Feature flag configured",)),
        "Not yet decidable: entry criterion ‘Feature flag configured’ not met, so the pilot's "
        "evidence is not yet comparable",
    ),
    (
        "observation_period",
        case(business_days_observed=2),
        "Not yet decidable: 2 of 3 business days observed",
    ),
    (
        "no_blocking_criteria",
        case(criteria=(dataclasses.replace(CSAT, blocking=False),)),
        "Not yet decidable: no blocking exit criterion to decide on",
    ),
    (
        "blocking_not_met",
        case(criteria=(dataclasses.replace(CSAT, verdict=NOT_MET), P2)),
        "Iterate: blocking criterion ‘CSAT mean ≥ 4.2’ not met, and no rollback trigger fired",
    ),
    (
        "blocking_undecided",
        case(criteria=(CSAT, dataclasses.replace(P2, verdict=UNDECIDED))),
        "Not yet decidable: blocking criterion ‘P2 defects rate per 1,000 sessions ≤ 1’ has not "
        "enough evidence yet",
    ),
    (
        "trigger_blind",
        case(blind_signals=(BlindSignal(LATENCY, "stale", FIRED),)),
        "Not yet decidable: every blocking criterion is met, but rollback trigger ‘p95 latency "
        "> 300 ms for 30 minutes’ has had no fresh data since Thu 3 Dec 2026, 14:32 UTC",
    ),
    (
        "go_advisory_missed",
        case(criteria=(CSAT, P2, CriterionState("NPS mean ≥ 30", UNDECIDED, blocking=False))),
        "Go: both blocking criteria met; advisory ‘NPS mean ≥ 30’ not met yet, to follow up",
    ),
    ("go", GOOD, "Go: both blocking criteria met"),
]


@pytest.mark.parametrize(("rule", "inp", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_rule(rule: str, inp: DecisionInput, words: str) -> None:
    result = recommend(inp)
    assert (result.rule.name, result.words) == (rule, words)


def test_every_rule_has_a_case() -> None:
    assert [c[0] for c in CASES] == [r.name for r in RULES]


@pytest.mark.parametrize(
    "other",
    [
        {"business_days_observed": 0},
        {"unmet_entry_criteria": ("Runbook reviewed",)},
        {"criteria": (dataclasses.replace(CSAT, verdict=UNDECIDED),)},
        {"criteria": (dataclasses.replace(CSAT, verdict=NOT_MET),)},
        {"criteria": ()},
        {"blind_signals": (BlindSignal("Errors > 1 %", "no_data", FIRED),)},
    ],
)
def test_a_fired_trigger_beats_everything(other: dict[str, object]) -> None:
    fired = case(triggers=(TriggerState(LATENCY, (FIRED,)),), **other)
    assert recommend(fired).recommendation is Recommendation.ROLL_BACK


def test_the_minimum_period_beats_the_criteria() -> None:
    for verdict in (MET, NOT_MET, UNDECIDED):
        inp = case(business_days_observed=1, criteria=(dataclasses.replace(CSAT, verdict=verdict),))
        result = recommend(inp)
        assert result.rule.name == "observation_period"
        assert result.recommendation is Recommendation.NOT_YET_DECIDABLE


def test_not_met_beats_not_enough_evidence_and_advisory_never_blocks() -> None:
    mixed = case(
        criteria=(
            dataclasses.replace(CSAT, verdict=UNDECIDED),
            dataclasses.replace(P2, verdict=NOT_MET),
        )
    )
    assert recommend(mixed).recommendation is Recommendation.ITERATE
    advisory_failing = case(
        criteria=(CSAT, dataclasses.replace(P2, verdict=NOT_MET, blocking=False))
    )
    assert recommend(advisory_failing).recommendation is Recommendation.GO


def test_several_firings_name_the_earliest_and_count_the_rest() -> None:
    later = FIRED + dt.timedelta(hours=2)
    inp = case(
        triggers=(
            TriggerState("Errors > 1 %", (later,)),
            TriggerState(LATENCY, (FIRED, later)),
        ),
        tz=zoneinfo.ZoneInfo("Europe/Berlin"),
    )
    assert recommend(inp).explanation == (
        "trigger ‘p95 latency > 300 ms for 30 minutes’ fired at Thu 3 Dec 2026, 15:32 CET "
        "and is unresolved (2 more firings also unresolved)"
    )


def test_one_blocking_criterion_and_many_names_read_plainly() -> None:
    assert recommend(case(criteria=(CSAT,))).words == "Go: the blocking criterion met"
    three = (CSAT, P2, dataclasses.replace(CSAT, name="Errors ≤ 1 %"))
    assert recommend(case(criteria=three)).words == "Go: all 3 blocking criteria met"
    many = tuple(CriterionState(f"C{i}", NOT_MET) for i in range(5))
    assert recommend(case(criteria=many)).explanation == (
        "blocking criterion ‘C0’, ‘C1’, ‘C2’ and 2 more not met, and no rollback trigger fired"
    )


def test_zero_minimum_period_is_allowed_and_negative_is_refused() -> None:
    assert recommend(case(business_days_observed=0, minimum_observation_days=0)).recommendation
    with pytest.raises(ValueError, match="business_days_observed"):
        case(business_days_observed=-1)
    with pytest.raises(ValueError, match="minimum_observation_days"):
        case(minimum_observation_days=-2)


def test_rules_table_lists_the_rules_in_order() -> None:
    table = rules_table()
    assert [row[0] for row in table] == list(range(1, len(RULES) + 1))
    assert table[0] == (1, "a rollback trigger fired and is unresolved", "Roll back")
    assert table[-1][2] == "Go"


def test_the_documented_table_is_the_table_in_code() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "decisions.md").read_text()
    block = doc.split("<!-- rules: checked against decisions.rules.RULES -->", 1)[1]
    rows = []
    for line in block.strip().splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    body = [r for r in rows[2:]]  # header and separator
    documented = [(int(order), when, re.sub(r"\*\*", "", outcome)) for order, when, outcome in body]
    assert documented == rules_table()
