"""Review notes, sign-offs, and voiding sign-offs when covered content changes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Notification, User
from accounts.permissions import require, role_in_team
from accounts.services import notify
from core.exceptions import Conflict, PreconditionFailed
from pilots.editable import plan_require_editable
from pilots.events import plan_transitions_publish, signoffs_voided_publish
from pilots.models import (
    Contribution,
    PilotPlan,
    PlanSection,
    PlanTransition,
    Review,
    Section,
    SignOff,
)
from pilots.review import REVIEWS, reviews_covering

# A plan's content can be signed off while it is being reviewed, or again after an edit
# voided a sign-off of an approved or running plan.
SIGNABLE = (
    PilotPlan.Status.IN_REVIEW,
    PilotPlan.Status.APPROVED,
    PilotPlan.Status.RUNNING,
)


def _require_reviewer(user: User, plan: PilotPlan, kind: str) -> None:
    require(role_in_team(user=user, team_id=plan.team_id), REVIEWS[kind].perm)


def _review(plan: PilotPlan, kind: str) -> Review:
    review, _ = Review.objects.get_or_create(plan=plan, kind=kind)
    return review


# A checklist answer: yes, no (with a note saying why) or not applicable.
ANSWERS = ("yes", "no", "na")


def _answers(checklist: Any, questions: set[str]) -> dict[str, str]:
    """``{key: "yes" | "no" | "na"}``; ``True`` / ``False`` (older clients) read as yes / no,
    ``None`` or ``""`` leaves a question unanswered."""
    if not isinstance(checklist, dict) or set(checklist) - questions:
        raise ValidationError({"checklist": "Answer only this review's questions."})
    answers = {}
    for key, value in checklist.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        if value in (None, ""):
            continue
        if value not in ANSWERS:
            raise ValidationError({"checklist": f"Answer “{key}” with yes, no or na."})
        answers[key] = value
    return answers


@transaction.atomic
def review_update(
    *, plan: PilotPlan, kind: str, user: User, expected_version: int, values: dict[str, Any]
) -> Review:
    """Save a reviewer's notes, checklist answers (each with an optional note; a "no" needs one)
    and open concerns (compare-and-set). Changing a signed review voids its sign-off."""
    if kind not in REVIEWS:
        raise ValidationError({"kind": f"“{kind}” is not a review."})
    plan_require_editable(plan)
    _require_reviewer(user, plan, kind)
    review = _review(plan, kind)
    unknown = set(values) - {"notes", "checklist", "checklist_notes", "concerns"}
    if unknown:
        raise ValidationError({name: "Not a field of a review." for name in sorted(unknown)})
    spec = REVIEWS[kind]
    questions = {key for key, _ in spec.checklist}
    checklist = _answers(values.get("checklist", review.checklist), questions)
    raw_notes = values.get("checklist_notes", review.checklist_notes)
    if not isinstance(raw_notes, dict) or set(raw_notes) - questions:
        raise ValidationError({"checklist_notes": "Notes only for this review's questions."})
    notes = {key: str(note).strip() for key, note in raw_notes.items() if str(note).strip()}
    unexplained = [
        q for key, q in spec.checklist if checklist.get(key) == "no" and key not in notes
    ]
    if unexplained:
        raise ValidationError(
            {"checklist_notes": "Say why the answer is no: " + "; ".join(unexplained)}
        )
    new = {
        "notes": values.get("notes", review.notes),
        "checklist": checklist,
        "checklist_notes": notes,
        "concerns": values.get("concerns", review.concerns),
    }
    changed = any(getattr(review, name) != value for name, value in new.items())
    claimed = Review.objects.filter(pk=review.pk, version=expected_version).update(
        version=F("version") + 1, updated_by=user, updated_at=timezone.now(), **new
    )
    if not claimed:
        review.refresh_from_db()
        raise PreconditionFailed(
            f"This review was changed by {review.updated_by or 'someone'} while you were "
            f"editing (now version {review.version}). Your changes were not saved."
        )
    if changed:
        signoffs_void(
            plan=plan,
            kinds=[kind],
            user=user,
            reason=f"The {spec.short_label} review was edited by {user.display_name} after it "
            "was signed.",
        )
    review.refresh_from_db()
    return review


def checklist_unanswered(*, review: Review | None, kind: str) -> list[str]:
    """The questions of ``kind``'s checklist that ``review`` leaves unanswered."""
    answers = review.checklist if review is not None else {}
    return [q for key, q in REVIEWS[kind].checklist if answers.get(key) not in ANSWERS]


def signoff_blockers(*, plan: PilotPlan, kind: str, user: User) -> list[str]:
    """Why ``user`` may not sign ``kind`` now (empty when they may)."""
    spec = REVIEWS[kind]
    reasons = []
    if plan.status not in SIGNABLE:
        reasons.append(
            f"Sign-offs are given while the plan is in review; it is {plan.get_status_display()}."
        )
    review = Review.objects.filter(plan=plan, kind=kind).first()
    if review is not None and review.concerns.strip():
        reasons.append("Resolve or clear the open concerns of this review first.")
    unanswered = checklist_unanswered(review=review, kind=kind)
    if unanswered:
        reasons.append(
            "Answer every checklist question (yes, no or not applicable): " + "; ".join(unanswered)
        )
    contributed = Contribution.objects.filter(
        plan=plan, round=plan.review_round, user=user, section__in=spec.covers
    ).values_list("section", flat=True)
    if contributed:
        others = (
            Membership.objects.filter(team_id=plan.team_id, role__in=spec.roles)
            .exclude(user=user)
            .exists()
        )
        if others:
            names = ", ".join(sorted(str(Section(s).label) for s in contributed))
            reasons.append(
                f"You edited {names} in this review round; another {spec.role_labels} of the "
                "team must sign this review (segregation of duties)."
            )
    return reasons


@transaction.atomic
def signoff_create(*, plan: PilotPlan, kind: str, user: User) -> SignOff:
    """Sign ``kind`` at the plan's current version. Exactly one active sign-off per review."""
    if kind not in REVIEWS:
        raise ValidationError({"kind": f"“{kind}” is not a review."})
    _require_reviewer(user, plan, kind)
    # Lock the plan row: edits bump its version under the same lock, so the versions recorded
    # below are exactly the content being approved.
    plan = PilotPlan.objects.select_for_update().get(pk=plan.pk)
    reasons = signoff_blockers(plan=plan, kind=kind, user=user)
    if reasons:
        raise Conflict(" ".join(reasons))
    versions = dict(
        PlanSection.objects.filter(plan=plan, key__in=REVIEWS[kind].covers).values_list(
            "key", "version"
        )
    )
    try:
        with transaction.atomic():
            return SignOff.objects.create(
                plan=plan,
                kind=kind,
                signed_by=user,
                plan_version=plan.version,
                section_versions=versions,
            )
    except IntegrityError:
        raise Conflict("This review is already signed off.") from None


def section_edited(*, plan: PilotPlan, section: str, user: User) -> None:
    """Called by every section edit (``section_claim``): remember who contributed, and void the
    active sign-offs that covered the section — telling each signer."""
    Contribution.objects.bulk_create(
        [Contribution(plan=plan, section=section, user=user, round=plan.review_round)],
        ignore_conflicts=True,
    )
    kinds = reviews_covering(section)
    if not kinds:
        return
    reason = f"{Section(section).label} was edited by {user.display_name}."
    signoffs_void(plan=plan, kinds=kinds, user=user, reason=reason)


def signoffs_void(*, plan: PilotPlan, kinds: list[str], user: User, reason: str) -> None:
    """Void the active sign-offs of ``kinds`` (recorded with who and why), send an approved plan
    back to review, and tell each signer."""
    voided = list(
        SignOff.objects.filter(plan=plan, kind__in=kinds, voided_at__isnull=True).select_related(
            "signed_by"
        )
    )
    if not voided:
        return
    now = timezone.now()
    SignOff.objects.filter(pk__in=[s.pk for s in voided]).update(
        voided_at=now, voided_by=user, voided_reason=reason[:300]
    )
    # An approved plan whose sign-off is voided needs re-review before it may start.
    if PilotPlan.objects.filter(pk=plan.pk, status=PilotPlan.Status.APPROVED).update(
        status=PilotPlan.Status.IN_REVIEW
    ):
        plan.status = PilotPlan.Status.IN_REVIEW
        transition = PlanTransition.objects.create(
            plan=plan,
            from_status=PilotPlan.Status.APPROVED,
            to_status=PilotPlan.Status.IN_REVIEW,
            actor=user,
            reason=f"Re-review needed: {reason}",
        )
        plan_transitions_publish([(plan, transition)])
    signoffs_voided_publish(plan=plan, signoffs=voided, user=user, reason=reason)
    url = reverse("pilots:plan_detail", args=[plan.pk])
    for signoff in voided:
        notify(
            users=[signoff.signed_by],
            kind=Notification.Kind.SIGN_OFF_VOIDED,
            message=(
                f"Your {REVIEWS[signoff.kind].short_label} sign-off of “{plan.title}” was "
                f"voided: {reason} Please review it again."
            ),
            url=url,
            actor=user,
        )
