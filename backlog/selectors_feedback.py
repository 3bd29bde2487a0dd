"""Reads about cohort feedback: the triage list and its filters, the link, masked contacts."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from accounts.permissions import Perm, allows
from backlog.models import FEEDBACK_TAG_MAX, Feedback, FeedbackToken

# The triage filters: query parameter → the condition its "yes" means ("no" is the opposite).
YES_NO_FILTERS: dict[str, tuple[str, Q]] = {
    "noise": ("Marked as noise", Q(noise=True)),
    "tagged": ("Tagged", ~Q(tags=[])),
    "comment": ("Has a comment", ~Q(comment="")),
    "item": ("Turned into a backlog item", Q(backlog_item__isnull=False)),
}
YES, NO = "yes", "no"


def feedback_list(*, plan_id: int, filters: Mapping[str, str] | None = None) -> QuerySet[Feedback]:
    """The plan's feedback, newest first, narrowed by ``filters``: each of ``noise``, ``tagged``,
    ``comment``, ``item`` is ``yes`` or ``no``; ``tag`` is one tag. An unknown value is a 400
    naming the filter, never an empty list that looks like "no feedback"."""
    items = Feedback.objects.filter(plan_id=plan_id).order_by("-created_at", "-pk")
    filters = filters or {}
    errors: dict[str, str] = {}
    for name, (_label, condition) in YES_NO_FILTERS.items():
        raw = (filters.get(name) or "").strip().lower()
        if not raw:
            continue
        if raw == YES:
            items = items.filter(condition)
        elif raw == NO:
            items = items.exclude(condition)
        else:
            errors[name] = f"Use “yes” or “no”, not “{raw[:20]}”."
    tag = " ".join((filters.get("tag") or "").split()).lower()
    if tag:
        if len(tag) > FEEDBACK_TAG_MAX:
            errors["tag"] = f"A tag has at most {FEEDBACK_TAG_MAX} characters."
        else:
            items = items.filter(tags__contains=[tag])
    if errors:
        raise ValidationError(errors)
    return items


def feedback_link(*, plan_id: int) -> FeedbackToken | None:
    """The plan's live feedback link, if it has one."""
    return FeedbackToken.objects.filter(plan_id=plan_id, revoked_at__isnull=True).first()


def feedback_token_find(token: str) -> FeedbackToken | None:
    """The token (live or revoked) with its plan and team, or None; one query."""
    if not token or len(token) > 64:
        return None
    return FeedbackToken.objects.select_related("plan__team").filter(token=token).first()


def contact_masked(contact: str) -> str:
    """A contact with its personal part hidden: ``j***@example.com`` for an e-mail address,
    the first character and ``***`` for anything else (a phone number, a name)."""
    if not contact:
        return ""
    local, at, domain = contact.partition("@")
    if at and local and domain:
        return f"{local[0]}***@{domain}"
    return f"{contact[0]}***"


def contact_for(role: str | None, contact: str) -> str:
    """The contact as ``role`` may see it: in full with ``feedback.contact_view``, else masked."""
    return contact if allows(role, Perm.FEEDBACK_CONTACT_VIEW) else contact_masked(contact)
