"""Who may do what: every role rule of Pilotplan, in one table.

Each permission names the roles that hold it and the words a refused person reads. Services
enforce it (``require``), and HTML views, HTMX partials, the API and API keys all reach the
services; pages ask ``allows`` only to decide which buttons to show. The permission-matrix test
(``tests/pilots/test_permission_matrix.py``) reads this table and checks every role against
every action over every interface.

Visibility is not a role rule: a plan or team exists only for its members (and a plan for the
stakeholders invited to it, who read it as a team stakeholder would); everyone else gets 404,
never 403, so outsiders cannot probe for them (``pilots.access``, ``team_for_member``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import Membership, Team, User

Role = Membership.Role


class Perm(StrEnum):
    PLAN_VIEW = "plan.view"
    PLAN_CREATE = "plan.create"
    PLAN_EDIT = "plan.edit"  # every section and its rows
    # Fill in and sign each review (pilots.review.REVIEWS names the kinds).
    REVIEW_BUSINESS = "review.business"
    REVIEW_READINESS = "review.readiness"
    REVIEW_FEASIBILITY = "review.feasibility"
    # Each lifecycle step (pilots.services.lifecycle.TRANSITIONS names them).
    STEP_SUBMIT = "step.submit"
    STEP_WITHDRAW = "step.withdraw"
    STEP_APPROVE = "step.approve"
    STEP_START = "step.start"
    STEP_EVALUATE = "step.evaluate"
    STEP_DECIDE = "step.decide"
    STEP_CLOSE = "step.close"
    TIMEBOX_EXTEND = "timebox.extend"  # move a running pilot's end date later, with a reason
    GUESTS_MANAGE = "guests.manage"
    ALERTS_ACT = "alerts.act"  # acknowledge and resolve a fired rollback trigger
    CHECK_RUN_NOW = "check.run_now"  # check the exit criteria now, beside the scheduled checks
    SAMPLES_PUSH = "samples.push"  # push or upload metric samples
    CATALOGUE_EDIT = "catalogue.edit"
    HOLIDAYS_MANAGE = "holidays.manage"
    WEBHOOK_MANAGE = "webhook.manage"
    API_KEYS_MANAGE = "api_keys.manage"
    # Start a rollback (an emergency one, from a fired trigger), and work its checklist; the
    # plan's rollback executor may do both whatever their role (decisions.services.rollback).
    ROLLBACK_START = "rollback.start"
    ROLLBACK_WORK = "rollback.work"
    # The post-pilot review (decisions.services.review): write its parts, and complete it.
    POSTPILOT_EDIT = "postpilot.edit"
    POSTPILOT_COMPLETE = "postpilot.complete"
    # The go/no-go decision (decisions.services.decision): recording it is for the writers'
    # roles, and of them only the plan's decision owner (``decision_owner``, a person rule).
    DECISION_RECORD = "decision.record"
    DECISION_COMMENT = "decision.comment"  # comment on the decision page
    # The team's product backlog (backlog.services): add, edit and delete items; and their order,
    # which the Scrum Guide makes the Product Owner's call.
    BACKLOG_EDIT = "backlog.edit"
    BACKLOG_ORDER = "backlog.order"
    # Cohort feedback (backlog.services_feedback): triage it (tags, noise, turn it into a backlog
    # item); see respondents' contact details unmasked (personal data); and issue, regenerate or
    # revoke the plan's public feedback link.
    FEEDBACK_TRIAGE = "feedback.triage"
    FEEDBACK_CONTACT_VIEW = "feedback.contact_view"
    FEEDBACK_LINK_MANAGE = "feedback.link_manage"
    # A plan's cohort participants (backlog.participants): who takes part is personal data, for
    # the writers' roles; stakeholders and invited guests see the counts per segment only.
    # Erasing a person's data on request is the Product Owner's call.
    PARTICIPANTS_VIEW = "participants.view"
    PARTICIPANTS_MANAGE = "participants.manage"
    PARTICIPANTS_ERASE = "participants.erase"


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    refusal: str = ""  # empty: "Only the team's <roles> can <what>."
    what: str = ""
    key_scope: str = ""  # the team API key scope that grants it (ApiKey.Scope); "": no key may

    @property
    def who(self) -> str:
        """ "Product Owner", "Product Owner or Scrum Master", "A, B or C"."""
        labels = [str(Role(r).label) for r in sorted(self.roles)]
        return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"

    @property
    def message(self) -> str:
        return self.refusal or f"Only the team's {self.who} can {self.what}."


PO, SM, DEV, OPS, STAKEHOLDER = (
    Role.PRODUCT_OWNER,
    Role.SCRUM_MASTER,
    Role.DEVELOPER,
    Role.DEVOPS,
    Role.STAKEHOLDER,
)
EVERY_MEMBER = frozenset({PO, SM, DEV, OPS, STAKEHOLDER})
# The people who write the plan; stakeholders read (PRODUCT.md, "Who uses it").
WRITERS = frozenset({PO, SM, DEV, OPS})

PERMISSIONS: dict[Perm, Rule] = {
    Perm.PLAN_VIEW: Rule(EVERY_MEMBER, what="read this plan", key_scope="read"),
    Perm.PLAN_CREATE: Rule(frozenset({PO}), what="start a pilot plan"),
    Perm.PLAN_EDIT: Rule(
        WRITERS, "Stakeholders can read this plan but not change it.", "change this plan", "write"
    ),
    Perm.REVIEW_BUSINESS: Rule(frozenset({PO}), what="fill in or sign the business review"),
    Perm.REVIEW_READINESS: Rule(frozenset({SM}), what="fill in or sign the readiness review"),
    Perm.REVIEW_FEASIBILITY: Rule(
        frozenset({DEV, OPS}), what="fill in or sign the feasibility review"
    ),
    Perm.STEP_SUBMIT: Rule(frozenset({PO}), what="“submit for review”"),
    Perm.STEP_WITHDRAW: Rule(frozenset({PO}), what="“back to draft”"),
    Perm.STEP_APPROVE: Rule(frozenset({PO}), what="“approve”"),
    Perm.STEP_START: Rule(frozenset({PO, OPS}), what="“start the pilot”"),
    Perm.STEP_EVALUATE: Rule(frozenset({PO}), what="“end the time-box and evaluate”"),
    Perm.STEP_DECIDE: Rule(frozenset({PO}), what="“record the decision”"),
    Perm.STEP_CLOSE: Rule(frozenset({PO, SM}), what="“close the pilot”"),
    Perm.TIMEBOX_EXTEND: Rule(frozenset({PO, SM}), what="extend the time-box"),
    Perm.GUESTS_MANAGE: Rule(frozenset({PO, SM}), what="invite or remove stakeholders"),
    Perm.ALERTS_ACT: Rule(WRITERS, "Stakeholders can read alerts but not act on them."),
    Perm.CHECK_RUN_NOW: Rule(frozenset({PO, SM}), what="run a check now"),
    Perm.SAMPLES_PUSH: Rule(
        WRITERS,
        "Stakeholders can read the team's plans but not push samples.",
        "push samples",
        "ingest",
    ),
    Perm.CATALOGUE_EDIT: Rule(
        WRITERS, "Stakeholders can read the metric catalogue but not change it."
    ),
    Perm.HOLIDAYS_MANAGE: Rule(frozenset({PO, SM}), what="change holidays"),
    Perm.WEBHOOK_MANAGE: Rule(frozenset({PO, SM, OPS}), what="change the alert webhook"),
    Perm.API_KEYS_MANAGE: Rule(frozenset({PO, SM}), what="manage API keys"),
    Perm.ROLLBACK_START: Rule(frozenset({PO, OPS}), what="start a rollback"),
    Perm.ROLLBACK_WORK: Rule(frozenset({OPS}), what="work the rollback checklist"),
    Perm.POSTPILOT_EDIT: Rule(
        WRITERS,
        "Stakeholders can read the post-pilot review but not write it.",
        "write the post-pilot review",
    ),
    Perm.POSTPILOT_COMPLETE: Rule(frozenset({PO, SM}), what="complete the post-pilot review"),
    # Plus the person rule: only the plan's decision owner (decisions.services.decision).
    Perm.DECISION_RECORD: Rule(
        WRITERS, "Stakeholders can read the decision but not record it.", "record the decision"
    ),
    # Every team member; invited guests read the decision page only (pilots.access).
    Perm.DECISION_COMMENT: Rule(EVERY_MEMBER, what="comment on the decision"),
    Perm.BACKLOG_EDIT: Rule(
        WRITERS, "Stakeholders can read the backlog but not change it.", "change the backlog"
    ),
    Perm.BACKLOG_ORDER: Rule(frozenset({PO}), what="change the backlog's order"),
    Perm.FEEDBACK_TRIAGE: Rule(
        WRITERS, "Stakeholders can read the feedback but not triage it.", "triage feedback"
    ),
    # Stakeholders (and so invited guests) see contacts masked: j***@example.com.
    Perm.FEEDBACK_CONTACT_VIEW: Rule(WRITERS, what="see respondents' contact details"),
    Perm.FEEDBACK_LINK_MANAGE: Rule(frozenset({PO, SM}), what="change the feedback link"),
    Perm.PARTICIPANTS_VIEW: Rule(
        WRITERS,
        "Stakeholders see the cohort's counts per segment, not who takes part.",
        "see who takes part",
    ),
    Perm.PARTICIPANTS_MANAGE: Rule(
        WRITERS,
        "Stakeholders see the cohort's counts but cannot add, import or withdraw participants.",
        "manage the cohort's participants",
    ),
    Perm.PARTICIPANTS_ERASE: Rule(frozenset({PO}), what="erase a participant's personal data"),
}
assert set(PERMISSIONS) == set(Perm), "every permission has its rule"


def roles_for(perm: Perm | str) -> frozenset[str]:
    return PERMISSIONS[Perm(perm)].roles


def allows(role: str | None, perm: Perm | str) -> bool:
    """May a member holding ``role`` (None: no member) do ``perm``?"""
    return role is not None and role in PERMISSIONS[Perm(perm)].roles


def who(perm: Perm | str) -> str:
    """The roles holding ``perm``, in words: "Product Owner or Scrum Master"."""
    return PERMISSIONS[Perm(perm)].who


def refusal(perm: Perm | str) -> str:
    return PERMISSIONS[Perm(perm)].message


def require(role: str | None, perm: Perm | str) -> None:
    """Raise ``PermissionDenied`` (403) with the rule's words unless ``role`` holds ``perm``."""
    if not allows(role, perm):
        raise PermissionDenied(refusal(perm))


def require_key_scope(scopes: Iterable[str], perm: Perm | str) -> None:
    """Raise ``PermissionDenied`` unless a team API key with ``scopes`` may do ``perm``: the
    same table answers for machines, by scope instead of role."""
    rule = PERMISSIONS[Perm(perm)]
    if not rule.key_scope:
        raise PermissionDenied(f"API keys may not {rule.what or 'do this'}.")
    if rule.key_scope not in scopes:
        raise PermissionDenied(
            f"This API key may not {rule.what}: it lacks the {rule.key_scope} scope."
        )


def role_in_team(*, user: User, team_id: int) -> str | None:
    return (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )


def team_for_member(*, user: User, team_id: int, perm: Perm | None = None) -> tuple[Team, str]:
    """The team and ``user``'s role in it, in one query: 404 unless they are a member
    (outsiders cannot probe for teams), 403 when ``perm`` is given and their role lacks it."""
    membership = (
        Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()
    )
    if membership is None:
        raise Http404("No such team")
    if perm is not None:
        require(membership.role, perm)
    return membership.team, membership.role
