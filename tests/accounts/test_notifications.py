"""The bell, the notifications page, marking read, the e-mail preference and the e-mails."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Notification, User
from accounts.services import notification_emails_send, notify
from core.queue import flush
from tests.metrics.test_ingest_redis import broker, own_redis  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

KIND = Notification.Kind.REVIEW_REQUESTED


def _notify(user: User, n: int = 1, url: str = "/plans/") -> list[Notification]:
    made = []
    for i in range(n):
        made += notify(
            users=[user], kind=KIND, message=f"Please review plan {i}", url=url, actor=None
        )
    return made


# --- the bell ------------------------------------------------------------------------------------


def test_bell_shows_the_unread_count_in_one_query(po, sm, client_for, django_assert_num_queries):
    notes = _notify(po, 3)
    _notify(sm, 2)  # someone else's: not counted
    Notification.objects.filter(pk=notes[0].pk).update(read_at=timezone.now())
    client = client_for(po)
    client.get("/notifications/bell")  # warm up

    with django_assert_num_queries(3):  # session, user, the count
        response = client.get("/notifications/bell")

    assert response.status_code == 200
    assert 'data-testid="unread-count">2<' in response.content.decode()


def test_bell_without_unread_shows_no_count(po, client_for):
    response = client_for(po).get("/notifications/bell")
    assert "unread-count" not in response.content.decode()


def test_full_pages_load_the_bell_with_htmx_and_count_nothing_themselves(po, client_for):
    _notify(po)
    html = client_for(po).get("/teams/").content.decode()
    assert 'hx-get="/notifications/bell"' in html
    assert "unread-count" not in html


def test_the_bell_and_page_need_a_login():
    for url in ("/notifications/bell", "/notifications/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


# --- the page ------------------------------------------------------------------------------------


def test_page_lists_only_own_notifications_newest_first_unread_highlighted(
    po, sm, client_for, django_assert_num_queries
):
    older, newer = _notify(po, 2)
    Notification.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1), read_at=timezone.now()
    )
    notify(users=[sm], kind=KIND, message="Not for the PO", actor=None)
    client = client_for(po)
    client.get("/notifications/")

    with django_assert_num_queries(5):  # session, user, unread count, page count, page rows
        response = client.get("/notifications/")

    html = response.content.decode()
    assert "Not for the PO" not in html
    assert html.index("Please review plan 1") < html.index("Please review plan 0")
    assert html.count("data-unread") == 1
    assert f"/notifications/{newer.pk}/open" in html


def test_page_is_paginated_by_25_with_constant_queries(po, client_for, django_assert_num_queries):
    _notify(po, 30)
    client = client_for(po)
    client.get("/notifications/")
    with django_assert_num_queries(5):
        first = client.get("/notifications/").content.decode()
    with django_assert_num_queries(5):
        second = client.get("/notifications/?page=2").content.decode()
    assert first.count('data-testid="notification"') == 25
    assert second.count('data-testid="notification"') == 5


def test_opening_a_notification_marks_it_read_and_follows_its_link(po, client_for):
    (note,) = _notify(po, url="/plans/")
    other = _notify(po)[0]

    response = client_for(po).post(f"/notifications/{note.pk}/open")

    assert response.status_code == 302
    assert response["Location"] == "/plans/"
    note.refresh_from_db()
    other.refresh_from_db()
    assert note.read_at is not None
    assert other.read_at is None


def test_opening_never_redirects_off_site(po, client_for):
    (note,) = _notify(po, url="https://evil.example/")
    response = client_for(po).post(f"/notifications/{note.pk}/open")
    assert response["Location"] == "/notifications/"


def test_another_users_notification_is_404_and_stays_unread(po, sm, client_for):
    (note,) = _notify(sm)

    response = client_for(po).post(f"/notifications/{note.pk}/open")

    assert response.status_code == 404
    note.refresh_from_db()
    assert note.read_at is None


def test_opening_needs_post(po, client_for):
    (note,) = _notify(po)
    assert client_for(po).get(f"/notifications/{note.pk}/open").status_code == 405


def test_mark_all_read_marks_only_own(po, sm, client_for):
    _notify(po, 3)
    _notify(sm, 2)

    response = client_for(po).post("/notifications/read-all")

    assert response.status_code == 302
    assert not Notification.objects.filter(user=po, read_at=None).exists()
    assert Notification.objects.filter(user=sm, read_at=None).count() == 2


def test_anonymous_cannot_mark_or_change_preferences(po):
    (note,) = _notify(po)
    for url in (
        f"/notifications/{note.pk}/open",
        "/notifications/read-all",
        "/notifications/e-mail",
    ):
        response = Client().post(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    note.refresh_from_db()
    po.refresh_from_db()
    assert note.read_at is None
    assert po.email_notifications is True


def test_email_preference_toggle(po, sm, client_for):
    client = client_for(po)
    assert client.post("/notifications/e-mail", {}).status_code == 302
    po.refresh_from_db()
    sm.refresh_from_db()
    assert po.email_notifications is False
    assert sm.email_notifications is True  # only one's own
    html = client.get("/notifications/").content.decode()
    assert 'name="email_notifications" checked' not in html

    client.post("/notifications/e-mail", {"email_notifications": "on"})
    po.refresh_from_db()
    assert po.email_notifications is True


# --- e-mail ---------------------------------------------------------------------------------------


@pytest.fixture
def locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return mail.outbox


def test_one_email_per_notification(po, sm, locmem_mail, settings):
    notes = notify(users=[po, sm], kind=KIND, message="Please review", url="/plans/1/", actor=None)

    sent = notification_emails_send(notification_ids=[n.pk for n in notes])

    assert sent == 2
    assert sorted(m.to[0] for m in locmem_mail) == sorted([po.email, sm.email])
    assert all(m.subject == "[Pilotplan] Review requested" for m in locmem_mail)
    assert f"{settings.SITE_URL}/plans/1/" in locmem_mail[0].body
    assert Notification.objects.filter(emailed_at=None).count() == 0


def test_sending_twice_sends_nothing_the_second_time(po, locmem_mail):
    ids = [n.pk for n in _notify(po, 2)]
    assert notification_emails_send(notification_ids=ids) == 2

    assert notification_emails_send(notification_ids=ids) == 0

    assert len(locmem_mail) == 2


def test_users_who_turned_email_off_get_none(
    po,
    sm,
    locmem_mail,
    django_capture_on_commit_callbacks,
    broker,  # noqa: F811
):
    User.objects.filter(pk=sm.pk).update(email_notifications=False)
    sm.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        notes = notify(users=[po, sm], kind=KIND, message="Please review", actor=None)

    # What notify() published to the (test's own, real) broker.
    assert flush()
    client = broker.client()
    queued = [
        json.loads(base64.b64decode(m["body"]))[0][0]
        for m in map(json.loads, client.lrange("celery", 0, -1))
        if m["headers"]["task"] == "accounts.tasks.notifications_email"
    ]
    client.close()
    # notify() queues only the PO's notification for e-mail; the SM's stays in-app.
    by_user = {n.user_id: n.pk for n in notes}
    assert queued == [[by_user[po.pk]]]
    notification_emails_send(notification_ids=queued[0])
    assert [m.to for m in locmem_mail] == [[po.email]]
    assert Notification.objects.filter(user=sm).count() == 1
