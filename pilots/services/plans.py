"""Starting a plan: from scratch, from the built-in template (the seed's example), or by cloning."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Team, User
from catalogue.selectors import metric_by_key
from pilots import timeline
from pilots.models import (
    Cohort,
    CohortSegment,
    Dashboard,
    EntryCriterion,
    ExitCriterion,
    MonitoringAndSupport,
    PilotPlan,
    PlanSection,
    ResponseSla,
    Risk,
    RollbackPlan,
    RollbackStep,
    RollbackTrigger,
    ScopeItem,
    Section,
)
from pilots.services.sections import SINGLETONS, plan_end_date


@transaction.atomic
def plan_create(*, team: Team, author: User, title: str, summary: str = "") -> PilotPlan:
    """A new Draft plan owned by ``author``, with every section present and empty."""
    plan = PilotPlan(
        team=team,
        title=title.strip(),
        summary=summary,
        owner=author,
        decision_owner=author,
        created_by=author,
        time_zone=team.time_zone,
    )
    plan.full_clean()
    plan.save()
    for model in SINGLETONS:
        model.objects.create(plan=plan)
    PlanSection.objects.bulk_create(
        [PlanSection(plan=plan, key=key, updated_by=author) for key in Section.values]
    )
    return plan


def _member(team: Team, role: str) -> User | None:
    membership = Membership.objects.filter(team=team, role=role).select_related("user").first()
    return membership.user if membership else None


@transaction.atomic
def plan_create_from_template(
    *, team: Team, author: User, today: dt.date | None = None
) -> PilotPlan:
    """The seed's example plan (seed-pilot-plan.txt, "Example Snippet"), ready to adapt."""
    today = today or timezone.localdate()
    plan = plan_create(
        team=team,
        author=author,
        title="Saved cards pilot (from template)",
        summary="Validate saved cards with 200 internal users in Region A before full rollout.",
    )
    devops = _member(team, Membership.Role.DEVOPS)
    plan.scrum_master = _member(team, Membership.Role.SCRUM_MASTER)
    plan.rollback_executor = devops
    plan.start_date = timeline.next_monday(today)
    plan.business_days = 10
    plan.check_times = [dt.time(10, 0), dt.time(16, 0)]
    plan.change_control = (
        "Defects and feedback from the pilot become Product Backlog items the same day; "
        "the Product Owner re-prioritises them before the next Sprint Planning."
    )
    plan.end_date = plan_end_date(plan=plan)
    plan.save()

    ScopeItem.objects.bulk_create(
        [
            ScopeItem(plan=plan, position=1, reference="US-145", title="Save a card at checkout"),
            ScopeItem(plan=plan, position=2, reference="US-152", title="Pay with a saved card"),
            ScopeItem(
                plan=plan,
                position=1,
                kind=ScopeItem.Kind.EXCLUDED,
                title="Payment gateways",
                reason="External payment gateways stay out of the pilot to limit the blast radius.",
            ),
        ]
    )
    Cohort.objects.filter(plan=plan).update(
        description="200 internal users in Region A, opt-in only",
        target_size=200,
        opt_in_required=True,
    )
    CohortSegment.objects.bulk_create(
        [
            CohortSegment(
                plan=plan,
                position=1,
                dimension=CohortSegment.Dimension.REGION,
                value="Region A",
                intended_share=Decimal("100"),
            )
        ]
    )
    EntryCriterion.objects.bulk_create(
        [
            EntryCriterion(plan=plan, position=i, text=text, kind=kind)
            for i, (text, kind) in enumerate(
                [
                    ("Definition of Done met", EntryCriterion.Kind.DEFINITION_OF_DONE),
                    ("Performance test passed", EntryCriterion.Kind.NON_FUNCTIONAL),
                    ("Support runbook approved", EntryCriterion.Kind.RUNBOOK),
                ],
                start=1,
            )
        ]
    )
    metric = {key: metric_by_key(key=key, team_id=team.pk) for key in (
        "p1_defects", "p2_defects", "sessions", "csat", "error_rate", "p95_latency"
    )}  # fmt: skip
    exit_rows: list[dict[str, Any]] = [
        {"metric": metric["p1_defects"], "aggregation": "total", "comparator": "eq",
         "threshold": Decimal("0"), "unit": "defects", "min_sample_size": 1},
        {"metric": metric["p2_defects"], "aggregation": "rate_per", "comparator": "lt",
         "threshold": Decimal("2"), "denominator": metric["sessions"], "per_n": 1000,
         "unit": "per 1,000 sessions", "min_sample_size": 1000},
        {"metric": metric["csat"], "aggregation": "mean", "comparator": "ge",
         "threshold": Decimal("4.2"), "unit": "/ 5", "min_sample_size": 30},
        {"metric": metric["error_rate"], "aggregation": "mean", "comparator": "le",
         "threshold": Decimal("0.5"), "unit": "%", "min_sample_size": 60},
        {"metric": metric["p95_latency"], "aggregation": "percentile", "percentile": Decimal("95"),
         "comparator": "lt", "threshold": Decimal("300"), "unit": "ms", "min_sample_size": 60},
    ]  # fmt: skip
    ExitCriterion.objects.bulk_create(
        [ExitCriterion(plan=plan, position=i, **row) for i, row in enumerate(exit_rows, start=1)]
    )
    RollbackTrigger.objects.bulk_create(
        [
            RollbackTrigger(
                plan=plan, position=1, metric=metric["p1_defects"], comparator="gt",
                threshold=Decimal("0"), mode=RollbackTrigger.Mode.ANY_OCCURRENCE,
                description="Any P1 defect",
            ),
            RollbackTrigger(
                plan=plan, position=2, metric=metric["p95_latency"], comparator="gt",
                threshold=Decimal("300"), mode=RollbackTrigger.Mode.SUSTAINED,
                sustained_minutes=30, description="p95 latency above 300 ms for 30 minutes",
            ),
        ]
    )  # fmt: skip
    RollbackPlan.objects.filter(plan=plan).update(
        approver=author,
        data_considerations="Saved card tokens created in the pilot are kept; no data is deleted.",
        communication_plan="Post in #pilot-saved-cards and e-mail the cohort within 30 minutes.",
    )
    RollbackStep.objects.bulk_create(
        [
            RollbackStep(plan=plan, position=i, action=action, owner=devops, expected_minutes=m)
            for i, (action, m) in enumerate(
                [
                    ("Switch the saved-cards feature flag off for the cohort", 5),
                    ("Revert the change set and redeploy the previous release", 20),
                    ("Verify checkout on the previous release with a smoke test", 10),
                ],
                start=1,
            )
        ]
    )
    MonitoringAndSupport.objects.filter(plan=plan).update(
        communication_cadence="Daily status note in #pilot-saved-cards after the 16:00 check."
    )
    Dashboard.objects.create(
        plan=plan, position=1, name="P-01", url="https://dashboards.example.com/P-01"
    )
    ResponseSla.objects.bulk_create(
        [
            ResponseSla(plan=plan, severity="p1", response_minutes=15),
            ResponseSla(plan=plan, severity="p2", response_minutes=120),
        ]
    )
    Risk.objects.bulk_create(
        [
            Risk(
                plan=plan, position=1, description="Cohort not representative (internal only)",
                likelihood="medium", impact="medium",
                mitigation="Compare with external usage patterns before the go decision.",
                owner=author,
            ),
        ]
    )  # fmt: skip
    # The one-to-one sections were written with queryset updates; drop the empty copies that
    # plan_create cached on ``plan`` so callers do not read (or build on) stale sections.
    plan.refresh_from_db()
    return plan


# Rows copied when cloning, and the fields that are history rather than plan (left behind).
_CLONED_ROWS = (
    ("scope_items", ()),
    ("segments", ()),
    ("entry_criteria", ("status", "evidence_url", "waiver_reason", "confirmed_by", "confirmed_at")),
    ("exit_criteria", ()),
    ("dashboards", ()),
    ("response_slas", ()),
    ("rollback_triggers", ()),
    ("rollback_steps", ()),
    ("risks", ()),
)


@transaction.atomic
def plan_clone(*, source: PilotPlan, author: User, title: str | None = None) -> PilotPlan:
    """A new Draft plan with ``source``'s content. Dates, on-call shifts, rehearsals, entry
    criteria evidence and compliance validation are not copied: they belong to one pilot."""
    plan = plan_create(
        team=source.team,
        author=author,
        title=title or f"{source.title} (copy)",
        summary=source.summary,
    )
    for field in ("release_ref", "scrum_master", "rollback_executor", "time_zone",
                  "business_days", "check_times", "change_control"):  # fmt: skip
        setattr(plan, field, getattr(source, field))
    plan.cloned_from = source
    plan.save()
    for model in SINGLETONS:
        original = model.objects.get(plan=source)
        copy = model.objects.get(plan=plan)
        for field in model._meta.concrete_fields:
            if field.name in {"id", "plan", "compliance_validated_by", "compliance_validated_at"}:
                continue
            setattr(copy, field.attname, getattr(original, field.attname))
        copy.save()
    for related, reset in _CLONED_ROWS:
        rows = list(getattr(source, related).all())
        for row in rows:
            row.pk = None
            row.plan = plan
            for name in reset:
                field = row._meta.get_field(name)
                setattr(row, field.attname, field.get_default())
        if rows:
            type(rows[0]).objects.bulk_create(rows)
    return plan
