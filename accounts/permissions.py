"""Who may do what: every role rule of Pilotplan, in one table.

Each permission names the roles that hold it and the words a refused person reads. Services
enforce it (``require``), and HTML views, HTMX partials, the API and API keys all reach the
services; pages ask ``allows`` only to decide which buttons to show. The permission-matrix test
(``tests/pilots/test_permission_matrix.py``) reads this table and checks every role against
every action over every interface.

Credentials (docs/api.md, "Authentication"): a request made with a personal access token acts
as its person, whose role is capped by the token's scopes (``TokenRole``: ``read`` allows only the
rules marked ``reads``); a request made with a team API key acts as the key's principal, a
"machine member" of the key's team whose role is its scopes (``KeyRole``: a rule allows a key
whose scopes meet the rule's ``key_scopes``). ``role_in_team`` and ``team_for_member`` answer for
all three, so every service, page and endpoint that asks them honours the same table.

Visibility is not a role rule: a plan or team exists only for its members (and a plan for the
stakeholders invited to it, who read it as a team stakeholder would); everyone else gets 404,
never 403, so outsiders cannot probe for them (``pilots.access``, ``team_for_member``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import ApiKey, Membership, PersonalToken, Team, User
from core.precompiled import Precompiled

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
    # Ask the deployment gate whether a release may be promoted (decisions.api.gate).
    GATE_READ = "gate.read"
    # A team's members (accounts.teams): add, remove, change roles, invite by e-mail and revoke
    # invitations. People's business: no team API key may, whatever its scopes.
    TEAM_MEMBERS_MANAGE = "team.members_manage"
    # The team's plan templates (pilots.services.templates): save a plan as one, delete one.
    TEMPLATES_MANAGE = "templates.manage"


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    refusal: str = ""  # empty: "Only the team's <roles> can <what>."
    what: str = ""
    # The team API key scopes that grant it (ApiKey.Scope); empty: no key may.
    key_scopes: frozenset[str] = frozenset()
    # A rule that only reads: a personal token with the read scope holds it (if the person
    # does); every other rule needs the write scope.
    reads: bool = False

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
# Team API key scopes (ApiKey.Scope) that grant a rule.
READ, WRITE = frozenset({"read"}), frozenset({"write"})

PERMISSIONS: dict[Perm, Rule] = {
    Perm.PLAN_VIEW: Rule(EVERY_MEMBER, what="read this plan", key_scopes=READ, reads=True),
    Perm.PLAN_CREATE: Rule(frozenset({PO}), what="start a pilot plan"),
    Perm.PLAN_EDIT: Rule(
        WRITERS, "Stakeholders can read this plan but not change it.", "change this plan", WRITE
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
    Perm.ALERTS_ACT: Rule(
        WRITERS, "Stakeholders can read alerts but not act on them.", "act on alerts", WRITE
    ),
    Perm.CHECK_RUN_NOW: Rule(frozenset({PO, SM}), what="run a check now"),
    Perm.SAMPLES_PUSH: Rule(
        WRITERS,
        "Stakeholders can read the team's plans but not push samples.",
        "push samples",
        frozenset({"ingest"}),
    ),
    Perm.CATALOGUE_EDIT: Rule(
        WRITERS, "Stakeholders can read the metric catalogue but not change it."
    ),
    Perm.HOLIDAYS_MANAGE: Rule(frozenset({PO, SM}), what="change holidays"),
    Perm.WEBHOOK_MANAGE: Rule(frozenset({PO, SM, OPS}), what="manage the team's webhooks"),
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
        WRITERS,
        "Stakeholders can read the backlog but not change it.",
        "change the backlog",
        WRITE,
    ),
    Perm.BACKLOG_ORDER: Rule(frozenset({PO}), what="change the backlog's order"),
    Perm.FEEDBACK_TRIAGE: Rule(
        WRITERS, "Stakeholders can read the feedback but not triage it.", "triage feedback"
    ),
    # Stakeholders (and so invited guests) see contacts masked: j***@example.com.
    Perm.FEEDBACK_CONTACT_VIEW: Rule(WRITERS, what="see respondents' contact details", reads=True),
    Perm.FEEDBACK_LINK_MANAGE: Rule(frozenset({PO, SM}), what="change the feedback link"),
    Perm.PARTICIPANTS_VIEW: Rule(
        WRITERS,
        "Stakeholders see the cohort's counts per segment, not who takes part.",
        "see who takes part",
        reads=True,
    ),
    Perm.PARTICIPANTS_MANAGE: Rule(
        WRITERS,
        "Stakeholders see the cohort's counts but cannot add, import or withdraw participants.",
        "manage the cohort's participants",
    ),
    Perm.PARTICIPANTS_ERASE: Rule(frozenset({PO}), what="erase a participant's personal data"),
    # Every member may ask; a key with the gate scope only (a deployment pipeline's) or read.
    Perm.GATE_READ: Rule(
        EVERY_MEMBER,
        what="ask the deployment gate",
        key_scopes=frozenset({"read", "gate"}),
        reads=True,
    ),
    # No key scope grants these: a machine chooses neither a team's people nor its templates.
    Perm.TEAM_MEMBERS_MANAGE: Rule(frozenset({PO, SM}), what="change the team's members"),
    Perm.TEMPLATES_MANAGE: Rule(frozenset({PO, SM}), what="manage the team's plan templates"),
}
assert set(PERMISSIONS) == set(Perm), "every permission has its rule"


# --- roles as credentials hold them -------------------------------------------------------------


class KeyRole(str):
    """The role of a team API key's principal in its team: its scopes decide (``allows``)."""

    scopes: frozenset[str]

    def __new__(cls, scopes: Iterable[str]) -> KeyRole:
        role = super().__new__(cls, "api_key")
        role.scopes = frozenset(scopes)
        return role


class TokenRole(str):
    """A person's role as their personal access token holds it: the role, capped by scopes."""

    scopes: frozenset[str]

    def __new__(cls, role: str, scopes: Iterable[str]) -> TokenRole:
        held = super().__new__(cls, role)
        held.scopes = frozenset(scopes)
        return held


def credential_of(user: object) -> ApiKey | PersonalToken | None:
    """The team key or personal token ``user`` authenticated with (set by the authentication
    classes, ``accounts.credentials``); None for a session."""
    return getattr(user, "credential", None)


def team_key_of(user: object) -> ApiKey | None:
    credential = credential_of(user)
    return credential if isinstance(credential, ApiKey) else None


def held_role(user: object, role: str | None) -> str | None:
    """``role`` (a membership's, or a guest's) as ``user``'s credential holds it."""
    credential = credential_of(user)
    if role is None or credential is None:
        return role
    if isinstance(credential, PersonalToken):
        return TokenRole(role, credential.scopes)
    return KeyRole(credential.scopes)


def roles_for(perm: Perm | str) -> frozenset[str]:
    return PERMISSIONS[Perm(perm)].roles


def token_scope(perm: Perm | str) -> str:
    """The personal token scope ``perm`` needs: read for the rules that only read."""
    return "read" if PERMISSIONS[Perm(perm)].reads else "write"


def allows(role: str | None, perm: Perm | str) -> bool:
    """May a member holding ``role`` (None: no member) do ``perm``? A key's role answers by its
    scopes, a token's by the person's role and the token's scopes."""
    if role is None:
        return False
    rule = PERMISSIONS[Perm(perm)]
    if isinstance(role, KeyRole):
        return bool(rule.key_scopes & role.scopes)
    if isinstance(role, TokenRole) and token_scope(perm) not in role.scopes:
        return False
    return role in rule.roles


def who(perm: Perm | str) -> str:
    """The roles holding ``perm``, in words: "Product Owner or Scrum Master"."""
    return PERMISSIONS[Perm(perm)].who


def refusal(perm: Perm | str, role: str | None = None) -> str:
    """The words a refused ``role`` reads (a key or token learns which scope it lacks)."""
    rule = PERMISSIONS[Perm(perm)]
    what = rule.what or "do this"
    if isinstance(role, KeyRole):
        if not rule.key_scopes:
            return f"API keys may not {what}."
        needed = " or ".join(sorted(rule.key_scopes))
        return f"This API key may not {what}: it lacks the {needed} scope."
    if isinstance(role, TokenRole) and role in rule.roles:
        return f"This token may not {what}: it lacks the {token_scope(perm)} scope."
    return rule.message


def require(role: str | None, perm: Perm | str) -> None:
    """Raise ``PermissionDenied`` (403) with the rule's words unless ``role`` holds ``perm``."""
    if not allows(role, perm):
        raise PermissionDenied(refusal(perm, role))


def require_key_scope(scopes: Iterable[str], perm: Perm | str) -> None:
    """Raise ``PermissionDenied`` unless a team API key with ``scopes`` may do ``perm``."""
    require(KeyRole(scopes), perm)


def person_writes(user: object) -> bool:
    """Whether ``user`` acts with a person's full hand: a session, or a personal token with the
    write scope (never a team key). For the person rules outside the role table (the plan's
    rollback executor), which a read-only token must not carry."""
    credential = credential_of(user)
    if isinstance(credential, ApiKey):
        return False
    return not isinstance(credential, PersonalToken) or "write" in credential.scopes


def require_personal_write(user: object, what: str) -> None:
    """For the few writes that are a person's own rather than a team role's (creating a team):
    refuse a team key (a machine is no person) and a personal token without the write scope."""
    credential = credential_of(user)
    if isinstance(credential, ApiKey):
        raise PermissionDenied(f"API keys may not {what}.")
    if isinstance(credential, PersonalToken) and "write" not in credential.scopes:
        raise PermissionDenied(f"This token may not {what}: it lacks the write scope.")


def may_create_team(user: User) -> bool:
    """Whether ``user`` may create a team: the site setting ``TEAM_CREATION`` says "anyone" (any
    signed-in person) or "staff" (site administrators only). Pages ask it to offer "New team"."""
    if not user.is_authenticated:
        return False
    return settings.TEAM_CREATION == "anyone" or user.is_staff


def require_team_creation(user: User) -> None:
    """Refuse creating a team to whom the site setting and their credential do not allow."""
    require_personal_write(user, "create a team")
    if not may_create_team(user):
        raise PermissionDenied("Only the site's administrators can create teams here.")


def role_in_team(*, user: User, team_id: int) -> str | None:
    """``user``'s role in the team (as their credential holds it), or None: not a member. A
    team key's principal is a member of its key's team only."""
    key = team_key_of(user)
    if key is not None:
        return KeyRole(key.scopes) if key.team_id == team_id else None
    roles = _MEMBERSHIP_ROLE.run(user_id=user.pk, team_id=team_id)
    return held_role(user, roles[0] if roles else None)


# Asked on nearly every request about a plan or a team: its SQL compiled once per process and
# run as a prepared statement (core.precompiled). A person is a member of a team at most once.
_MEMBERSHIP_ROLE = Precompiled(
    lambda *, user_id, team_id: Membership.objects.filter(
        user_id=user_id, team_id=team_id
    ).values_list("role", flat=True)
)


def team_for_member(*, user: User, team_id: int, perm: Perm | None = None) -> tuple[Team, str]:
    """The team and ``user``'s role in it, in one query: 404 unless they are a member
    (outsiders cannot probe for teams), 403 when ``perm`` is given and their role lacks it."""
    key = team_key_of(user)
    if key is not None:
        if key.team_id != team_id:
            raise Http404("No such team")
        team, role = key.team, KeyRole(key.scopes)
    else:
        membership = (
            Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()
        )
        if membership is None:
            raise Http404("No such team")
        team, role = membership.team, held_role(user, membership.role)  # type: ignore[assignment]
    if perm is not None:
        require(role, perm)
    return team, role
