"""Celery tasks of the metrics app: thin wrappers that call services."""

from __future__ import annotations

from celery import shared_task

from metrics import services


@shared_task(name="metrics.tasks.tick", ignore_result=True)
def tick() -> None:
    """Beat sends this once a minute. For now it records a heartbeat; due check slots come later."""
    services.heartbeat_record()
