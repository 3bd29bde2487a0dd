"""The pilot plan and its sections. One module per topic; import models from here."""

from pilots.models.plan import PilotPlan, PlanSection, Section
from pilots.models.sections import (
    Cohort,
    CohortSegment,
    Dashboard,
    EntryCriterion,
    EnvironmentAndData,
    ExitCriterion,
    MonitoringAndSupport,
    OnCallShift,
    ResponseSla,
    Risk,
    RollbackPlan,
    RollbackRehearsal,
    RollbackStep,
    RollbackTrigger,
    ScopeItem,
)

__all__ = [
    "Cohort",
    "CohortSegment",
    "Dashboard",
    "EntryCriterion",
    "EnvironmentAndData",
    "ExitCriterion",
    "MonitoringAndSupport",
    "OnCallShift",
    "PilotPlan",
    "PlanSection",
    "ResponseSla",
    "Risk",
    "RollbackPlan",
    "RollbackRehearsal",
    "RollbackStep",
    "RollbackTrigger",
    "ScopeItem",
    "Section",
]
