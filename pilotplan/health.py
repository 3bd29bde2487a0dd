"""``/healthz``: is this web process able to serve? Used by load balancers and compose."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core.redis_client import redis_client
from metrics.models import Heartbeat
from metrics.selectors import heartbeat_get

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # any failure means "down"; the reason goes to the log
        logger.exception("healthz: database check failed")
        return False


def _broker_ok() -> bool:
    try:
        return bool(redis_client().ping())
    except redis.RedisError:
        logger.warning("healthz: broker check failed", exc_info=True)
        return False


def _age(moment: datetime.datetime | None, now: datetime.datetime) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None


def _scheduler_status(*, database_ok: bool, beat: Heartbeat | None, now: datetime.datetime) -> str:
    """``ok``, ``failed`` (the last tick failed as a whole), ``stale`` (no tick completed within
    ``HEALTHZ_HEARTBEAT_MAX_AGE``), ``never`` (no tick yet) or ``unknown`` (database down)."""
    if not database_ok:
        return "unknown"
    if beat is None:
        return "never"
    if beat.failed_at and (beat.completed_at is None or beat.failed_at > beat.completed_at):
        return "failed"
    # Before the first tick completes, the first one gets the same time from its start.
    age = _age(beat.completed_at or beat.beat_at, now)
    assert age is not None
    return "stale" if age > settings.HEALTHZ_HEARTBEAT_MAX_AGE else "ok"


def _scheduler(*, database_ok: bool, now: datetime.datetime) -> dict[str, Any]:
    beat = heartbeat_get() if database_ok else None
    return {
        "last_heartbeat": beat.beat_at.isoformat() if beat else None,
        "age_seconds": _age(beat.beat_at, now) if beat else None,
        "status": _scheduler_status(database_ok=database_ok, beat=beat, now=now),
        "last_tick": None
        if beat is None
        else {
            "started_at": beat.beat_at.isoformat(),
            "completed_at": beat.completed_at.isoformat() if beat.completed_at else None,
            "completed_age_seconds": _age(beat.completed_at, now),
            "failed_plans": beat.failed_plans,
            "failed_at": beat.failed_at.isoformat() if beat.failed_at else None,
            "error": beat.error,
        },
    }


@never_cache
@require_http_methods(["GET", "HEAD"])
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503; always says which is which.

    The scheduler's last tick is reported (when it started and completed, how many plans a job
    failed for in it; ``failed`` or ``stale`` past ``HEALTHZ_HEARTBEAT_MAX_AGE``) but does not
    turn the answer into 503: every web process behind a load balancer answers this, and a
    stopped or failing scheduler must raise an alarm, not take the whole site out of rotation
    (docs/operations.md).
    """
    database = _database_ok()
    broker = _broker_ok()
    healthy = database and broker
    body = {
        "status": "ok" if healthy else "down",
        "database": "ok" if database else "down",
        "broker": "ok" if broker else "down",
        "scheduler": _scheduler(database_ok=database, now=timezone.now()),
    }
    return JsonResponse(body, status=200 if healthy else 503)
