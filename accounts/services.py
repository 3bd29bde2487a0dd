"""Writes about people and teams."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Notification, Team, User, validate_time_zone
from accounts.permissions import require_team_creation
from core.queue import enqueue_on_commit

log = logging.getLogger(__name__)

EmailState = Notification.EmailState

# The e-mails notifications owe (Notification.email_state): at most this many attempts, attempt
# n + 1 due 2ⁿ minutes after the notification (a lost first message after 1 minute, retries after
# 2, 4 … 128), and given up a day after it at the latest. The sweep queues at most a batch a
# minute, a few per task, so a task stays inside its time limit even if each send waits for the
# SMTP timeout.
EMAIL_MAX_ATTEMPTS = 8
EMAIL_GIVE_UP_AFTER = dt.timedelta(days=1)
EMAIL_SWEEP_BATCH = 200
EMAIL_TASK_SIZE = 20


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

    Raises ``ValidationError`` naming the field on a blank name, an unknown time zone or role,
    and ``PermissionDenied`` when the site lets only its staff create teams (``TEAM_CREATION``).
    """
    require_team_creation(creator)
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
    *, users: Iterable[User], kind: str, message: str, actor: User | None, url: str = ""
) -> list[Notification]:
    """Notify each of ``users`` once (in-app, and by e-mail for those who want it), except the
    ``actor`` whose action this tells of: nobody is told of what they did themselves. Every
    caller names the actor (None for the tick's own findings), so none can forget it.

    E-mail goes out from the worker after the surrounding transaction commits, so a rolled-back
    change never sends mail and a slow mail server never slows the request. The notification
    records the e-mail it owes (``pending``), so one whose message the broker never took is
    still sent, by the tick's ``notification_emails_sweep``.
    """
    recipients = {u.pk: u for u in users if u is not None and u != actor}
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                user=u,
                kind=kind,
                message=message[:300],
                url=url,
                email_state=EmailState.PENDING if u.email_notifications else EmailState.NONE,
            )
            for u in recipients.values()
        ]
    )
    emailed = [n.pk for n in notifications if n.email_state == EmailState.PENDING]
    if emailed:
        enqueue_on_commit("accounts.tasks.notifications_email", emailed)
    return notifications


def notify_each(*, kind: str, items: Iterable[tuple[User, str, str]]) -> list[Notification]:
    """``notify`` for many different messages at once, one insert whatever their number: each
    item is (user, message, url). For jobs that tell many owners one thing each (the tick)."""
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                user=user,
                kind=kind,
                message=message[:300],
                url=url,
                email_state=EmailState.PENDING if user.email_notifications else EmailState.NONE,
            )
            for user, message, url in items
        ]
    )
    emailed = [n.pk for n in notifications if n.email_state == EmailState.PENDING]
    if emailed:
        enqueue_on_commit("accounts.tasks.notifications_email", emailed)
    return notifications


def notification_email_set(*, user: User, enabled: bool) -> None:
    """Turn e-mailed notifications on or off for ``user`` (``notify`` reads it)."""
    user.email_notifications = enabled
    user.save(update_fields=["email_notifications"])


def user_time_zone_set(*, user: User, time_zone: str) -> None:
    """Set (or with "" clear) the person's own zone: pages then add the time on their clock where
    it reads differently from the plan's or team's."""
    if time_zone:
        validate_time_zone(time_zone)  # ValidationError naming the zone
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])


def notifications_mark_read(*, user: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all unread ones when no ids are given)."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=list(notification_ids))
    return unread.update(read_at=timezone.now())


def notification_emails_send(*, notification_ids: Iterable[int]) -> int:
    """Send the e-mails these notifications still owe; returns how many were sent.

    Idempotent: each notification is claimed with a compare-and-set (``pending`` → ``sent``)
    before its e-mail goes out, so a retried or duplicated task, or the sweep's copy of a message
    that did arrive, never sends it twice. A failed send is put back to ``pending`` for the sweep
    to retry, or marked ``failed`` after ``EMAIL_MAX_ATTEMPTS``. A worker killed during the send
    leaves it ``sent``: an e-mail goes out at most once, never twice.
    """
    ids = list(notification_ids)
    # Someone who turned e-mail off since the notification was made is owed none any more.
    Notification.objects.filter(
        pk__in=ids, email_state=EmailState.PENDING, user__email_notifications=False
    ).update(email_state=EmailState.NONE)
    sent = 0
    for pk in ids:
        claimed_at = timezone.now()
        claimed = Notification.objects.filter(pk=pk, email_state=EmailState.PENDING).update(
            email_state=EmailState.SENT,
            emailed_at=claimed_at,
            email_attempts=F("email_attempts") + 1,
        )
        if not claimed:
            continue
        notification = Notification.objects.select_related("user").get(pk=pk)
        link = f"\n\n{settings.SITE_URL}{notification.url}" if notification.url else ""
        try:
            send_mail(
                subject=f"[Pilotplan] {notification.get_kind_display()}",
                message=f"{notification.message}{link}",
                from_email=None,
                recipient_list=[notification.user.email],
            )
        except Exception as exc:
            retry = notification.email_attempts < EMAIL_MAX_ATTEMPTS
            state = EmailState.PENDING if retry else EmailState.FAILED
            Notification.objects.filter(
                pk=pk, email_state=EmailState.SENT, emailed_at=claimed_at
            ).update(email_state=state, emailed_at=None)
            log.warning(
                "E-mail of notification %s failed (attempt %s of %s%s): %s",
                pk, notification.email_attempts, EMAIL_MAX_ATTEMPTS,
                "" if retry else ", given up", exc,
            )  # fmt: skip
            if not isinstance(exc, smtplib.SMTPException | OSError):
                raise  # not the mail server's answer (a bug, the task's time limit): stop here
            continue
        sent += 1
    return sent


def notification_emails_sweep(*, now: dt.datetime) -> int:
    """Queue the e-mails notifications still owe; returns how many were due.

    Beat's one-minute tick calls it. ``notify`` publishes the e-mail task after its commit and
    drops the message when the broker is down; the notification still says ``pending``, so it
    is found here a minute later, and after a failed send again 2, 4, 8 … minutes after it was
    made (see ``EMAIL_MAX_ATTEMPTS``). What is still pending a day later is marked ``failed``:
    an alert e-mailed a day late helps nobody, and it stays under the bell. At most
    ``EMAIL_SWEEP_BATCH`` a minute, oldest first. Their messages are published after the
    caller's commit; if the broker is still down they are lost again, and found again next
    minute.
    """
    pending = Notification.objects.filter(email_state=EmailState.PENDING)
    expired = pending.filter(created_at__lt=now - EMAIL_GIVE_UP_AFTER).update(
        email_state=EmailState.FAILED
    )
    if expired:
        log.warning("Gave up e-mailing %s notifications more than a day old", expired)
    due = pending.filter(
        email_attempts__lt=EMAIL_MAX_ATTEMPTS,
        created_at__lte=RawSQL(
            "%s::timestamptz - make_interval(mins => power(2, email_attempts)::int)", [now]
        ),
    )
    ids = list(due.order_by("created_at").values_list("pk", flat=True)[:EMAIL_SWEEP_BATCH])
    for start in range(0, len(ids), EMAIL_TASK_SIZE):
        enqueue_on_commit(
            "accounts.tasks.notifications_email", ids[start : start + EMAIL_TASK_SIZE]
        )
    return len(ids)
