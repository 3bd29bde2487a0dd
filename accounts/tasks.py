from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task(name="accounts.tasks.notifications_email", ignore_result=True)
def notifications_email(notification_ids: list[int]) -> None:
    services.notification_emails_send(notification_ids=notification_ids)
