"""Writes about people and teams."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Notification, Team, User
from core.queue import enqueue_on_commit


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def team_create(
    *,
    creator: User,
    name: str,
    time_zone: str = "UTC",
    creator_role: str = Membership.Role.PRODUCT_OWNER,
) -> Team:
    """Create a team with ``creator`` as its first member (a Product Owner unless told otherwise).

    Raises ``ValidationError`` naming the field on a blank name, an unknown time zone or role.
    """
    team = Team(name=name.strip(), time_zone=time_zone, slug="placeholder")
    team.full_clean(exclude=["slug"])
    membership = Membership(user=creator, team=team, role=creator_role)
    membership.full_clean(exclude=["team", "user"])
    for _attempt in range(3):
        team.slug = _unique_slug(team.name)
        try:
            with transaction.atomic():
                team.save()
            break
        except IntegrityError:  # a concurrent create took the slug between check and insert
            continue
    else:
        raise IntegrityError("could not choose a unique slug for the team")
    membership.team = team
    membership.save()
    return team


@transaction.atomic
def membership_set(*, team: Team, user: User, role: str) -> Membership:
    """Add ``user`` to ``team`` with ``role``, or change their role there (idempotent)."""
    membership = Membership(team=team, user=user, role=role)
    membership.full_clean(exclude=["team", "user"], validate_unique=False)
    obj, _created = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return obj


def notify(
    *, users: Iterable[User], kind: str, message: str, url: str = "", exclude: User | None = None
) -> list[Notification]:
    """Notify each of ``users`` once (in-app, and by e-mail for those who want it).

    E-mail goes out from the worker after the surrounding transaction commits, so a rolled-back
    change never sends mail and a slow mail server never slows the request.
    """
    recipients = {u.pk: u for u in users if u is not None and (exclude is None or u != exclude)}
    notifications = Notification.objects.bulk_create(
        [
            Notification(user=u, kind=kind, message=message[:300], url=url)
            for u in recipients.values()
        ]
    )
    emailed = [n.pk for n in notifications if recipients[n.user_id].email_notifications]
    if emailed:
        enqueue_on_commit("accounts.tasks.notifications_email", emailed)
    return notifications


def notification_email_set(*, user: User, enabled: bool) -> None:
    """Turn e-mailed notifications on or off for ``user`` (``notify`` reads it)."""
    user.email_notifications = enabled
    user.save(update_fields=["email_notifications"])


def notifications_mark_read(*, user: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all unread ones when no ids are given)."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=list(notification_ids))
    return unread.update(read_at=timezone.now())


def notification_emails_send(*, notification_ids: Iterable[int]) -> int:
    """Send the e-mails of these notifications that have not been sent yet; idempotent: each
    row is claimed by setting ``emailed_at`` before the send, so a retried task skips it."""
    sent = 0
    for pk in notification_ids:
        claimed = Notification.objects.filter(pk=pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        if not claimed:
            continue
        notification = Notification.objects.select_related("user").get(pk=pk)
        link = f"\n\n{settings.SITE_URL}{notification.url}" if notification.url else ""
        send_mail(
            subject=f"[Pilotplan] {notification.get_kind_display()}",
            message=f"{notification.message}{link}",
            from_email=None,
            recipient_list=[notification.user.email],
        )
        sent += 1
    return sent
