"""Celery tasks of the decisions app: thin wrappers that call services, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from decisions.services.review import post_pilot_reviews_remind as reviews_remind


@shared_task(name="decisions.tasks.post_pilot_reviews_remind", ignore_result=True)
def post_pilot_reviews_remind() -> int:
    """Reminders of post-pilot reviews coming due or overdue, published by the tick every
    minute (``metrics.tasks.post_pilot_reminders_publish``; beat holds no business schedule).
    Each reminder is claimed in the database, so a duplicated or retried message sends nothing
    twice."""
    return reviews_remind(now=timezone.now())
