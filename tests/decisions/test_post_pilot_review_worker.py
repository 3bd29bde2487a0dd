"""The post-pilot review reminders through beat's tick, a real Celery worker and a real Redis:
the tick publishes ``decisions.tasks.post_pilot_reviews_remind`` by name (metrics sits below
decisions) and the worker sends what is owed (that a second run sends nothing twice is
tested on the service, in test_post_pilot_review.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Notification
from decisions.models import PostPilotReview
from decisions.services.review import post_pilot_review_open
from metrics.tasks import POST_PILOT_REMINDERS, tick
from tests.decisions.test_post_pilot_review import decided
from tests.metrics.test_tick_worker import broker, wait_for, worker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_tick_has_the_worker_remind_an_overdue_review_once(worker, team, po, sm):  # noqa: F811
    assert POST_PILOT_REMINDERS == "decisions.tasks.post_pilot_reviews_remind"
    plan = decided(team, po, scrum_master=sm, decided_at=timezone.now() - dt.timedelta(days=20))
    review = post_pilot_review_open(plan=plan, decided_at=plan.decided_at)
    assert review.due_on < timezone.now().date() - dt.timedelta(days=5)  # long overdue

    tick.apply_async(queue=worker)

    assert wait_for(lambda: PostPilotReview.objects.get(pk=review.pk).overdue_reminded_at), (
        "the worker sent no reminder within 20 s"
    )
    reminded = Notification.objects.filter(kind=Notification.Kind.REVIEW_DUE)
    assert {n.user for n in reminded} == {po, sm}
    assert "was due" in reminded.first().message
