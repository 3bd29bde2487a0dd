"""The pilot plan and its sections. One module per topic; import models from here."""

from pilots.models.guests import PlanGuest, PlanInvitation
from pilots.models.plan import PilotPlan, PlanSection, Section
from pilots.models.review import (
    Contribution,
    PlanTransition,
    Review,
    ReviewKind,
    SignOff,
    TimeboxExtension,
)
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
from pilots.models.templates import PlanTemplate

__all__ = [
    "Cohort",
    "CohortSegment",
    "Contribution",
    "Dashboard",
    "EntryCriterion",
    "EnvironmentAndData",
    "ExitCriterion",
    "MonitoringAndSupport",
    "OnCallShift",
    "PilotPlan",
    "PlanGuest",
    "PlanInvitation",
    "PlanSection",
    "PlanTemplate",
    "PlanTransition",
    "ResponseSla",
    "Review",
    "ReviewKind",
    "Risk",
    "RollbackPlan",
    "RollbackRehearsal",
    "RollbackStep",
    "RollbackTrigger",
    "ScopeItem",
    "Section",
    "SignOff",
    "TimeboxExtension",
]
