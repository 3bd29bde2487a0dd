"""The deployment gate: what a delivery pipeline is told about a plan (docs/gate.md).

:func:`gate_answer` builds one answer from the decision evidence (``decisions.evidence``) and the
plan's current decision record; the API (``decisions/api/gate.py``) sends it as JSON, always with
200 in ``json`` mode, and with 200 or 409 in ``strict`` mode. :func:`gate_call_log` keeps every
call against the plan; :func:`gate_calls_recent` lists them for the decision page.

Promotion is allowed when the plan's current decision is Go, or — no decision recorded yet and the
caller did not ask for one (``require_decision``) — when the recommendation is Go. A rollback is
called for when the current decision is Roll back, or a rollback trigger fired and nobody
resolved it (whatever was decided: a fired trigger always weighs most).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from decisions.evidence import DecisionEvidence, decision_evidence
from decisions.models import DecisionRecord, GateCall
from decisions.models.gate import PIPELINE_RUN_MAX
from decisions.selectors import decision_head
from pilots.models import PilotPlan

GO = DecisionRecord.Outcome.GO
ROLL_BACK = DecisionRecord.Outcome.ROLL_BACK


@dataclass(frozen=True)
class GateAnswer:
    """One answer of the gate. ``body`` is what the API sends (JSON-safe)."""

    body: dict[str, Any]

    @property
    def promotion_allowed(self) -> bool:
        return bool(self.body["promotion_allowed"])

    @property
    def rollback_called_for(self) -> bool:
        return bool(self.body["rollback_called_for"])

    @property
    def recommendation(self) -> str:
        return str(self.body["recommendation"]["value"])

    def allowed(self, endpoint: str) -> bool:
        """What strict mode judges: promotion for the gate, a rollback for the rollback check."""
        return (
            self.rollback_called_for
            if endpoint == GateCall.Endpoint.ROLLBACK
            else (self.promotion_allowed)
        )


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        return float(value)
    return float(value)


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _decision(record: DecisionRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "id": record.pk,
        "outcome": record.outcome,
        "outcome_label": record.get_outcome_display(),
        "recorded_at": _time(record.recorded_at),
        "recorded_by": record.recorded_by.display_name,
        "is_override": record.is_override,
        "override_reason": record.override_reason,
    }


def _promotion(
    evidence: DecisionEvidence, record: DecisionRecord | None, *, require_decision: bool
) -> tuple[bool, str]:
    result = evidence.result
    if record is not None:
        label = record.get_outcome_display()
        when = f"{record.recorded_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        if record.outcome == GO:
            return True, f"Decision recorded: Go ({record.recorded_by.display_name}, {when})."
        return False, f"Decision recorded: {label} ({record.recorded_by.display_name}, {when})."
    if require_decision:
        return False, (
            f"No decision recorded yet (recommendation {result.words}); this gate was asked "
            "to wait for a recorded decision."
        )
    if result.recommendation == "go":
        return True, f"No decision recorded yet; the recommendation is {result.words}."
    return False, f"No decision recorded yet; the recommendation is {result.words}."


def _rollback(evidence: DecisionEvidence, record: DecisionRecord | None) -> tuple[bool, str]:
    fired = [t for t in evidence.triggers if t.unresolved]
    if fired:
        names = ", ".join(f"‘{t.name}’" for t in fired)
        noun = "trigger" if len(fired) == 1 else "triggers"
        return (
            True,
            f"Rollback {noun} {names} fired and {'is' if len(fired) == 1 else 'are'} unresolved.",
        )
    if record is not None and record.outcome == ROLL_BACK:
        return True, (
            f"Decision recorded: Roll back ({record.recorded_by.display_name}, "
            f"{record.recorded_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)."
        )
    return False, "No rollback trigger fired unresolved, and no Roll back decision recorded."


def gate_answer(
    plan: PilotPlan, *, require_decision: bool = False, now: dt.datetime | None = None
) -> GateAnswer:
    """What the gate says about ``plan`` now. Constant queries (the evidence's plus one)."""
    now = now or timezone.now()
    evidence = decision_evidence(plan, now=now)
    record = decision_head(plan_id=plan.pk)
    result = evidence.result
    allowed, allowed_reason = _promotion(evidence, record, require_decision=require_decision)
    rollback, rollback_reason = _rollback(evidence, record)
    if allowed and rollback:
        # A fired, unresolved trigger weighs most, even over a recorded Go.
        allowed = False
        allowed_reason = (
            f"{allowed_reason.removesuffix('.')}, but a fired rollback trigger outweighs it: "
            f"{rollback_reason}"
        )
    body: dict[str, Any] = {
        "plan": {"id": plan.pk, "title": plan.title, "status": plan.status},
        "recommendation": {
            "value": str(result.recommendation),
            "label": result.recommendation.label,
            "rule": result.rule.name,
            "words": result.words,
        },
        "decision": _decision(record),
        "promotion_allowed": allowed,
        "promotion_reason": allowed_reason,
        "rollback_called_for": rollback,
        "rollback_reason": rollback_reason,
        "require_decision": require_decision,
        "criteria": [
            {
                "name": c.name,
                "blocking": c.blocking,
                "verdict": str(c.verdict),
                "value": _number(c.value),
                "threshold": _number(c.threshold),
                "comparator": c.comparator,
                "unit": c.unit,
                "low": _number(c.low),
                "high": _number(c.high),
                "sample_size": c.sample_size,
                "method": c.method,
            }
            for c in evidence.criteria
        ],
        "triggers": [
            {
                "name": t.name,
                "state": str(t.state),
                "unresolved_episodes": sum(1 for e in t.episodes if e.unresolved),
            }
            for t in evidence.triggers
        ],
        "checked_at": _time(evidence.last_check_at),
        "computed_at": _time(evidence.computed_at),
    }
    return GateAnswer(body)


def pipeline_run_clean(value: str | None) -> str:
    """The pipeline's run identifier as sent (trimmed); at most 200 printable characters."""
    value = (value or "").strip()
    if len(value) > PIPELINE_RUN_MAX:
        raise ValidationError(
            {"run": f"A pipeline run identifier has at most {PIPELINE_RUN_MAX} characters."}
        )
    if not value.isprintable():
        raise ValidationError({"run": "A pipeline run identifier has printable characters only."})
    return value


def caller_label(*, user: User | None, api_key: ApiKey | None) -> str:
    if api_key is not None:
        return f"API key ‘{api_key.name}’"
    if user is not None and user.is_authenticated:
        return user.email
    return "unknown"


@transaction.atomic
def gate_call_log(
    *,
    plan: PilotPlan,
    endpoint: str,
    mode: str,
    answer: GateAnswer,
    status_code: int,
    user: User | None = None,
    api_key: ApiKey | None = None,
    pipeline_run: str = "",
    at: dt.datetime | None = None,
) -> GateCall:
    """Keep one call of the gate against ``plan``: who asked, from which run, what they got."""
    call = GateCall(
        plan=plan,
        called_at=at or timezone.now(),
        endpoint=endpoint,
        mode=mode,
        user=user if user is not None and user.is_authenticated else None,
        api_key=api_key,
        caller=caller_label(user=user, api_key=api_key)[:200],
        pipeline_run=pipeline_run_clean(pipeline_run),
        status_code=status_code,
        allowed=answer.allowed(endpoint),
        recommendation=answer.recommendation,
    )
    # No full_clean: every field is set here from checked values (the run by pipeline_run_clean,
    # endpoint and mode by the API's own choices), and the database still checks its rules; it
    # would add a query per check constraint to every gate call.
    call.save()
    return call


def gate_calls_recent(*, plan_id: int, limit: int = 20) -> list[GateCall]:
    """The plan's latest gate calls, newest first (one query)."""
    return list(GateCall.objects.filter(plan_id=plan_id).order_by("-called_at", "-pk")[:limit])
