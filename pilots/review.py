"""Who reviews what: the Product Owner the business measures, the Scrum Master risks and
readiness, the team feasibility (the roles of docs/user-guide.md, "Roles").

Each review covers sections of the plan; an edit to any covered section voids that review's
sign-off. Only members holding one of the review's roles may fill it in or sign it.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Membership
from accounts.permissions import Perm, roles_for, who
from pilots.models import ReviewKind, Section

Role = Membership.Role


@dataclass(frozen=True)
class ReviewSpec:
    kind: ReviewKind
    perm: Perm  # who fills it in and signs it: the permission table's rule
    covers: frozenset[str]
    checklist: tuple[tuple[str, str], ...]  # (key, question)

    @property
    def short_label(self) -> str:
        """``"business"`` for "Business (Product Owner)"."""
        return str(self.kind.label).split(" (")[0].lower()

    @property
    def roles(self) -> frozenset[str]:
        return roles_for(self.perm)

    @property
    def role_labels(self) -> str:
        return who(self.perm)


REVIEWS: dict[str, ReviewSpec] = {
    ReviewKind.BUSINESS: ReviewSpec(
        ReviewKind.BUSINESS,
        Perm.REVIEW_BUSINESS,
        frozenset({Section.OVERVIEW, Section.SCOPE, Section.COHORT, Section.EXIT_CRITERIA}),
        (
            ("scope_minimal", "Is the scope the minimal slice that validates the assumptions?"),
            ("cohort_representative", "Is the cohort representative of the full rollout?"),
            ("metrics_measurable", "Is every success metric quantitative and measurable?"),
        ),
    ),
    ReviewKind.READINESS: ReviewSpec(
        ReviewKind.READINESS,
        Perm.REVIEW_READINESS,
        frozenset({Section.RISKS, Section.MONITORING, Section.ROLLBACK_PLAN, Section.ENVIRONMENT}),
        (
            ("risks_owned", "Does every risk have a mitigation and an owner?"),
            ("support_ready", "Are support, on-call and response SLAs in place for the window?"),
            ("training_done", "Has the support and cohort training happened?"),
            ("rollback_rehearsed", "Has the rollback been rehearsed?"),
            ("compliance_checked", "Are compliance and masking validated where real data is used?"),
        ),
    ),
    ReviewKind.FEASIBILITY: ReviewSpec(
        ReviewKind.FEASIBILITY,
        Perm.REVIEW_FEASIBILITY,
        frozenset(
            {
                Section.ENVIRONMENT,
                Section.MONITORING,
                Section.ROLLBACK_TRIGGERS,
                Section.ROLLBACK_PLAN,
            }
        ),
        (
            ("environment_ready", "Is the pilot environment ready and the data migration tested?"),
            ("monitoring_live", "Do the dashboards and alerts show the pilot's metrics?"),
            ("rollback_steps_work", "Do the rollback steps work as written?"),
        ),
    ),
}


def reviews_covering(section: str) -> list[str]:
    """The reviews whose sign-off an edit of ``section`` voids."""
    return [kind for kind, spec in REVIEWS.items() if section in spec.covers]
