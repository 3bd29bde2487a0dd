"""The decision and rollback events for webhook subscriptions (docs/webhooks.md), published by
the services that cause them, inside their transaction (accounts.events)."""

from __future__ import annotations

from django.urls import reverse

from accounts.events import event_publish, iso, person, plan_ref
from accounts.models import EventType
from decisions.models import DecisionRecord, RollbackRun
from pilots.models import PilotPlan


def decision_recorded_publish(
    *, plan: PilotPlan, record: DecisionRecord, summary: str, iteration: PilotPlan | None
) -> None:
    event_publish(
        team_id=plan.team_id,
        event=EventType.DECISION_RECORDED,
        data={
            "plan": plan_ref(plan_id=plan.pk, title=plan.title),
            "decision": {
                "id": record.pk,
                "outcome": record.outcome,
                "rationale": record.rationale,
                "recommendation": record.recommendation,
                "against_recommendation": record.is_override,
                "override_reason": record.override_reason,
                "corrects": record.supersedes_id,
                "recorded_by": person(record.recorded_by),
                "evidence_hash": record.evidence_hash,
            },
            "iteration": (
                plan_ref(plan_id=iteration.pk, title=iteration.title) if iteration else None
            ),
        },
        summary=summary,
        link=reverse("decisions:decision", args=[plan.pk]),
    )


def _run_data(plan: PilotPlan, run: RollbackRun) -> dict[str, object]:
    return {
        "plan": plan_ref(plan_id=plan.pk, title=plan.title),
        "rollback": {
            "id": run.pk,
            "emergency": run.emergency,
            "episode_id": run.episode_id,
            "decision_id": run.decision_id,
            "started_by": person(run.started_by),
            "started_at": iso(run.started_at),
            "ended_by": person(run.ended_by),
            "ended_at": iso(run.ended_at),
        },
    }


def rollback_started_publish(*, plan: PilotPlan, run: RollbackRun, summary: str) -> None:
    event_publish(
        team_id=plan.team_id,
        event=EventType.ROLLBACK_STARTED,
        data=_run_data(plan, run),
        summary=summary,
        link=reverse("decisions:rollback", args=[plan.pk]),
    )


def rollback_finished_publish(
    *, plan: PilotPlan, run: RollbackRun, failed_steps: int, summary: str
) -> None:
    data = _run_data(plan, run)
    data["failed_steps"] = failed_steps
    event_publish(
        team_id=plan.team_id,
        event=EventType.ROLLBACK_FINISHED,
        data=data,
        summary=summary,
        link=reverse("decisions:rollback", args=[plan.pk]),
    )
