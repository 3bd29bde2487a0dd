"""Writes about a plan's cohort participants and its enrolment link.

Every write takes the plan's participant lock, then changes the rows, then recomputes the
representativeness check (``fit.cohort_fit_refresh``) in the same transaction: the stored check
always matches the committed participants. The team's writes check the permission table through
``pilots.access.plan_for_user`` (404 for outsiders, 403 for roles without the right); the public
ones (opt in, withdraw through one's own link) are reached by a token instead.

Which plans accept what:

- the enrolment link works while the plan is Approved or Running (:data:`ENROL_STATES`): before
  approval the cohort is not settled, after the time-box there is nothing left to join;
- the team adds and imports participants until the plan is Decided (read-only from then on);
- withdrawal and erasure are always possible: a person's rights do not end with the pilot.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.permissions import Perm
from backlog.models import DIMENSIONS, PERSONAL_FIELDS, EnrolmentLink, Participant
from backlog.participants.fit import cohort_fit_refresh, participants_lock
from core.exceptions import Conflict, PreconditionFailed, ServiceError
from core.ratelimit import LinkRefusal, public_link_hit
from pilots.access import plan_for_user
from pilots.editable import plan_require_editable
from pilots.models import CohortSegment, PilotPlan

Status = PilotPlan.Status
ENROL_STATES = frozenset({Status.APPROVED, Status.RUNNING})
CONSENT_NEEDED = "This cohort is opt-in only: a participant needs a recorded consent."


class ParticipantConflict(PreconditionFailed):
    """Someone changed the participant after the version this change was based on (412)."""

    def __init__(self, participant: Participant):
        super().__init__(
            f"{participant.display_name} was changed by someone else meanwhile (now version "
            f"{participant.version}). Nothing was changed; reload and try again."
        )
        self.participant = participant


def new_token() -> str:
    return secrets.token_urlsafe(24)


# --- segments -------------------------------------------------------------------------------------


def plan_segment_values(plan_id: int) -> dict[str, list[str]]:
    """The values a participant may take per dimension the plan uses, in the plan's order."""
    values: dict[str, list[str]] = {}
    for dimension, value in (
        CohortSegment.objects.filter(plan_id=plan_id)
        .order_by("position", "pk")
        .values_list("dimension", "value")
    ):
        values.setdefault(dimension, [])
        if value not in values[dimension]:
            values[dimension].append(value)
    return values


def segments_clean(
    allowed: Mapping[str, list[str]], given: Mapping[str, str | None]
) -> dict[str, str]:
    """One value per dimension the plan uses, each one of the plan's segment values (any case:
    stored in the plan's spelling); a dimension the plan does not use is refused. Errors are
    keyed by the dimension (``region``)."""
    errors: dict[str, str] = {}
    clean = dict.fromkeys(DIMENSIONS, "")
    for dimension, raw in given.items():
        value = (raw or "").strip()
        if dimension not in DIMENSIONS:
            errors[dimension] = "Not a segment dimension."
        elif value and dimension not in allowed:
            label = CohortSegment.Dimension(dimension).label
            errors[dimension] = f"This plan has no {str(label).lower()} segments."
        elif value:
            match = {v.casefold(): v for v in allowed[dimension]}.get(value.casefold())
            if match is None:
                errors[dimension] = f"“{value}” is not one of {', '.join(allowed[dimension])}."
            else:
                clean[dimension] = match
    for dimension in allowed:
        if not clean[dimension] and dimension not in errors:
            errors[dimension] = "Choose one of the plan's segments."
    if errors:
        raise ValidationError(errors)
    return clean


def _consent_check(plan: PilotPlan, consented: bool) -> None:
    if plan.cohort.opt_in_required and not consented:
        raise ValidationError({"consent": CONSENT_NEEDED})


def _save_new(participant: Participant) -> Participant:
    participant.full_clean()
    participant.save(force_insert=True)
    return participant


# --- the team's writes --------------------------------------------------------------------------


@transaction.atomic
def participant_add(
    *,
    plan_id: int,
    user: User,
    name: str = "",
    email: str = "",
    external_ref: str = "",
    segments: Mapping[str, str | None] | None = None,
    consent: bool = False,
    consent_text: str = "",
) -> Participant:
    """Add one participant by hand. With ``consent`` the team records that the person agreed to
    ``consent_text`` now (method "recorded by the team")."""
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_MANAGE)
    plan_require_editable(plan)
    participants_lock(plan.pk)
    _consent_check(plan, consent)
    if consent and not consent_text.strip():
        raise ValidationError({"consent_text": "Write the text the person agreed to."})
    if not (name.strip() or email.strip() or external_ref.strip()):
        raise ValidationError({"name": "Give a name, an e-mail or an external reference."})
    values = segments_clean(plan_segment_values(plan.pk), segments or {})
    participant = _save_new(
        Participant(
            plan=plan,
            name=name.strip(),
            email=email.strip(),
            external_ref=external_ref.strip(),
            consent_given_at=timezone.now() if consent else None,
            consent_method=Participant.ConsentMethod.RECORDED_BY_TEAM if consent else "",
            consent_text=consent_text.strip() if consent else "",
            withdraw_token=new_token(),
            created_by=user,
            **values,
        )
    )
    cohort_fit_refresh(plan_id=plan.pk)
    return participant


def _participant_for_update(plan: PilotPlan, participant_id: int) -> Participant:
    participant = (
        Participant.objects.select_for_update().filter(plan=plan, pk=participant_id).first()
    )
    if participant is None:
        raise Http404("No such participant")
    return participant


@transaction.atomic
def participant_withdraw(
    *, plan_id: int, participant_id: int, user: User, expected_version: int
) -> Participant:
    """The team withdraws a participant (at their request): they stop counting in the cohort;
    the row, its segments and consent record stay."""
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_MANAGE)
    participants_lock(plan.pk)
    participant = _participant_for_update(plan, participant_id)
    if participant.version != expected_version:
        raise ParticipantConflict(participant)
    return _withdraw(participant)


def _withdraw(participant: Participant) -> Participant:
    if participant.status == Participant.Status.WITHDRAWN:
        raise Conflict(f"{participant.display_name} has already withdrawn.")
    participant.status = Participant.Status.WITHDRAWN
    participant.withdrawn_at = timezone.now()
    participant.withdraw_token = None  # the personal link has done its work
    participant.version += 1
    participant.save(update_fields=["status", "withdrawn_at", "withdraw_token", "version"])
    cohort_fit_refresh(plan_id=participant.plan_id)
    return participant


@transaction.atomic
def participant_erase(
    *, plan_id: int, participant_id: int, user: User, expected_version: int
) -> Participant:
    """Erase a participant's personal data on request: name, e-mail, external reference and the
    personal withdraw link are gone for good. The row stays, anonymised, so the cohort's counts
    and segment mix stay as they were. The audit trail never recorded the personal data
    (``Participant``'s history excludes it), so nothing of the person is left there either."""
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_ERASE)
    participants_lock(plan.pk)
    participant = _participant_for_update(plan, participant_id)
    if participant.version != expected_version:
        raise ParticipantConflict(participant)
    if participant.erased_at is not None:
        raise Conflict("This participant's personal data was already erased.")
    for name in PERSONAL_FIELDS:
        setattr(participant, name, "")
    participant.withdraw_token = None
    participant.erased_at = timezone.now()
    participant.version += 1
    participant.save(update_fields=[*PERSONAL_FIELDS, "withdraw_token", "erased_at", "version"])
    return participant


# --- the enrolment link -------------------------------------------------------------------------


@transaction.atomic
def enrolment_link_save(*, plan_id: int, user: User, consent_text: str) -> EnrolmentLink:
    """Create the plan's enrolment link, or change its consent text (the link stays the same;
    people who opted in keep the text they agreed to)."""
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_MANAGE)
    plan_require_editable(plan)
    text = consent_text.strip()
    if not text:
        raise ValidationError({"consent_text": "Write the consent text people agree to."})
    link = EnrolmentLink.objects.select_for_update().filter(plan=plan).first()
    if link is None:
        link = EnrolmentLink(plan=plan, token=new_token(), created_by=user, consent_text=text)
        link.full_clean()
        link.save(force_insert=True)
        return link
    link.consent_text = text
    link.version += 1
    link.full_clean()
    link.save(update_fields=["consent_text", "version"])
    return link


def _link_for_update(plan: PilotPlan) -> EnrolmentLink:
    link = EnrolmentLink.objects.select_for_update().filter(plan=plan).first()
    if link is None:
        raise ValidationError(
            {"link": "The plan has no enrolment link yet: write its consent text."}
        )
    return link


@transaction.atomic
def enrolment_link_regenerate(*, plan_id: int, user: User) -> EnrolmentLink:
    """A new token (and the link active again): the old link stops working at once."""
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_MANAGE)
    plan_require_editable(plan)
    link = _link_for_update(plan)
    link.token, link.revoked_at, link.created_by = new_token(), None, user
    link.created_at = timezone.now()
    link.version += 1
    link.save(update_fields=["token", "revoked_at", "created_by", "created_at", "version"])
    return link


@transaction.atomic
def enrolment_link_revoke(*, plan_id: int, user: User) -> EnrolmentLink:
    plan = plan_for_user(user=user, plan_id=plan_id, perm=Perm.PARTICIPANTS_MANAGE)
    link = _link_for_update(plan)
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.version += 1
        link.save(update_fields=["revoked_at", "version"])
    return link


# --- the public side: opt in and withdraw without logging in -------------------------------------


def enrolment_link_open(token: str) -> EnrolmentLink:
    """The active link of a plan that accepts enrolments; 404 for an unknown or revoked token
    and for a plan outside :data:`ENROL_STATES` (the page says the link is not open)."""
    link = (
        EnrolmentLink.objects.select_related("plan", "plan__cohort")
        .filter(token=token, revoked_at__isnull=True, plan__status__in=ENROL_STATES)
        .first()
        if token
        else None
    )
    if link is None:
        raise Http404("This enrolment link is not open.")
    return link


class EnrolRateLimited(ServiceError):
    """Too many opt-ins from one address through one link, or through the link overall (429)."""

    status_code = 429

    def __init__(self, refusal: LinkRefusal):
        super().__init__(refusal.words("sign-ups"))
        self.retry_after = refusal.retry_after


def participant_enrol_rate_check(*, token: str, address: str) -> None:
    """Count one opt-in attempt from ``address`` through ``token``: ``EnrolRateLimited`` beyond
    ``ENROL_RATE_PER_ADDRESS`` per address per link or ``ENROL_RATE_PER_LINK`` per link within
    ``ENROL_RATE_WINDOW`` seconds. A public form without login must not let one client fill a
    cohort with made-up people, or probe it for e-mail addresses at speed."""
    refusal = public_link_hit(
        prefix=settings.ENROL_RATE_PREFIX,
        token=token,
        address=address,
        per_address=settings.ENROL_RATE_PER_ADDRESS,
        per_link=settings.ENROL_RATE_PER_LINK,
        window=settings.ENROL_RATE_WINDOW,
    )
    if refusal is not None:
        raise EnrolRateLimited(refusal)


@transaction.atomic
def participant_enrol(
    *,
    token: str,
    name: str,
    email: str = "",
    segments: Mapping[str, str | None] | None = None,
    consent: bool,
) -> Participant:
    """A person opts in through the plan's enrolment link. Their consent record keeps the link's
    consent text as shown; an opt-in-only cohort refuses them without it. The returned
    participant's ``withdraw_token`` is their personal withdraw link."""
    link = enrolment_link_open(token)
    plan = link.plan
    participants_lock(plan.pk)
    errors: dict[str, Any] = {}
    if not name.strip():
        errors["name"] = "Give your name."
    try:
        _consent_check(plan, consent)
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        values = segments_clean(plan_segment_values(plan.pk), segments or {})
    except ValidationError as error:
        errors.update(error.message_dict)
    email = email.strip()
    if (
        email
        and Participant.objects.filter(plan=plan, email__iexact=email).exists()
        and "email" not in errors
    ):
        errors["email"] = "This e-mail has already joined this pilot."
    if errors:
        raise ValidationError(errors)
    participant = _save_new(
        Participant(
            plan=plan,
            name=name.strip(),
            email=email,
            consent_given_at=timezone.now() if consent else None,
            consent_method=Participant.ConsentMethod.ENROLMENT_LINK if consent else "",
            consent_text=link.consent_text if consent else "",
            withdraw_token=new_token(),
            **values,
        )
    )
    cohort_fit_refresh(plan_id=plan.pk)
    return participant


def participant_by_withdraw_token(token: str) -> Participant:
    participant = (
        Participant.objects.select_related("plan").filter(withdraw_token=token).first()
        if token
        else None
    )
    if participant is None:
        raise Http404("This withdraw link is not valid (any more).")
    return participant


@transaction.atomic
def participant_withdraw_by_token(*, token: str) -> Participant:
    """A participant withdraws through their personal link; the link then stops working."""
    found = participant_by_withdraw_token(token)
    participants_lock(found.plan_id)
    participant = Participant.objects.select_for_update().get(pk=found.pk)
    if participant.withdraw_token != token:  # withdrawn or erased meanwhile
        raise Http404("This withdraw link is not valid (any more).")
    return _withdraw(participant)
