"""Writes about cohort feedback: the plan's public feedback link, storing an answer, triage.

- ``feedback_link_issue`` / ``feedback_link_revoke``: the Product Owner or Scrum Master issues
  (or regenerates: the old link dies in the same transaction) and revokes the plan's link.
- ``feedback_clean`` and ``feedback_store``: what a respondent sends, checked at the edge with
  the field and the reason, and stored. The public page and the API reach them through
  ``decisions.services.feedback.feedback_submit``, which also feeds the CSAT and NPS metrics in
  the same transaction (that crosses into ``metrics``, so it lives above both apps).
- ``feedback_triage``: tags and the noise mark, with a version (412 when stale);
  ``feedback_to_backlog_item``: one step from a comment to a backlog item, linked both ways.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.permissions import Perm, require, role_in_team
from accounts.ui import local_time
from backlog.change_control import backlog_item_raise
from backlog.events import feedback_received_publish
from backlog.models import (
    CSAT_RANGE,
    FEEDBACK_COMMENT_MAX,
    FEEDBACK_CONTACT_MAX,
    FEEDBACK_TAG_MAX,
    FEEDBACK_TAGS_MAX,
    NPS_RANGE,
    BacklogItem,
    ChangeControlEntry,
    Feedback,
    FeedbackToken,
)
from core.exceptions import Conflict, PreconditionFailed
from pilots.models import PilotPlan

# Token length in bytes of randomness (secrets.token_urlsafe: 32 characters for 24 bytes).
TOKEN_BYTES = 24
TITLE_MAX = 80  # a backlog item's title made from a comment: its first line, this long at most


class FeedbackConflict(PreconditionFailed):
    """The feedback was triaged by someone else after the version this change was based on."""

    def __init__(self, feedback: Feedback):
        super().__init__(
            f"This feedback was changed by someone else (now version {feedback.version}). "
            "Reload it and try again."
        )
        self.feedback = feedback


# --- the plan's link -----------------------------------------------------------------------------


def feedback_plan_for_member(
    *, user: User, plan_id: int, perm: Perm | None = None
) -> tuple[PilotPlan, str]:
    """The plan and ``user``'s role in its team: 404 unless they are a member of the plan's
    team (feedback is the team's: invited guests do not see it), 403 without ``perm``."""
    plan = PilotPlan.objects.select_related("team").filter(pk=plan_id).first()
    role = role_in_team(user=user, team_id=plan.team_id) if plan is not None else None
    if plan is None or role is None:
        raise Http404("No such plan")
    if perm is not None:
        require(role, perm)
    return plan, role


def _new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


@transaction.atomic
def feedback_link_issue(*, plan_id: int, user: User) -> FeedbackToken:
    """Issue the plan's feedback link; a live one is revoked first, so its link stops working."""
    plan, _role = feedback_plan_for_member(
        user=user, plan_id=plan_id, perm=Perm.FEEDBACK_LINK_MANAGE
    )
    PilotPlan.objects.select_for_update().filter(pk=plan.pk).first()  # one issuer at a time
    now = timezone.now()
    FeedbackToken.objects.filter(plan=plan, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=user
    )
    return FeedbackToken.objects.create(
        plan=plan, token=_new_token(), created_by=user, created_at=now
    )


@transaction.atomic
def feedback_link_revoke(*, plan_id: int, user: User) -> int:
    """Revoke the plan's live link (its address answers "no longer collecting" from now on);
    how many were revoked (0 when there was none)."""
    plan, _role = feedback_plan_for_member(
        user=user, plan_id=plan_id, perm=Perm.FEEDBACK_LINK_MANAGE
    )
    return FeedbackToken.objects.filter(plan=plan, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=user
    )


# --- what a respondent sends ---------------------------------------------------------------------

# Control characters other than tab and newlines, and lone surrogates: PostgreSQL refuses NUL,
# and none of them belongs in a comment.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")


def _score(raw: object, name: str, label: str, bounds: tuple[int, int]) -> tuple[int | None, str]:
    low, high = bounds
    words = f"{label} is a whole number from {low} to {high}"
    if raw is None or raw == "":
        return None, ""
    if isinstance(raw, bool):
        return None, f"{words}, not true or false."
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 3):
            shown = f"“{text[:20]}”" if not _CONTROL.search(text[:20]) else "this"
            return None, f"{words}; {shown} is not."
        raw = int(text)
    if not isinstance(raw, int):
        return None, f"{words}."
    if not low <= raw <= high:
        return None, f"{words}; {raw} is out of range."
    return raw, ""


def _text(raw: object, label: str, limit: int, *, lines: bool) -> tuple[str, str]:
    if raw is None:
        return "", ""
    if not isinstance(raw, str):
        return "", f"{label} must be text."
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n")).strip()
    if _CONTROL.search(text) or (not lines and ("\n" in text or "\r" in text)):
        return "", f"{label} contains characters that are not allowed (control characters)."
    if len(text) > limit:
        return "", f"{label} has {len(text):,} characters; at most {limit:,} are allowed."
    return text, ""


def feedback_clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{csat, nps, comment, contact}`` checked and normalised, from a form (strings) or JSON
    (numbers or strings); ``ValidationError`` naming every bad field. Other keys are refused
    (a widget that misspells ``coment`` should hear so, not lose the comment)."""
    errors: dict[str, str] = {}
    unknown = sorted(str(name) for name in set(values) - {"csat", "nps", "comment", "contact"})
    for name in unknown[:5]:
        # Named when it is a plain name (a typo such as "coment"); anything else is not echoed.
        place = name if _FIELD_NAME.fullmatch(name) else "__all__"
        errors[place] = "Unknown field: send csat, nps, comment and contact."
    csat, problem = _score(values.get("csat"), "csat", "CSAT", CSAT_RANGE)
    if problem:
        errors["csat"] = problem
    nps, problem = _score(values.get("nps"), "nps", "NPS", NPS_RANGE)
    if problem:
        errors["nps"] = problem
    comment, problem = _text(values.get("comment"), "The comment", FEEDBACK_COMMENT_MAX, lines=True)
    if problem:
        errors["comment"] = problem
    contact, problem = _text(
        values.get("contact"), "The contact", FEEDBACK_CONTACT_MAX, lines=False
    )
    if problem:
        errors["contact"] = problem
    if not errors and csat is None and nps is None and not comment:
        errors["__all__"] = "Give a CSAT score, an NPS score or a comment."
    if errors:
        raise ValidationError(errors)
    return {"csat": csat, "nps": nps, "comment": comment, "contact": contact}


@transaction.atomic
def feedback_store(
    *, token: FeedbackToken, values: Mapping[str, Any], at: dt.datetime | None = None
) -> Feedback:
    """Store one answer sent through ``token`` (already checked live, its plan running, by the
    caller); no user, no address. ``values`` as ``feedback_clean`` returns them; ``at`` is when
    it arrived (default: now; the demo spreads its answers over the pilot's first days)."""
    feedback = Feedback(
        plan_id=token.plan_id, token=token, created_at=at or timezone.now(), **values
    )
    # ``feedback_clean`` checked every rule the check constraints hold (and the database holds
    # them again on insert): asking PostgreSQL once per constraint would double an answer's
    # queries under a burst.
    feedback.full_clean(exclude=["plan", "token", "backlog_item"], validate_constraints=False)
    feedback.save(force_insert=True)
    feedback_received_publish(plan=token.plan, feedback=feedback)
    return feedback


# --- triage --------------------------------------------------------------------------------------


def feedback_tags_clean(raw: object) -> list[str]:
    """Free tags: trimmed, lower-cased, de-duplicated in order; bounded in number and length."""
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list | tuple):
        raise ValidationError({"tags": "Tags are a list of words (or a comma-separated text)."})
    tags: list[str] = []
    for tag in raw:
        if not isinstance(tag, str):
            raise ValidationError({"tags": "Each tag is text."})
        text = " ".join(tag.split()).lower()
        if not text:
            continue
        if _CONTROL.search(text):
            raise ValidationError({"tags": "A tag contains characters that are not allowed."})
        if len(text) > FEEDBACK_TAG_MAX:
            raise ValidationError(
                {"tags": f"“{text[:40]}” is longer than {FEEDBACK_TAG_MAX} characters."}
            )
        if text not in tags:
            tags.append(text)
    if len(tags) > FEEDBACK_TAGS_MAX:
        raise ValidationError({"tags": f"At most {FEEDBACK_TAGS_MAX} tags; {len(tags)} given."})
    return tags


def _feedback_locked(plan: PilotPlan, feedback_id: int) -> Feedback:
    feedback = Feedback.objects.select_for_update().filter(plan=plan, pk=feedback_id).first()
    if feedback is None:
        raise Http404("No such feedback")
    return feedback


@transaction.atomic
def feedback_triage(
    *,
    plan_id: int,
    feedback_id: int,
    user: User,
    expected_version: int | None,
    tags: Iterable[str] | str | None = None,
    noise: bool | None = None,
) -> Feedback:
    """Set the tags and/or the noise mark; refused (412) if the feedback changed since
    ``expected_version`` (None: the HTML buttons, which change one thing and cannot lose one)."""
    plan, _role = feedback_plan_for_member(user=user, plan_id=plan_id, perm=Perm.FEEDBACK_TRIAGE)
    feedback = _feedback_locked(plan, feedback_id)
    if expected_version is not None and feedback.version != expected_version:
        raise FeedbackConflict(feedback)
    fields = ["version"]
    if tags is not None:
        feedback.tags = feedback_tags_clean(list(tags) if not isinstance(tags, str) else tags)
        fields.append("tags")
    if noise is not None:
        if not isinstance(noise, bool):
            raise ValidationError({"noise": "Noise is true or false."})
        feedback.noise = noise
        fields.append("noise")
    feedback.version += 1
    feedback.save(update_fields=fields)
    return feedback


def _item_title(feedback: Feedback) -> str:
    first = next((line.strip() for line in feedback.comment.splitlines() if line.strip()), "")
    if first:
        return first if len(first) <= TITLE_MAX else first[: TITLE_MAX - 1].rstrip() + "…"
    return f"Feedback: {_scores(feedback)}"


def _scores(feedback: Feedback) -> str:
    parts = []
    if feedback.csat is not None:
        parts.append(f"CSAT {feedback.csat}/5")
    if feedback.nps is not None:
        parts.append(f"NPS {feedback.nps}/10")
    return ", ".join(parts) or "no score"


@transaction.atomic
def feedback_to_backlog_item(
    *,
    plan_id: int,
    feedback_id: int,
    user: User,
    kind: str = BacklogItem.Kind.IMPROVEMENT,
) -> BacklogItem:
    """Turn a feedback into a backlog item of the plan's team in one step: origin "Cohort
    feedback", the plan set, the title from the comment's first line, the comment and scores in
    the description (never the contact: personal data stays on the feedback). The feedback
    then names the item (409 if it already does). Logged in the plan's change-control log."""
    plan, _role = feedback_plan_for_member(user=user, plan_id=plan_id, perm=Perm.FEEDBACK_TRIAGE)
    feedback = _feedback_locked(plan, feedback_id)
    if feedback.backlog_item_id is not None:
        raise Conflict("This feedback is already a backlog item.")
    when = local_time(feedback.created_at, plan)
    description = "\n\n".join(
        part
        for part in (
            feedback.comment,
            f"Cohort feedback on “{plan.title}”, {when} ({plan.time_zone}): {_scores(feedback)}.",
        )
        if part
    )
    # Through change control: the plan's change-control log lists the item, who and why.
    item = backlog_item_raise(
        team_id=plan.team_id,
        user=user,
        plan_id=plan.pk,
        source=ChangeControlEntry.Source.FEEDBACK,
        source_id=feedback.pk,
        title=_item_title(feedback),
        kind=kind,
        severity="p3" if kind == BacklogItem.Kind.DEFECT else "",
        description=description,
    )
    Feedback.objects.filter(pk=feedback.pk).update(backlog_item=item, version=F("version") + 1)
    return item
